/*-------------------------------------------------------------------------
 *
 * provision.c
 *	  SQL-callable provisioning: provision, deprovision, suspend, resume.
 *
 * State machine (tenancy.tenant.state):
 *
 *	  (no row) --provision--> ready          (the row appears only when ready)
 *	  ready <--suspend/resume--> suspended
 *	  ready | suspended | failed --deprovision--> dropping --> (row gone)
 *	  ready | suspended --reconcile finds the database missing--> failed
 *
 * CREATE and DROP DATABASE run through dblink and commit on their own,
 * whatever the caller's transaction does.  So that no crash, kill, cancel
 * or rollback can leave a database the catalog cannot explain (or a ready
 * row without its database), provision() works under a temporary name
 * recorded first (Citus's scheme):
 *
 *	  "record"           operation id taken; tenancy.pending_cleanup row
 *	                     (temporary name <prefix>tmp_<id>, final name)
 *	                     committed on its own through a loopback connection
 *	  "create database"  CREATE DATABASE <tmp> TEMPLATE ..., REVOKE CONNECT,
 *	                     TEMPORARY FROM PUBLIC, on the tenant's server
 *	  "migrate"          ledger created, every registered migration applied
 *	  "rename"           ALTER DATABASE <tmp> RENAME TO <final>: in the
 *	                     caller's transaction on this cluster; on a foreign
 *	                     server it commits there on its own
 *	  "register"         tenant row inserted as ready and the cleanup row
 *	                     deleted, both in the caller's transaction
 *
 * A plain error undoes the steps at once (subtransaction, then best-effort
 * drop and record removal).  A crash or a caller's rollback leaves a cleanup
 * row naming what exists; reconcile(), or the next provision() of the same
 * tenant, drops it.  Deprovision, suspend and resume change the tenant's
 * state autonomously (loopback connection) before their remote step, and
 * put it back if that step fails, so the catalog never claims a database
 * that a committed remote step has changed.
 *
 * Schema tenants (isolation 'schema') live in the admin database, so
 * their whole life is transactional: provision_schema() creates the
 * schema, applies the migrations and registers the tenant in the caller's
 * transaction, and deprovision, suspend and resume change nothing outside
 * it (schema.c).  None of the above is needed for them.
 *
 * Steps before "record": "validate" (name, isolation, server and metadata
 * checked; no SQL built and no connection opened before this passes),
 * "lock" and "check".  Each step's name is shown in CONTEXT lines.
 *
 * Locking order: the per-tenant advisory lock first, then remote work.  No
 * remote call is made before the local lock is held, so concurrent callers
 * wait locally and visibly.  No catalog row is locked: the autonomous
 * updates of the loopback connection would wait for it.
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
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "catalog.h"
#include "guc.h"
#include "migrate.h"
#include "schema.h"
#include "tenancy.h"
#include "transport.h"

PG_FUNCTION_INFO_V1(tenancy_provision);
PG_FUNCTION_INFO_V1(tenancy_deprovision);
PG_FUNCTION_INFO_V1(tenancy_suspend);
PG_FUNCTION_INFO_V1(tenancy_resume);
PG_FUNCTION_INFO_V1(tenancy_reconcile);

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

/*
 * Runs step(arg) in a subtransaction.  If it throws, the subtransaction is
 * rolled back, undo(arg) runs in a subtransaction of its own (its failure
 * is only a WARNING: reconcile() finishes the job), and the original error
 * is re-thrown unchanged (SQLSTATE, detail and context kept).
 */
static void
run_or_undo(void (*step) (void *), void (*undo) (void *), void *arg)
{
	ErrorData  *edata = tenancy_try(step, arg);
	ErrorData  *undo_error;

	if (edata == NULL)
		return;
	undo_error = tenancy_try(undo, arg);
	if (undo_error != NULL)
		ereport(WARNING,
				(errmsg("could not undo a failed tenancy operation: %s", undo_error->message),
				 errhint("Run tenancy.reconcile() to finish the cleanup.")));
	ReThrowError(edata);
}

/* Commits a catalog statement on its own, through a loopback connection. */
static void
autonomous_exec(char *sql)
{
	tenancy_transport_exec_list(NULL, NULL, "tenancy/catalog", list_make1(sql));
}

