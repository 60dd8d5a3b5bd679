/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker: one per cluster, connected to the database
 *	  tenancy.database names.  It runs the jobs of tenancy.job one after
 *	  another, a batch of tenants per transaction, each batch through the
 *	  same SQL function a session would call (migrate_all, provision_many)
 *	  as the role that started the job, and between jobs keeps the warm
 *	  pools filled (fill_pools, as the catalog owner).  Also cancel_job().
 *
 *	  A batch's outcomes commit with it, so a job interrupted by a crash,
 *	  a restart or a killed worker resumes with the tenants it had not
 *	  recorded; nothing is applied twice because each tenant's own ledger
 *	  (and the catalog, for provisioning) says what it already has.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "guc.h"
#include "jobs.h"
#include "scope.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(tenancy_cancel_job);

PGDLLEXPORT void tenancy_worker_main(Datum main_arg);

/* the job the worker is in (in worker_cxt), for its error path */
static MemoryContext worker_cxt = NULL;
static TenancyJob current_job;
static bool in_job = false;
static TimestampTz pools_checked = 0;

/*
 * Registers the worker, when tenancy is in shared_preload_libraries and
 * tenancy.database is set.  It starts once recovery is over (never on a
 * standby) and, if it dies, is started again five seconds later.
 */
void
tenancy_worker_init(void)
{
	BackgroundWorker worker;

	/* never during pg_upgrade: it drops and restores the databases */
	if (!process_shared_preload_libraries_in_progress || tenancy_worker_database[0] == '\0' ||
		IsBinaryUpgrade)
		return;
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "tenancy");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "tenancy_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "tenancy worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "tenancy worker");
	RegisterBackgroundWorker(&worker);
}

/* Is tenancy at 0.2.0 or later in this database (does tenancy.job exist)? */
static bool
jobs_installed(void)
{
	Oid			nsp;

	if (!OidIsValid(get_extension_oid("tenancy", true)))
		return false;
	nsp = get_namespace_oid("tenancy", true);
	return OidIsValid(nsp) && OidIsValid(get_relname_relid("job", nsp));
}

/* How many tenants a batch takes: enough to keep every session busy. */
static int
batch_size(const TenancyJob *job)
{
	return Min(Max(16 * job->parallel, 32), 1024);
}

/*
 * Runs one batch of "job" through the fleet function as the job's owner
 * (restricted, search_path pinned); returns one JobOutcome per tenant.
 */
static List *
run_batch(const TenancyJob *job, List *tenants)
{
	PrivilegeScope scope;
	Datum	   *elems = palloc(sizeof(Datum) * list_length(tenants));
	ArrayType  *array;
	List	   *outcomes = NIL;
	ListCell   *lc;
	int			n = 0;
	uint64		i;

	foreach(lc, tenants)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	array = construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT);

	tenancy_scope_enter(&scope, job->owner, SCOPE_PIN_PATH);
	if (strcmp(job->kind, JOB_PROVISION_MANY) == 0)
	{
		Oid			types[4] = {TEXTARRAYOID, INT4OID, TEXTOID, NAMEOID};
		Datum		values[4];
		char		nulls[4] = "    ";

		values[0] = PointerGetDatum(array);
		values[1] = Int32GetDatum(job->parallel);
		values[2] = CStringGetTextDatum(job->isolation ? job->isolation : "database");
		values[3] = job->server ? DirectFunctionCall1(namein, CStringGetDatum(job->server)) : (Datum) 0;
		if (job->server == NULL)
			nulls[3] = 'n';
		tenancy_scope_exec("SELECT m.tenant, m.status, m.sqlstate, m.error "
						   "FROM tenancy.provision_many($1, $2, $3, $4) m",
						   4, types, values, nulls, false, SPI_OK_SELECT);
	}
	else
	{
		Oid			types[5] = {INT4OID, BOOLOID, TEXTARRAYOID, INT4OID, INT8OID};
		Datum		values[5];
		char		nulls[5] = "     ";

		values[0] = Int32GetDatum(job->parallel);
		values[1] = BoolGetDatum(job->verify);
		values[2] = PointerGetDatum(array);
		values[3] = Int32GetDatum(job->max_failures - job->failed);
		if (job->max_failures <= 0)
			nulls[3] = 'n';
		values[4] = Int64GetDatum(job->to_version);
		if (job->to_version < 0)
			nulls[4] = 'n';
		tenancy_scope_exec("SELECT m.tenant, m.status, m.sqlstate, m.error "
						   "FROM tenancy.migrate_all($1, $2, $3, $4, false, $5) m",
						   5, types, values, nulls, false, SPI_OK_SELECT);
	}
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);
		JobOutcome *o = palloc0(sizeof(JobOutcome));

		o->tenant = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		o->status = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		o->sqlstate = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3);
		o->error = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4);
		outcomes = lappend(outcomes, o);
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return outcomes;
}

/*
 * One step of "job", in the caller's transaction: ends it if it is
 * cancelled, its owner is gone, max_failures is reached or no tenant is
 * left; otherwise runs and records its next batch.
 */
