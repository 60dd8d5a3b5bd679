/*-------------------------------------------------------------------------
 *
 * jobs.c
 *	  The job queue.  Sessions add jobs to tenancy.job and cancel them;
 *	  the background worker (worker.c) takes the oldest unfinished job,
 *	  asks for its next batch of tenants (those without a row in
 *	  tenancy.job_tenant), records each batch's outcomes and finishes it.
 *	  Because a batch's outcomes commit with the batch, a job interrupted
 *	  by a crash resumes with the tenants it had not recorded.
 *
 *	  A small struct in shared memory carries what cannot wait for the
 *	  worker's next look at the table: its latch (a committed job or
 *	  cancel wakes it) and a cancel request for the job it runs, which the
 *	  fleet functions check before starting each tenant.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/jobs.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "guc.h"
#include "jobs.h"
#include "scope.h"

/* What sessions and the worker share. */
typedef struct JobShared
{
	slock_t		mutex;
	Latch	   *worker_latch;	/* NULL while no worker runs */
	Oid			database;		/* the worker's database */
	int64		running;		/* the job the worker runs, 0: none */
	bool		cancel;			/* cancel_job() of "running" committed */
} JobShared;

static JobShared *job_shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* this backend's */
static bool am_worker = false;
static int64 taken_job = 0;		/* the worker's: the job it took up last */
static bool xact_callback_registered = false;
static bool wake_at_commit = false;
static int64 cancel_at_commit = 0;
static int	pending_level = 0;	/* the (sub)transaction that asked */

static void
jobs_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(JobShared)));
}

static void
jobs_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	job_shared = ShmemInitStruct("tenancy jobs", sizeof(JobShared), &found);
	if (!found)
	{
		SpinLockInit(&job_shared->mutex);
		job_shared->worker_latch = NULL;
		job_shared->running = 0;
		job_shared->cancel = false;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Asks for the shared struct.  Only when preloaded through
 * shared_preload_libraries: otherwise there is no worker, and starting a
 * job is refused.
 */
void
tenancy_jobs_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = jobs_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = jobs_shmem_startup;
}

/*
 * At commit, what the transaction asked for: wake the worker, cancel the
 * job it runs (if it is that job, in this database).  A subtransaction
 * rolled back takes its requests with it; PREPARE TRANSACTION drops them
 * (the worker sees a prepared cancel when it next reads the job).  The
 * latch is set after the spinlock is released.
 */
static void
jobs_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && job_shared != NULL && (wake_at_commit || cancel_at_commit != 0))
	{
		Latch	   *latch;

		SpinLockAcquire(&job_shared->mutex);
		if (cancel_at_commit != 0 && job_shared->running == cancel_at_commit &&
			job_shared->database == MyDatabaseId)
			job_shared->cancel = true;
		latch = job_shared->worker_latch;
		SpinLockRelease(&job_shared->mutex);
		if (latch != NULL)
			SetLatch(latch);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		wake_at_commit = false;
		cancel_at_commit = 0;
		pending_level = 0;
	}
}

static void
jobs_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && pending_level >= GetCurrentTransactionNestLevel())
	{
		wake_at_commit = false;
		cancel_at_commit = 0;
		pending_level = 0;
	}
}

static void
at_commit(bool wake, int64 cancel)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(jobs_xact_callback, NULL);
		RegisterSubXactCallback(jobs_subxact_callback, NULL);
		xact_callback_registered = true;
	}
	wake_at_commit |= wake;
	if (cancel != 0)
		cancel_at_commit = cancel;
	/* the outermost level that asked: its rollback drops every request */
	if (pending_level == 0 || GetCurrentTransactionNestLevel() < pending_level)
		pending_level = GetCurrentTransactionNestLevel();
}

/*
 * Refuses (55000) to queue a job no worker would run: tenancy not in
 * shared_preload_libraries, jobs disabled (tenancy.database empty), or
 * another database named by tenancy.database.
 */