/*
 * Work in a new tenant database or the template: ledger, then every
 * migration.  "target" names it in messages.
 */
typedef struct BootstrapWork
{
	const char *target;
	int64		version;
} BootstrapWork;

static void
bootstrap_work(TransportConn *conn, void *arg)
{
	BootstrapWork *w = (BootstrapWork *) arg;
	int64		from;

	tenancy_transport_exec(conn, TRANSPORT_SQL_LEDGER_SETUP);
	w->version = tenancy_migrate_connection(conn, w->target, tenancy_catalog_migrations(),
											&from);
}

/* Template (re)building, as steps for run_or_undo(). */
typedef struct TemplateJob
{
	const char *server;
	const char *template_db;
	const char *appname;
	int64		version;
} TemplateJob;

/*
 * Builds tenancy's template afresh: dropped if it exists, created from
 * template0, made unreachable by PUBLIC, given the ledger and every
 * registered migration, then closed to connections (CREATE DATABASE cannot
 * copy a database others are connected to).  Rebuilding rather than
 * migrating in place keeps the template exactly what the registered
 * migrations produce, even if someone edited them by hand.
 */
static void
template_steps(void *arg)
{
	TemplateJob *tj = (TemplateJob *) arg;
	BootstrapWork bw = {psprintf("template database \"%s\"", tj->template_db), 0};

	tenancy_transport_exec_list(tj->server, NULL, tj->appname,
								list_make3(tenancy_transport_sql_drop_database(tj->template_db, true),
										   tenancy_transport_sql_create_database(tj->template_db, "template0"),
										   tenancy_transport_sql_revoke_public(tj->template_db)));
	tenancy_transport_run(tj->server, tj->template_db, tj->appname, bootstrap_work, &bw);
	tenancy_transport_exec_list(tj->server, NULL, tj->appname,
								list_make1(tenancy_transport_sql_allow_connections(tj->template_db, false)));
	tj->version = bw.version;
}

/* After a failed build: drop the half-built template. */
static void
template_undo(void *arg)
{
	TemplateJob *tj = (TemplateJob *) arg;

	tenancy_transport_exec_list(tj->server, NULL, tj->appname,
								list_make1(tenancy_transport_sql_drop_database(tj->template_db, true)));
}

/*
 * Makes sure the template that new databases on "server" are copied from is
 * ready, and holds it (shared lock) for the copy.  With tenancy's own
 * template (tenancy.template_database empty): (re)builds it when it is
 * missing or the registered migrations changed since it was built, under
 * the template's exclusive lock.  Returns the template's name; *version is
 * the migration version copies of it start at, or -1 for a template
 * tenancy does not manage (copies must then be migrated).
 */
static char *
prepare_template(const char *server, const char *appname, int64 *version)
{
	bool		managed;
	char	   *tpl = tenancy_name_template(&managed);
	char	   *built_from;
	char	   *wanted;
	TemplateJob tj = {server, tpl, appname, 0};

	*version = -1;
	if (!managed)
		return tpl;

	tenancy_catalog_lock_template(server, true);
	built_from = tenancy_catalog_template_fingerprint(server, &tj.version);
	wanted = tenancy_catalog_migration_fingerprint();
	if (built_from == NULL || strcmp(built_from, wanted) != 0 ||
		!tenancy_transport_database_exists(server, tpl))
	{
		run_or_undo(template_steps, template_undo, &tj);
		tenancy_catalog_set_template(server, tpl, tj.version, wanted);
	}
	*version = tj.version;
	tenancy_catalog_unlock_template(server, true);
	tenancy_catalog_lock_template(server, false);
	return tpl;
}

/* One provisioning operation, shared by its steps and their undo. */
typedef struct ProvisionJob
{
	ProvisionContext *ctx;
	TenantRecord rec;			/* the row to register */
	const char *server;			/* NULL: this cluster */
	Jsonb	   *metadata;
	int64		operation_id;
	char	   *template_db;
	char		tmp_db[NAMEDATALEN];
	bool		recorded;		/* cleanup row committed */
	bool		renamed;		/* remote rename committed */
} ProvisionJob;

