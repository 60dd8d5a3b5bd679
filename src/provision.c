/*-------------------------------------------------------------------------
 *
 * provision.c
 *	  SQL-callable provisioning: provision, deprovision, suspend, resume,
 *	  and create_tenant_schema (provisioning's helper for schema tenants).
 *
 * State machine (tenancy.tenant.state):
 *
 *	  (no row) --provision--> ready          (the row appears only when ready)
 *	  ready <--suspend/resume--> suspended
 *	  ready | suspended | failed --deprovision--> dropping --> (row gone)
 *	  ready | suspended --reconcile finds the object missing--> failed
 *
 * A tenant's object (its database, or its schema: isolation.h) is created
 * under a temporary name recorded first (Citus's scheme), so that no
 * crash, kill, cancel or rollback can leave an object the catalog cannot
 * explain, or a ready row without its object:
 *
 *	  "template"         what copies are made from is ready (databases)
 *	  "record"           operation id taken; tenancy.pending_cleanup row
 *	                     (temporary name <prefix>tmp_<id>, final name)
 *	                     committed on its own
 *	  "create <kind>"    the object under its temporary name, committed on
 *	                     its own (CREATE DATABASE ... TEMPLATE, REVOKE
 *	                     CONNECT, TEMPORARY FROM PUBLIC; or CREATE SCHEMA)
 *	  "migrate"          ledger created, every registered migration applied
 *	                     by the migration engine (a copy of tenancy's own
 *	                     template already has them)
 *	  "rename"           the object renamed to its final name: in the
 *	                     caller's transaction on this cluster; on a tenant
 *	                     server it commits there on its own
 *	  "register"         tenant row inserted as ready and the cleanup row
 *	                     deleted, both in the caller's transaction
 *
 * A plain error undoes the steps at once (subtransaction, then best-effort
 * drop and record removal).  A crash or a caller's rollback leaves a
 * cleanup row naming what exists; reconcile(), or the next provision() of
 * the same tenant, drops it (repair.c).  Deprovision, suspend and resume
 * of a database tenant change the tenant's state on their own before their
 * remote step, and put it back if that step fails, so the catalog never
 * claims a database that a committed remote step has changed; for a
 * schema tenant they are transactional.
 *
 * Steps before "record": "validate" (name, isolation, server and metadata
 * checked; no SQL built and no connection opened before this passes),
 * "lock" and "check".  Each step's name is shown in CONTEXT lines.
 *
 * Locking order: the per-tenant lock first, then remote work.  No remote
 * call is made before the local lock is held, so concurrent callers wait
 * locally and visibly.  No catalog row is locked: the autonomous updates
 * would wait for it.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/provision.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "catalog.h"
#include "conninfo.h"
#include "engine.h"
#include "fault.h"
#include "fleet.h"
#include "isolation.h"
#include "jobs.h"
#include "kept.h"
#include "locks.h"
#include "names.h"
#include "pool.h"
#include "repair.h"
#include "try.h"

PG_FUNCTION_INFO_V1(tenancy_provision);
PG_FUNCTION_INFO_V1(tenancy_deprovision);
PG_FUNCTION_INFO_V1(tenancy_suspend);
PG_FUNCTION_INFO_V1(tenancy_resume);
PG_FUNCTION_INFO_V1(tenancy_create_tenant_schema);
PG_FUNCTION_INFO_V1(tenancy_provision_many);
PG_FUNCTION_INFO_V1(tenancy_start_provision_many);

/* What the error context callback reports. */
typedef struct OperationContext
{
	const char *operation;		/* "provisioning", "deprovisioning", ... */
	const char *tenant;
	const char *step;
	ErrorContextCallback errcb;
} OperationContext;

static void
operation_error_callback(void *arg)
{
	OperationContext *ctx = (OperationContext *) arg;

	errcontext("%s tenant \"%s\" (step \"%s\")", ctx->operation, ctx->tenant, ctx->step);
}

/*
 * Starts reporting "<operation> tenant "<tenant>" (step "...")" in CONTEXT
 * lines; end_operation() stops it.
 */
