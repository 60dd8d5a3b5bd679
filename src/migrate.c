/*-------------------------------------------------------------------------
 *
 * migrate.c
 *	  SQL-callable migration functions: add_migration() registers a
 *	  migration, migrate() applies the pending ones to one tenant.
 *
 * Each migration is applied to a tenant in one remote transaction that
 * also inserts the tenant's own ledger row (tenancy.applied_migration in
 * the tenant database), so a tenant is at exactly the version its ledger
 * states whatever fails or is killed.  tenancy.tenant.applied_version in
 * the admin database is a summary of that ledger.
 *
 * Before applying anything, the ledger is compared with the registered
 * migrations: a version applied with another checksum, or applied but not
 * registered, is drift (XX001) and nothing is applied.  A migration that
 * ends tenancy's remote transaction itself (COMMIT, ROLLBACK, ...) is
 * detected by comparing the remote transaction id before and after it
 * (25000).
 *
 * Locking: the per-tenant advisory lock (catalog.c) is taken before any
 * remote call, so two migrators of one tenant serialise locally; inside
 * the tenant database the ledger is locked in EXCLUSIVE mode, bounded by
 * tenancy.remote_lock_timeout, to keep out-of-band migrators off it.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/migrate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "migrate.h"
#include "schema.h"
#include "tenancy.h"
#include "transport.h"

PG_FUNCTION_INFO_V1(tenancy_add_migration);
PG_FUNCTION_INFO_V1(tenancy_migrate);
PG_FUNCTION_INFO_V1(tenancy_migrate_all);

/* What the error context callback reports. */
typedef struct MigrateContext
{
	const char *target;			/* 'tenant "x"' or 'template database "y"' */
	int64		version;
} MigrateContext;

static void
migrate_error_callback(void *arg)
{
	MigrateContext *ctx = (MigrateContext *) arg;

	if (ctx->version > 0)
		errcontext("migrating %s to version " INT64_FORMAT, ctx->target, ctx->version);
	else
		errcontext("migrating %s", ctx->target);
}

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

/* Finds a registered migration by version, or NULL. */
static TenancyMigration *
find_migration(List *migrations, int64 version)
{
	ListCell   *lc;

	foreach(lc, migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);

		if (m->version == version)
			return m;
	}
	return NULL;
}

/*
 * Compares a tenant's ledger (rows of version, checksum as text) with the
 * registered migrations.  Returns false, with *message (and *detail, or
 * NULL) saying what differs, on drift: a version applied with another
 * checksum, or applied but not registered.  Sets *applied to the highest
 * version in the ledger.  Never throws for drift, so that fleet runs can
 * record it and go on.
 */
bool
tenancy_migrate_check_ledger(List *ledger, List *migrations, const char *target, int64 *applied,
							 char **message, char **detail)
{
	ListCell   *lc;

	*applied = 0;
	*message = NULL;
	*detail = NULL;
	foreach(lc, ledger)
	{
		char	  **row = (char **) lfirst(lc);
		int64		version = pg_strtoint64(row[0]);
		TenancyMigration *m = find_migration(migrations, version);

		if (m == NULL)
		{
			*message = psprintf("migration " INT64_FORMAT " was applied to %s but is not registered",
								version, target);
			return false;
		}
		if (strcmp(m->checksum, row[1]) != 0)
		{
			*message = psprintf("migration " INT64_FORMAT " has changed since it was applied to %s",
								version, target);
			*detail = psprintf("The tenant's ledger has checksum %s; the registered migration has %s.",
							   row[1], m->checksum);
			return false;
		}
		*applied = Max(*applied, version);
	}
	return true;
}

/* Is "version" in the ledger rows? */
static bool
in_ledger(List *ledger, int64 version)
{
	ListCell   *lc;

	foreach(lc, ledger)
	{
		if (pg_strtoint64(((char **) lfirst(lc))[0]) == version)
			return true;
	}
	return false;
}

/*
 * Applies every registered migration that tenant's ledger lacks, in
 * ascending order, each in its own remote transaction with its ledger row,
 * on an open connection to the tenant database.  Raises XX001 on drift
 * (before applying anything), 25000 if a migration ends the transaction,
 * and any remote error with its own SQLSTATE.  Returns the highest version
 * in the ledger afterwards, and sets *from to the highest version in it
 * before (the ledger, not the catalog, is the truth).
 *
 * "target" names what is migrated in messages: 'tenant "x"' or 'template
 * database "y"'.  The caller holds the tenant's (or the template's) lock.
 */
