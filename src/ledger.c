/*-------------------------------------------------------------------------
 *
 * ledger.c
 *	  A tenant's migration ledger: the SQL that creates, locks, reads and
 *	  writes it, and the checks every ledger read goes through.
 *
 * The ledger is the truth about which migrations a tenant has: one row
 * per applied migration (version, checksum, when, how long), written in
 * the migration's own transaction.  It is tenancy.applied_migration in a
 * tenant database, and <schema>.tenancy_applied_migration for a schema
 * tenant.  tenancy.tenant.applied_version in the admin database is only a
 * summary of it.
 *
 * A ledger is read from a tenant, so nothing in it is trusted: a row
 * whose version is not a positive number or whose checksum is missing, or
 * a result of the wrong shape, is reported as a damaged ledger (XX001),
 * never dereferenced or parsed with a function that throws.  A version
 * applied with another checksum than the registered one, or applied but
 * not registered, is drift (XX001) and nothing is applied.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/ledger.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "ledger.h"
#include "tenancy.h"

/*
 * The ledger table: tenancy.applied_migration in a tenant database, or
 * <schema>.tenancy_applied_migration for a schema tenant.
 */
static char *
ledger_table(const char *schema)
{
	if (schema == NULL)
		return "tenancy.applied_migration";
	return psprintf("%s." TENANCY_SCHEMA_LEDGER, quote_identifier(schema));
}

/* Creates the ledger if it does not exist yet (a new database or schema). */
char *
tenancy_ledger_sql_setup(const char *schema)
{
	const char *table = ledger_table(schema);

	return psprintf("%s"
					"CREATE TABLE IF NOT EXISTS %s ("
					"version bigint PRIMARY KEY, "
					"checksum text NOT NULL, "
					"applied_at timestamptz NOT NULL DEFAULT pg_catalog.now(), "
					"duration interval NOT NULL); "
					"COMMENT ON TABLE %s IS "
					"'tenancy migration ledger: one row per migration applied, written in the migration''s own transaction'",
					schema == NULL ? "CREATE SCHEMA IF NOT EXISTS tenancy; " : "",
					table, table);
}

/* Query for a ledger's rows (version, checksum as text), in version order. */
char *
tenancy_ledger_sql_read(const char *schema)
{
	return psprintf("SELECT version::pg_catalog.text, checksum::pg_catalog.text FROM %s ORDER BY 1",
					ledger_table(schema));
}

/* Locks a ledger against out-of-band migrators, inside a migration's transaction. */
char *
tenancy_ledger_sql_lock(const char *schema)
{
	return psprintf("LOCK TABLE %s IN EXCLUSIVE MODE", ledger_table(schema));
}

/*
 * Records an applied migration in the ledger, inside the migration's
 * transaction: duration is measured from the start of that transaction.
 */
char *
tenancy_ledger_sql_insert(int64 version, const char *checksum, const char *schema)
{
	return psprintf("INSERT INTO %s (version, checksum, duration) "
					"VALUES (" INT64_FORMAT ", %s, pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) pg_catalog.now())",
					ledger_table(schema), version, quote_literal_cstr(checksum));
}

/*
 * A statement that raises 42501 when an enabled trigger in the tenant (its
 * schema, or its whole database) would run, with the privileges of the
 * role migrations run as, a function owned by another role that is not a
 * superuser (a SECURITY DEFINER function runs as its owner, so it is not
 * counted).  Migrations run as the service role, and a trigger fires with
 * the privileges of whoever runs the statement: a member granted TRIGGER
 * on a table could otherwise have its own code run as the service role.
 */
char *
tenancy_ledger_sql_trigger_guard(const char *schema)
{
	/* a literal inside a dollar-quoted body must not hold the tag */
	if (schema != NULL && strstr(schema, "$tenancy_guard$") != NULL)
		elog(ERROR, "invalid schema name \"%s\"", schema);
	return psprintf("DO $tenancy_guard$ DECLARE t record; BEGIN "
					"SELECT g.tgname::text AS tgname, "
					"pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname) AS rel, "
					"p.proowner::pg_catalog.regrole::text AS owner INTO t "
					"FROM pg_catalog.pg_trigger g "
					"JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid "
					"JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
					"JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) g.tgfoid "
					"JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) p.proowner "
					"WHERE NOT g.tgisinternal AND g.tgenabled OPERATOR(pg_catalog.<>) 'D' "
					"AND NOT p.prosecdef AND NOT r.rolsuper "
					"AND r.rolname OPERATOR(pg_catalog.<>) CURRENT_USER "
					"AND n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema']) %s "
					"LIMIT 1; "
					"IF FOUND THEN RAISE EXCEPTION USING ERRCODE = '42501', "
					"MESSAGE = pg_catalog.format('trigger %%I on %%s would run a function of role %%s as role %%s', "
					"t.tgname, t.rel, t.owner, CURRENT_USER), "
					"HINT = 'Migrations refuse to run other roles'' trigger functions: drop the trigger, or create it in a migration; never grant TRIGGER on tenant tables.'; "
					"END IF; END $tenancy_guard$",
					schema ? psprintf("AND n.nspname OPERATOR(pg_catalog.=) %s", quote_literal_cstr(schema)) : "");
}

