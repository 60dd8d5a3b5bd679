/*-------------------------------------------------------------------------
 *
 * isolation_database.c
 *	  Database tenants: each tenant has a database of its own, on this
 *	  cluster or on a tenant server (a dblink foreign server).
 *
 * The database is owned by the service role (or the calling superuser),
 * closed to PUBLIC, and open to the tenant's members through CONNECT.
 * Provisioning copies it from the template (template.c) under its
 * temporary name and renames it into place.  CREATE, DROP and ALTER
 * DATABASE ... WITH ALLOW_CONNECTIONS commit on their own
 * (database_ddl.c), so this model is not transactional: the caller wraps
 * them in autonomous state changes and cleanup records.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/isolation_database.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "conninfo.h"
#include "database_ddl.h"
#include "isolation.h"
#include "kept.h"
#include "names.h"
#include "remote.h"
#include "template.h"

static void
refuse_existing(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_DUPLICATE_DATABASE),
			 errmsg("database \"%s\" already exists", name),
			 errdetail("The database is not registered as a tenant database."),
			 errhint("Drop or rename the database, or choose another tenant name.")));
}

static int64
prepare(const char *server, const char *appname, char **source, char **versions)
{
	int64		version;

	*source = tenancy_template_prepare(server, appname, &version, versions);
	return version;
}

/*
 * A copy of the template, closed to PUBLIC, and unless "open" to every
 * session: a superuser or the service role connected to it would make the
 * rename fail (55006).
 */
static List *
create_statements(const char *name, const char *source, bool open)
{
	return list_make2(tenancy_ddl_create_database(name, source, open),
					  tenancy_ddl_revoke_public(name));
}

static void
create(const char *server, const char *name, const char *source, int64 operation_id,
	   const char *appname, bool open)
{
	tenancy_remote_run(server, NULL, appname, create_statements(name, source, open));
}

/* The rename, and the database opened, in one transaction where local. */
static void
rename_database(const char *server, const char *from, const char *to)
{
	tenancy_ddl_transactional(server, psprintf("ALTER DATABASE %s RENAME TO %s",
											   quote_identifier(from), quote_identifier(to)));
	tenancy_ddl_transactional(server, tenancy_ddl_allow_connections(to, true));
}

/* DROP DATABASE always commits on its own. */
static void
drop(const char *server, const char *name, bool force, bool autonomous, const char *appname)
{
	tenancy_remote_run(server, NULL, appname, list_make1(tenancy_ddl_drop_database(name, force)));
}

/* CONNECT on the tenant database: what membership gives. */
static void
grant(const TenantRecord *rec, const char *role, bool grant)
{
	tenancy_ddl_transactional(TENANCY_SERVER(rec),
							  psprintf(grant ? "GRANT CONNECT ON DATABASE %s TO %s" :
									   "REVOKE CONNECT ON DATABASE %s FROM %s",
									   quote_identifier(rec->database_name), quote_identifier(role)));
}

/* A suspended tenant's database refuses new connections. */
static void
set_suspended(const TenantRecord *rec, bool suspended)
{
	tenancy_remote_run(TENANCY_SERVER(rec), NULL, tenancy_conninfo_appname(rec->id),
					   list_make1(tenancy_ddl_allow_connections(rec->database_name, !suspended)));
}

static void
migration_target(const char *server, const char *name, MigrationTarget *target)
{
	memset(target, 0, sizeof(*target));
	target->server = server;
	target->dbname = name;
}

static char *
connstr(const TenantRecord *rec)
{
	return tenancy_conninfo_public(TENANCY_SERVER(rec), rec->database_name, NULL);
}

/* A database's size comes from its server (health.c). */
static int64
local_size(const TenantRecord *rec)
{
	return -1;
}

const IsolationModel tenancy_database_model = {
	.isolation = TENANT_ISOLATION_DATABASE,
	.name = "database",
	.transactional = false,
	.object_name = tenancy_name_database,
	.exists = tenancy_ddl_database_exists,
	.refuse_existing = refuse_existing,
	.prepare = prepare,
	.create = create,
	.rename = rename_database,
	.drop = drop,
	.grant = grant,
	.set_suspended = set_suspended,
	.migration_target = migration_target,
	.connstr = connstr,
	.run_sql = tenancy_kept_run,
	.create_statements = create_statements,
	.local_size = local_size,
};
