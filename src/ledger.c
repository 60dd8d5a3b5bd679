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

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
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

/*
 * Whether the ledger, if it exists, is anything but a plain table owned by
 * the role reading it, in a schema that role owns: an SQL expression, the
 * refusal's message (42501) or NULL.  A ledger another role owns (a
 * database adopted with a "tenancy" schema of its own, say) could be a
 * view, with rules or triggers, that runs that role's code, and would say
 * what that role likes; so this is asked before anything touches it.
 */
char *
tenancy_ledger_expr_guard(const char *schema)
{
	const char *nsp = schema ? schema : "tenancy";
	const char *rel = schema ? TENANCY_SCHEMA_LEDGER : "applied_migration";

	return psprintf("(SELECT pg_catalog.format('the migration ledger %%I.%%I is not a table of role %%s in a schema it owns "
					"(schema owner %%s, ledger owner %%s, relkind %%s)', %s, %s, CURRENT_USER, "
					"pg_catalog.pg_get_userbyid(n.nspowner), COALESCE(pg_catalog.pg_get_userbyid(c.relowner)::text, '-'), "
					"COALESCE(c.relkind::text, '-')) "
					"FROM pg_catalog.pg_namespace n LEFT JOIN pg_catalog.pg_class c "
					"ON c.relnamespace OPERATOR(pg_catalog.=) n.oid AND c.relname OPERATOR(pg_catalog.=) %s "
					"WHERE n.nspname OPERATOR(pg_catalog.=) %s "
					"AND (pg_catalog.pg_get_userbyid(n.nspowner) OPERATOR(pg_catalog.<>) CURRENT_USER "
					"OR pg_catalog.pg_get_userbyid(c.relowner) OPERATOR(pg_catalog.<>) CURRENT_USER "
					"OR c.relkind OPERATOR(pg_catalog.<>) 'r'))",
					quote_literal_cstr(nsp), quote_literal_cstr(rel),
					quote_literal_cstr(rel), quote_literal_cstr(nsp));
}

/*
 * Whether tenancy_ledger_expr_guard() would refuse: a boolean SQL
 * expression, cheap to plan (no join, no formatting, every operator on
 * exactly its types, so that a fresh session need not weigh every "="
 * of pg_catalog through pg_cast), that the engine sends first; the
 * message is asked for only when it is true.  A missing schema or ledger
 * is nothing to refuse.  The relation is looked up by name in the
 * schema's oid, not with to_regclass(), which needs USAGE on the schema:
 * a schema another role owns would be an error, not the refusal.
 */
char *
tenancy_ledger_expr_suspect(const char *schema)
{
	const char *nsp = schema ? schema : "tenancy";
	const char *rel = schema ? TENANCY_SCHEMA_LEDGER : "applied_migration";
	const char *me = TENANCY_SQL_CURRENT_ROLE_OID;

	return psprintf("COALESCE((SELECT n.nspowner OPERATOR(pg_catalog.<>) %s FROM pg_catalog.pg_namespace n "
					"WHERE n.nspname OPERATOR(pg_catalog.=) %s), false) "
					"OR COALESCE((SELECT c.relowner OPERATOR(pg_catalog.<>) %s OR c.relkind OPERATOR(pg_catalog.<>) 'r' "
					"FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.=) %s "
					"AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace(%s)::pg_catalog.oid), false)",
					me, quote_literal_cstr(nsp), me, quote_literal_cstr(rel),
					quote_literal_cstr(quote_identifier(nsp)));
}

/* The hint of a refused ledger. */
#define LEDGER_GUARD_HINT \
	"tenancy reads only a ledger the service role owns; another role's could run that role's code."

/* The refusal (42501) of a ledger the guard found "message" about. */
RemoteError *
tenancy_ledger_refusal(const char *message)
{
	return tenancy_remote_error("42501", message, NULL, LEDGER_GUARD_HINT);
}

/*
 * The same check as a statement that raises the refusal, for callers that
 * send the guard and the read in one query (reconcile, health, adopt).
 */
char *
tenancy_ledger_sql_guard(const char *schema)
{
	char	   *check = tenancy_ledger_expr_guard(schema);

	/* the check's literals sit inside a dollar-quoted body */
	if (strstr(check, "$tenancy_ledger$") != NULL)
		elog(ERROR, "invalid schema name \"%s\"", schema);
	return psprintf("DO $tenancy_ledger$ DECLARE m text := %s; BEGIN "
					"IF m IS NOT NULL THEN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = m, HINT = %s; "
					"END IF; END $tenancy_ledger$",
					check, quote_literal_cstr(LEDGER_GUARD_HINT));
}

/*
 * Query for a ledger's rows (version, checksum), in no order and without
 * casts: a fresh tenant session pays for planning a sort and for looking
 * up a cast, and the checks below parse the text of each value and put
 * the rows in version order themselves.
 */
char *
tenancy_ledger_sql_select(const char *schema)
{
	return psprintf("SELECT version, checksum FROM %s",
					ledger_table(schema));
}

/* The same after the guard, in one query. */
char *
tenancy_ledger_sql_read(const char *schema)
{
	return psprintf("%s; %s", tenancy_ledger_sql_guard(schema), tenancy_ledger_sql_select(schema));
}

/* Query: does the ledger hold "version"?  One row, "t" or "f". */
char *
tenancy_ledger_sql_holds(int64 version, const char *schema)
{
	return psprintf("%s; SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 FROM %s "
					"WHERE version OPERATOR(pg_catalog.=) " INT64_FORMAT,
					tenancy_ledger_sql_guard(schema), ledger_table(schema), version);
}

/*
 * Locks a ledger against out-of-band migrators, inside a migration's
 * transaction.
 */