/* "record" and, on this cluster, "create database" on one connection. */
static void
record_work(TransportConn *conn, void *arg)
{
	ProvisionJob *job = (ProvisionJob *) arg;

	tenancy_transport_exec(conn, tenancy_transport_sql_cleanup_record(job->operation_id, job->rec.id,
																	  job->server, job->tmp_db,
																	  job->rec.database_name));
	job->recorded = true;
	tenancy_fault("after_cleanup_record");
	if (job->server == NULL)
	{
		job->ctx->step = "create database";
		tenancy_transport_exec(conn, tenancy_transport_sql_create_database(job->tmp_db, job->template_db));
		tenancy_transport_exec(conn, tenancy_transport_sql_revoke_public(job->tmp_db));
	}
}

/* The steps of provision() from "record" to "register". */
static void
provision_steps(void *arg)
{
	ProvisionJob *job = (ProvisionJob *) arg;
	const char *appname = tenancy_transport_appname(job->rec.id);
	BootstrapWork bw;
	int64		template_version;

	job->ctx->step = "template";
	job->template_db = prepare_template(job->server, appname, &template_version);

	job->ctx->step = "record";
	tenancy_fault("before_cleanup_record");
	tenancy_transport_run(NULL, NULL, appname, record_work, job);
	if (job->server != NULL)
	{
		job->ctx->step = "create database";
		tenancy_transport_exec_list(job->server, NULL, appname,
									list_make2(tenancy_transport_sql_create_database(job->tmp_db, job->template_db),
											   tenancy_transport_sql_revoke_public(job->tmp_db)));
	}
	tenancy_fault("after_remote_create");

	/*
	 * A copy of tenancy's own template already has exactly the registered
	 * migrations (the template lock keeps them from changing meanwhile), so
	 * there is nothing to connect to it for; not connecting also spares the
	 * rename below the wait for that session to exit.  Copies of any other
	 * template get the ledger and every migration.
	 */
	job->ctx->step = "migrate";
	if (template_version >= 0)
		job->rec.applied_version = template_version;
	else
	{
		bw.target = psprintf("tenant \"%s\"", job->rec.id);
		bw.version = 0;
		tenancy_transport_run(job->server, job->tmp_db, appname, bootstrap_work, &bw);
		job->rec.applied_version = bw.version;
	}
	tenancy_fault("after_bootstrap");

	job->ctx->step = "rename";
	tenancy_fault("before_rename");
	tenancy_transport_rename_database(job->server, job->tmp_db, job->rec.database_name);
	job->renamed = (job->server != NULL);
	tenancy_fault("after_rename");

	job->ctx->step = "register";
	tenancy_catalog_register_ready(&job->rec, job->metadata, job->operation_id);
	tenancy_fault("after_local_record");
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
	List	   *drops = list_make1(tenancy_transport_sql_drop_database(job->tmp_db, true));

	if (!job->recorded)
		return;
	job->ctx->step = "undo";
	if (job->renamed)
		drops = lappend(drops, tenancy_transport_sql_drop_database(job->rec.database_name, true));
	tenancy_transport_exec_list(job->server, NULL, tenancy_transport_appname(job->rec.id), drops);
	autonomous_exec(tenancy_transport_sql_cleanup_forget(job->operation_id));
}

/* Which database a cleanup row's final name may be dropped from. */
static bool
row_claims_database(const TenantRecord *t, const CleanupRecord *c)
{
	return strcmp(t->database_name, c->final_name) == 0 &&
		strcmp(t->server, c->server) == 0;
}

/* Emits one row of reconcile()'s result; tuplestore may be NULL. */
typedef struct ReconcileOutput
{
	ReturnSetInfo *rsinfo;		/* NULL: report nothing */
	bool		dry_run;
	int			actions;
} ReconcileOutput;

static void
report(ReconcileOutput *out, const char *tenant, const char *object,
	   const char *problem, const char *action)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	out->actions++;
	if (out->rsinfo == NULL)
		return;
	values[0] = CStringGetTextDatum(tenant);
	values[1] = CStringGetTextDatum(object);
	values[2] = CStringGetTextDatum(problem);
	values[3] = CStringGetTextDatum(action);
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
}