static void
begin_operation(OperationContext *ctx, const char *operation, const char *tenant)
{
	ctx->operation = operation;
	ctx->tenant = tenant;
	ctx->step = "validate";
	ctx->errcb.callback = operation_error_callback;
	ctx->errcb.arg = ctx;
	ctx->errcb.previous = error_context_stack;
	error_context_stack = &ctx->errcb;
}

static void
end_operation(OperationContext *ctx)
{
	error_context_stack = ctx->errcb.previous;
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

/* One provisioning operation, shared by its steps and their undo. */
typedef struct ProvisionJob
{
	OperationContext *ctx;
	const IsolationModel *model;
	TenantRecord rec;			/* the row to register */
	const char *server;			/* NULL: this cluster */
	const char *final_name;
	Jsonb	   *metadata;
	const char *appname;
	CleanupRecord cleanup;		/* operation id, temporary name */
	bool		recorded;		/* cleanup row committed */
	bool		renamed;		/* rename committed on a tenant server */
	/* what the template step found */
	char	   *source;			/* what the object is copied from */
	char	   *versions;		/* the versions it holds */
	int64		version;		/* -1: migrations must be applied */
	bool		from_spare;		/* the temporary object is a warm-pool spare */
} ProvisionJob;

/*
 * provision()'s steps "template" and "record".  A database tenant takes a
 * spare of its server's warm pool if one holds the registered migrations
 * (pool.c): the spare becomes the temporary object, nothing is created.
 */
static void
before_create(ProvisionJob *job)
{
	char	   *spare;
	bool		managed;

	job->ctx->step = "template";
	(void) tenancy_name_template(&managed);
	if (job->model->create_statements != NULL && managed &&
		tenancy_pool_take(job->server, &spare, &job->version, &job->versions))
	{
		job->from_spare = true;
		strlcpy(job->cleanup.temporary_name, spare, NAMEDATALEN);
	}
	else
		job->version = job->model->prepare(job->server, job->appname, &job->source, &job->versions);

	job->ctx->step = "record";
	tenancy_fault("before_cleanup_record");
	tenancy_catalog_record_cleanup(&job->cleanup);
	job->recorded = true;
	tenancy_fault("after_cleanup_record");
}

static void
rename_step(void *arg)
{
	ProvisionJob *job = (ProvisionJob *) arg;

	job->model->rename(job->server, job->cleanup.temporary_name, job->final_name);
}

/*
 * The rename of a spare taken from a warm pool.  A spare whose database
 * was dropped behind tenancy's back (3D000) is replaced by a copy of the
 * template under the same temporary name, which the cleanup record
 * already covers, and renamed in turn.
 */
static void
rename_spare(ProvisionJob *job)
{
	ErrorData  *edata = tenancy_try(rename_step, job);

	if (edata == NULL)
		return;
	if (edata->sqlerrcode != ERRCODE_UNDEFINED_DATABASE)
		ReThrowError(edata);
	ereport(LOG,
			(errmsg("spare database \"%s\" of the warm pool is gone; copying the template for tenant \"%s\"",
					job->cleanup.temporary_name, job->rec.id)));
	job->from_spare = false;
	job->version = job->model->prepare(job->server, job->appname, &job->source, &job->versions);
	job->model->create(job->server, job->cleanup.temporary_name, job->source,
					   job->cleanup.operation_id, job->appname, job->version < 0);
	job->rec.applied_version = job->version;
	rename_step(job);
}

/* provision()'s steps "migrate", "rename" and "register". */
static void
after_create(ProvisionJob *job)
{
	const IsolationModel *model = job->model;

	/*
	 * A copy of tenancy's own template already has exactly the registered
	 * migrations (the template lock keeps them from changing meanwhile), so
	 * there is nothing to connect to it for; not connecting also spares the
	 * rename below the wait for that session to exit.  Anything else gets the
	 * ledger and every migration.
	 */
	job->ctx->step = "migrate";
	if (job->version >= 0)
		job->rec.applied_version = job->version;
	else
	{
		MigrationTarget target;
		MigrationRun run;

		model->migration_target(job->server, job->cleanup.temporary_name, &target);
		target.label = psprintf("tenant \"%s\"", job->rec.id);
		target.appname = job->appname;
		target.create_ledger = true;
		tenancy_engine_migrate(&target, tenancy_catalog_migrations(), -1, &run);
		job->rec.applied_version = run.to_version;
		job->versions = tenancy_engine_applied(&run);
	}
	tenancy_fault("after_bootstrap");

	job->ctx->step = "rename";
	tenancy_fault("before_rename");
	if (job->from_spare)
		rename_spare(job);
	else
		rename_step(job);
	job->renamed = (job->server != NULL);
	tenancy_fault("after_rename");

	job->ctx->step = "register";
	tenancy_catalog_register_ready(&job->rec, job->metadata, job->cleanup.operation_id, job->versions);
	tenancy_fault("after_local_record");
}

/* The steps of provision() from "template" to "register". */
static void
provision_steps(void *arg)
{
	ProvisionJob *job = (ProvisionJob *) arg;

	before_create(job);
	job->ctx->step = psprintf("create %s", job->model->name);
	if (!job->from_spare)
		job->model->create(job->server, job->cleanup.temporary_name, job->source,
						   job->cleanup.operation_id, job->appname, job->version < 0);
	tenancy_fault("after_remote_create");
	after_create(job);
}

/*
 * Undo of provision_steps() after an error: drops what was created (on this
 * cluster the rename has been rolled back with the subtransaction) and
 * removes the cleanup row, which committed on its own.
 */
static void
provision_undo(void *arg)
{
	ProvisionJob *job = (ProvisionJob *) arg;

	if (!job->recorded)
		return;
	job->ctx->step = "undo";
	job->model->drop(job->server, job->cleanup.temporary_name, true, true, job->appname);
	if (job->renamed)
		job->model->drop(job->server, job->final_name, true, true, job->appname);
	tenancy_catalog_forget_cleanup(job->cleanup.operation_id, true);
}

/*
 * Provisioning's steps "lock" and "check" for "tenant", and the job they
 * lead to (operation id and temporary name taken): false if the tenant is
 * ready already.  Raises for a tenant or an object in the way.
 */
static bool
provision_setup(ProvisionJob *job, OperationContext *ctx, const char *tenant,
				const IsolationModel *model, const char *server, Jsonb *metadata)
{
	TenantRecord existing;
	ListCell   *lc;
	RepairReport quiet = {false, NULL, NULL};

	memset(job, 0, sizeof(*job));
	job->ctx = ctx;
	job->model = model;
	job->final_name = model->object_name(tenant);

	ctx->step = "lock";
	tenancy_lock_tenant(tenant, false);

	ctx->step = "check";
	foreach(lc, tenancy_catalog_cleanup_records(tenant))
		tenancy_repair_cleanup((CleanupRecord *) lfirst(lc), &quiet);
	if (tenancy_catalog_fetch(tenant, &existing))
	{
		if (existing.state == TENANT_STATE_READY)
			return false;
		if (existing.state != TENANT_STATE_FAILED || tenancy_repair_object_exists(&existing))
			not_in_state_error(&existing, "Deprovision the tenant, or run tenancy.reconcile().");
	}
	if (model->exists(server, job->final_name))
		model->refuse_existing(job->final_name);

	strlcpy(job->rec.id, tenant, NAMEDATALEN);
	job->rec.isolation = model->isolation;
	strlcpy(model->transactional ? job->rec.schema_name : job->rec.database_name,
			job->final_name, NAMEDATALEN);
	if (server)
		strlcpy(job->rec.server, server, NAMEDATALEN);
	job->rec.state = TENANT_STATE_READY;
	job->server = server;
	job->metadata = metadata;
	job->appname = tenancy_conninfo_appname(tenant);
	strlcpy(job->cleanup.tenant, tenant, NAMEDATALEN);
	job->cleanup.isolation = model->isolation;
	if (server)
		strlcpy(job->cleanup.server, server, NAMEDATALEN);
	strlcpy(job->cleanup.final_name, job->final_name, NAMEDATALEN);

	/*
	 * Operation ids never repeat within one catalog, but an object left by an
	 * earlier catalog (the extension dropped and created again) may hold the
	 * name: skip such ids rather than fail.
	 */
	do
	{
		job->cleanup.operation_id = tenancy_catalog_next_operation();
		strlcpy(job->cleanup.temporary_name, tenancy_name_temporary(job->cleanup.operation_id),
				NAMEDATALEN);
	} while (model->exists(server, job->cleanup.temporary_name));
	return true;
}

/*
 * tenancy.provision(tenant text, isolation text, server name, metadata jsonb)
 * RETURNS tenancy.tenant
 *
 * Creates the tenant's database or schema under a temporary name, applies
 * every registered migration, renames it and registers the tenant as
 * ready, returning the row.  On a ready tenant it is a NOTICE and returns
 * the row; what an interrupted earlier attempt left is cleaned up first,
 * and a failed tenant whose object is gone is provisioned again.
 */
Datum
tenancy_provision(PG_FUNCTION_ARGS)
{
	OperationContext ctx;
	ProvisionJob job;
	char	   *tenant;
	char	   *isolation;
	const IsolationModel *model;
	const char *server = NULL;
	Jsonb	   *metadata = NULL;

	tenant = tenancy_name_argument(fcinfo, 0);
	begin_operation(&ctx, "provisioning", tenant);
	tenancy_catalog_apply_config();

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("isolation must not be null")));
	isolation = text_to_cstring(PG_GETARG_TEXT_PP(1));
	model = tenancy_isolation_by_name(isolation);
	if (model == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid isolation \"%s\"", isolation),
				 errhint("Use 'database' or 'schema'.")));
	if (!PG_ARGISNULL(2))
	{
		server = NameStr(*PG_GETARG_NAME(2));
		if (model->transactional)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("schema tenants cannot have a server"),
					 errdetail("A schema tenant's schema is in the admin database."),
					 errhint("Pass server => NULL, or use isolation => 'database'.")));
		tenancy_conninfo_check_caller(server);
		tenancy_conninfo_check_server(server);
	}
	else if (!model->transactional)
	{
		/* no server named: placed by the policy (tenancy.server) */
		server = tenancy_catalog_place_tenant(NIL);
		if (server != NULL)
			tenancy_conninfo_check_server(server);
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

	if (!provision_setup(&job, &ctx, tenant, model, server, metadata))
	{
		ereport(NOTICE,
				(errmsg("tenant \"%s\" already exists, skipping", tenant)));
		end_operation(&ctx);
		PG_RETURN_DATUM(tenancy_catalog_row(tenant));
	}
	tenancy_try_or_undo(provision_steps, provision_undo, &job);

	end_operation(&ctx);
	PG_RETURN_DATUM(tenancy_catalog_row(tenant));
}

