/*-------------------------------------------------------------------------
 *
 * isolation_schema.c
 *	  Schema tenants: each tenant has a schema of its own in the admin
 *	  database.
 *
 * The schema is owned by the role that owns tenant databases (the service
 * role, or the calling superuser) and created by the catalog owner, so the
 * service role needs no CREATE privilege on the admin database.  Its
 * members get USAGE and DML on its tables (grant below), never the ledger.
 * Provisioning creates it under its temporary name through
 * tenancy.create_tenant_schema(), committed on its own so that the
 * migration engine's session sees it, and renames it into place in the
 * caller's transaction.  Everything else (suspend, resume, deprovision,
 * access) is local and transactional: it commits or rolls back with the
 * caller.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/isolation_schema.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "conninfo.h"
#include "isolation.h"
#include "names.h"
#include "remote.h"
#include "scope.h"

static bool
exists(const char *server, const char *name)
{
	return OidIsValid(get_namespace_oid(name, true));
}

static void
refuse_existing(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_SCHEMA),
			 errmsg("schema \"%s\" already exists", name),
			 errdetail("The schema is not registered as a tenant schema."),
			 errhint("Drop or rename the schema, or choose another tenant name.")));
}

/* Schemas are not copied: every migration is applied to a new one. */
static int64
prepare(const char *server, const char *appname, char **source, char **versions)
{
	*source = NULL;
	*versions = NULL;
	return -1;
}

/*
 * Creates schema "name" owned by "owner", reachable by nobody else, as the
 * catalog owner (for tenancy.create_tenant_schema()).  42P06 if it exists.
 */
void
tenancy_schema_create_local(const char *name, Oid owner)
{
	PrivilegeScope scope;

	if (exists(NULL, name))
		refuse_existing(name);
	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH | SCOPE_DDL);
	tenancy_scope_exec(psprintf("CREATE SCHEMA %s AUTHORIZATION %s; "
								"COMMENT ON SCHEMA %s IS 'tenancy: schema of a tenant'",
								quote_identifier(name),
								quote_identifier(GetUserNameFromId(owner, false)),
								quote_identifier(name)),
					   0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	tenancy_scope_leave(&scope);
}

/*
 * Through a session of its own, so the migration engine's session sees it.
 * A schema needs no closing: renaming it waits for nobody.
 */
static void
create(const char *server, const char *name, const char *source, int64 operation_id,
	   const char *appname, bool open)
{
	tenancy_catalog_create_schema(operation_id);
}

/*
 * In the caller's transaction, as the catalog owner (it needs CREATE on the
 * database).
 */
static void
rename_schema(const char *server, const char *from, const char *to)
{
	PrivilegeScope scope;

	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH | SCOPE_DDL);
	tenancy_scope_exec(psprintf("ALTER SCHEMA %s RENAME TO %s",
								quote_identifier(from), quote_identifier(to)),
					   0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	tenancy_scope_leave(&scope);
}

