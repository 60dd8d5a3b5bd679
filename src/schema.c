/*-------------------------------------------------------------------------
 *
 * schema.c
 *	  Schema tenants: the tenant's schema in the admin database, its
 *	  migration ledger and its migrations.
 *
 * A schema tenant lives in the admin database itself, so everything done to
 * it is local and transactional: provision() creates the schema, its
 * ledger and applies every migration in the caller's transaction, together
 * with the catalog row (nothing can be left half-made, so there is no
 * temporary name and nothing for reconcile() to clean up); migrate() and
 * deprovision() likewise.  No connection is opened.
 *
 * The schema is owned by the role that owns tenant databases (the service
 * role configured with tenancy.configure(), or the calling superuser), and
 * created by the catalog owner, so the service role needs no CREATE
 * privilege on the admin database.  Its members get USAGE only.
 *
 * Migrations run as that owner, inside a security-restricted operation
 * (no SET ROLE, no temporary objects), with search_path set to the tenant's
 * schema followed by pg_temp (so a caller's temporary tables cannot
 * shadow the tenant's), lock_timeout set to tenancy.remote_lock_timeout,
 * and every setting a migration changes (SET or SET LOCAL) undone when it
 * returns, as if it had run in a session of its own.  A
 * migration that tries to end the transaction fails (SPI is atomic here).
 * The ledger is <schema>.tenancy_applied_migration, written in the same
 * transaction as the migration.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/schema.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "guc.h"
#include "migrate.h"
#include "schema.h"
#include "tenancy.h"
#include "transport.h"

/* Saved state while running inside a tenant schema. */
typedef struct SchemaScope
{
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;
} SchemaScope;

/*
 * Starts a GUC nest level with the settings tenancy's statements run under:
 * search_path "<schema>, pg_temp" (or "pg_catalog, pg_temp" without a
 * schema), tenancy's lock timeout, and no NOTICEs.  Everything set at this
 * level, by us or by a migration, is undone by AtEOXact_GUC(false, level).
 */
static int
schema_settings(const char *schema)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path",
							 schema ? psprintf("%s, pg_temp", quote_identifier(schema)) : "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("lock_timeout", psprintf("%d", tenancy_remote_lock_timeout),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("client_min_messages", "warning",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/*
 * Switches to "role", restricted, with search_path "<schema>, pg_temp" and
 * tenancy's lock timeout, and connects SPI.  Paired with schema_leave(); on
 * error, (sub)transaction abort restores the user and the settings.
 */
static void
schema_enter(SchemaScope *scope, Oid role, const char *schema)
{
	GetUserIdAndSecContext(&scope->save_userid, &scope->save_sec_context);
	SetUserIdAndSecContext(role, scope->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	scope->nestlevel = schema_settings(schema);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
schema_leave(SchemaScope *scope)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	AtEOXact_GUC(false, scope->nestlevel);	/* undoes every SET done inside */
	SetUserIdAndSecContext(scope->save_userid, scope->save_sec_context);
}

/* Runs a utility statement (or several) in the current scope. */
static void
schema_exec(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "statement failed: %s", SPI_result_code_string(rc));
}

/* Does the schema exist in this database? */
bool
tenancy_schema_exists(const char *schema)
{
	return OidIsValid(get_namespace_oid(schema, true));
}

/*
 * Creates a tenant schema owned by the tenant owner role, reachable by
 * nobody else, with an empty ledger.  42P06 if it exists.
 */