int64
tenancy_migrate_connection(TransportConn *conn, const char *target, List *migrations,
						   int64 *from)
{
	List	   *ledger = tenancy_transport_query(conn, tenancy_transport_sql_ledger_read(NULL), 2);
	ListCell   *lc;
	int64		applied = 0;
	MigrateContext ctx = {target, 0};
	char	   *drift;
	char	   *drift_detail;
	ErrorContextCallback errcb;

	errcb.callback = migrate_error_callback;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	/* drift check: every ledger row must match a registered migration */
	if (!tenancy_migrate_check_ledger(ledger, migrations, target, &applied, &drift, &drift_detail))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg_internal("%s", drift),
				 drift_detail ? errdetail_internal("%s", drift_detail) : 0));
	*from = applied;

	foreach(lc, migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);
		char	   *xid_before;
		char	   *xid_after;

		if (in_ledger(ledger, m->version))
			continue;

		ctx.version = m->version;
		tenancy_transport_exec(conn, "BEGIN");
		xid_before = tenancy_transport_query_value(conn, TRANSPORT_SQL_XACT_ID);
		tenancy_transport_exec(conn, tenancy_transport_sql_ledger_lock(NULL));
		tenancy_transport_exec(conn, tenancy_transport_sql_trigger_guard(NULL));
		/* a command last, so that a migration ending in SELECT (setval...) runs */
		tenancy_transport_exec(conn, psprintf("%s\n;\nSET LOCAL tenancy_guard.done = on", m->sql));
		xid_after = tenancy_transport_query_value(conn, TRANSPORT_SQL_XACT_ID);
		if (xid_before == NULL || xid_after == NULL || strcmp(xid_before, xid_after) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
					 errmsg("migration " INT64_FORMAT " ended the transaction on %s",
							m->version, target),
					 errdetail("Migrations run inside a transaction that tenancy commits; they must not contain COMMIT, ROLLBACK or similar."),
					 errhint("Check the tenant's schema by hand: statements before the transaction ended may have been committed.")));
		tenancy_transport_exec(conn, tenancy_transport_sql_ledger_insert(m->version, m->checksum, NULL));
		tenancy_transport_exec(conn, "COMMIT");
		applied = Max(applied, m->version);
	}

	error_context_stack = errcb.previous;
	return applied;
}

/* Arguments and results of migrate_work(). */
typedef struct MigrateWork
{
	const char *tenant;
	List	   *migrations;
	int64		from_version;
	int64		to_version;
} MigrateWork;