static void
job_step(TenancyJob *job)
{
	List	   *tenants;
	List	   *outcomes;

	/* tenancy_jobs_next() has published it as the running job */
	if (job->cancel_requested)
	{
		tenancy_jobs_finish(job, "cancelled", NULL, NULL);
		return;
	}
	if (!OidIsValid(job->owner))
	{
		tenancy_jobs_finish(job, "failed", "42704",
							psprintf("role \"%s\" that started the job does not exist", job->owner_name));
		return;
	}
	if (job->max_failures > 0 && job->failed >= job->max_failures)
	{
		tenancy_jobs_finish(job, "failed", NULL,
							psprintf("stopped: max_failures (%d) reached", job->max_failures));
		return;
	}
	if (job->resumed)
		ereport(LOG,
				(errmsg("tenancy worker resumes job " INT64_FORMAT " (%s)", job->id, job->kind)));
	tenants = tenancy_jobs_batch(job, batch_size(job));
	if (tenants == NIL)
	{
		tenancy_jobs_finish(job, "done", NULL, NULL);
		return;
	}
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("tenancy job " INT64_FORMAT ": %s of %d tenants", job->id, job->kind,
									list_length(tenants)));
	outcomes = run_batch(job, tenants);
	tenancy_jobs_record(job, outcomes);
	if (tenancy_jobs_cancelled())
		tenancy_jobs_finish(job, "cancelled", NULL, NULL);
}

/*
 * Fills the warm pools, at most once per naptime, as the catalog owner.
 * True if it ran: remote waits reset the latch, so a job started meanwhile
 * must be looked for at once.
 */
static bool
pools_step(void)
{
	PrivilegeScope scope;

	if (!TimestampDifferenceExceeds(pools_checked, GetCurrentTimestamp(),
									tenancy_worker_naptime * 1000))
		return false;
	pools_checked = GetCurrentTimestamp();
	if (!tenancy_catalog_pools_wanted())
		return false;
	pgstat_report_activity(STATE_RUNNING, "tenancy: filling warm pools");
	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	tenancy_scope_exec("SELECT FROM tenancy.fill_pools()", 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	tenancy_scope_leave(&scope);
	return true;
}

/* Starts a transaction of the worker's. */
static void
begin_work(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
}

static void
end_work(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Takes up the oldest unfinished job in a transaction of its own (so that
 * tenancy.job shows it running, and counts the runs, whatever becomes of
 * the batch), then runs its next step in another; with no job, fills the
 * warm pools.  True if there may be more to do at once.
 */
static bool
worker_step(void)
{
	bool		installed;
	bool		found = false;
	bool		pools = false;

	begin_work();
	installed = jobs_installed();
	if (installed)
	{
		MemoryContext old = MemoryContextSwitchTo(worker_cxt);

		found = tenancy_jobs_next(&current_job);
		MemoryContextSwitchTo(old);
		if (!found)
			pools = pools_step();
	}
	end_work();
	if (found)
	{
		begin_work();
		in_job = true;
		job_step(&current_job);
		end_work();
		in_job = false;
	}
	pgstat_report_activity(STATE_IDLE, NULL);
	return found || pools;
}

/*
 * After an error: logs it, rolls back, and ends the job it came from
 * ("failed" with its error, or "cancelled" for a query cancel) in a
 * transaction of its own.
 */
static void
worker_recover(void)
{
	ErrorData  *edata;
	bool		job_failed = in_job;
	TenancyJob	job = current_job;

	MemoryContextSwitchTo(worker_cxt);
	edata = CopyErrorData();
	EmitErrorReport();
	FlushErrorState();
	AbortCurrentTransaction();
	in_job = false;
	if (!job_failed)
		return;
	PG_TRY();
	{
		begin_work();
		tenancy_jobs_finish(&job, edata->sqlerrcode == ERRCODE_QUERY_CANCELED ? "cancelled" : "failed",
							unpack_sql_state(edata->sqlerrcode), edata->message);
		end_work();
	}
	PG_CATCH();
	{
		/* the job stays "running" and is taken up again */
		MemoryContextSwitchTo(worker_cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
}

void
tenancy_worker_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(tenancy_worker_database, NULL, 0);
	tenancy_jobs_attach_worker();
	worker_cxt = AllocSetContextCreate(TopMemoryContext, "tenancy worker", ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			(errmsg("tenancy worker started in database \"%s\"", tenancy_worker_database)));

	for (;;)
	{
		bool		busy = false;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		PG_TRY();
		{
			busy = worker_step();
		}
		PG_CATCH();
		{
			worker_recover();
			busy = false;
		}
		PG_END_TRY();
		MemoryContextReset(worker_cxt);
		if (!busy)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 tenancy_worker_naptime * 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

/*
 * tenancy.cancel_job(id bigint) RETURNS void
 *
 * A queued job is cancelled at once; a running one starts no new tenant
 * once this commits and ends "cancelled" when the tenants under way are
 * done (each is atomic: migrated or not, provisioned or undone).
 */
Datum
tenancy_cancel_job(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job id must not be null")));
	tenancy_jobs_cancel(PG_GETARG_INT64(0));
	PG_RETURN_VOID();
}