void
tenancy_schema_create(const char *schema)
{
	SchemaScope scope;
	Oid			owner = tenancy_transport_owner_role();

	if (tenancy_schema_exists(schema))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_SCHEMA),
				 errmsg("schema \"%s\" already exists", schema),
				 errdetail("The schema is not registered as a tenant schema."),
				 errhint("Drop or rename the schema, or choose another tenant name.")));

	/* the catalog owner creates it, so the owner role needs no CREATE on the database */
	schema_enter(&scope, tenancy_catalog_owner(), NULL);
	schema_exec(psprintf("CREATE SCHEMA %s AUTHORIZATION %s",
						 quote_identifier(schema),
						 quote_identifier(GetUserNameFromId(owner, false))));
	schema_leave(&scope);

	schema_enter(&scope, owner, schema);
	schema_exec(psprintf("COMMENT ON SCHEMA %s IS 'tenancy: schema of a tenant'; "
						 "CREATE TABLE %s." TENANCY_SCHEMA_LEDGER " ("
						 "version bigint PRIMARY KEY, "
						 "checksum text NOT NULL, "
						 "applied_at timestamptz NOT NULL DEFAULT pg_catalog.now(), "
						 "duration interval NOT NULL); "
						 "COMMENT ON TABLE %s." TENANCY_SCHEMA_LEDGER " IS "
						 "'tenancy migration ledger: one row per migration applied to this schema'",
						 quote_identifier(schema), quote_identifier(schema), quote_identifier(schema)));
	schema_leave(&scope);
}

/* Drops a tenant schema and everything in it, as its owner. */
void
tenancy_schema_drop(const char *schema)
{
	SchemaScope scope;

	if (!tenancy_schema_exists(schema))
		return;
	schema_enter(&scope, tenancy_transport_owner_role(), NULL);
	schema_exec(psprintf("DROP SCHEMA %s CASCADE", quote_identifier(schema)));
	schema_leave(&scope);
}

/*
 * Grants or revokes a member's access to a tenant schema, as its owner:
 * USAGE on the schema, SELECT, INSERT, UPDATE and DELETE on its tables,
 * USAGE and SELECT on its sequences, and the same by default on what the
 * owner (that is, migrations) creates there later; never the ledger.
 * Revoking takes away every privilege the role has in the schema, whoever
 * granted it there.  So access to a schema tenant's data is exactly
 * membership: a role never granted the tenant has no privilege on its
 * tables (not even through pg_stats), and a revoke or a suspension ends
 * what a view or function the member made can reach.
 */
void
tenancy_schema_grant_access(const char *schema, const char *role, bool grant)
{
	SchemaScope scope;
	const char *s = quote_identifier(schema);
	const char *r = quote_identifier(role);
	Oid			nspowner;
	HeapTuple	tup = SearchSysCache1(NAMESPACENAME, CStringGetDatum(schema));
	const char *owner;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", schema)));
	nspowner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	owner = quote_identifier(GetUserNameFromId(nspowner, false));

	schema_enter(&scope, tenancy_transport_owner_role(), NULL);
	if (grant)
		schema_exec(psprintf("GRANT USAGE ON SCHEMA %s TO %s; "
							 "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s; "
							 "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %s TO %s; "
							 "REVOKE ALL ON %s." TENANCY_SCHEMA_LEDGER " FROM %s; "
							 "ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %s; "
							 "ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT USAGE, SELECT ON SEQUENCES TO %s",
							 s, r, s, r, s, r, s, r, owner, s, r, owner, s, r));
	else
		schema_exec(psprintf("REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s; "
							 "REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s; "
							 "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %s FROM %s; "
							 "ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s REVOKE ALL ON TABLES FROM %s; "
							 "ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s REVOKE ALL ON SEQUENCES FROM %s; "
							 "REVOKE ALL ON SCHEMA %s FROM %s",
							 s, r, s, r, s, r, owner, s, r, owner, s, r, s, r));
	schema_leave(&scope);
}

/* Reads the ledger (rows of version, checksum as text) in the current scope. */
static List *
read_ledger(const char *schema, MemoryContext cxt)
{
	List	   *rows = NIL;
	uint64		i;

	if (SPI_execute(tenancy_transport_sql_ledger_read(schema), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the ledger of schema \"%s\"", schema);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		char	  **row = palloc(sizeof(char *) * 2);

		row[0] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		row[1] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		rows = lappend(rows, row);
		MemoryContextSwitchTo(old);
	}
	return rows;
}