/*
 * A state change with a remote step: the new state commits on its own
 * first; if the remote step fails, the old state is put back (also on its
 * own) and the error re-thrown.
 */
typedef struct StateChange
{
	const TenantRecord *rec;
	TenantState to;
	bool		force;			/* dropping: terminate sessions */
} StateChange;

static void
state_change_steps(void *arg)
{
	StateChange *sc = (StateChange *) arg;
	const IsolationModel *model = tenancy_isolation(sc->rec->isolation);

	tenancy_fault("before_drop");
	if (sc->to == TENANT_STATE_DROPPING)
		model->drop(TENANCY_SERVER(sc->rec), tenancy_isolation_object(sc->rec), sc->force, true,
					tenancy_conninfo_appname(sc->rec->id));
	else
		model->set_suspended(sc->rec, sc->to == TENANT_STATE_SUSPENDED);
}

static void
state_change_undo(void *arg)
{
	StateChange *sc = (StateChange *) arg;

	tenancy_catalog_set_state(sc->rec->id, sc->rec->state, NULL, true);
}

static void
change_state(const TenantRecord *rec, TenantState to, bool force)
{
	StateChange sc = {rec, to, force};

	if (rec->state != to)
		tenancy_catalog_set_state(rec->id, to, NULL, true);
	tenancy_try_or_undo(state_change_steps, state_change_undo, &sc);
}