static void
migrate_work(TransportConn *conn, void *arg)
{
	MigrateWork *w = (MigrateWork *) arg;

	w->to_version = tenancy_migrate_connection(conn, psprintf("tenant \"%s\"", w->tenant),
											   w->migrations, &w->from_version);
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
	char	   *tenant;
	TenantRecord rec;
	MigrateWork w;
	TimestampTz start = GetCurrentTimestamp();
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, true};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant name must not be null")));
	tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tenancy_name_validate(tenant);
	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();

	tenancy_catalog_lock_existing(tenant, &rec);
	if (rec.state != TENANT_STATE_READY)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is not ready", tenant),
				 errdetail("Tenant \"%s\" is in state \"%s\".", tenant, tenancy_state_name(rec.state))));
	w.tenant = tenant;
	w.migrations = tenancy_catalog_migrations();
	w.from_version = w.to_version = rec.applied_version;
	if (rec.isolation == TENANT_ISOLATION_SCHEMA)
		w.to_version = tenancy_schema_migrate(rec.schema_name, psprintf("tenant \"%s\"", tenant),
											  w.migrations, &w.from_version, NULL);
	else
		tenancy_transport_run(rec.server[0] ? rec.server : NULL, rec.database_name,
							  tenancy_transport_appname(tenant), migrate_work, &w);
	if (w.to_version != rec.applied_version)
		tenancy_catalog_set_applied(tenant, w.to_version, true);

	values[0] = CStringGetTextDatum(tenant);
	values[1] = Int64GetDatum(w.from_version);
	values[2] = Int64GetDatum(w.to_version);
	values[3] = CStringGetTextDatum(w.to_version > w.from_version ? "migrated" : "up_to_date");
	{
		long		secs;
		int			usecs;
		Interval   *iv = palloc0(sizeof(Interval));

		TimestampDifference(start, GetCurrentTimestamp(), &secs, &usecs);
		iv->time = secs * USECS_PER_SEC + usecs;
		values[4] = IntervalPGetDatum(iv);
	}
	values[5] = (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/*-------------------------------------------------------------------------
 * migrate_all: the whole fleet, in parallel.
 *
 * Tenants whose catalog summary says they are at the latest version with
 * no recorded error are answered from the catalog, without a connection.
 * The others run through at most "parallel" asynchronous sessions at once
 * (transport.c; a schema tenant's session goes to the admin database, with
 * search_path set to its schema in each migration's transaction, so that
 * each of its migrations commits on its own too and a fleet of schema
 * tenants never piles up locks in the caller's transaction), each with the
 * same steps as migrate(): read the ledger,
 * check it for drift, then one round trip per pending migration, each a
 * remote transaction with its ledger row.  A failure is recorded (error
 * text and SQLSTATE) and the run goes on; the next run retries.  Each
 * tenant's lock is taken without waiting (a tenant another operation holds
 * is skipped) and released as soon as that tenant is done, so the run never
 * holds more than "parallel" tenant locks.  Each tenant's start and outcome
 * are written to tenancy.migration_progress through a session of its own to
 * the admin database (committed at once, so other sessions watch the run);
 * the tenant's summary in tenancy.tenant is updated in the caller's
 * transaction (a session of our own would wait for row locks the caller's
 * transaction may hold), and migrate() re-reads the ledger should the
 * caller roll that back.
 *-------------------------------------------------------------------------
 */

/* One tenant of a fleet run. */
typedef struct FleetTenant
{
	TenantRecord rec;
	int64		from_version;
	int64		to_version;
	List	   *pending;		/* TenancyMigration still to apply */
	const char *status;
	char	   *error;
	char	   *sqlstate;
	TimestampTz started;
	MemoryContext cxt;			/* what working on this tenant allocates */
} FleetTenant;

/* A session slot. */
typedef struct FleetSlot
{
	RemoteSession *session;
	FleetTenant *tenant;
	bool		connecting;
	bool		reading_ledger;
} FleetSlot;

/* State of a run. */
typedef struct FleetRun
{
	ReturnSetInfo *rsinfo;
	RemoteSession *catalog;		/* autocommit session to the admin database */
	List	   *migrations;
	int			total;
	int			done;
	int			failed;
	int			next_notice;
	StringInfoData progress;	/* progress rows not yet sent */
	int			progress_rows;
	TimestampTz progress_sent;
	MemoryContext batch_cxt;	/* what a batch allocates; reset after it */
	/* tenant summaries not yet written (arrays of PROGRESS_BATCH_ROWS) */
	Datum		ids[16];
	Datum		versions[16];
	Datum		sqlstates[16];
	bool		sqlstate_nulls[16];
	Datum		errors[16];
	bool		error_nulls[16];
} FleetRun;

/* Progress rows are sent in batches: every this many, or this often. */
#define PROGRESS_BATCH_ROWS 16	/* the size of FleetRun's arrays */
#define PROGRESS_BATCH_MS 250

/* Runs one statement on the catalog session, waiting for it. */
static void
catalog_session_exec(FleetRun *run, const char *sql)
{
	char	   *sqlstate;
	char	   *message;

	if (!tenancy_transport_session_send(run->catalog, sql, &message))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost the connection to the admin database"),
				 errdetail_internal("%s", message)));
	while (!tenancy_transport_session_ready(run->catalog))
		tenancy_transport_sessions_wait(&run->catalog, 1, 1000);
	(void) tenancy_transport_session_result(run->catalog, 0, &sqlstate, &message);
	if (sqlstate != NULL)
		ereport(ERROR,
				(errcode(MAKE_SQLSTATE(sqlstate[0], sqlstate[1], sqlstate[2], sqlstate[3], sqlstate[4])),
				 errmsg("could not record a migration result: %s", message)));
}

/*
 * Sends the progress rows gathered so far, in one round trip, when there
 * are enough of them, when enough time has passed, or when "force".
 */