char *
tenancy_ledger_sql_lock(const char *schema)
{
	return psprintf("LOCK TABLE %s IN EXCLUSIVE MODE", ledger_table(schema));
}

/*
 * Records an applied migration in the ledger, inside the migration's
 * transaction: duration is measured from the start of that transaction.
 * With "xid", only if the transaction is still that one; the statement
 * returns the version it wrote, so the engine sees whether it did.
 */
char *
tenancy_ledger_sql_insert(int64 version, const char *checksum, const char *schema,
						  const char *xid)
{
	return psprintf("INSERT INTO %s (version, checksum, duration) "
					"SELECT " INT64_FORMAT ", %s, pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) pg_catalog.now() "
					"%s%s%s RETURNING version::pg_catalog.text",
					ledger_table(schema), version, quote_literal_cstr(checksum),
					xid ? "WHERE pg_catalog.pg_current_xact_id() OPERATOR(pg_catalog.=) " : "",
					xid ? quote_literal_cstr(xid) : "", xid ? "::pg_catalog.xid8" : "");
}

/*
 * Removes a rolled-back migration's row, inside the down's transaction;
 * "xid" as above.
 */
char *
tenancy_ledger_sql_delete(int64 version, const char *schema, const char *xid)
{
	return psprintf("DELETE FROM %s WHERE version OPERATOR(pg_catalog.=) " INT64_FORMAT
					"%s%s%s RETURNING version::pg_catalog.text",
					ledger_table(schema), version,
					xid ? " AND pg_catalog.pg_current_xact_id() OPERATOR(pg_catalog.=) " : "",
					xid ? quote_literal_cstr(xid) : "", xid ? "::pg_catalog.xid8" : "");
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

/*
 * A value read from a ledger, for an error's detail: cut (on a character
 * boundary) after 64 bytes, since a tenant's ledger may hold a value of
 * any length.
 */
static char *
shown(const char *value)
{
	int			len = strlen(value);
	int			clip = pg_mbcliplen(value, len, 64);

	if (clip == len)
		return pstrdup(value);
	return psprintf("%s...", pnstrdup(value, clip));
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
									   row[0] ? quote_literal_cstr(shown(row[0])) : "NULL",
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

/* The error of a ledger that holds "version" twice (its primary key gone). */
static RemoteError *
twice(const char *label, int64 version)
{
	return tenancy_remote_error("XX001",
								psprintf("the migration ledger of %s holds version " INT64_FORMAT " twice",
										 label, version),
								"Its primary key is gone: a migration or a role with access to it changed the ledger.",
								"Delete the duplicate row and restore the ledger's primary key.");
}

/* Orders int64s. */
static int
int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * The versions in a ledger ("read": rows of version, checksum), registered
 * or not, as an array literal in ascending order ("{1,2,5}") in
 * *versions, and the highest in *max; returns the error of a damaged
 * ledger, or NULL.
 */
RemoteError *
tenancy_ledger_versions(const RemoteResult *read, const char *label, int64 *max, char **versions)
{
	RemoteError *error = tenancy_ledger_max(read, label, max);
	int			n = list_length(read->rows);
	int64	   *v;
	ListCell   *lc;
	StringInfoData buf;
	int			i;

	if (error != NULL)
		return error;
	v = palloc(sizeof(int64) * Max(n, 1));
	foreach(lc, read->rows)
		v[foreach_current_index(lc)] = pg_strtoint64(((char **) lfirst(lc))[0]);	/* checked */
	qsort(v, n, sizeof(int64), int64_cmp);
	for (i = 1; i < n; i++)
		if (v[i] == v[i - 1])
			return twice(label, v[i]);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < n; i++)
		appendStringInfo(&buf, "%s" INT64_FORMAT, i > 0 ? "," : "", v[i]);
	appendStringInfoChar(&buf, '}');
	*versions = buf.data;
	return NULL;
}

/* Orders checked ledger rows by version. */
static int
by_row_version(const ListCell *a, const ListCell *b)
{
	int64		x = pg_strtoint64(((char **) lfirst(a))[0]);	/* checked */
	int64		y = pg_strtoint64(((char **) lfirst(b))[0]);

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Checks what reading a ledger returned ("read": rows of version,
 * checksum) against the registered migrations (ascending).  On success
 * returns NULL, sets *max to the highest version in the ledger and,
 * unless "applied" is NULL, *applied to the registered migrations the
 * ledger holds, in ascending order.  Otherwise returns the error (XX001:
 * a damaged ledger or drift), without throwing, so that fleet runs can
 * record it and go on.  "label" names the tenant in messages.
 */
RemoteError *
tenancy_ledger_check(const RemoteResult *read, List *migrations, const char *label,
					 int64 *max, List **applied)
{
	ListCell   *lc;
	List	   *rows;
	List	   *versions = NIL;
	RemoteError *error;

	if (applied)
		*applied = NIL;
	error = tenancy_ledger_max(read, label, max);

	if (error != NULL)
		return error;
	/* in version order, so that the first drift reported is the lowest */
	rows = list_copy(read->rows);
	list_sort(rows, by_row_version);
	foreach(lc, rows)
	{
		char	  **row = (char **) lfirst(lc);
		int64		version = pg_strtoint64(row[0]);	/* checked above */
		TenancyMigration *m;

		m = find_migration(migrations, version);
		/* sorted: a version the ledger holds twice is next to itself */
		if (versions != NIL && m != NULL && llast(versions) == m)
			return twice(label, version);
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
												 shown(row[1]), m->checksum),
										NULL);
		versions = lappend(versions, m);
	}
	if (applied)
		*applied = versions;
	return NULL;
}