/*
 * tenancy.deprovision(tenant text, force boolean) RETURNS void
 *
 * Drops the tenant's object and deletes its row (and its members).  For a
 * database tenant each step commits on its own (the tenant is marked
 * dropping first), so a rollback of the caller cannot bring back a row
 * whose database is gone; without force, DROP DATABASE fails with 55006
 * while sessions are connected, and the tenant goes back to its state;
 * with force, they are terminated.  An interrupted deprovision (state
 * dropping) is finished by calling it again or by reconcile().  For a
 * schema tenant, DROP SCHEMA and the row go in the caller's transaction.
 */
Datum
tenancy_deprovision(PG_FUNCTION_ARGS)
{
	OperationContext ctx;
	TenantRecord rec;
	char	   *tenant = tenancy_name_argument(fcinfo, 0);
	const IsolationModel *model;
	bool		force;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("force must not be null")));
	force = PG_GETARG_BOOL(1);
	begin_operation(&ctx, "deprovisioning", tenant);
	tenancy_catalog_apply_config();

	ctx.step = "lock";
	tenancy_catalog_lock_existing(tenant, &rec);
	tenancy_kept_forget(tenant);	/* this session's kept connections */
	model = tenancy_isolation(rec.isolation);

	ctx.step = psprintf("drop %s", model->name);
	if (model->transactional)
	{
		tenancy_fault("before_drop");
		model->drop(NULL, tenancy_isolation_object(&rec), force, false, tenancy_conninfo_appname(tenant));
	}
	else
		change_state(&rec, TENANT_STATE_DROPPING, force);

	ctx.step = "unregister";
	tenancy_catalog_delete(tenant, !model->transactional);
	end_operation(&ctx);
	PG_RETURN_VOID();
}

