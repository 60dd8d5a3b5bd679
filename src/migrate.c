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
 * migrate_all: tenants whose catalog summary (the set of versions their ledger
 * holds) has every registered version up to the goal and none above it, with
 * no recorded error, are answered from the catalog, without a connection; so
 * is a dry run.  The others run through at most "parallel" sessions at once
 * (fleet.c), each driven by the engine.  A failure is recorded (error text and
 * SQLSTATE) and the run goes on; the next run retries.  Each tenant's lock is
 * taken without waiting (a tenant another operation holds is skipped) and
 * released as soon as that tenant is done, so the run never holds more than
 * "parallel" tenant locks.  Each tenant's start and outcome are written to
 * tenancy.migration_progress through a session of its own (committed at once,
 * so other sessions watch the run); the tenant's summary in tenancy.tenant is
 * updated in the caller's transaction (a session of our own would wait for row
 * locks the caller's transaction may hold), and migrate() re-reads the ledger
 * should the caller roll that back.
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
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/varlena.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "engine.h"
#include "fleet.h"
#include "isolation.h"
#include "jobs.h"
#include "ledger.h"
#include "locks.h"
#include "names.h"
#include "try.h"

PG_FUNCTION_INFO_V1(tenancy_add_migration);
PG_FUNCTION_INFO_V1(tenancy_add_migration_v2);
PG_FUNCTION_INFO_V1(tenancy_remove_migration);
PG_FUNCTION_INFO_V1(tenancy_migrate);
PG_FUNCTION_INFO_V1(tenancy_migrate_v2);
PG_FUNCTION_INFO_V1(tenancy_migrate_all);
PG_FUNCTION_INFO_V1(tenancy_migrate_all_v2);
PG_FUNCTION_INFO_V1(tenancy_start_migrate_all);

/*
 * Hex SHA-256 of a migration's identity: its SQL, preceded by a line
 * naming its search_path unless that is empty (the 0.1.0 checksum, of the
 * SQL alone, for migrations that ran with an empty path).  Result
 * palloc'd.
 */
static char *
migration_checksum(const char *search_path, const char *body)
{
	const char *sql = search_path[0] ? psprintf("-- search_path: %s\n%s", search_path, body) : body;
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
 * A migration's search_path in canonical form: its schemas, each quoted as
 * needed, joined by ", " ("" for an empty path).  22023 for a value that
 * is not a list of schema names.
 */
static char *
canonical_search_path(const char *path)
{
	char	   *copy = pstrdup(path);
	List	   *names;
	ListCell   *lc;
	StringInfoData buf;

	if (!SplitIdentifierString(copy, ',', &names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid search_path for a migration: \"%s\"", path),
				 errhint("Give a comma-separated list of schema names, such as 'public' or 'app, public'.")));
	initStringInfo(&buf);
	foreach(lc, names)
	{
		const char *name = (const char *) lfirst(lc);

		if (name[0] == '$' || pg_strncasecmp(name, "pg_temp", 7) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid search_path for a migration: \"%s\"", path),
					 errdetail("A migration's search_path names schemas; \"%s\" is not one.", name)));
		appendStringInfo(&buf, "%s%s", foreach_current_index(lc) > 0 ? ", " : "", quote_identifier(name));
	}
	return buf.data;
}

/*
 * add_migration()'s work, for both signatures: registers a migration.  The
 * same migration under the same version again is a NOTICE; another under a
 * registered version is 42710.  Any version not yet registered may be
 * added, lower ones too: every tenant lacking it gets it on its next run.
 * The SQL (and the down) are parsed first: what tenancy could not run is
 * refused now (the parser's SQLSTATE, or 25000), and nothing is recorded.
 */