void
tenancy_jobs_require_worker(void)
{
	char	   *here;
	bool		running;

	if (job_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenancy's background worker is not running"),
				 errdetail("The worker runs only when tenancy is in shared_preload_libraries."),
				 errhint("Add tenancy to shared_preload_libraries and restart, or call the function without start_.")));
	if (tenancy_worker_database[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("background jobs are disabled"),
				 errdetail("tenancy.database is empty."),
				 errhint("Set tenancy.database to this database and restart.")));
	here = get_database_name(MyDatabaseId);
	SpinLockAcquire(&job_shared->mutex);
	running = job_shared->worker_latch != NULL;
	SpinLockRelease(&job_shared->mutex);
	if (here == NULL || strcmp(here, tenancy_worker_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("background jobs run in database \"%s\", not here", tenancy_worker_database),
				 errdetail("tenancy.database names the one database whose jobs the worker runs."),
				 errhint("Start the job there, or set tenancy.database to \"%s\" and restart.",
						 here ? here : "")));
	if (!running)
		ereport(WARNING,
				(errmsg("tenancy's background worker is not running now"),
				 errdetail("The job is queued; it runs once the worker has started (it is restarted 5 seconds after it exits)."),
				 errhint("If it never starts, check max_worker_processes and the server log.")));
}

/* A text[] of "n" C strings (NULL elements are SQL NULLs). */
static Datum
text_array(char **values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	for (i = 0; i < n; i++)
	{
		nulls[i] = values[i] == NULL;
		elems[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(values[i]);
	}
	if (n == 0)
		return PointerGetDatum(construct_empty_array(TEXTOID));
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, TEXTOID, -1, false,
											  TYPALIGN_INT));
}

/*
 * Queues "job" as the current role; returns its id.  The worker is woken
 * when the caller's transaction commits.
 */
int64
tenancy_jobs_add(const TenancyJob *job, int total)
{
	PrivilegeScope scope;
	Oid			types[10] = {TEXTOID, REGROLEOID, INT4OID, TEXTARRAYOID, BOOLOID, INT4OID, INT8OID,
	TEXTOID, NAMEOID, INT4OID};
	Datum		values[10];
	char		nulls[10] = "          ";
	bool		isnull;
	int64		id;

	values[0] = CStringGetTextDatum(job->kind);
	values[1] = ObjectIdGetDatum(GetUserId());
	values[2] = Int32GetDatum(job->parallel);
	values[3] = PointerGetDatum(job->tenants);
	if (job->tenants == NULL)
		nulls[3] = 'n';
	values[4] = BoolGetDatum(job->verify);
	values[5] = Int32GetDatum(job->max_failures);
	if (job->max_failures <= 0)
		nulls[5] = 'n';
	values[6] = Int64GetDatum(job->to_version);
	if (job->to_version < 0)
		nulls[6] = 'n';
	values[7] = job->isolation ? CStringGetTextDatum(job->isolation) : (Datum) 0;
	if (job->isolation == NULL)
		nulls[7] = 'n';
	values[8] = job->server ? DirectFunctionCall1(namein, CStringGetDatum(job->server)) : (Datum) 0;
	if (job->server == NULL)
		nulls[8] = 'n';
	values[9] = Int32GetDatum(total);

	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	tenancy_scope_exec("INSERT INTO tenancy.job (kind, owner, parallel, tenants, verify, max_failures, "
					   "to_version, isolation, server, tenants_total) "
					   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
					   10, types, values, nulls, false, SPI_OK_INSERT_RETURNING);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	tenancy_scope_leave(&scope);
	at_commit(true, 0);
	return id;
}

/*
 * cancel_job(): a queued job is cancelled at once; a running one is asked
 * to stop (the worker starts no new tenant once this commits, and the job
 * ends "cancelled" when the tenants under way are done).  42704 for an
 * unknown job, 55000 for a finished one.
 */
