/*-------------------------------------------------------------------------
 *
 * migrate.c
 *	  SQL-callable migration functions: add_migration() registers a
 *	  migration, migrate() applies the pending ones to one tenant,
 *	  migrate_all() to every tenant, in parallel.
 *
 * Applying migrations is the migration engine's (engine.c): each
 * migration in one remote transaction with the tenant's own ledger row,
 * so a tenant is at exactly the version its ledger states whatever fails
 * or is killed; drift (XX001) stops a tenant before anything is applied;
 * a migration that ends its transaction is refused (25000).
 * tenancy.tenant.applied_version in the admin database is a summary of
 * the ledger, brought in line whenever they differ.
 *
 * Locking: the per-tenant lock is taken before any remote call, so two
 * migrators of one tenant serialise locally; inside the tenant the ledger
 * is locked in EXCLUSIVE mode, bounded by tenancy.remote_lock_timeout, to
 * keep out-of-band migrators off it.
 *
 * migrate_all: tenants whose catalog summary says they are at the latest
 * version with no recorded error are answered from the catalog, without
 * a connection.  The others run through at most "parallel" sessions at
 * once (fleet.c), each driven by the engine.  A failure is recorded (error
 * text and SQLSTATE) and the run goes on; the next run retries.  Each
 * tenant's lock is taken without waiting (a tenant another operation
 * holds is skipped) and released as soon as that tenant is done, so the
 * run never holds more than "parallel" tenant locks.  Each tenant's start
 * and outcome are written to tenancy.migration_progress through a session
 * of its own (committed at once, so other sessions watch the run); the
 * tenant's summary in tenancy.tenant is updated in the caller's
 * transaction (a session of our own would wait for row locks the caller's
 * transaction may hold), and migrate() re-reads the ledger should the
 * caller roll that back.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/migrate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "engine.h"
#include "fleet.h"
#include "isolation.h"
#include "locks.h"
#include "names.h"

PG_FUNCTION_INFO_V1(tenancy_add_migration);
PG_FUNCTION_INFO_V1(tenancy_migrate);
PG_FUNCTION_INFO_V1(tenancy_migrate_all);

/* Hex SHA-256 of "sql": the identity of a migration.  Result palloc'd. */
static char *
migration_checksum(const char *sql)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char	   *hex = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);
	int			i;

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) sql, strlen(sql)) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not compute SHA-256 checksum");
	pg_cryptohash_free(ctx);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		sprintf(hex + i * 2, "%02x", digest[i]);
	return hex;
}

/* Is "s" empty or only white space? */
static bool
is_blank(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char) *s))
			return false;
	return true;
}

/*
 * tenancy.add_migration(version bigint, sql text, description text)
 *
 * Registers a migration.  The same SQL under the same version again is a
 * NOTICE; other SQL under a registered version is 42710; a version lower
 * than the highest registered one is 22023 (migrations are applied in
 * ascending order, so a lower one could never run on tenants already past
 * it).
 */
Datum
tenancy_add_migration(PG_FUNCTION_ARGS)
{
	int64		version;
	char	   *sql;
	char	   *description = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *checksum;
	int64		highest = 0;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("migration version must not be null")));
	version = PG_GETARG_INT64(0);
	if (version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration version must be positive"),
				 errdetail("The version given was " INT64_FORMAT ".", version)));
	if (PG_ARGISNULL(1) || is_blank(sql = text_to_cstring(PG_GETARG_TEXT_PP(1))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration " INT64_FORMAT " has no SQL", version)));

	checksum = migration_checksum(sql);
	switch (tenancy_catalog_add_migration(version, sql, checksum, description, &highest))
	{
		case MIGRATION_ADDED:
			break;
		case MIGRATION_ALREADY_REGISTERED:
			ereport(NOTICE,
					(errmsg("migration " INT64_FORMAT " is already registered with the same SQL, skipping",
							version)));
			break;
		case MIGRATION_CONFLICT:
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("migration " INT64_FORMAT " is already registered with different SQL", version),
					 errdetail("A migration is identified by its checksum; registered SQL cannot change."),
					 errhint("Register the change as a new migration with a higher version.")));
			break;
		case MIGRATION_OUT_OF_ORDER:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("migration " INT64_FORMAT " is out of order", version),
					 errdetail("The highest registered migration is " INT64_FORMAT ".", highest),
					 errhint("Use a version higher than " INT64_FORMAT ".", highest)));
			break;
	}
	PG_RETURN_VOID();
}

/* Outcomes are written in batches: every this many, or this often. */
#define PROGRESS_BATCH_ROWS 16
#define PROGRESS_BATCH_MS 250

/* The time since "start", as an interval Datum. */
static Datum
elapsed(TimestampTz start)
{
	long		secs;
	int			usecs;
	Interval   *iv = palloc0(sizeof(Interval));

	TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
	iv->time = secs * USECS_PER_SEC + usecs;
	return IntervalPGetDatum(iv);
}