static void
add_migration(int64 version, char *sql, const char *description, const char *search_path,
			  char *down, bool transactional)
{
	TenancyMigration *m = palloc0(sizeof(TenancyMigration));

	tenancy_catalog_check_version();
	if (version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration version must be positive"),
				 errdetail("The version given was " INT64_FORMAT ".", version)));
	if (sql == NULL || is_blank(sql))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration " INT64_FORMAT " has no SQL", version)));
	if (down != NULL && is_blank(down))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration " INT64_FORMAT " has an empty down", version),
				 errhint("Pass NULL for a migration that cannot be rolled back.")));
	if (search_path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("search_path of migration " INT64_FORMAT " must not be null", version),
				 errhint("Pass '' for an empty search_path.")));

	m->version = version;
	m->sql = sql;
	m->search_path = canonical_search_path(search_path);
	m->checksum = migration_checksum(m->search_path, sql);
	m->down = down;
	m->transactional = transactional;
	tenancy_engine_check(list_make1(m));
	if (m->refusal != NULL)
		tenancy_remote_raise(m->refusal);
	if (m->down_refusal != NULL)
		tenancy_remote_raise(m->down_refusal);

	switch (tenancy_catalog_add_migration(m, description))
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
					 errdetail("A migration is identified by its checksum (its search_path and SQL), with its down and transactional; a registered migration cannot change."),
					 errhint("If no tenant has applied it, remove it with tenancy.remove_migration(" INT64_FORMAT ") and register it again; otherwise register the change as a new migration.",
							 version)));
			break;
	}
}

/*
 * tenancy.add_migration(version bigint, sql text, description text,
 * search_path text, down text, transactional boolean); the 0.1.0
 * signature (version, sql, description) registers with an empty
 * search_path, as 0.1.0 ran migrations.
 */
Datum
tenancy_add_migration_v2(PG_FUNCTION_ARGS)
{
	bool		v2 = PG_NARGS() >= 6;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("migration version must not be null")));
	if (v2 && PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("transactional must not be null")));
	add_migration(PG_GETARG_INT64(0),
				  PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
				  PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
				  !v2 ? "" : PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)),
				  !v2 || PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4)),
				  !v2 || PG_GETARG_BOOL(5));
	PG_RETURN_VOID();
}

/* The 0.1.0 symbol. */
Datum
tenancy_add_migration(PG_FUNCTION_ARGS)
{
	return tenancy_add_migration_v2(fcinfo);
}

/* One tenant whose ledger remove_migration() reads. */
typedef struct LedgerCheck
{
	FleetTask	task;			/* first: the runner's view */
	const char *tenant;
	const char *sql;
	bool		holds;
	char	   *error;			/* why it could not be read, or NULL */
} LedgerCheck;

static bool
check_begin(void *arg, FleetTask *task)
{
	return true;
}

static const char *
check_next(void *arg, FleetTask *task, const RemoteResult *last)
{
	LedgerCheck *lc = (LedgerCheck *) task;

	if (last == NULL)
		return lc->sql;
	if (last->error != NULL)
		lc->error = pstrdup(tenancy_remote_error_text(last->error));
	else if (last->nfields != 1 || list_length(last->rows) != 1)
		lc->error = pstrdup("unexpected answer to a ledger query");
	else
		lc->holds = ((char **) linitial(last->rows))[0] == NULL ||
			strcmp(((char **) linitial(last->rows))[0], "f") != 0;
	return NULL;
}

static void
check_finish(void *arg, FleetTask *task, const RemoteError *error)
{
	LedgerCheck *lc = (LedgerCheck *) task;

	if (error != NULL && lc->error == NULL)
		lc->error = pstrdup(tenancy_remote_error_text(error));
}

static const FleetOps ledger_check_ops = {check_begin, check_next, check_finish, NULL};

/*
 * Reads the ledger of every ready tenant, at most 8 at once, and refuses
 * (55006) when one holds "version", or (55000) when one cannot be read:
 * the catalog's summaries may lag their ledgers (a caller that rolled back
 * a migrate()), and removing an applied migration would lose its SQL and
 * its down.
 */