static void
flush_progress(FleetRun *run, bool force)
{
	if (run->progress_rows == 0)
		return;
	if (!force && run->progress_rows < PROGRESS_BATCH_ROWS &&
		!TimestampDifferenceExceeds(run->progress_sent, GetCurrentTimestamp(), PROGRESS_BATCH_MS))
		return;
	tenancy_catalog_record_migrations(run->progress_rows, run->ids, run->versions,
									  run->sqlstates, run->sqlstate_nulls,
									  run->errors, run->error_nulls);
	catalog_session_exec(run, run->progress.data);
	resetStringInfo(&run->progress);
	run->progress_rows = 0;
	MemoryContextReset(run->batch_cxt);
	run->progress_sent = GetCurrentTimestamp();
}

/* Emits a tenant's result row, records it in the catalog, reports progress. */
static void
finish_tenant(FleetRun *run, FleetTenant *t, bool connected)
{
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};
	long		secs;
	int			usecs;
	Interval   *iv = palloc0(sizeof(Interval));

	TimestampDifference(t->started, GetCurrentTimestamp(), &secs, &usecs);
	iv->time = secs * USECS_PER_SEC + usecs;
	values[0] = CStringGetTextDatum(t->rec.id);
	values[1] = Int64GetDatum(t->from_version);
	values[2] = Int64GetDatum(t->to_version);
	values[3] = CStringGetTextDatum(t->status);
	values[4] = IntervalPGetDatum(iv);
	values[5] = t->error ? CStringGetTextDatum(t->error) : (Datum) 0;
	nulls[5] = (t->error == NULL);
	values[6] = t->sqlstate ? CStringGetTextDatum(t->sqlstate) : (Datum) 0;
	nulls[6] = (t->sqlstate == NULL);
	tuplestore_putvalues(run->rsinfo->setResult, run->rsinfo->setDesc, values, nulls);

	/* tenants that were worked on: record where their ledger is, and why */
	if (connected)
	{
		int			k = run->progress_rows;
		MemoryContext old = MemoryContextSwitchTo(run->batch_cxt);

		run->ids[k] = CStringGetTextDatum(t->rec.id);
		run->versions[k] = Int64GetDatum(t->to_version);
		run->sqlstate_nulls[k] = (t->sqlstate == NULL);
		run->sqlstates[k] = t->sqlstate ? CStringGetTextDatum(t->sqlstate) : (Datum) 0;
		run->error_nulls[k] = (t->error == NULL);
		run->errors[k] = t->error ? CStringGetTextDatum(t->error) : (Datum) 0;
		appendStringInfo(&run->progress, "%s;\n",
						 tenancy_transport_sql_record_progress(t->rec.id, t->status,
															   t->from_version, t->to_version,
															   t->sqlstate, t->error));
		MemoryContextSwitchTo(old);
		run->progress_rows++;
		flush_progress(run, false);
	}
	run->done++;
	if (t->sqlstate != NULL)
	{
		run->failed++;
		ereport(NOTICE,
				(errmsg("tenant \"%s\" failed: %s", t->rec.id, t->error)));
	}
	if (run->done >= run->next_notice || run->done == run->total)
	{
		ereport(NOTICE,
				(errmsg("migrate_all: %d of %d tenants done, %d failed", run->done, run->total, run->failed)));
		run->next_notice = run->done + Max(1, run->total / 10);
	}
}

/* Records a tenant's failure (text and SQLSTATE). */
static void
fail_tenant(FleetTenant *t, const char *sqlstate, const char *message)
{
	t->status = "failed";
	t->sqlstate = pstrdup(sqlstate);
	t->error = pstrdup(message);
}

/* The schema of a schema tenant, NULL for a database tenant. */
static const char *
tenant_schema(const FleetTenant *t)
{
	return t->rec.isolation == TENANT_ISOLATION_SCHEMA ? t->rec.schema_name : NULL;
}

/* Arguments of start_session_step(). */
typedef struct SessionStart
{
	FleetTenant *tenant;
	RemoteSession *session;
} SessionStart;

static void
start_session_step(void *arg)
{
	SessionStart *ss = (SessionStart *) arg;
	FleetTenant *t = ss->tenant;

	/* a schema tenant's session goes to the admin database */
	ss->session = tenancy_transport_session_start(t->rec.server[0] ? t->rec.server : NULL,
												  tenant_schema(t) ? get_database_name(MyDatabaseId) : t->rec.database_name,
												  tenancy_transport_appname(t->rec.id));
}