void
tenancy_jobs_cancel(int64 id)
{
	PrivilegeScope scope;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	char	   *state;

	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	tenancy_scope_exec("SELECT state FROM tenancy.job WHERE id = $1 FOR UPDATE",
					   1, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("job " INT64_FORMAT " does not exist", id)));
	state = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (strcmp(state, "queued") != 0 && strcmp(state, "running") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job " INT64_FORMAT " has already finished", id),
				 errdetail("Its state is \"%s\".", state)));
	tenancy_scope_exec("UPDATE tenancy.job SET cancel_requested = true, "
					   "state = CASE state WHEN 'queued' THEN 'cancelled' ELSE state END, "
					   "finished_at = CASE state WHEN 'queued' THEN pg_catalog.now() END "
					   "WHERE id = $1",
					   1, types, values, NULL, false, SPI_OK_UPDATE);
	tenancy_scope_leave(&scope);
	at_commit(true, id);
}

static void
jobs_detach_worker(int code, Datum arg)
{
	SpinLockAcquire(&job_shared->mutex);
	job_shared->worker_latch = NULL;
	job_shared->running = 0;
	job_shared->cancel = false;
	SpinLockRelease(&job_shared->mutex);
}

/* The worker, as it starts: sessions wake it through its latch. */
void
tenancy_jobs_attach_worker(void)
{
	if (job_shared == NULL)
		elog(ERROR, "tenancy's shared memory is not initialized");
	am_worker = true;
	SpinLockAcquire(&job_shared->mutex);
	job_shared->worker_latch = MyLatch;
	job_shared->database = MyDatabaseId;
	job_shared->running = 0;
	job_shared->cancel = false;
	SpinLockRelease(&job_shared->mutex);
	on_shmem_exit(jobs_detach_worker, (Datum) 0);
}

/* The worker runs job "id" (0: none); a new job starts uncancelled. */
void
tenancy_jobs_set_running(int64 id)
{
	SpinLockAcquire(&job_shared->mutex);
	if (job_shared->running != id)
		job_shared->cancel = false;
	job_shared->running = id;
	SpinLockRelease(&job_shared->mutex);
}

/*
 * Has the job this process runs been cancelled?  Always false outside the
 * worker: a migrate_all() called in a session is never stopped this way.
 */
bool
tenancy_jobs_cancelled(void)
{
	bool		cancel;

	if (!am_worker || job_shared == NULL)
		return false;
	SpinLockAcquire(&job_shared->mutex);
	cancel = job_shared->running != 0 && job_shared->cancel;
	SpinLockRelease(&job_shared->mutex);
	return cancel;
}

/*
 * The oldest unfinished job, taken up (state "running"; "resumed" if a
 * worker had taken it up before this one).  False when there is none.
 * Allocates in the caller's context.
 */