/*
 * Common body of suspend() and resume(): moves a tenant between ready and
 * suspended and makes its object unreachable, or reachable again
 * (isolation model).  Doing it again is a NOTICE.
 */
static void
set_suspended(FunctionCallInfo fcinfo, bool suspend)
{
	OperationContext ctx;
	TenantRecord rec;
	char	   *tenant = tenancy_name_argument(fcinfo, 0);
	TenantState from = suspend ? TENANT_STATE_READY : TENANT_STATE_SUSPENDED;
	TenantState to = suspend ? TENANT_STATE_SUSPENDED : TENANT_STATE_READY;
	const IsolationModel *model;

	begin_operation(&ctx, suspend ? "suspending" : "resuming", tenant);
	tenancy_catalog_apply_config();

	ctx.step = "lock";
	tenancy_catalog_lock_existing(tenant, &rec);
	if (rec.state == to)
	{
		ereport(NOTICE,
				(errmsg("tenant \"%s\" is already %s, skipping", tenant, tenancy_state_name(to))));
		end_operation(&ctx);
		return;
	}
	if (rec.state != from)
		not_in_state_error(&rec, NULL);
	if (suspend)
		tenancy_kept_forget(tenant);	/* this session's kept connections */

	model = tenancy_isolation(rec.isolation);
	ctx.step = suspend ? "suspend" : "resume";
	if (model->transactional)
	{
		tenancy_catalog_set_state(tenant, to, NULL, false);
		model->set_suspended(&rec, suspend);
	}
	else
		change_state(&rec, to, false);
	end_operation(&ctx);
}

/*
 * tenancy.suspend(tenant text): the tenant can no longer be selected or
 * connected to.
 */
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

/*
 * tenancy.create_tenant_schema(operation_id bigint) RETURNS void
 *
 * Provisioning's helper for schema tenants, SECURITY DEFINER and executable
 * by the service role only: creates the temporary schema that the cleanup
 * record of "operation_id" names, owned by the service role (or, when
 * tenancy is not configured, the calling superuser), so that the service
 * role needs no CREATE privilege on the admin database.  It creates
 * nothing else: the record must exist, be a schema tenant's, name exactly
 * this operation's temporary schema (<prefix>tmp_<operation_id>), and its
 * tenant's lock must be held (a provisioning is under way).
 */