/*
 * Starts a session for a tenant, catching what fails before any network
 * traffic (an unknown server, a missing user mapping), so that such a
 * tenant fails alone.  Returns NULL and fills in the failure otherwise.
 */
static RemoteSession *
open_tenant_session(FleetTenant *t)
{
	SessionStart ss = {t, NULL};
	ErrorData  *edata = tenancy_try(start_session_step, &ss);

	if (edata == NULL)
		return ss.session;
	fail_tenant(t, unpack_sql_state(edata->sqlerrcode),
				edata->detail ? psprintf("%s: %s", edata->message, edata->detail) : edata->message);
	return NULL;
}

/* Sends the next pending migration of a slot's tenant, or finishes it. */
static void
advance_slot(FleetRun *run, FleetSlot *slot)
{
	FleetTenant *t = slot->tenant;
	char	   *message;

	if (t->pending != NIL)
	{
		TenancyMigration *m = (TenancyMigration *) linitial(t->pending);
		MemoryContext old = MemoryContextSwitchTo(t->cxt);
		bool		sent;

		sent = tenancy_transport_session_send(slot->session,
											  tenancy_transport_sql_migration_script(m->version, m->sql, m->checksum,
																									   tenant_schema(t)),
											  &message);
		MemoryContextSwitchTo(old);
		if (sent)
			return;
		fail_tenant(t, "08006", message);
	}
	else if (t->sqlstate != NULL)
		 /* failed: status already set */ ;
	else if (t->to_version > t->from_version)
		t->status = "migrated";
	else
		t->status = "up_to_date";

	tenancy_transport_session_close(slot->session);
	slot->session = NULL;
	tenancy_catalog_unlock_tenant(t->rec.id);
	finish_tenant(run, t, true);
	slot->tenant = NULL;
	/* memory stays flat however many tenants the run has */
	MemoryContextDelete(t->cxt);
	t->cxt = NULL;
}

/* Handles the finished query (or connection attempt) of a slot. */
static void
collect_slot(FleetRun *run, FleetSlot *slot)
{
	FleetTenant *t = slot->tenant;
	char	   *sqlstate;
	char	   *message;
	MemoryContext old = MemoryContextSwitchTo(t->cxt);
	List	   *rows = NIL;

	if (slot->connecting)
	{
		if (tenancy_transport_session_connected(slot->session, &sqlstate, &message))
		{
			slot->connecting = false;
			slot->reading_ledger = true;
			if (tenancy_transport_session_send(slot->session, tenancy_transport_sql_ledger_read(tenant_schema(t)), &message))
			{
				MemoryContextSwitchTo(old);
				return;
			}
			sqlstate = "08006";
		}
		if (sqlstate == NULL)
		{
			MemoryContextSwitchTo(old);
			return;				/* still connecting */
		}
		fail_tenant(t, sqlstate, message);
		MemoryContextSwitchTo(old);
		advance_slot(run, slot);
		return;
	}
	rows = tenancy_transport_session_result(slot->session, 2, &sqlstate, &message);

	if (sqlstate != NULL)
	{
		if (!slot->reading_ledger && t->pending != NIL && strncmp(message, "migration ", 10) != 0)
			message = psprintf("migration " INT64_FORMAT ": %s",
							   ((TenancyMigration *) linitial(t->pending))->version, message);
		fail_tenant(t, sqlstate, message);
		t->pending = NIL;
	}
	else if (slot->reading_ledger)
	{
		char	   *detail;
		ListCell   *lc;

		slot->reading_ledger = false;
		if (!tenancy_migrate_check_ledger(rows, run->migrations, psprintf("tenant \"%s\"", t->rec.id),
										  &t->from_version, &message, &detail))
			fail_tenant(t, "XX001", message);
		else
		{
			t->to_version = t->from_version;
			foreach(lc, run->migrations)
			{
				TenancyMigration *m = (TenancyMigration *) lfirst(lc);

				if (!in_ledger(rows, m->version))
					t->pending = lappend(t->pending, m);
			}
		}
	}
	else
	{
		t->to_version = Max(t->to_version, ((TenancyMigration *) linitial(t->pending))->version);
		t->pending = list_delete_first(t->pending);
	}

	if (t->sqlstate != NULL)
		t->pending = NIL;
	MemoryContextSwitchTo(old);
	advance_slot(run, slot);
}