bool
tenancy_jobs_next(TenancyJob *job)
{
	PrivilegeScope scope;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	bool		was_running;
	Datum		d;
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	tenancy_scope_exec("SELECT id, kind, owner::pg_catalog.text, cancel_requested, state = 'running', "
					   "parallel, tenants, verify, COALESCE(max_failures, 0), tenants_failed, "
					   "COALESCE(to_version, -1), isolation, server::pg_catalog.text, owner::pg_catalog.oid "
					   "FROM tenancy.job WHERE state IN ('queued', 'running') ORDER BY id LIMIT 1 "
					   "FOR UPDATE SKIP LOCKED",
					   0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
	{
		tenancy_scope_leave(&scope);
		return false;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	{
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);

		memset(job, 0, sizeof(*job));
		job->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		job->kind = SPI_getvalue(tup, desc, 2);
		job->owner_name = SPI_getvalue(tup, desc, 3);

		/*
		 * by OID: a role renamed keeps its jobs, a new role of the name gets
		 * none
		 */
		job->owner = DatumGetObjectId(SPI_getbinval(tup, desc, 14, &isnull));
		if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(job->owner)))
			job->owner = InvalidOid;
		job->cancel_requested = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		was_running = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		job->parallel = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		d = SPI_getbinval(tup, desc, 7, &isnull);
		job->tenants = isnull ? NULL : DatumGetArrayTypePCopy(d);
		job->verify = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
		job->max_failures = DatumGetInt32(SPI_getbinval(tup, desc, 9, &isnull));
		job->failed = DatumGetInt32(SPI_getbinval(tup, desc, 10, &isnull));
		job->to_version = DatumGetInt64(SPI_getbinval(tup, desc, 11, &isnull));
		job->isolation = SPI_getvalue(tup, desc, 12);
		job->server = SPI_getvalue(tup, desc, 13);
		MemoryContextSwitchTo(old);
	}
	job->resumed = was_running && taken_job != job->id;
	if (taken_job != job->id)
	{
		values[0] = Int64GetDatum(job->id);
		tenancy_scope_exec("UPDATE tenancy.job SET state = 'running', runs = runs + 1, "
						   "started_at = COALESCE(started_at, pg_catalog.now()) WHERE id = $1",
						   1, types, values, NULL, false, SPI_OK_UPDATE);
		taken_job = job->id;
	}
	tenancy_scope_leave(&scope);
	/* before the take commits, so that a cancel committed after it counts */
	tenancy_jobs_set_running(job->id);
	return true;
}

/*
 * Up to "limit" tenants of "job" with no outcome yet: for provision_many
 * in the order given, for migrate_all the ready tenants (those named, or
 * every one) by id.
 */