/* DROP SCHEMA ... CASCADE as its owner, here or on a session of its own. */
static void
drop(const char *server, const char *name, bool force, bool autonomous, const char *appname)
{
	char	   *sql = psprintf("DROP SCHEMA IF EXISTS %s CASCADE", quote_identifier(name));
	PrivilegeScope scope;

	if (autonomous)
	{
		tenancy_remote_run(NULL, NULL, appname, list_make1(sql));
		return;
	}
	tenancy_scope_enter(&scope, tenancy_conninfo_service_role(), SCOPE_PIN_PATH | SCOPE_DDL);
	tenancy_scope_exec(sql, 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	tenancy_scope_leave(&scope);
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
static void
grant_schema(const char *schema, const char *role, bool grant)
{
	PrivilegeScope scope;
	const char *s = quote_identifier(schema);
	const char *r = quote_identifier(role);
	HeapTuple	tup = SearchSysCache1(NAMESPACENAME, CStringGetDatum(schema));
	const char *owner;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", schema)));
	owner = quote_identifier(GetUserNameFromId(((Form_pg_namespace) GETSTRUCT(tup))->nspowner, false));
	ReleaseSysCache(tup);

	tenancy_scope_enter(&scope, tenancy_conninfo_service_role(), SCOPE_PIN_PATH | SCOPE_DDL);
	if (grant)
		tenancy_scope_exec(psprintf("GRANT USAGE ON SCHEMA %s TO %s; "
									"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s; "
									"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %s TO %s; "
									"REVOKE ALL ON %s." TENANCY_SCHEMA_LEDGER " FROM %s; "
									"ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %s; "
									"ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s GRANT USAGE, SELECT ON SEQUENCES TO %s",
									s, r, s, r, s, r, s, r, owner, s, r, owner, s, r),
						   0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	else
		tenancy_scope_exec(psprintf("REVOKE ALL ON ALL TABLES IN SCHEMA %s FROM %s; "
									"REVOKE ALL ON ALL SEQUENCES IN SCHEMA %s FROM %s; "
									"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %s FROM %s; "
									"ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s REVOKE ALL ON TABLES FROM %s; "
									"ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA %s REVOKE ALL ON SEQUENCES FROM %s; "
									"REVOKE ALL ON SCHEMA %s FROM %s",
									s, r, s, r, s, r, owner, s, r, owner, s, r, s, r),
						   0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	tenancy_scope_leave(&scope);
}

/*
 * A suspended schema tenant's members lose USAGE on it (the grant waits for
 * resume).
 */
static void
grant(const TenantRecord *rec, const char *role, bool grant)
{
	if (!grant || rec->state == TENANT_STATE_READY)
		grant_schema(rec->schema_name, role, grant);
}

/*
 * Suspending revokes the members' privileges on the schema (so naming the
 * schema by hand reaches nothing either), as datallowconn does for a
 * database; resuming grants them back.
 */
static void
set_suspended(const TenantRecord *rec, bool suspended)
{
	ListCell   *lc;

	foreach(lc, tenancy_catalog_members(rec->id))
	{
		char	   *role = GetUserNameFromId(lfirst_oid(lc), true);

		if (role != NULL)
			grant_schema(rec->schema_name, role, !suspended);
	}
}

/* A schema tenant's migrations run in the admin database. */
static void
migration_target(const char *server, const char *name, MigrationTarget *target)
{
	memset(target, 0, sizeof(*target));
	target->dbname = get_database_name(MyDatabaseId);
	target->schema = name;
}

/* The admin database, with the tenant's schema as search_path. */
static char *
connstr(const TenantRecord *rec)
{
	return tenancy_conninfo_public(NULL, get_database_name(MyDatabaseId),
								   quote_identifier(rec->schema_name));
}

/*
 * Runs an application's SQL (with its bind parameters, if any) for a schema
 * tenant (tenancy.exec and tenancy.query): here, in the caller's transaction,
 * as the caller, with the tenant's schema first on search_path (then the
 * caller's path).  Every setting the SQL changes is undone afterwards.  Fills
 * *r: a command status in the style of the protocol's, and, when the last
 * statement returned rows, their columns as text.  Transaction control and
 * COPY are refused (0A000).
 */
static void
run_sql(const TenantRecord *rec, const char *sql, const StatementParams *params, bool want_rows,
		RemoteResult *r)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			nestlevel = NewGUCNestLevel();
	int			rc;
	uint64		n;
	const char *status;

	memset(r, 0, sizeof(*r));
	r->nfields = -1;
	(void) set_config_option("search_path",
							 namespace_search_path[0] == '\0' ? quote_identifier(rec->schema_name) :
							 psprintf("%s, %s", quote_identifier(rec->schema_name), namespace_search_path),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (params != NULL && params->n > 0)
		rc = SPI_execute_with_args(sql, params->n, params->types, params->values, params->nulls,
								   false, 0);
	else
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
			status = "SELECT";
			break;
		case SPI_OK_INSERT:
		case SPI_OK_INSERT_RETURNING:
			status = "INSERT 0";
			break;
		case SPI_OK_UPDATE:
		case SPI_OK_UPDATE_RETURNING:
			status = "UPDATE";
			break;
		case SPI_OK_DELETE:
		case SPI_OK_DELETE_RETURNING:
			status = "DELETE";
			break;
		case SPI_OK_MERGE:
			status = "MERGE";
			break;
		default:
			status = NULL;
			break;
	}
	/* an empty query (only ';' or comments) has no command tag, as remotely */
	r->status = MemoryContextStrdup(cxt, status ? psprintf("%s " UINT64_FORMAT, status, n) :
									rc == 0 ? "" : "OK");
	if (want_rows && SPI_tuptable != NULL)
	{
		TupleDesc	desc = SPI_tuptable->tupdesc;
		uint64		i;
		int			j;

		r->nfields = desc->natts;
		for (i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(cxt);
			char	  **row = palloc(sizeof(char *) * Max(desc->natts, 1));

			for (j = 0; j < desc->natts; j++)
				row[j] = SPI_getvalue(SPI_tuptable->vals[i], desc, j + 1);
			r->rows = lappend(r->rows, row);
			MemoryContextSwitchTo(old);
		}
	}
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	AtEOXact_GUC(false, nestlevel);
}

/* Total size of the tables (with their indexes and TOAST) in the schema. */
static int64
local_size(const TenantRecord *rec)
{
	PrivilegeScope scope;
	Oid			types[1] = {OIDOID};
	Datum		values[1];
	bool		isnull;
	int64		size;
	Oid			nsp = get_namespace_oid(rec->schema_name, true);

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", rec->schema_name)));
	values[0] = ObjectIdGetDatum(nsp);
	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	tenancy_scope_exec("SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(oid))::bigint "
					   "FROM pg_catalog.pg_class WHERE relnamespace OPERATOR(pg_catalog.=) $1 "
					   "AND relkind OPERATOR(pg_catalog.=) ANY ('{r,m,p}'::pg_catalog.\"char\"[])",
					   1, types, values, NULL, true, SPI_OK_SELECT);
	size = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	tenancy_scope_leave(&scope);
	return isnull ? 0 : size;
}

const IsolationModel tenancy_schema_model = {
	.isolation = TENANT_ISOLATION_SCHEMA,
	.name = "schema",
	.transactional = true,
	.object_name = tenancy_name_schema,
	.exists = exists,
	.refuse_existing = refuse_existing,
	.prepare = prepare,
	.create = create,
	.rename = rename_schema,
	.drop = drop,
	.grant = grant,
	.set_suspended = set_suspended,
	.migration_target = migration_target,
	.connstr = connstr,
	.run_sql = run_sql,
	.local_size = local_size,
};