static void
check_ledgers_lack(int64 version)
{
	List	   *tenants = tenancy_catalog_tenants();
	FleetTask **tasks = palloc(sizeof(FleetTask *) * Max(list_length(tenants), 1));
	List	   *budgets = tenancy_catalog_budgets();
	int			ntasks = 0;
	ListCell   *lc;
	int			i;

	foreach(lc, tenants)
	{
		TenantRecord *rec = (TenantRecord *) lfirst(lc);
		MigrationTarget target;
		LedgerCheck *c;

		if (rec->state != TENANT_STATE_READY)
			continue;
		c = palloc0(sizeof(LedgerCheck));
		tenancy_isolation_target(rec, &target);
		c->tenant = rec->id;
		c->sql = tenancy_ledger_sql_holds(version, target.schema);
		c->task.server = target.server;
		c->task.dbname = target.dbname;
		c->task.appname = target.appname;
		c->task.budget = tenancy_catalog_budget(budgets, target.server);
		tasks[ntasks++] = &c->task;
	}
	if (ntasks > 0)
		tenancy_fleet_run(tasks, ntasks, 8, &ledger_check_ops, NULL);
	for (i = 0; i < ntasks; i++)
	{
		LedgerCheck *c = (LedgerCheck *) tasks[i];

		if (c->error != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot check whether tenant \"%s\" has applied migration " INT64_FORMAT,
							c->tenant, version),
					 errdetail("Its ledger could not be read: %s", c->error),
					 errhint("Nothing was removed. Bring the tenant back, or suspend or deprovision it.")));
		if (c->holds)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("migration " INT64_FORMAT " has been applied", version),
					 errdetail("The ledger of tenant \"%s\" has it, though the catalog's summary does not.",
							   c->tenant),
					 errhint("Run tenancy.reconcile(check_ledgers => true), then roll the tenant back first.")));
	}
}

/*
 * tenancy.remove_migration(version bigint)
 *
 * Removes a registered migration that no tenant has applied: neither a
 * tenant's catalog summary nor (for ready tenants) its ledger holds it
 * (42704 if it is not registered, 55006 once a tenant has it, 55000 if a
 * ready tenant's ledger cannot be read).  The next provisioning rebuilds
 * the template (its fingerprint no longer matches).
 */
Datum
tenancy_remove_migration(PG_FUNCTION_ARGS)
{
	int64		version = PG_GETARG_INT64(0);
	char	   *tenant = NULL;
	int64		count = 0;

	tenancy_catalog_apply_config();
	tenancy_catalog_lock_migrations();
	switch (tenancy_catalog_remove_migration(version, &tenant, &count))
	{
		case MIGRATION_REMOVED:
			check_ledgers_lack(version);	/* an error undoes the removal */
			break;
		case MIGRATION_NOT_FOUND:
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("migration " INT64_FORMAT " is not registered", version)));
			break;
		case MIGRATION_APPLIED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("migration " INT64_FORMAT " has been applied", version),
					 errdetail(INT64_FORMAT " tenant(s) have it, tenant \"%s\" among them.", count, tenant),
					 errhint("Roll those tenants back first (migrate_all(to_version => ...) runs its down), or register a new migration that undoes it.")));
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

/* Arguments of record_failure(). */
typedef struct RecordFailure
{
	const char *tenant;
	MigrationRun *run;
} RecordFailure;

/* A failed migrate()'s outcome in the catalog, for tenancy_try(). */
static void
record_failure(void *arg)
{
	RecordFailure *rf = (RecordFailure *) arg;

	tenancy_catalog_record_failure(rf->tenant, tenancy_engine_applied(rf->run), rf->run->to_version,
								   rf->run->error->sqlstate, tenancy_engine_error_text(rf->run));
}

/* The goal of a to_version argument: -1 (every migration) for NULL. */
static int64
goal_argument(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return -1;
	if (PG_GETARG_INT64(argno) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("to_version " INT64_FORMAT " is out of range", PG_GETARG_INT64(argno)),
				 errdetail("to_version must not be negative.")));
	return PG_GETARG_INT64(argno);
}

