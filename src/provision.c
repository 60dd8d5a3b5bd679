/*-------------------------------------------------------------------------
 *
 * provision.c
 *	  SQL-callable provisioning: provision, deprovision, suspend, resume.
 *
 * State machine (tenancy.tenant.state):
 *
 *	  (none) --provision--> provisioning --remote work done--> ready
 *	  ready <--suspend/resume--> suspended
 *	  ready | suspended | failed --deprovision--> dropping --> (row gone)
 *	  any --error recorded--> failed (with last_error)
 *
 * Steps of provision(), in order; each has a name shown in CONTEXT lines:
 *	  "validate"         name, isolation, server and metadata checked; no SQL
 *	                     built and no connection opened before this passes
 *	  "lock"             per-tenant advisory lock, local
 *	  "check"            catalog row and target database looked up
 *	  "register"         row inserted in state provisioning
 *	  "create database"  CREATE DATABASE ... TEMPLATE, REVOKE CONNECT, TEMP
 *	                     FROM PUBLIC, on the tenant's server
 *	  "migrate"          ledger created, every registered migration applied
 *	  "ready"            row set to ready with its applied version
 *
 * Locking order: the per-tenant advisory lock first, then the catalog row
 * (FOR UPDATE), then remote work.  No remote call is made before the local
 * lock is held, so concurrent callers wait locally and visibly.
 *
 * Not transactional: CREATE and DROP DATABASE run through dblink and commit
 * on their own, whatever the caller's transaction does afterwards.  The
 * catalog records the state before the remote step so the mismatch can be
 * found and repaired.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/provision.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "catalog.h"
#include "guc.h"
#include "migrate.h"
#include "tenancy.h"
#include "transport.h"

PG_FUNCTION_INFO_V1(tenancy_provision);
PG_FUNCTION_INFO_V1(tenancy_deprovision);
PG_FUNCTION_INFO_V1(tenancy_suspend);
PG_FUNCTION_INFO_V1(tenancy_resume);

/* What the error context callback reports. */
typedef struct ProvisionContext
{
	const char *operation;		/* "provisioning", "deprovisioning", ... */
	const char *tenant;
	const char *step;
} ProvisionContext;

static void
provision_error_callback(void *arg)
{
	ProvisionContext *ctx = (ProvisionContext *) arg;

	errcontext("%s tenant \"%s\" (step \"%s\")", ctx->operation, ctx->tenant, ctx->step);
}

/*
 * Starts reporting "<operation> tenant "<tenant>" (step "...")" in CONTEXT
 * lines; the caller pops errcb before returning normally.
 */
static void
push_context(ProvisionContext *ctx, ErrorContextCallback *errcb,
			 const char *operation, const char *tenant)
{
	ctx->operation = operation;
	ctx->tenant = tenant;
	ctx->step = "validate";
	errcb->callback = provision_error_callback;
	errcb->arg = ctx;
	errcb->previous = error_context_stack;
	error_context_stack = errcb;
}


/* Reads a tenant name argument: NULL is 22004, then full validation. */
static char *
tenant_argument(FunctionCallInfo fcinfo, int argno)
{
	char	   *tenant;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant name must not be null")));
	tenant = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	tenancy_name_validate(tenant);
	return tenant;
}

/* Locks the tenant and reads its row; 42704 if there is none. */
static void
lock_existing_tenant(const char *tenant, TenantRecord *rec)
{
	tenancy_catalog_lock_tenant(tenant, false);
	if (!tenancy_catalog_fetch(tenant, rec))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" does not exist", tenant)));
}

/* 55000 for a tenant that is not in one of the states an operation needs. */
static void
not_in_state_error(const TenantRecord *rec, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("tenant \"%s\" is not ready", rec->id),
			 errdetail("Tenant \"%s\" is in state \"%s\".", rec->id, tenancy_state_name(rec->state)),
			 hint ? errhint("%s", hint) : 0));
}

/* The server of a record, as transport takes it (NULL = this cluster). */
static const char *
record_server(const TenantRecord *rec)
{
	return rec->server[0] ? rec->server : NULL;
}

/* Remote steps of provisioning, run in the new tenant database. */
typedef struct BootstrapWork
{
	const char *tenant;
	int64		version;
} BootstrapWork;

static void
bootstrap_work(TransportConn *conn, void *arg)
{
	BootstrapWork *w = (BootstrapWork *) arg;
	int64		from;

	tenancy_transport_exec(conn, TRANSPORT_SQL_LEDGER_SETUP);
	w->version = tenancy_migrate_connection(conn, w->tenant, tenancy_catalog_migrations(),
											&from);
}

/*
 * tenancy.provision(tenant text, isolation text, server name, metadata jsonb)
 * RETURNS tenancy.tenant
 *
 * Registers the tenant, creates its database on its server, applies every
 * registered migration and returns the ready row.  On a ready tenant it is
 * a NOTICE and returns the row.
 */
