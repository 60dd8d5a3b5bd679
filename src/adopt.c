/*-------------------------------------------------------------------------
 *
 * adopt.c
 *	  SQL-callable adopt(): registers a database that already exists (one
 *	  an application's own start-up loop created) as a database tenant.
 *
 * Steps, each named in CONTEXT lines:
 *
 *	  "validate"  id, database name, server and baseline checked; the
 *	              tenant and the database are no tenant's yet; nothing is
 *	              connected to before this passes
 *	  "lock"      the tenant's lock
 *	  "check"     on the database's server: the database exists (3D000),
 *	              is no template (42939; reserved names, a provisioning's
 *	              temporary name, are refused before) and is owned by the
 *	              service role (42501: tenancy migrates and drops what it
 *	              owns, as for a provisioned tenant)
 *	  "ledger"    in the database, in one transaction: the ledger created
 *	              if missing and every registered migration up to
 *	              baseline recorded as applied without running; a ledger
 *	              it already has is kept and checked for drift (XX001); a
 *	              "tenancy" schema or ledger another role owns is refused
 *	              before it is touched (42501)
 *	  "access"    CONNECT and TEMPORARY revoked from PUBLIC, as for a
 *	              provisioned tenant (members get CONNECT by grant_access)
 *	  "register"  the tenant row, ready, in the caller's transaction
 *
 * The ledger step commits on its own in the tenant database: should the
 * caller roll back, adopting again finds the rows it wrote and keeps them.
 * The loopback server is this cluster: adopt(..., server => <loopback>)
 * registers the database as this cluster's, so that one database is never
 * two tenants under two server names.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/adopt.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "catalog.h"
#include "conninfo.h"
#include "database_ddl.h"
#include "guc.h"
#include "ledger.h"
#include "locks.h"
#include "names.h"
#include "remote.h"

PG_FUNCTION_INFO_V1(tenancy_adopt);

static void
adopt_error_callback(void *arg)
{
	const char **ctx = (const char **) arg;

	errcontext("adopting database \"%s\" as tenant \"%s\" (step \"%s\")", ctx[1], ctx[0], ctx[2]);
}

/* 42939: a database that is never a tenant's. */
static void
reserved_database(const char *dbname, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_RESERVED_NAME),
			 errmsg("database \"%s\" cannot be adopted", dbname),
			 errdetail("%s", why)));
}

/*
 * On the database's server: exists (3D000), no template (42939), owned by
 * the service role (42501).
 */
static void
check_database(const char *server, const char *dbname, const char *appname)
{
	RemoteSession *session = tenancy_remote_open(CONNINFO_SERVICE, server, NULL, appname);
	RemoteResult r;
	const char *params[1] = {dbname};
	char	  **row;

	PG_TRY();
	{
		tenancy_remote_call(session, "SELECT datistemplate::pg_catalog.text, "
							"(datdba OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles "
							"WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER))::pg_catalog.text, "
							"pg_catalog.pg_get_userbyid(datdba)::pg_catalog.text, CURRENT_USER::pg_catalog.text "
							"FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) $1",
							1, params, true, &r);
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
	if (r.error != NULL)
		tenancy_remote_raise(r.error);
	if (r.rows == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_DATABASE),
				 errmsg("database \"%s\" does not exist", dbname)));
	if (r.nfields != 4)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("unexpected answer to a database query")));
	row = (char **) linitial(r.rows);
	if (row[0] == NULL || strcmp(row[0], "true") == 0)
		reserved_database(dbname, "It is a template database.");
	if (row[1] == NULL || strcmp(row[1], "true") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("database \"%s\" is not owned by the service role", dbname),
				 errdetail("It is owned by role \"%s\"; tenancy migrates and drops the tenant databases its service role owns.",
						   row[2] ? row[2] : "?"),
				 errhint("As a superuser: ALTER DATABASE %s OWNER TO %s; then, in that database, REASSIGN OWNED BY %s TO %s.",
						 quote_identifier(dbname), quote_identifier(row[3] ? row[3] : "?"),
						 quote_identifier(row[2] ? row[2] : "?"), quote_identifier(row[3] ? row[3] : "?"))));
}

/*
 * In the database, one transaction: the ledger, the migrations up to
 * "baseline" recorded without running, the ledger read back and checked.
 * Returns the versions it holds (an array literal) and in *max the
 * highest.
 */