List *
tenancy_jobs_batch(const TenancyJob *job, int limit)
{
	PrivilegeScope scope;
	Oid			types[3] = {INT8OID, TEXTARRAYOID, INT4OID};
	Datum		values[3];
	char		nulls[3] = "   ";
	List	   *tenants = NIL;
	uint64		i;

	values[0] = Int64GetDatum(job->id);
	values[1] = PointerGetDatum(job->tenants);
	if (job->tenants == NULL)
		nulls[1] = 'n';
	values[2] = Int32GetDatum(limit);
	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	if (strcmp(job->kind, JOB_PROVISION_MANY) == 0)
		tenancy_scope_exec("SELECT u.tenant FROM pg_catalog.unnest($2) WITH ORDINALITY u (tenant, n) "
						   "WHERE NOT EXISTS (SELECT FROM tenancy.job_tenant d "
						   "WHERE d.job = $1 AND d.tenant = u.tenant) ORDER BY u.n LIMIT $3",
						   3, types, values, nulls, true, SPI_OK_SELECT);
	else
		tenancy_scope_exec("SELECT t.id FROM tenancy.tenant t WHERE t.state = 'ready' "
						   "AND ($2 IS NULL OR t.id = ANY ($2)) "
						   "AND NOT EXISTS (SELECT FROM tenancy.job_tenant d "
						   "WHERE d.job = $1 AND d.tenant = t.id) ORDER BY t.id LIMIT $3",
						   3, types, values, nulls, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);

		tenants = lappend(tenants, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return tenants;
}

/* Brings the job's counts up to its tenants' outcomes. */
static void
recount(int64 id, const char *sqlstate, const char *error)
{
	Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = "   ";

	values[0] = Int64GetDatum(id);
	values[1] = sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0;
	values[2] = error ? CStringGetTextDatum(error) : (Datum) 0;
	if (sqlstate == NULL)
		nulls[1] = 'n';
	if (error == NULL)
		nulls[2] = 'n';
	tenancy_scope_exec("UPDATE tenancy.job j SET "
					   "tenants_done = c.done, tenants_failed = c.failed, tenants_skipped = c.skipped, "
					   "last_sqlstate = COALESCE($2, j.last_sqlstate), last_error = COALESCE($3, j.last_error) "
					   "FROM (SELECT count(*) FILTER (WHERE status NOT IN ('failed', 'skipped')) AS done, "
					   "count(*) FILTER (WHERE status = 'failed') AS failed, "
					   "count(*) FILTER (WHERE status = 'skipped') AS skipped "
					   "FROM tenancy.job_tenant WHERE job = $1) c WHERE j.id = $1",
					   3, types, values, nulls, false, SPI_OK_UPDATE);
}

/*
 * Records a batch's outcomes (a tenant recorded before, by a run that was
 * interrupted after its batch committed, takes the new outcome) and the
 * job's counts, with the last failure as the job's last error.
 */
void
tenancy_jobs_record(const TenancyJob *job, List *outcomes)
{
	PrivilegeScope scope;
	int			n = list_length(outcomes);
	char	  **cols[4];
	Oid			types[5] = {INT8OID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[5];
	const char *last_sqlstate = NULL;
	const char *last_error = NULL;
	ListCell   *lc;
	int			c;
	int			i = 0;

	if (n == 0)
		return;
	for (c = 0; c < 4; c++)
		cols[c] = palloc(sizeof(char *) * n);
	foreach(lc, outcomes)
	{
		JobOutcome *o = (JobOutcome *) lfirst(lc);

		cols[0][i] = o->tenant;
		cols[1][i] = o->status;
		cols[2][i] = o->sqlstate;
		cols[3][i] = o->error;
		if (o->sqlstate != NULL)
		{
			last_sqlstate = o->sqlstate;
			last_error = psprintf("tenant \"%s\": %s", o->tenant, o->error ? o->error : "");
		}
		i++;
	}
	values[0] = Int64GetDatum(job->id);
	for (c = 0; c < 4; c++)
		values[c + 1] = text_array(cols[c], n);
	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	tenancy_scope_exec("INSERT INTO tenancy.job_tenant AS d (job, tenant, status, sqlstate, error) "
					   "SELECT $1, u.* FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), "
					   "pg_catalog.unnest($4), pg_catalog.unnest($5)) u "
					   "ON CONFLICT (job, tenant) DO UPDATE SET status = excluded.status, "
					   "sqlstate = excluded.sqlstate, error = excluded.error, finished_at = pg_catalog.now()",
					   5, types, values, NULL, false, SPI_OK_INSERT);
	recount(job->id, last_sqlstate, last_error);
	tenancy_scope_leave(&scope);
}

/*
 * Ends "job" in "state" (done, failed, cancelled), with an error of its
 * own if given.  A migrate_all job that is done records the tenants it
 * named but never reached (they were not ready) as skipped.
 */
void
tenancy_jobs_finish(const TenancyJob *job, const char *state, const char *sqlstate,
					const char *error)
{
	PrivilegeScope scope;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	values[0] = Int64GetDatum(job->id);
	values[1] = CStringGetTextDatum(state);
	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	if (strcmp(state, "done") == 0 && strcmp(job->kind, JOB_MIGRATE_ALL) == 0 && job->tenants != NULL)
		tenancy_scope_exec("INSERT INTO tenancy.job_tenant (job, tenant, status, error) "
						   "SELECT j.id, u.tenant, 'skipped', 'not started: the tenant is not ready' "
						   "FROM tenancy.job j, pg_catalog.unnest(j.tenants) u (tenant) WHERE j.id = $1 "
						   "ON CONFLICT (job, tenant) DO NOTHING",
						   1, types, values, NULL, false, SPI_OK_INSERT);
	recount(job->id, sqlstate, error);
	tenancy_scope_exec("UPDATE tenancy.job SET state = $2, finished_at = pg_catalog.now() WHERE id = $1",
					   2, types, values, NULL, false, SPI_OK_UPDATE);
	tenancy_scope_leave(&scope);
	tenancy_jobs_set_running(0);
}