/*
 * tenancy.migrate(tenant text, to_version bigint) RETURNS TABLE(tenant,
 * from_version, to_version, status, duration, error)
 *
 * Brings one ready tenant to the registered migrations: with to_version,
 * first rolls back the applied versions above it (refused before anything
 * runs when one has no down), then applies what it lacks.  Errors are
 * raised (with the remote SQLSTATE and a CONTEXT line naming tenant,
 * version and statement), and leave the tenant at what committed, which
 * is recorded in the catalog on its own with the error.
 * from_version is read from the tenant's ledger; the catalog's summary is
 * brought in line with the ledger.
 */
Datum
tenancy_migrate_v2(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *tenant = tenancy_name_argument(fcinfo, 0);
	int64		goal = goal_argument(fcinfo, 1);
	TenantRecord rec;
	MigrationTarget target;
	MigrationRun run;
	List	   *migrations;
	TimestampTz start = GetCurrentTimestamp();
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, true};

	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();
	migrations = tenancy_catalog_migrations();
	if (goal >= 0)
	{
		int			nheld;
		int64	   *held = tenancy_catalog_held_above(goal, list_make1(tenant), &nheld);

		tenancy_engine_check_goal(migrations, goal, held, nheld);
	}
	else
		tenancy_engine_check_goal(migrations, goal, NULL, 0);

	tenancy_catalog_lock_existing(tenant, &rec);
	if (rec.state != TENANT_STATE_READY)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is not ready", tenant),
				 errdetail("Tenant \"%s\" is in state \"%s\".", tenant, tenancy_state_name(rec.state))));
	tenancy_isolation_target(&rec, &target);
	tenancy_engine_run(&target, migrations, goal, &run);
	if (run.error != NULL)
	{
		/*
		 * The caller's transaction aborts with the error: what the ledger
		 * holds now (migrations and downs that committed before the failure)
		 * and the error are recorded on their own, so that the summary never
		 * claims a version rolled back and the next migrate_all() connects.
		 */
		if (run.read)
		{
			RecordFailure rf = {tenant, &run};
			ErrorData  *edata = tenancy_try(record_failure, &rf);

			if (edata != NULL)
				ereport(WARNING,
						(errmsg("could not record the outcome of migrating tenant \"%s\": %s",
								tenant, edata->message),
						 errhint("Run tenancy.reconcile(check_ledgers => true).")));
		}
		tenancy_engine_raise(&run);
	}
	tenancy_catalog_set_applied(tenant, tenancy_engine_applied(&run), run.to_version, true);

	values[0] = CStringGetTextDatum(tenant);
	values[1] = Int64GetDatum(run.from_version);
	values[2] = Int64GetDatum(run.to_version);
	values[3] = CStringGetTextDatum(tenancy_engine_status(&run));
	values[4] = elapsed(start);
	values[5] = (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* The 0.1.0 symbol. */
Datum
tenancy_migrate(PG_FUNCTION_ARGS)
{
	return tenancy_migrate_v2(fcinfo);
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

/*
 * Tenants a fleet run plans and runs at once (a window of the catalog):
 * enough to keep every session busy, few enough to bound its memory.
 */
#define RUN_WINDOW(parallel) Max(16 * (parallel), 64)

/* State of a run. */
typedef struct FleetRun
{
	ReturnSetInfo *rsinfo;
	RemoteSession *writer;		/* autocommit session to the admin database */
	List	   *migrations;
	int64		goal;			/* -1: every registered migration */
	int			max_failures;	/* 0: no limit */
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
			  const char *sqlstate, const char *error, TimestampTz started, const char *applied,
			  bool worked)
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
		p->applied = applied ? pstrdup(applied) : NULL;
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

/*
 * Before a tenant's session: none after max_failures failures; its lock,
 * without waiting.
 */
static bool
fleet_begin(void *arg, FleetTask *task)
{
	FleetRun   *run = (FleetRun *) arg;
	FleetTenant *t = (FleetTenant *) task;

	t->started = GetCurrentTimestamp();
	if (tenancy_jobs_cancelled())
	{
		finish_tenant(run, &t->rec, "skipped", t->rec.applied_version, t->rec.applied_version, NULL,
					  "not started: the job was cancelled", t->started, NULL, false);
		return false;
	}
	if (run->max_failures > 0 && run->failed >= run->max_failures)
	{
		finish_tenant(run, &t->rec, "skipped", t->rec.applied_version, t->rec.applied_version, NULL,
					  psprintf("not started: max_failures (%d) reached", run->max_failures),
					  t->started, NULL, false);
		return false;
	}
	if (!tenancy_try_lock_tenant(t->rec.id))
	{
		finish_tenant(run, &t->rec, "skipped", t->rec.applied_version, t->rec.applied_version,
					  NULL, "another operation holds the tenant", t->started, NULL, false);
		return false;
	}
	tenancy_engine_begin(&t->run, &t->target, run->migrations, run->goal);
	return true;
}

/* The engine says what to send next. */
static const char *
fleet_next(void *arg, FleetTask *task, const RemoteResult *last)
{
	MigrationRun *run = &((FleetTenant *) task)->run;
	const char *sql = tenancy_engine_next(run, last);

	task->skip_rows = !tenancy_engine_wants_rows(run);
	task->one_statement = tenancy_engine_one_statement(run);
	return sql;
}

/* A tenant is done: its outcome, its lock released. */
static void
fleet_finish(void *arg, FleetTask *task, const RemoteError *error)
{
	FleetRun   *run = (FleetRun *) arg;
	FleetTenant *t = (FleetTenant *) task;
	MigrationRun *mr = &t->run;

	if (error != NULL)
		tenancy_engine_broke(mr, (RemoteError *) error);	/* the session broke */
	tenancy_unlock_tenant(t->rec.id);
	finish_tenant(run, &t->rec, tenancy_engine_status(mr),
				  mr->read ? mr->from_version : t->rec.applied_version,
				  mr->read ? mr->to_version : t->rec.applied_version,
				  mr->error ? mr->error->sqlstate : NULL,
				  mr->error ? tenancy_engine_error_text(mr) : NULL,
				  t->started, tenancy_engine_applied(mr), true);
}

static void
fleet_tick(void *arg)
{
	flush_outcomes((FleetRun *) arg, false);
}

static const FleetOps migrate_all_ops = {fleet_begin, fleet_next, fleet_finish, fleet_tick};

/*
 * The tenants a migrate_all() names, checked before anything runs: each a
 * valid id (22023), registered (42704) and ready (55000).  NULL for every
 * tenant.
 */
static List *
named_tenants(FunctionCallInfo fcinfo, int argno)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			n;
	int			i;
	List	   *ids = NIL;

	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	array = PG_GETARG_ARRAYTYPE_P(argno);
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenants must not be empty"),
				 errhint("Pass NULL to migrate every tenant.")));
	for (i = 0; i < n; i++)
	{
		char	   *id;
		TenantRecord rec;

		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("tenants must not contain null")));
		id = TextDatumGetCString(elems[i]);
		tenancy_name_validate(id);
		if (!tenancy_catalog_fetch(id, &rec))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("tenant \"%s\" does not exist", id)));
		if (rec.state != TENANT_STATE_READY)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tenant \"%s\" is not ready", id),
					 errdetail("Tenant \"%s\" is in state \"%s\".", id, tenancy_state_name(rec.state))));
		ids = lappend(ids, id);
	}
	return ids;
}