static char *
write_ledger(const char *server, const char *dbname, const char *label, const char *appname,
			 List *migrations, int64 baseline, int64 *max)
{
	RemoteSession *session = tenancy_remote_open(CONNINFO_SERVICE, server, dbname, appname);
	StringInfoData sql;
	RemoteResult r;
	RemoteError *error = NULL;
	List	   *applied;
	ListCell   *lc;
	char	   *versions = NULL;

	initStringInfo(&sql);
	appendStringInfo(&sql, "BEGIN; %s; %s; %s; %s", tenancy_ledger_sql_guard(NULL), tenancy_ledger_sql_setup(NULL),
					 tenancy_ledger_sql_guard(NULL), tenancy_ledger_sql_lock(NULL));
	foreach(lc, migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);

		if (m->version <= baseline)
			appendStringInfo(&sql, "; INSERT INTO tenancy.applied_migration (version, checksum, duration) "
							 "VALUES (" INT64_FORMAT ", %s, '0') ON CONFLICT (version) DO NOTHING",
							 m->version, quote_literal_cstr(m->checksum));
	}
	appendStringInfo(&sql, "; %s", tenancy_ledger_sql_read(NULL));

	PG_TRY();
	{
		tenancy_remote_call(session, sql.data, 0, NULL, true, &r);
		error = r.error;
		if (error == NULL)
			error = tenancy_ledger_check(&r, migrations, label, max, &applied);
		if (error == NULL)
			error = tenancy_ledger_versions(&r, label, max, &versions);
		tenancy_remote_call(session, error ? "ROLLBACK" : "COMMIT", 0, NULL, false, &r);
		if (error == NULL)
			error = r.error;
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
	if (error != NULL)
		tenancy_remote_raise(error);
	return versions;
}

/*
 * tenancy.adopt(tenant text, database name, server name, baseline bigint)
 * RETURNS tenancy.tenant
 */
Datum
tenancy_adopt(PG_FUNCTION_ARGS)
{
	const char *ctx[3];
	ErrorContextCallback errcb;
	char	   *tenant = tenancy_name_argument(fcinfo, 0);
	const char *dbname;
	const char *server = NULL;
	int64		baseline = 0;
	List	   *migrations;
	int64		latest;
	bool		managed;
	TenantRecord rec;
	char	   *owner;
	char	   *versions;
	const char *appname;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("database must not be null")));
	dbname = NameStr(*PG_GETARG_NAME(1));
	ctx[0] = tenant;
	ctx[1] = dbname;
	ctx[2] = "validate";
	errcb.callback = adopt_error_callback;
	errcb.arg = ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	tenancy_catalog_apply_config();

	if (!PG_ARGISNULL(2))
	{
		char	   *loopback = tenancy_catalog_loopback_server();

		server = NameStr(*PG_GETARG_NAME(2));
		tenancy_conninfo_check_caller(server);
		tenancy_conninfo_check_server(server);
		/* the loopback server is this cluster: one name for one database */
		if (loopback != NULL && strcmp(server, loopback) == 0)
			server = NULL;
	}
	migrations = tenancy_catalog_migrations();
	latest = migrations ? ((TenancyMigration *) llast(migrations))->version : 0;
	if (!PG_ARGISNULL(3))
	{
		baseline = PG_GETARG_INT64(3);
		if (baseline < 0 || baseline > latest)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("baseline " INT64_FORMAT " is out of range", baseline),
					 errdetail("baseline must be between 0 and the highest registered version, " INT64_FORMAT ".",
							   latest)));
	}
	if (dbname[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("database must not be empty")));
	if (strcmp(dbname, "postgres") == 0 || strcmp(dbname, "template0") == 0 ||
		strcmp(dbname, "template1") == 0)
		reserved_database(dbname, "It is one of the databases every cluster has.");
	if (server == NULL && strcmp(dbname, get_database_name(MyDatabaseId)) == 0)
		reserved_database(dbname, "It is the admin database, which holds the tenant catalog.");
	if (strcmp(dbname, tenancy_name_template(&managed)) == 0)
		reserved_database(dbname, "It is the template tenant databases are copied from.");
	if (strncmp(dbname, tenancy_database_prefix, strlen(tenancy_database_prefix)) == 0 &&
		strncmp(dbname + strlen(tenancy_database_prefix), "tmp_", 4) == 0)
		reserved_database(dbname, "Its name is that of a provisioning's temporary database.");

	ctx[2] = "lock";
	tenancy_lock_tenant(tenant, false);
	if (tenancy_catalog_fetch(tenant, &rec))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("tenant \"%s\" already exists", tenant)));
	if ((owner = tenancy_catalog_database_tenant(server, dbname)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("database \"%s\" is already the database of tenant \"%s\"", dbname, owner)));

	ctx[2] = "check";
	appname = tenancy_conninfo_appname(tenant);
	check_database(server, dbname, appname);

	ctx[2] = "ledger";
	memset(&rec, 0, sizeof(rec));
	strlcpy(rec.id, tenant, NAMEDATALEN);
	rec.isolation = TENANT_ISOLATION_DATABASE;
	strlcpy(rec.database_name, dbname, NAMEDATALEN);
	if (server)
		strlcpy(rec.server, server, NAMEDATALEN);
	rec.state = TENANT_STATE_READY;
	versions = write_ledger(server, dbname, psprintf("tenant \"%s\"", tenant), appname,
							migrations, baseline, &rec.applied_version);

	/*
	 * after the ledger: an adoption refused there leaves the database as it
	 * was
	 */
	ctx[2] = "access";
	tenancy_remote_run(server, NULL, appname, list_make1(tenancy_ddl_revoke_public(dbname)));

	ctx[2] = "register";
	tenancy_catalog_register_ready(&rec, DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"))),
								   0, versions);
	error_context_stack = errcb.previous;
	PG_RETURN_DATUM(tenancy_catalog_row(tenant));
}