Datum
tenancy_provision(PG_FUNCTION_ARGS)
{
	ProvisionContext ctx;
	ErrorContextCallback errcb;
	TenantRecord rec;
	TenantRecord existing;
	char	   *tenant;
	char	   *isolation;
	const char *server = NULL;
	Jsonb	   *metadata = NULL;
	char	   *db;
	BootstrapWork bw;

	tenant = tenant_argument(fcinfo, 0);
	push_context(&ctx, &errcb, "provisioning", tenant);

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("isolation must not be null")));
	isolation = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(isolation, "schema") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("schema tenants are not supported yet")));
	if (strcmp(isolation, "database") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid isolation \"%s\"", isolation),
				 errhint("Use 'database' or 'schema'.")));
	if (!PG_ARGISNULL(2))
	{
		server = NameStr(*PG_GETARG_NAME(2));
		tenancy_transport_check_server(server);
	}
	if (!PG_ARGISNULL(3))
	{
		metadata = PG_GETARG_JSONB_P(3);
		if (!JB_ROOT_IS_OBJECT(metadata) || JB_ROOT_IS_SCALAR(metadata))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tenant metadata must be a JSON object")));
	}
	else
		metadata = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	db = tenancy_name_database(tenant);

	ctx.step = "lock";
	tenancy_catalog_lock_tenant(tenant, false);

	ctx.step = "check";
	if (tenancy_catalog_fetch(tenant, &existing))
	{
		if (existing.state == TENANT_STATE_READY)
		{
			ereport(NOTICE,
					(errmsg("tenant \"%s\" already exists, skipping", tenant)));
			error_context_stack = errcb.previous;
			PG_RETURN_DATUM(tenancy_catalog_row(tenant));
		}
		not_in_state_error(&existing, "Deprovision the tenant and provision it again.");
	}
	if (tenancy_transport_database_exists(server, db))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_DATABASE),
				 errmsg("database \"%s\" already exists", db),
				 errdetail("The database is not registered as a tenant database."),
				 errhint("Drop or rename the database, or choose another tenant name.")));

	ctx.step = "register";
	memset(&rec, 0, sizeof(rec));
	strlcpy(rec.id, tenant, NAMEDATALEN);
	rec.isolation = TENANT_ISOLATION_DATABASE;
	strlcpy(rec.database_name, db, NAMEDATALEN);
	if (server)
		strlcpy(rec.server, server, NAMEDATALEN);
	rec.state = TENANT_STATE_PROVISIONING;
	tenancy_catalog_insert(&rec, metadata);

	ctx.step = "create database";
	tenancy_transport_exec_list(server, NULL, tenancy_transport_appname(tenant),
								list_make2(tenancy_transport_sql_create_database(db, tenancy_template_database),
										   tenancy_transport_sql_revoke_public(db)));

	ctx.step = "migrate";
	bw.tenant = tenant;
	bw.version = 0;
	tenancy_transport_run(server, db, tenancy_transport_appname(tenant), bootstrap_work, &bw);

	ctx.step = "ready";
	tenancy_catalog_set_applied(tenant, bw.version);
	tenancy_catalog_set_state(tenant, TENANT_STATE_READY, NULL);

	error_context_stack = errcb.previous;
	PG_RETURN_DATUM(tenancy_catalog_row(tenant));
}

/*
 * tenancy.deprovision(tenant text, force boolean) RETURNS void
 *
 * Drops the tenant's database on its server and deletes its row (and its
 * members).  Without force, the remote DROP DATABASE fails with 55006 while
 * sessions are connected; with force, they are terminated.
 */
Datum
tenancy_deprovision(PG_FUNCTION_ARGS)
{
	ProvisionContext ctx;
	ErrorContextCallback errcb;
	TenantRecord rec;
	char	   *tenant = tenant_argument(fcinfo, 0);
	bool		force;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("force must not be null")));
	force = PG_GETARG_BOOL(1);
	push_context(&ctx, &errcb, "deprovisioning", tenant);

	ctx.step = "lock";
	lock_existing_tenant(tenant, &rec);
	if (rec.state == TENANT_STATE_PROVISIONING)
		not_in_state_error(&rec, NULL);

	ctx.step = "drop database";
	tenancy_catalog_set_state(tenant, TENANT_STATE_DROPPING, NULL);
	tenancy_transport_exec_list(record_server(&rec), NULL, tenancy_transport_appname(tenant),
								list_make1(tenancy_transport_sql_drop_database(rec.database_name, force)));

	ctx.step = "unregister";
	tenancy_catalog_delete(tenant);
	error_context_stack = errcb.previous;
	PG_RETURN_VOID();
}

/*
 * Common body of suspend() and resume(): moves a tenant between ready and
 * suspended and sets datallowconn on its database to match.  Doing it again
 * is a NOTICE.
 */
static void
set_suspended(FunctionCallInfo fcinfo, bool suspend)
{
	ProvisionContext ctx;
	ErrorContextCallback errcb;
	TenantRecord rec;
	char	   *tenant = tenant_argument(fcinfo, 0);
	TenantState from = suspend ? TENANT_STATE_READY : TENANT_STATE_SUSPENDED;
	TenantState to = suspend ? TENANT_STATE_SUSPENDED : TENANT_STATE_READY;

	push_context(&ctx, &errcb, suspend ? "suspending" : "resuming", tenant);

	ctx.step = "lock";
	lock_existing_tenant(tenant, &rec);
	if (rec.state == to)
	{
		ereport(NOTICE,
				(errmsg("tenant \"%s\" is already %s, skipping", tenant, tenancy_state_name(to))));
		error_context_stack = errcb.previous;
		return;
	}
	if (rec.state != from)
		not_in_state_error(&rec, NULL);

	ctx.step = suspend ? "disallow connections" : "allow connections";
	tenancy_catalog_set_state(tenant, to, NULL);
	tenancy_transport_exec_list(record_server(&rec), NULL, tenancy_transport_appname(tenant),
								list_make1(tenancy_transport_sql_allow_connections(rec.database_name, !suspend)));
	error_context_stack = errcb.previous;
}

/* tenancy.suspend(tenant text): the tenant can no longer be selected or connected to. */
Datum
tenancy_suspend(PG_FUNCTION_ARGS)
{
	set_suspended(fcinfo, true);
	PG_RETURN_VOID();
}

/* tenancy.resume(tenant text): undoes suspend(). */
Datum
tenancy_resume(PG_FUNCTION_ARGS)
{
	set_suspended(fcinfo, false);
	PG_RETURN_VOID();
}
