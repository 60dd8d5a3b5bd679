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

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "migrate.h"
#include "tenancy.h"
#include "transport.h"

PG_FUNCTION_INFO_V1(tenancy_add_migration);
PG_FUNCTION_INFO_V1(tenancy_migrate);

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
	List	   *ledger = tenancy_transport_query(conn, TRANSPORT_SQL_LEDGER_READ, 2);
	ListCell   *lc;
	int64		applied = 0;
	MigrateContext ctx = {target, 0};
	ErrorContextCallback errcb;

	errcb.callback = migrate_error_callback;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	/* drift check: every ledger row must match a registered migration */
	foreach(lc, ledger)
	{
		char	  **row = (char **) lfirst(lc);
		int64		version = pg_strtoint64(row[0]);
		TenancyMigration *m = find_migration(migrations, version);

		if (m == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("migration " INT64_FORMAT " was applied to %s but is not registered",
							version, target)));
		if (strcmp(m->checksum, row[1]) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("migration " INT64_FORMAT " has changed since it was applied to %s",
							version, target),
					 errdetail("The tenant's ledger has checksum %s; the registered migration has %s.",
							   row[1], m->checksum)));
		applied = Max(applied, version);
	}
	*from = applied;

	foreach(lc, migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);
		char	   *xid_before;
		char	   *xid_after;
		ListCell   *lc2;
		bool		done = false;

		foreach(lc2, ledger)
		{
			if (pg_strtoint64(((char **) lfirst(lc2))[0]) == m->version)
				done = true;
		}
		if (done)
			continue;

		ctx.version = m->version;
		tenancy_transport_exec(conn, "BEGIN");
		xid_before = tenancy_transport_query_value(conn, TRANSPORT_SQL_XACT_ID);
		tenancy_transport_exec(conn, TRANSPORT_SQL_LEDGER_LOCK);
		tenancy_transport_exec(conn, m->sql);
		xid_after = tenancy_transport_query_value(conn, TRANSPORT_SQL_XACT_ID);
		if (xid_before == NULL || xid_after == NULL || strcmp(xid_before, xid_after) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
					 errmsg("migration " INT64_FORMAT " ended the transaction on %s",
							m->version, target),
					 errdetail("Migrations run inside a transaction that tenancy commits; they must not contain COMMIT, ROLLBACK or similar."),
					 errhint("Check the tenant's schema by hand: statements before the transaction ended may have been committed.")));
		tenancy_transport_exec(conn, tenancy_transport_sql_ledger_insert(m->version, m->checksum));
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

	tenancy_catalog_lock_tenant(tenant, false);
	if (!tenancy_catalog_fetch(tenant, &rec))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" does not exist", tenant)));
	if (rec.state != TENANT_STATE_READY)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is not ready", tenant),
				 errdetail("Tenant \"%s\" is in state \"%s\".", tenant, tenancy_state_name(rec.state))));
	if (rec.isolation != TENANT_ISOLATION_DATABASE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("schema tenants are not supported yet")));

	w.tenant = tenant;
	w.migrations = tenancy_catalog_migrations();
	w.from_version = w.to_version = rec.applied_version;
	tenancy_transport_run(rec.server[0] ? rec.server : NULL, rec.database_name,
						  tenancy_transport_appname(tenant), migrate_work, &w);
	if (w.to_version != rec.applied_version)
		tenancy_catalog_set_applied(tenant, w.to_version);

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