Datum
tenancy_create_tenant_schema(PG_FUNCTION_ARGS)
{
	int64		operation_id;
	CleanupRecord c;
	Oid			service = tenancy_catalog_service_role();
	Oid			caller = GetSessionUserId();

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("operation id must not be null")));
	operation_id = PG_GETARG_INT64(0);
	if (!superuser_arg(caller) && caller != service)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create a tenant schema"),
				 errdetail("Only tenancy's service role creates tenant schemas, while provisioning.")));
	if (!tenancy_catalog_cleanup_record(operation_id, &c) || c.isolation != TENANT_ISOLATION_SCHEMA)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no schema tenant is being provisioned by operation " INT64_FORMAT, operation_id)));
	/* exactly this operation's temporary name, under the current prefix */
	if (strcmp(c.temporary_name, tenancy_name_temporary(operation_id)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid temporary schema name \"%s\"", c.temporary_name),
				 errdetail("Operation " INT64_FORMAT " may create only \"%s\".",
						   operation_id, tenancy_name_temporary(operation_id))));
	/* and only while a provisioning of its tenant holds the tenant's lock */
	if (tenancy_try_lock_tenant(c.tenant))
	{
		tenancy_unlock_tenant(c.tenant);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is not being provisioned", c.tenant)));
	}
	tenancy_schema_create_local(c.temporary_name, OidIsValid(service) ? service : caller);
	PG_RETURN_VOID();
}

/*-------------------------------------------------------------------------
 * provision_many: many tenants at once.
 *
 * Each tenant goes through provision()'s steps and is atomic on its own:
 * "validate" to "record" one tenant after another (each in a
 * subtransaction), then the "create" statements of every database on up to
 * "parallel" sessions at once within each server's budget (the slow part:
 * CREATE DATABASE), then "migrate" to "register" one after another.  A
 * tenant that fails at any step is undone alone and reported; the others
 * go on.
 *-------------------------------------------------------------------------
 */
typedef struct ManyTenant
{
	FleetTask	task;			/* first: the runner's view */
	OperationContext ctx;
	ProvisionJob job;
	const IsolationModel *model;
	const char *tenant;
	const char *server_arg;		/* server => ..., or NULL: placed */
	List	   *statements;		/* what "create" sends; NIL: created already */
	int			sent;
	bool		exists;			/* ready already: nothing done */
	ErrorData  *error;			/* why it failed, or NULL */
	RemoteError *remote_error;	/* the create step's, from the fleet run */
	const char *placed;			/* the server placement chose, or NULL */
	List	  **unreachable;	/* the run's: servers that did not answer */
	bool		cancelled;		/* not created: the job was cancelled */
} ManyTenant;