/*
 * Parses a ledger version without throwing: a positive int64 written in
 * decimal digits only.
 */
static bool
parse_version(const char *s, int64 *version)
{
	int64		v = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9' || v > (PG_INT64_MAX - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*version = v;
	return v > 0;
}

/* Finds a registered migration by version, or NULL. */
static TenancyMigration *
find_migration(List *migrations, int64 version)
{
	ListCell   *lc;

	foreach(lc, migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);

		if (m->version == version)
			return m;
	}
	return NULL;
}

/* The error of a ledger that cannot be read as one. */
static RemoteError *
damaged(const char *label, char *detail)
{
	return tenancy_remote_error("XX001", psprintf("the migration ledger of %s is damaged", label),
								detail, NULL);
}

/* Checks the shape of a ledger read and one row of it. */
static RemoteError *
check_row(const RemoteResult *read, char **row, const char *label, int64 *version)
{
	if (read->nfields != 2)
		return damaged(label, psprintf("Reading it returned %d columns instead of 2.", read->nfields));
	if (!parse_version(row[0], version) || row[1] == NULL)
		return damaged(label, psprintf("A row has version %s and %s checksum.",
									   row[0] ? quote_literal_cstr(row[0]) : "NULL",
									   row[1] ? "a" : "no"));
	return NULL;
}

/*
 * The highest version in a ledger ("read": rows of version, checksum), in
 * *max; returns the error of a damaged ledger, or NULL.
 */
RemoteError *
tenancy_ledger_max(const RemoteResult *read, const char *label, int64 *max)
{
	ListCell   *lc;
	int64		version;
	RemoteError *error;

	*max = 0;
	if (read->nfields != 2)
		return check_row(read, NULL, label, &version);
	foreach(lc, read->rows)
	{
		if ((error = check_row(read, (char **) lfirst(lc), label, &version)) != NULL)
			return error;
		*max = Max(*max, version);
	}
	return NULL;
}

/*
 * Checks what reading a ledger returned ("read": rows of version,
 * checksum) against the registered migrations (ascending).  On success
 * returns NULL, sets *applied to the highest version in the ledger and,
 * unless "pending" is NULL, *pending to the registered migrations the
 * ledger lacks, in ascending order.  Otherwise returns the error (XX001:
 * a damaged ledger or drift), without throwing, so that fleet runs can
 * record it and go on.  "label" names the tenant in messages.
 */
RemoteError *
tenancy_ledger_check(const RemoteResult *read, List *migrations, const char *label,
					 int64 *applied, List **pending)
{
	ListCell   *lc;
	List	   *versions = NIL;
	RemoteError *error;

	if (pending)
		*pending = NIL;
	error = tenancy_ledger_max(read, label, applied);

	if (error != NULL)
		return error;
	foreach(lc, read->rows)
	{
		char	  **row = (char **) lfirst(lc);
		int64		version = pg_strtoint64(row[0]);	/* checked above */
		TenancyMigration *m;

		m = find_migration(migrations, version);
		if (m == NULL)
			return tenancy_remote_error("XX001",
										psprintf("migration " INT64_FORMAT " was applied to %s but is not registered",
												 version, label),
										NULL, NULL);
		if (strcmp(m->checksum, row[1]) != 0)
			return tenancy_remote_error("XX001",
										psprintf("migration " INT64_FORMAT " has changed since it was applied to %s",
												 version, label),
										psprintf("The tenant's ledger has checksum %s; the registered migration has %s.",
												 row[1], m->checksum),
										NULL);
		versions = lappend(versions, m);
	}
	if (pending)
	{
		foreach(lc, migrations)
		{
			if (!list_member_ptr(versions, lfirst(lc)))
				*pending = lappend(*pending, lfirst(lc));
		}
	}
	return NULL;
}