/* The ledger of a tenant schema, for health checks. */
List *
tenancy_schema_ledger(const char *schema)
{
	SchemaScope scope;
	MemoryContext cxt = CurrentMemoryContext;
	List	   *rows;

	schema_enter(&scope, tenancy_transport_owner_role(), schema);
	rows = read_ledger(schema, cxt);
	schema_leave(&scope);
	return rows;
}

/* Total size of the tables (with their indexes and TOAST) in a schema. */
int64
tenancy_schema_size(const char *schema)
{
	SchemaScope scope;
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;
	int64		size;

	values[0] = ObjectIdGetDatum(get_namespace_oid(schema, false));
	schema_enter(&scope, tenancy_catalog_owner(), NULL);
	if (SPI_execute_with_args("SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(oid))::bigint "
							  "FROM pg_catalog.pg_class WHERE relnamespace OPERATOR(pg_catalog.=) $1 "
							  "AND relkind OPERATOR(pg_catalog.=) ANY ('{r,m,p}'::pg_catalog.\"char\"[])",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not measure schema \"%s\"", schema);
	size = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	schema_leave(&scope);
	return isnull ? 0 : size;
}

/* What the error context callback reports. */
typedef struct SchemaMigrateContext
{
	const char *target;
	int64		version;
} SchemaMigrateContext;

static void
schema_migrate_callback(void *arg)
{
	SchemaMigrateContext *ctx = (SchemaMigrateContext *) arg;

	if (ctx->version > 0)
		errcontext("migrating %s to version " INT64_FORMAT, ctx->target, ctx->version);
	else
		errcontext("migrating %s", ctx->target);
}

/*
 * Applies every registered migration the schema's ledger lacks, in
 * ascending order, in the caller's transaction, each with its ledger row.
 * Checks the ledger for drift first (XX001).  Returns the highest version
 * in the ledger afterwards; *from is the highest before, and *attempting
 * (unless NULL) the version being applied when an error is thrown.  The
 * migrations of one call commit or roll back together, with the caller's
 * (sub)transaction.  The caller holds
 * the tenant's lock; the ledger is also locked (EXCLUSIVE, bounded by
 * tenancy.remote_lock_timeout) against out-of-band migrators.
 */
int64
tenancy_schema_migrate(const char *schema, const char *target, List *migrations, int64 *from,
					   int64 *attempting)
{
	SchemaScope scope;
	SchemaMigrateContext ctx = {target, 0};
	ErrorContextCallback errcb;
	List	   *ledger;
	ListCell   *lc;
	int64		applied;
	char	   *drift;
	char	   *drift_detail;
	char	   *insert;

	errcb.callback = schema_migrate_callback;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	schema_enter(&scope, tenancy_transport_owner_role(), schema);
	schema_exec(tenancy_transport_sql_ledger_lock(schema));
	/* other roles' trigger functions would run as us (see transport.c) */
	if (SPI_execute(tenancy_transport_sql_foreign_triggers(schema), true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not check the triggers of schema \"%s\"", schema);
	if (SPI_processed > 0)
	{
		char	   *row[3];
		int			i;

		for (i = 0; i < 3; i++)
			row[i] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1);
		tenancy_transport_foreign_trigger_error(row);
	}
	ledger = read_ledger(schema, CurrentMemoryContext);
	if (!tenancy_migrate_check_ledger(ledger, migrations, target, &applied, &drift, &drift_detail))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg_internal("%s", drift),
				 drift_detail ? errdetail_internal("%s", drift_detail) : 0));
	*from = applied;

	insert = psprintf("INSERT INTO %s." TENANCY_SCHEMA_LEDGER " (version, checksum, duration) "
					  "VALUES ($1, $2, pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) $3)",
					  quote_identifier(schema));
	foreach(lc, migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);
		ListCell   *lc2;
		bool		done = false;
		Oid			types[3] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
		Datum		values[3];
		int			nestlevel;
		int			rc;

		foreach(lc2, ledger)
			done |= (pg_strtoint64(((char **) lfirst(lc2))[0]) == m->version);
		if (done)
			continue;

		ctx.version = m->version;
		if (attempting)
			*attempting = m->version;
		values[2] = TimestampTzGetDatum(GetCurrentTimestamp());
		/* each migration starts from tenancy's settings, whatever the last one SET */
		nestlevel = schema_settings(schema);
		rc = SPI_execute(m->sql, false, 0);
		if (rc == SPI_ERROR_TRANSACTION)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
					 errmsg("migration " INT64_FORMAT " tried to end the transaction on %s",
							m->version, target),
					 errdetail("Migrations run inside a transaction that tenancy commits; they must not contain COMMIT, ROLLBACK or similar.")));
		if (rc < 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("migration " INT64_FORMAT " contains a statement that cannot run in a schema tenant: %s",
							m->version, SPI_result_code_string(rc))));
		AtEOXact_GUC(false, nestlevel);
		values[0] = Int64GetDatum(m->version);
		values[1] = CStringGetTextDatum(m->checksum);
		if (SPI_execute_with_args(insert, 3, types, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record migration " INT64_FORMAT, m->version);
		applied = Max(applied, m->version);
	}
	schema_leave(&scope);
	error_context_stack = errcb.previous;
	return applied;
}