static void
many_setup_step(void *arg)
{
	ManyTenant *m = (ManyTenant *) arg;
	const char *server = m->server_arg;
	TenantRecord existing;

	begin_operation(&m->ctx, "provisioning", m->tenant);
	tenancy_name_validate(m->tenant);
	if (tenancy_catalog_fetch(m->tenant, &existing) && existing.state == TENANT_STATE_READY)
	{
		m->exists = true;		/* nothing to place, nothing to connect to */
		end_operation(&m->ctx);
		return;
	}
	if (server != NULL)
	{
		tenancy_conninfo_check_caller(server);
		tenancy_conninfo_check_server(server);
	}
	else if (!m->model->transactional)
	{
		server = tenancy_catalog_place_tenant(*m->unreachable);
		m->placed = server;
		if (server != NULL)
			tenancy_conninfo_check_server(server);
	}
	if (!provision_setup(&m->job, &m->ctx, m->tenant, m->model, server,
						 DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")))))
	{
		m->exists = true;
		end_operation(&m->ctx);
		return;
	}
	before_create(&m->job);
	m->ctx.step = psprintf("create %s", m->model->name);
	if (m->job.from_spare)
		m->statements = NIL;	/* a spare: created already */
	else if (m->model->create_statements != NULL)
		m->statements = m->model->create_statements(m->job.cleanup.temporary_name, m->job.source,
													m->job.version < 0);
	else
		m->model->create(m->job.server, m->job.cleanup.temporary_name, m->job.source,
						 m->job.cleanup.operation_id, m->job.appname, m->job.version < 0);
	end_operation(&m->ctx);
}

static void
many_finish_step(void *arg)
{
	ManyTenant *m = (ManyTenant *) arg;

	begin_operation(&m->ctx, "provisioning", m->tenant);
	tenancy_fault("after_remote_create");
	after_create(&m->job);
	end_operation(&m->ctx);
}

static void
many_undo_step(void *arg)
{
	provision_undo(&((ManyTenant *) arg)->job);
}

/*
 * Undoes what a failed tenant left (a failure of that is a WARNING:
 * reconcile() finishes).
 */
static void
many_undo(ManyTenant *m)
{
	ErrorData  *edata;

	if (!m->job.recorded)
		return;
	edata = tenancy_try(many_undo_step, m);
	if (edata != NULL)
		ereport(WARNING,
				(errmsg("could not undo provisioning tenant \"%s\": %s", m->tenant, edata->message),
				 errhint("Run tenancy.reconcile().")));
}

static const char *
many_next(void *arg, FleetTask *task, const RemoteResult *last)
{
	ManyTenant *m = (ManyTenant *) task;

	if (last != NULL && last->error != NULL)
	{
		/* the task's memory goes when it ends: keep a copy in the run's */
		MemoryContext old = MemoryContextSwitchTo((MemoryContext) arg);

		m->remote_error = tenancy_remote_error(last->error->sqlstate, last->error->message,
											   last->error->detail, last->error->hint);
		MemoryContextSwitchTo(old);
		return NULL;
	}
	if (m->sent < list_length(m->statements))
		return (const char *) list_nth(m->statements, m->sent++);
	return NULL;
}

static void
many_finish(void *arg, FleetTask *task, const RemoteError *error)
{
	ManyTenant *m = (ManyTenant *) task;

	if (error != NULL && m->remote_error == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo((MemoryContext) arg);

		m->remote_error = tenancy_remote_error(error->sqlstate, error->message, error->detail,
											   error->hint);
		MemoryContextSwitchTo(old);
	}
}

/* Before a tenant's CREATE DATABASE: none once the job is cancelled. */
static bool
many_begin(void *arg, FleetTask *task)
{
	ManyTenant *m = (ManyTenant *) task;

	m->cancelled = tenancy_jobs_cancelled();
	return !m->cancelled;
}

static const FleetOps many_ops = {many_begin, many_next, many_finish, NULL};

/* A RemoteError as an ErrorData, for the result row. */
static ErrorData *
remote_error_data(const RemoteError *e)
{
	ErrorData  *edata = palloc0(sizeof(ErrorData));

	edata->sqlerrcode = MAKE_SQLSTATE(e->sqlstate[0], e->sqlstate[1], e->sqlstate[2],
									  e->sqlstate[3], e->sqlstate[4]);
	edata->message = e->message ? pstrdup(e->message) : "";
	return edata;
}

/*
 * provision_many()'s arguments, checked before anything runs: NULL array
 * or element (22004), parallel outside 1..64, an unknown isolation, a
 * server for schema tenants, an id given twice (22023).
 */
static void
many_arguments(FunctionCallInfo fcinfo, Datum **elems_out, int *n_out, int *parallel_out,
			   const IsolationModel **model_out)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;
	int			parallel;
	const IsolationModel *model;
	int			i;
	int			j;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenants must not be null")));
	parallel = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	if (parallel < 1 || parallel > 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parallel must be between 1 and 64")));
	model = tenancy_isolation_by_name(PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	if (model == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid isolation \"%s\"", PG_ARGISNULL(2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(2))),
				 errhint("Use 'database' or 'schema'.")));
	if (!PG_ARGISNULL(3) && model->transactional)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schema tenants cannot have a server"),
				 errhint("Pass server => NULL, or use isolation => 'database'.")));
	array = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &n);
	for (i = 0; i < n; i++)
	{
		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("tenants must not contain NULL")));
		for (j = 0; j < i; j++)
			if (!elem_nulls[j] && strcmp(TextDatumGetCString(elems[i]), TextDatumGetCString(elems[j])) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("tenant \"%s\" is given twice", TextDatumGetCString(elems[i]))));
	}
	*elems_out = elems;
	*n_out = n;
	*parallel_out = parallel;
	*model_out = model;
}

/*
 * tenancy.provision_many(tenants text[], parallel int, isolation text,
 * server name) RETURNS TABLE (tenant, status, server, error, sqlstate)
 *
 * One row per tenant, in the order given: status "provisioned", "exists"
 * (ready already; nothing done) or "failed" (with the error and its
 * SQLSTATE; what it had created is undone).  Bad arguments are refused
 * before anything runs: NULL array (22004), parallel outside 1..64, an id
 * given twice, an unknown isolation (22023).
 */