/*
 * The highest version a tenant would hold after a run to "goal": the
 * highest registered version up to it.
 */
static int64
goal_version(List *migrations, int64 goal)
{
	int64		v = 0;
	ListCell   *lc;

	foreach(lc, migrations)
	{
		int64		version = ((TenancyMigration *) lfirst(lc))->version;

		if (goal < 0 || version <= goal)
			v = version;
	}
	return v;
}

/* A parallel argument: 1..64 (22023). */
static int
parallel_argument(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno) || PG_GETARG_INT32(argno) < 1 || PG_GETARG_INT32(argno) > 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parallel must be between 1 and 64")));
	return PG_GETARG_INT32(argno);
}

/* A max_failures argument: positive (22023), 0 for NULL (no limit). */
static int
max_failures_argument(FunctionCallInfo fcinfo, int argno)
{
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return 0;
	if (PG_GETARG_INT32(argno) < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_failures must be positive"),
				 errdetail("The value given was %d.", PG_GETARG_INT32(argno)),
				 errhint("Pass NULL for no limit.")));
	return PG_GETARG_INT32(argno);
}

/*
 * What a fleet run checks in the catalog before anything runs: the
 * registered migrations, the tenants named (argument "tenants_arg"), and
 * that a rollback to run->goal has a down for every version it undoes.
 * Sets run->migrations; returns the named tenants (NULL: every one).
 */