/*
 * tenancy.migrate(tenant text) RETURNS TABLE(tenant, from_version,
 * to_version, status, duration, error)
 *
 * Applies the pending migrations to one ready tenant.  Errors are raised
 * (with the remote SQLSTATE and a CONTEXT line naming tenant and version),
 * and leave the tenant at the last version that committed.  from_version
 * is read from the tenant's ledger; the catalog's applied_version is brought
 * in line with the ledger whenever they differ.
 */
Datum
tenancy_migrate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *tenant = tenancy_name_argument(fcinfo, 0);
	TenantRecord rec;
	MigrationTarget target;
	TimestampTz start = GetCurrentTimestamp();
	int64		from;
	int64		to;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, true};

	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();

	tenancy_catalog_lock_existing(tenant, &rec);
	if (rec.state != TENANT_STATE_READY)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is not ready", tenant),
				 errdetail("Tenant \"%s\" is in state \"%s\".", tenant, tenancy_state_name(rec.state))));
	tenancy_isolation_target(&rec, &target);
	to = tenancy_engine_migrate(&target, tenancy_catalog_migrations(), &from);
	if (to != rec.applied_version)
		tenancy_catalog_set_applied(tenant, to, true);

	values[0] = CStringGetTextDatum(tenant);
	values[1] = Int64GetDatum(from);
	values[2] = Int64GetDatum(to);
	values[3] = CStringGetTextDatum(to > from ? "migrated" : "up_to_date");
	values[4] = elapsed(start);
	values[5] = (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* One tenant of a fleet run. */
typedef struct FleetTenant
{
	FleetTask	task;			/* first: the runner's view */
	TenantRecord rec;
	MigrationTarget target;
	MigrationRun run;
	TimestampTz started;
} FleetTenant;

/* State of a run. */
typedef struct FleetRun
{
	ReturnSetInfo *rsinfo;
	RemoteSession *writer;		/* autocommit session to the admin database */
	List	   *migrations;
	int			total;
	int			done;
	int			failed;
	int			next_notice;
	MemoryContext batch_cxt;	/* outcomes not yet written */
	ProgressRow batch[PROGRESS_BATCH_ROWS];
	int			nbatch;
	TimestampTz batch_sent;
} FleetRun;

/*
 * Writes the outcomes gathered so far, in one round trip to
 * migration_progress and one statement on tenancy.tenant, when there are
 * enough of them, when enough time has passed, or when "force".
 */
static void
flush_outcomes(FleetRun *run, bool force)
{
	if (run->nbatch == 0)
		return;
	if (!force && run->nbatch < PROGRESS_BATCH_ROWS &&
		!TimestampDifferenceExceeds(run->batch_sent, GetCurrentTimestamp(), PROGRESS_BATCH_MS))
		return;
	tenancy_catalog_record_outcomes(run->nbatch, run->batch);
	tenancy_catalog_write_progress(run->writer, run->nbatch, run->batch);
	run->nbatch = 0;
	MemoryContextReset(run->batch_cxt);
	run->batch_sent = GetCurrentTimestamp();
}

/*
 * Emits a tenant's result row; for a tenant that was worked on, queues
 * its outcome for the catalog; reports progress.
 */
static void
finish_tenant(FleetRun *run, const TenantRecord *rec, const char *status, int64 from, int64 to,
			  const char *sqlstate, const char *error, TimestampTz started, bool worked)
{
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, error == NULL, sqlstate == NULL};

	values[0] = CStringGetTextDatum(rec->id);
	values[1] = Int64GetDatum(from);
	values[2] = Int64GetDatum(to);
	values[3] = CStringGetTextDatum(status);
	values[4] = elapsed(started);
	values[5] = error ? CStringGetTextDatum(error) : (Datum) 0;
	values[6] = sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0;
	tuplestore_putvalues(run->rsinfo->setResult, run->rsinfo->setDesc, values, nulls);

	if (worked)
	{
		MemoryContext old = MemoryContextSwitchTo(run->batch_cxt);
		ProgressRow *p = &run->batch[run->nbatch++];

		p->tenant = pstrdup(rec->id);
		p->status = pstrdup(status);
		p->from_version = from;
		p->to_version = to;
		p->sqlstate = sqlstate ? pstrdup(sqlstate) : NULL;
		p->error = error ? pstrdup(error) : NULL;
		MemoryContextSwitchTo(old);
		flush_outcomes(run, false);
	}
	run->done++;
	if (sqlstate != NULL)
	{
		run->failed++;
		ereport(NOTICE,
				(errmsg("tenant \"%s\" failed: %s", rec->id, error)));
	}
	if (run->done >= run->next_notice || run->done == run->total)
	{
		ereport(NOTICE,
				(errmsg("migrate_all: %d of %d tenants done, %d failed", run->done, run->total, run->failed)));
		run->next_notice = run->done + Max(1, run->total / 10);
	}
}