/*
 * Repairs what an interrupted provisioning left, from its cleanup row: the
 * temporary database, and on a foreign server a final-name database that no
 * row claims (its rename committed there, the registration did not).  On
 * this cluster the rename is transactional, so a final-name database is
 * never ours to drop.  The caller holds the tenant's lock.
 */
static void
repair_cleanup(const CleanupRecord *c, ReconcileOutput *out)
{
	const char *server = c->server[0] ? c->server : NULL;
	TenantRecord t;
	bool		claimed = tenancy_catalog_fetch(c->tenant, &t) && row_claims_database(&t, c);
	List	   *drops = NIL;

	if (tenancy_transport_database_exists(server, c->database_name))
	{
		report(out, c->tenant, c->database_name, "temporary database of an interrupted provisioning",
			   out->dry_run ? "would drop database" : "dropped database");
		drops = lappend(drops, tenancy_transport_sql_drop_database(c->database_name, true));
	}
	if (server != NULL && !claimed && tenancy_transport_database_exists(server, c->final_name))
	{
		report(out, c->tenant, c->final_name, "database renamed by an interrupted provisioning but not registered",
			   out->dry_run ? "would drop database" : "dropped database");
		drops = lappend(drops, tenancy_transport_sql_drop_database(c->final_name, true));
	}
	report(out, c->tenant, psprintf("operation " INT64_FORMAT, c->operation_id),
		   "cleanup record of an interrupted provisioning",
		   out->dry_run ? "would remove record" : "removed record");
	if (out->dry_run)
		return;
	if (drops != NIL)
		tenancy_transport_exec_list(server, NULL, tenancy_transport_appname(c->tenant), drops);
	tenancy_catalog_forget_cleanup(c->operation_id);
}

/*
 * Does what a tenant row says exists (its database or schema) exist?
 */
static bool
tenant_object_exists(const TenantRecord *rec)
{
	if (rec->isolation == TENANT_ISOLATION_SCHEMA)
		return tenancy_schema_exists(rec->schema_name);
	return tenancy_transport_database_exists(record_server(rec), rec->database_name);
}

/* The name of what a tenant row stands for, in reconcile() output. */
static const char *
tenant_object(const TenantRecord *rec)
{
	return rec->isolation == TENANT_ISOLATION_SCHEMA ? rec->schema_name : rec->database_name;
}

/*
 * provision() of a schema tenant: schema, ledger, migrations and catalog
 * row, all in the caller's transaction (see schema.c), so an error or a
 * rollback leaves nothing behind and there is nothing to record first.
 */
static void
provision_schema(ProvisionContext *ctx, const char *tenant, Jsonb *metadata)
{
	TenantRecord existing;
	TenantRecord rec;
	char	   *nsp = tenancy_name_schema(tenant);
	int64		from;

	ctx->step = "lock";
	tenancy_catalog_lock_tenant(tenant, false);

	ctx->step = "check";
	if (tenancy_catalog_fetch(tenant, &existing))
	{
		if (existing.state == TENANT_STATE_READY)
		{
			ereport(NOTICE,
					(errmsg("tenant \"%s\" already exists, skipping", tenant)));
			return;
		}
		if (existing.state != TENANT_STATE_FAILED || tenant_object_exists(&existing))
			not_in_state_error(&existing, "Deprovision the tenant, or run tenancy.reconcile().");
	}

	memset(&rec, 0, sizeof(rec));
	strlcpy(rec.id, tenant, NAMEDATALEN);
	rec.isolation = TENANT_ISOLATION_SCHEMA;
	strlcpy(rec.schema_name, nsp, NAMEDATALEN);
	rec.state = TENANT_STATE_READY;

	ctx->step = "create schema";
	tenancy_schema_create(nsp);
	tenancy_fault("after_remote_create");

	ctx->step = "migrate";
	rec.applied_version = tenancy_schema_migrate(nsp, psprintf("tenant \"%s\"", tenant),
												 tenancy_catalog_migrations(), &from, NULL);
	tenancy_fault("after_bootstrap");

	ctx->step = "register";
	tenancy_catalog_register_ready(&rec, metadata, 0);
	tenancy_fault("after_local_record");
}