static List *
check_run(FleetRun *run, FunctionCallInfo fcinfo, int tenants_arg)
{
	List	   *ids;

	run->migrations = tenancy_catalog_migrations();
	tenancy_engine_check(run->migrations);
	ids = named_tenants(fcinfo, tenants_arg);
	if (run->goal >= 0)
	{
		int			nheld;
		int64	   *held = tenancy_catalog_held_above(run->goal, ids, &nheld);

		tenancy_engine_check_goal(run->migrations, run->goal, held, nheld);
	}
	else
		tenancy_engine_check_goal(run->migrations, run->goal, NULL, 0);
	return ids;
}

/*
 * tenancy.migrate_all(parallel integer, verify boolean, tenants text[],
 * max_failures integer, dry_run boolean, to_version bigint) RETURNS
 * TABLE(tenant, from_version, to_version, status, duration, error,
 * sqlstate)
 *
 * Brings every ready tenant (or the named ones) to the registered
 * migrations (or to to_version), at most "parallel" at once.  With verify,
 * connects to every tenant (checking its ledger for drift) instead of
 * answering up-to-date tenants from the catalog; with max_failures, starts
 * no tenant after that many failed; with dry_run, returns the plan
 * (status "planned" for the tenants a run would connect to) without
 * connecting.  The 0.1.0 signature (parallel, verify) is the same with the
 * rest left out.
 */