/* The body of migrate_all(); the caller closes every session on exit. */
static void
run_fleet(FleetRun *run, List *tenants, int parallel, bool verify, int64 latest)
{
	FleetSlot  *slots = palloc0(sizeof(FleetSlot) * parallel);
	RemoteSession **busy = palloc(sizeof(RemoteSession *) * parallel);
	List	   *queue = NIL;
	ListCell   *lc;
	int			i;

	foreach(lc, tenants)
	{
		FleetTenant *t = palloc0(sizeof(FleetTenant));

		t->rec = *(TenantRecord *) lfirst(lc);
		t->from_version = t->to_version = t->rec.applied_version;
		t->started = GetCurrentTimestamp();
		if (t->rec.state != TENANT_STATE_READY)
		{
			t->status = "skipped";
			t->error = psprintf("tenant is in state \"%s\"", tenancy_state_name(t->rec.state));
			finish_tenant(run, t, false);
		}
		else if (!verify && t->rec.applied_version == latest && !t->rec.has_error)
		{
			t->status = "up_to_date";
			finish_tenant(run, t, false);
		}
		else
			queue = lappend(queue, t);
	}

	if (queue != NIL)
		run->catalog = tenancy_transport_session_open(NULL, NULL, "tenancy/migrate_all");

	for (;;)
	{
		int			active = 0;

		/* fill free slots */
		for (i = 0; i < parallel && queue != NIL; i++)
		{
			FleetTenant *t;

			if (slots[i].tenant != NULL)
				continue;
			t = (FleetTenant *) linitial(queue);
			queue = list_delete_first(queue);
			t->started = GetCurrentTimestamp();
			t->cxt = AllocSetContextCreate(CurrentMemoryContext, "tenancy migrate_all tenant",
										   ALLOCSET_SMALL_SIZES);
			if (!tenancy_catalog_try_lock_tenant(t->rec.id))
			{
				t->status = "skipped";
				t->error = "another operation holds the tenant";
				finish_tenant(run, t, false);
				MemoryContextDelete(t->cxt);
				i--;			/* this slot is still free */
				continue;
			}
			{
				MemoryContext old = MemoryContextSwitchTo(t->cxt);

				slots[i].session = open_tenant_session(t);
				MemoryContextSwitchTo(old);
			}
			if (slots[i].session == NULL)
			{
				tenancy_catalog_unlock_tenant(t->rec.id);
				finish_tenant(run, t, true);
				MemoryContextDelete(t->cxt);
				i--;
				continue;
			}
			slots[i].tenant = t;
			slots[i].connecting = true;
			slots[i].reading_ledger = false;
		}

		for (i = 0; i < parallel; i++)
			if (slots[i].tenant != NULL)
				busy[active++] = slots[i].session;
		if (active == 0)
		{
			if (queue == NIL)
				break;
			continue;
		}

		tenancy_transport_sessions_wait(busy, active, PROGRESS_BATCH_MS);
		for (i = 0; i < parallel; i++)
		{
			if (slots[i].tenant != NULL && tenancy_transport_session_ready(slots[i].session))
				collect_slot(run, &slots[i]);
		}
		flush_progress(run, false);
	}
	flush_progress(run, true);
}

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
	volatile int64 latest = 0;

	if (PG_ARGISNULL(0) || PG_GETARG_INT32(0) < 1 || PG_GETARG_INT32(0) > 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parallel must be between 1 and 64")));
	parallel = PG_GETARG_INT32(0);
	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();

	memset(&run, 0, sizeof(run));
	run.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	initStringInfo(&run.progress);
	run.progress_sent = GetCurrentTimestamp();
	run.batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "tenancy migrate_all batch",
										  ALLOCSET_SMALL_SIZES);
	run.migrations = tenancy_catalog_migrations();
	if (run.migrations != NIL)
		latest = ((TenancyMigration *) llast(run.migrations))->version;
	tenants = tenancy_catalog_tenants();
	run.total = list_length(tenants);
	run.next_notice = Max(1, run.total / 10);

	PG_TRY();
	{
		run_fleet(&run, tenants, parallel, verify, latest);
	}
	PG_FINALLY();
	{
		tenancy_transport_sessions_close_all();
	}
	PG_END_TRY();
	return (Datum) 0;
}