/*
 * Runs an application's SQL for schema tenant "schema" (tenancy.exec and
 * tenancy.query): here, in the caller's transaction, as the caller, with
 * the tenant's schema first on search_path (then the caller's path).
 * Every setting the SQL changes is undone afterwards.  Sets *status to a
 * command status in the style of the protocol's, and, when the last
 * statement returned rows, *nfields and *rows (columns as text, NULL for
 * SQL NULL); otherwise *nfields is -1.
 */
void
tenancy_schema_run(const char *schema, const char *sql, bool want_rows,
				   char **status, int *nfields, List **rows)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			nestlevel = NewGUCNestLevel();
	int			rc;
	uint64		n;

	(void) set_config_option("search_path",
							 namespace_search_path[0] == '\0' ? quote_identifier(schema) :
							 psprintf("%s, %s", quote_identifier(schema), namespace_search_path),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute(sql, false, 0);
	if (rc == SPI_ERROR_TRANSACTION || rc == SPI_ERROR_COPY)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s is not supported for schema tenants",
						rc == SPI_ERROR_COPY ? "COPY" : "transaction control"),
				 errdetail("A schema tenant's SQL runs inside the caller's transaction.")));
	if (rc < 0)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
	n = SPI_processed;
	switch (rc)
	{
		case SPI_OK_SELECT:
		case SPI_OK_SELINTO:
			*status = psprintf("SELECT " UINT64_FORMAT, n);
			break;
		case SPI_OK_INSERT:
		case SPI_OK_INSERT_RETURNING:
			*status = psprintf("INSERT 0 " UINT64_FORMAT, n);
			break;
		case SPI_OK_UPDATE:
		case SPI_OK_UPDATE_RETURNING:
			*status = psprintf("UPDATE " UINT64_FORMAT, n);
			break;
		case SPI_OK_DELETE:
		case SPI_OK_DELETE_RETURNING:
			*status = psprintf("DELETE " UINT64_FORMAT, n);
			break;
		case SPI_OK_MERGE:
			*status = psprintf("MERGE " UINT64_FORMAT, n);
			break;
		default:
			*status = pstrdup("OK");
			break;
	}
	*status = MemoryContextStrdup(cxt, *status);
	*nfields = -1;
	*rows = NIL;
	if (want_rows && SPI_tuptable != NULL)
	{
		TupleDesc	desc = SPI_tuptable->tupdesc;
		uint64		i;
		int			j;

		*nfields = desc->natts;
		for (i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);
			char	  **row = palloc(sizeof(char *) * Max(desc->natts, 1));

			for (j = 0; j < desc->natts; j++)
				row[j] = SPI_getvalue(SPI_tuptable->vals[i], desc, j + 1);
			*rows = lappend(*rows, row);
			MemoryContextSwitchTo(old);
		}
	}
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	AtEOXact_GUC(false, nestlevel);
}