Datum
tenancy_migrate_all_v2(PG_FUNCTION_ARGS)
{
	int			parallel;
	bool		verify = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	bool		dry_run = PG_NARGS() > 4 && !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
	FleetRun	run;
	List	   *ids;
	List	   *budgets;
	MemoryContext window_cxt;
	char		after[NAMEDATALEN];
	RemoteSession *volatile writer = NULL;
	ArrayType  *named;

	parallel = parallel_argument(fcinfo, 0);
	memset(&run, 0, sizeof(run));
	run.max_failures = max_failures_argument(fcinfo, 3);
	if (dry_run && verify)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dry_run and verify cannot be combined"),
				 errdetail("A dry run connects to no tenant; verify connects to every one.")));
	run.goal = goal_argument(fcinfo, 5);
	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();

	run.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	run.batch_sent = GetCurrentTimestamp();
	run.batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "tenancy migrate_all batch",
										  ALLOCSET_SMALL_SIZES);
	ids = check_run(&run, fcinfo, 2);
	named = ids ? PG_GETARG_ARRAYTYPE_P(2) : NULL;	/* read only those */
	run.total = ids ? list_length(ids) : tenancy_catalog_count_tenants(false);
	run.next_notice = Max(1, run.total / 10);
	budgets = tenancy_catalog_budgets();	/* at most max_sessions per server */
	window_cxt = AllocSetContextCreate(CurrentMemoryContext, "tenancy migrate_all window",
									   ALLOCSET_DEFAULT_SIZES);
	after[0] = '\0';

	PG_TRY();
	{
		/*
		 * The catalog a window at a time, each window's tenants run before
		 * the next is read: what the run holds per tenant is bounded by the
		 * window, whatever the size of the fleet.
		 */
		for (;;)
		{
			MemoryContext old = MemoryContextSwitchTo(window_cxt);
			List	   *plans = tenancy_catalog_plan(run.goal, after[0] ? after : NULL,
													 RUN_WINDOW(parallel), named);
			FleetTask **tasks = palloc(sizeof(FleetTask *) * Max(list_length(plans), 1));
			FleetTenant *tenants = palloc0(sizeof(FleetTenant) * Max(list_length(plans), 1));
			int			ntasks = 0;
			int			nplans = list_length(plans);
			ListCell   *lc;

			foreach(lc, plans)
			{
				TenantPlan *p = (TenantPlan *) lfirst(lc);
				TenantRecord *rec = &p->rec;

				strlcpy(after, rec->id, NAMEDATALEN);	/* only the named are
														 * read */
				if (rec->state != TENANT_STATE_READY)
					finish_tenant(&run, rec, "skipped", rec->applied_version, rec->applied_version, NULL,
								  psprintf("tenant is in state \"%s\"", tenancy_state_name(rec->state)),
								  GetCurrentTimestamp(), NULL, false);
				else if (!verify && p->missing == 0 && p->excess == 0 && !rec->has_error)
					finish_tenant(&run, rec, "up_to_date", rec->applied_version, rec->applied_version,
								  NULL, NULL, GetCurrentTimestamp(), NULL, false);
				else if (dry_run)
					finish_tenant(&run, rec, "planned", rec->applied_version,
								  goal_version(run.migrations, run.goal), NULL,
								  psprintf("would apply " INT64_FORMAT " and roll back " INT64_FORMAT " migration(s)%s",
										   p->missing, p->excess,
										   rec->has_error ? "; its last run failed" : ""),
								  GetCurrentTimestamp(), NULL, false);
				else
				{
					FleetTenant *t = &tenants[ntasks];

					t->rec = *rec;
					tenancy_isolation_target(&t->rec, &t->target);
					t->task.server = t->target.server;
					t->task.dbname = t->target.dbname;
					t->task.appname = t->target.appname;
					t->task.budget = tenancy_catalog_budget(budgets, t->target.server);
					tasks[ntasks++] = &t->task;
				}
			}
			if (ntasks > 0)
			{
				if (run.writer == NULL)
					run.writer = writer = tenancy_catalog_writer_open();
				tenancy_fleet_run(tasks, ntasks, parallel, &migrate_all_ops, &run);
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(window_cxt);
			if (nplans < RUN_WINDOW(parallel))
				break;
		}
		if (run.writer != NULL)
			flush_outcomes(&run, true);
	}
	PG_FINALLY();
	{
		tenancy_remote_close(writer);
	}
	PG_END_TRY();
	MemoryContextDelete(window_cxt);
	return (Datum) 0;
}

/*
 * tenancy.start_migrate_all(parallel integer, verify boolean, tenants
 * text[], max_failures integer, to_version bigint) RETURNS bigint
 *
 * migrate_all() as a background job: the same checks before anything is
 * queued (the same errors), then a row in tenancy.job, whose id is
 * returned at once; the worker runs it as the calling role once this
 * transaction commits.  55000 when no worker would run it.
 */
Datum
tenancy_start_migrate_all(PG_FUNCTION_ARGS)
{
	TenancyJob	job;
	FleetRun	run;
	List	   *ids;
	int			total;

	memset(&job, 0, sizeof(job));
	memset(&run, 0, sizeof(run));
	job.kind = JOB_MIGRATE_ALL;
	job.parallel = parallel_argument(fcinfo, 0);
	job.verify = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	job.max_failures = max_failures_argument(fcinfo, 3);
	run.goal = job.to_version = goal_argument(fcinfo, 4);
	tenancy_catalog_apply_config();
	ids = check_run(&run, fcinfo, 2);
	tenancy_jobs_require_worker();
	job.tenants = ids ? PG_GETARG_ARRAYTYPE_P(2) : NULL;
	total = ids ? list_length(ids) : tenancy_catalog_count_tenants(true);
	PG_RETURN_INT64(tenancy_jobs_add(&job, total));
}

/* The 0.1.0 symbol. */
Datum
tenancy_migrate_all(PG_FUNCTION_ARGS)
{
	return tenancy_migrate_all_v2(fcinfo);
}