Datum
tenancy_provision_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *elems;
	int			n;
	int			parallel;
	const IsolationModel *model;
	ManyTenant *many;
	FleetTask **tasks;
	int			ntasks = 0;
	List	   *budgets;
	List	   *unreachable = NIL;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	many_arguments(fcinfo, &elems, &n, &parallel, &model);
	tenancy_catalog_apply_config();

	/* "validate" to "record", one tenant after another */
	many = palloc0(sizeof(ManyTenant) * Max(n, 1));
	tasks = palloc(sizeof(FleetTask *) * Max(n, 1));
	budgets = tenancy_catalog_budgets();
	for (i = 0; i < n; i++)
	{
		ManyTenant *m = &many[i];

		m->tenant = TextDatumGetCString(elems[i]);
		m->model = model;
		m->server_arg = PG_ARGISNULL(3) ? NULL : pstrdup(NameStr(*PG_GETARG_NAME(3)));
		m->unreachable = &unreachable;
		m->error = tenancy_try(many_setup_step, m);
		if (m->error != NULL)
		{
			/* a placed server that did not answer gets no more of this run */
			if (m->placed != NULL &&
				ERRCODE_TO_CATEGORY(m->error->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION)
				unreachable = lappend(unreachable, pstrdup(m->placed));
			many_undo(m);
		}
		else if (!m->exists && m->statements != NIL)
		{
			m->task.server = m->job.server;
			m->task.dbname = NULL;
			m->task.appname = m->job.appname;
			m->task.budget = tenancy_catalog_budget(budgets, m->job.server);
			tasks[ntasks++] = &m->task;
		}
	}

	/* "create", in parallel within each server's budget */
	if (ntasks > 0)
		tenancy_fleet_run(tasks, ntasks, parallel, &many_ops, CurrentMemoryContext);

	/* "migrate" to "register", one after another; one row each */
	for (i = 0; i < n; i++)
	{
		ManyTenant *m = &many[i];
		Datum		values[5];
		bool		nulls[5] = {false, false, true, true, true};

		if (m->error == NULL && !m->exists)
		{
			if (m->cancelled)
				many_undo(m);	/* reported as skipped, below */
			else if (m->remote_error != NULL)
				m->error = remote_error_data(m->remote_error);
			else
				m->error = tenancy_try(many_finish_step, m);
			if (m->error != NULL)
				many_undo(m);
		}
		values[0] = CStringGetTextDatum(m->tenant);
		if (m->cancelled && m->error == NULL)
		{
			values[1] = CStringGetTextDatum("skipped");
			values[3] = CStringGetTextDatum("not created: the job was cancelled");
			nulls[3] = false;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			continue;
		}
		values[1] = CStringGetTextDatum(m->error ? "failed" : m->exists ? "exists" : "provisioned");
		if (m->error == NULL && !m->exists && m->job.server != NULL)
		{
			values[2] = DirectFunctionCall1(namein, CStringGetDatum(m->job.server));
			nulls[2] = false;
		}
		if (m->error != NULL)
		{
			values[3] = CStringGetTextDatum(m->error->message ? m->error->message : "");
			values[4] = CStringGetTextDatum(unpack_sql_state(m->error->sqlerrcode));
			nulls[3] = nulls[4] = false;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * tenancy.start_provision_many(tenants text[], parallel int, isolation
 * text, server name) RETURNS bigint
 *
 * provision_many() as a background job: the same argument checks, then a
 * row in tenancy.job, whose id is returned at once; the worker runs it as
 * the calling role once this transaction commits.  55000 when no worker
 * would run it.
 */
Datum
tenancy_start_provision_many(PG_FUNCTION_ARGS)
{
	TenancyJob	job;
	Datum	   *elems;
	int			n;
	const IsolationModel *model;

	memset(&job, 0, sizeof(job));
	many_arguments(fcinfo, &elems, &n, &job.parallel, &model);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenants must not be empty")));
	tenancy_jobs_require_worker();
	job.kind = JOB_PROVISION_MANY;
	job.tenants = PG_GETARG_ARRAYTYPE_P(0);
	job.isolation = text_to_cstring(PG_GETARG_TEXT_PP(2));
	job.server = PG_ARGISNULL(3) ? NULL : NameStr(*PG_GETARG_NAME(3));
	job.max_failures = 0;
	job.to_version = -1;
	PG_RETURN_INT64(tenancy_jobs_add(&job, n));
}