/*
 * tenancy.provision(tenant text, isolation text, server name, metadata jsonb)
 * RETURNS tenancy.tenant
 *
 * Creates the tenant's database on its server under a temporary name,
 * applies every registered migration, renames it and registers the tenant
 * as ready, returning the row.  On a ready tenant it is a NOTICE and
 * returns the row; what an interrupted earlier attempt left is cleaned up
 * first, and a failed tenant whose database is gone is provisioned again.
 */
Datum
tenancy_provision(PG_FUNCTION_ARGS)
{
	ProvisionContext ctx;
	ErrorContextCallback errcb;
	TenantRecord existing;
	ProvisionJob job;
	char	   *tenant;
	char	   *isolation;
	const char *server = NULL;
	Jsonb	   *metadata = NULL;
	char	   *db;
	ListCell   *lc;
	ReconcileOutput quiet = {NULL, false, 0};

	tenant = tenant_argument(fcinfo, 0);
	push_context(&ctx, &errcb, "provisioning", tenant);
	tenancy_catalog_apply_config();

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("isolation must not be null")));
	isolation = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strcmp(isolation, "database") != 0 && strcmp(isolation, "schema") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid isolation \"%s\"", isolation),
				 errhint("Use 'database' or 'schema'.")));
	if (!PG_ARGISNULL(2))
	{
		server = NameStr(*PG_GETARG_NAME(2));
		if (strcmp(isolation, "schema") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("schema tenants cannot have a server"),
					 errdetail("A schema tenant's schema is in the admin database."),
					 errhint("Pass server => NULL, or use isolation => 'database'.")));
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
	if (strcmp(isolation, "schema") == 0)
	{
		provision_schema(&ctx, tenant, metadata);
		error_context_stack = errcb.previous;
		PG_RETURN_DATUM(tenancy_catalog_row(tenant));
	}
	db = tenancy_name_database(tenant);

	ctx.step = "lock";
	tenancy_catalog_lock_tenant(tenant, false);

	ctx.step = "check";
	foreach(lc, tenancy_catalog_cleanup_records(tenant))
		repair_cleanup((CleanupRecord *) lfirst(lc), &quiet);
	if (tenancy_catalog_fetch(tenant, &existing))
	{
		if (existing.state == TENANT_STATE_READY)
		{
			ereport(NOTICE,
					(errmsg("tenant \"%s\" already exists, skipping", tenant)));
			error_context_stack = errcb.previous;
			PG_RETURN_DATUM(tenancy_catalog_row(tenant));
		}
		if (existing.state != TENANT_STATE_FAILED ||
			tenancy_transport_database_exists(record_server(&existing), existing.database_name))
			not_in_state_error(&existing, "Deprovision the tenant, or run tenancy.reconcile().");
	}
	if (tenancy_transport_database_exists(server, db))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_DATABASE),
				 errmsg("database \"%s\" already exists", db),
				 errdetail("The database is not registered as a tenant database."),
				 errhint("Drop or rename the database, or choose another tenant name.")));

	memset(&job, 0, sizeof(job));
	job.ctx = &ctx;
	strlcpy(job.rec.id, tenant, NAMEDATALEN);
	job.rec.isolation = TENANT_ISOLATION_DATABASE;
	strlcpy(job.rec.database_name, db, NAMEDATALEN);
	if (server)
		strlcpy(job.rec.server, server, NAMEDATALEN);
	job.rec.state = TENANT_STATE_READY;
	job.server = server;
	job.metadata = metadata;
	/*
	 * Operation ids never repeat within one catalog, but a database left by
	 * an earlier catalog (the extension dropped and created again) may hold
	 * the name: skip such ids rather than fail.
	 */
	do
	{
		job.operation_id = tenancy_catalog_next_operation();
		snprintf(job.tmp_db, NAMEDATALEN, "%stmp_" INT64_FORMAT, tenancy_database_prefix,
				 job.operation_id);
	} while (tenancy_transport_database_exists(server, job.tmp_db));
	run_or_undo(provision_steps, provision_undo, &job);

	error_context_stack = errcb.previous;
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
	List	   *remote;			/* commands for the tenant's server */
} StateChange;