/* Before a tenant's session: its lock, without waiting. */
static bool
fleet_begin(void *arg, FleetTask *task)
{
	FleetRun   *run = (FleetRun *) arg;
	FleetTenant *t = (FleetTenant *) task;

	t->started = GetCurrentTimestamp();
	if (!tenancy_try_lock_tenant(t->rec.id))
	{
		finish_tenant(run, &t->rec, "skipped", t->rec.applied_version, t->rec.applied_version,
					  NULL, "another operation holds the tenant", t->started, false);
		return false;
	}
	tenancy_engine_begin(&t->run, &t->target, run->migrations);
	return true;
}

/* The engine says what to send next. */
static const char *
fleet_next(void *arg, FleetTask *task, const RemoteResult *last)
{
	return tenancy_engine_next(&((FleetTenant *) task)->run, last);
}

/* A tenant is done: its outcome, its lock released. */
static void
fleet_finish(void *arg, FleetTask *task, const RemoteError *error)
{
	FleetRun   *run = (FleetRun *) arg;
	FleetTenant *t = (FleetTenant *) task;
	MigrationRun *mr = &t->run;
	const char *status;

	if (error != NULL && mr->error == NULL)
		mr->error = (RemoteError *) error;
	if (error != NULL)
		tenancy_engine_cleanup(mr); /* the session broke mid-migration */
	if (mr->error != NULL)
		status = "failed";
	else if (mr->to_version > mr->from_version)
		status = "migrated";
	else
		status = "up_to_date";
	tenancy_unlock_tenant(t->rec.id);
	finish_tenant(run, &t->rec, status,
				  mr->step == ENGINE_START || mr->step == ENGINE_LEDGER ? t->rec.applied_version : mr->from_version,
				  mr->step == ENGINE_START || mr->step == ENGINE_LEDGER ? t->rec.applied_version : mr->to_version,
				  mr->error ? mr->error->sqlstate : NULL,
				  mr->error ? tenancy_engine_error_text(mr) : NULL,
				  t->started, true);
}

static void
fleet_tick(void *arg)
{
	flush_outcomes((FleetRun *) arg, false);
}

static const FleetOps migrate_all_ops = {fleet_begin, fleet_next, fleet_finish, fleet_tick};

/*
 * tenancy.migrate_all(parallel integer, verify boolean) RETURNS TABLE(tenant,
 * from_version, to_version, status, duration, error, sqlstate)
 *
 * Migrates every ready tenant, at most "parallel" at once.  With verify,
 * connects to every ready tenant (checking its ledger for drift) instead of
 * answering up-to-date tenants from the catalog.
 */
Datum
tenancy_migrate_all(PG_FUNCTION_ARGS)
{
	int			parallel;
	bool		verify = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	FleetRun	run;
	List	   *tenants;
	int64		latest = 0;
	FleetTask **tasks;
	int			ntasks = 0;
	ListCell   *lc;

	if (PG_ARGISNULL(0) || PG_GETARG_INT32(0) < 1 || PG_GETARG_INT32(0) > 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parallel must be between 1 and 64")));
	parallel = PG_GETARG_INT32(0);
	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();

	memset(&run, 0, sizeof(run));
	run.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	run.batch_sent = GetCurrentTimestamp();
	run.batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "tenancy migrate_all batch",
										  ALLOCSET_SMALL_SIZES);
	run.migrations = tenancy_catalog_migrations();
	tenancy_engine_check(run.migrations);
	if (run.migrations != NIL)
		latest = ((TenancyMigration *) llast(run.migrations))->version;
	tenants = tenancy_catalog_tenants();
	run.total = list_length(tenants);
	run.next_notice = Max(1, run.total / 10);
	tasks = palloc(sizeof(FleetTask *) * Max(run.total, 1));

	foreach(lc, tenants)
	{
		TenantRecord *rec = (TenantRecord *) lfirst(lc);
		FleetTenant *t;

		if (rec->state != TENANT_STATE_READY)
			finish_tenant(&run, rec, "skipped", rec->applied_version, rec->applied_version, NULL,
						  psprintf("tenant is in state \"%s\"", tenancy_state_name(rec->state)),
						  GetCurrentTimestamp(), false);
		else if (!verify && rec->applied_version == latest && !rec->has_error)
			finish_tenant(&run, rec, "up_to_date", rec->applied_version, rec->applied_version,
						  NULL, NULL, GetCurrentTimestamp(), false);
		else
		{
			t = palloc0(sizeof(FleetTenant));
			t->rec = *rec;
			tenancy_isolation_target(&t->rec, &t->target);
			t->task.server = t->target.server;
			t->task.dbname = t->target.dbname;
			t->task.appname = t->target.appname;
			tasks[ntasks++] = &t->task;
		}
	}

	if (ntasks > 0)
	{
		run.writer = tenancy_catalog_writer_open();
		PG_TRY();
		{
			tenancy_fleet_run(tasks, ntasks, parallel, &migrate_all_ops, &run);
			flush_outcomes(&run, true);
		}
		PG_FINALLY();
		{
			tenancy_remote_close(run.writer);
		}
		PG_END_TRY();
	}
	return (Datum) 0;
}