static void
state_change_steps(void *arg)
{
	StateChange *sc = (StateChange *) arg;

	tenancy_fault("before_drop");
	tenancy_transport_exec_list(record_server(sc->rec), NULL,
								tenancy_transport_appname(sc->rec->id), sc->remote);
}

static void
state_change_undo(void *arg)
{
	StateChange *sc = (StateChange *) arg;

	autonomous_exec(tenancy_transport_sql_set_state(sc->rec->id, tenancy_state_name(sc->rec->state), NULL));
}

static void
change_state(const TenantRecord *rec, TenantState to, List *remote)
{
	StateChange sc = {rec, to, remote};

	if (rec->state != to)
		autonomous_exec(tenancy_transport_sql_set_state(rec->id, tenancy_state_name(to), NULL));
	run_or_undo(state_change_steps, state_change_undo, &sc);
}

/*
 * tenancy.deprovision(tenant text, force boolean) RETURNS void
 *
 * Marks the tenant dropping, drops its database on its server and deletes
 * its row (and its members); each step commits on its own, so a rollback
 * of the caller cannot bring back a row whose database is gone.  Without
 * force, DROP DATABASE fails with 55006 while sessions are connected, and
 * the tenant goes back to its state; with force, they are terminated.  An
 * interrupted deprovision (state dropping) is finished by calling it again
 * or by reconcile().
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
	tenancy_catalog_apply_config();

	ctx.step = "lock";
	tenancy_catalog_lock_existing(tenant, &rec);
	tenancy_routed_forget(tenant);	/* this session's kept connections */

	if (rec.isolation == TENANT_ISOLATION_SCHEMA)
	{
		/* in the caller's transaction: DROP SCHEMA and the row go together */
		ctx.step = "drop schema";
		tenancy_fault("before_drop");
		tenancy_schema_drop(rec.schema_name);
		ctx.step = "unregister";
		tenancy_catalog_delete(tenant);
		error_context_stack = errcb.previous;
		PG_RETURN_VOID();
	}

	ctx.step = "drop database";
	change_state(&rec, TENANT_STATE_DROPPING,
				 list_make1(tenancy_transport_sql_drop_database(rec.database_name, force)));

	ctx.step = "unregister";
	autonomous_exec(tenancy_transport_sql_delete_tenant(tenant));
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
	tenancy_catalog_apply_config();

	ctx.step = "lock";
	tenancy_catalog_lock_existing(tenant, &rec);
	if (rec.state == to)
	{
		ereport(NOTICE,
				(errmsg("tenant \"%s\" is already %s, skipping", tenant, tenancy_state_name(to))));
		error_context_stack = errcb.previous;
		return;
	}
	if (rec.state != from)
		not_in_state_error(&rec, NULL);
	if (suspend)
		tenancy_routed_forget(tenant);	/* this session's kept connections */

	if (rec.isolation == TENANT_ISOLATION_SCHEMA)
	{
		ListCell   *lc;

		/*
		 * In the caller's transaction: the state, and the members' USAGE on
		 * the schema (so that naming the schema by hand reaches nothing
		 * either), as datallowconn does for a database.
		 */
		ctx.step = "set state";
		tenancy_catalog_set_state(tenant, to, NULL);
		ctx.step = suspend ? "revoke usage" : "grant usage";
		foreach(lc, tenancy_catalog_members(tenant))
		{
			char	   *role = GetUserNameFromId(lfirst_oid(lc), true);

			if (role != NULL)
				tenancy_schema_grant_access(rec.schema_name, role, !suspend);
		}
		error_context_stack = errcb.previous;
		return;
	}
	ctx.step = suspend ? "disallow connections" : "allow connections";
	change_state(&rec, to,
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

/* Reads the highest version in a tenant's ledger. */
static void
ledger_version_work(TransportConn *conn, void *arg)
{
	char	   *v = tenancy_transport_query_value(conn, TRANSPORT_SQL_LEDGER_MAX);

	*(int64 *) arg = v ? pg_strtoint64(v) : 0;
}

/*
 * tenancy.reconcile(dry_run boolean, check_ledgers boolean) RETURNS
 * TABLE(tenant, object, problem, action)
 *
 * Compares the catalog with the databases and repairs what interrupted
 * operations left: temporary databases of interrupted provisionings (from
 * their cleanup rows), interrupted deprovisions (state dropping: the drop
 * is finished and the row deleted), and rows whose database is missing
 * (marked failed).  Operations still running are reported and skipped.
 * Temporary databases on this cluster that no cleanup row explains are
 * reported, never dropped.  With check_ledgers, each ready tenant's ledger
 * is read and its catalog summary (applied_version) rebuilt from it if they
 * differ.  With dry_run, only reports.  Concurrent calls serialise on one
 * lock; a second run right after a first finds nothing.
 */
Datum
tenancy_reconcile(PG_FUNCTION_ARGS)
{
	ReconcileOutput out;
	ListCell   *lc;
	bool		check_ledgers = PG_NARGS() > 1 && !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);

	out.dry_run = PG_ARGISNULL(0) ? false : PG_GETARG_BOOL(0);
	out.actions = 0;
	InitMaterializedSRF(fcinfo, 0);
	out.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	tenancy_catalog_apply_config();

	tenancy_catalog_lock_reconcile();

	foreach(lc, tenancy_catalog_cleanup_records(NULL))
	{
		CleanupRecord *c = (CleanupRecord *) lfirst(lc);

		if (!tenancy_catalog_try_lock_tenant(c->tenant))
		{
			report(&out, c->tenant, c->database_name, "provisioning in progress", "none");
			continue;
		}
		repair_cleanup(c, &out);
	}

	foreach(lc, tenancy_catalog_tenants())
	{
		TenantRecord *t = (TenantRecord *) lfirst(lc);
		const char *server = record_server(t);
		bool		is_schema = (t->isolation == TENANT_ISOLATION_SCHEMA);
		const char *object = tenant_object(t);

		if (t->state == TENANT_STATE_FAILED)
			continue;

		if (!tenancy_catalog_try_lock_tenant(t->id))
		{
			report(&out, t->id, object, "operation in progress", "none");
			continue;
		}
		if (t->state == TENANT_STATE_DROPPING)
		{
			report(&out, t->id, object, "interrupted deprovisioning",
				   is_schema ? (out.dry_run ? "would drop schema and remove tenant" : "dropped schema, removed tenant") :
				   (out.dry_run ? "would drop database and remove tenant" : "dropped database, removed tenant"));
			if (!out.dry_run)
			{
				if (is_schema)
					tenancy_schema_drop(t->schema_name);
				else
					tenancy_transport_exec_list(server, NULL, tenancy_transport_appname(t->id),
												list_make1(tenancy_transport_sql_drop_database(t->database_name, true)));
				tenancy_catalog_delete(t->id);
			}
		}
		else if (!tenant_object_exists(t))
		{
			report(&out, t->id, object, is_schema ? "schema is missing" : "database is missing",
				   out.dry_run ? "would mark tenant failed" : "marked tenant failed");
			if (!out.dry_run)
				tenancy_catalog_set_state(t->id, TENANT_STATE_FAILED,
										  psprintf("%s \"%s\" does not exist",
												   is_schema ? "schema" : "database", object));
		}
		else if (check_ledgers && t->state == TENANT_STATE_READY)
		{
			int64		ledger = 0;

			if (is_schema)
			{
				ListCell   *lc2;

				foreach(lc2, tenancy_schema_ledger(t->schema_name))
					ledger = Max(ledger, pg_strtoint64(((char **) lfirst(lc2))[0]));
			}
			else
				tenancy_transport_run(server, t->database_name, tenancy_transport_appname(t->id),
									  ledger_version_work, &ledger);
			if (ledger != t->applied_version)
			{
				report(&out, t->id, object,
					   psprintf("catalog says version " INT64_FORMAT ", the ledger " INT64_FORMAT,
								t->applied_version, ledger),
					   out.dry_run ? "would set applied_version from the ledger" : "set applied_version from the ledger");
				if (!out.dry_run)
					tenancy_catalog_set_applied(t->id, ledger, false);
			}
		}
	}
	return (Datum) 0;
}
