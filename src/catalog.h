/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  All SQL on tenancy's catalog tables.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/catalog.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_CATALOG_H
#define TENANCY_CATALOG_H

#include "access/htup.h"
#include "access/tupdesc.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "fleet.h"
#include "remote.h"
#include "tenancy.h"

/* Result of registering a migration. */
typedef enum MigrationAddResult
{
	MIGRATION_ADDED,
	MIGRATION_ALREADY_REGISTERED,	/* same version, same migration */
	MIGRATION_CONFLICT			/* same version, another migration */
} MigrationAddResult;

/* Result of removing one. */
typedef enum MigrationRemoveResult
{
	MIGRATION_REMOVED,
	MIGRATION_NOT_FOUND,
	MIGRATION_APPLIED			/* a tenant's summary holds it */
} MigrationRemoveResult;

/*
 * A tenant, and what its catalog summary says it lacks (tenancy_catalog_plan).
 */
typedef struct TenantPlan
{
	TenantRecord rec;
	int64		missing;		/* registered versions up to the goal it lacks */
	int64		excess;			/* versions it holds above the goal */
} TenantPlan;

/* A row of tenancy.pending_cleanup. */
typedef struct CleanupRecord
{
	int64		operation_id;
	char		tenant[NAMEDATALEN];
	TenantIsolation isolation;
	char		server[NAMEDATALEN];	/* "" means this cluster */
	char		temporary_name[NAMEDATALEN];
	char		final_name[NAMEDATALEN];
} CleanupRecord;

/* One tenant's outcome in a fleet run (migration_progress, tenant summary). */
typedef struct ProgressRow
{
	const char *tenant;
	const char *status;
	int64		from_version;
	int64		to_version;
	const char *sqlstate;		/* NULL on success */
	const char *error;
	const char *applied;		/* the ledger's versions ("{1,2}"), or NULL */
} ProgressRow;

/* A row of tenancy.spare. */
typedef struct SpareRecord
{
	char		dbname[NAMEDATALEN];
	char		server[NAMEDATALEN];	/* "" means this cluster */
	bool		ready;
} SpareRecord;

/* A registered server's session budget (tenancy_catalog_budgets). */
typedef struct ServerBudget
{
	char	   *server;			/* NULL: this cluster */
	FleetBudget budget;
} ServerBudget;

/* The columns tenancy_catalog_record_from_tuple() reads, in order. */
#define TENANCY_TENANT_COLUMNS \
	"id, isolation, database_name, schema_name, server, state, applied_version, last_error IS NOT NULL"

extern void tenancy_catalog_init(void);
extern bool tenancy_catalog_installed(void);
extern Oid	tenancy_catalog_tenant_table(void);
extern Oid	tenancy_catalog_owner(void);
extern void tenancy_catalog_record_from_tuple(HeapTuple tup, TupleDesc desc, TenantRecord *rec);

/* configuration */
extern void tenancy_catalog_apply_config(void);
extern void tenancy_catalog_check_version(void);
extern char *tenancy_catalog_loopback_server(void);
extern char *tenancy_catalog_place_tenant(List *exclude);
extern List *tenancy_catalog_budgets(void);

/* spares (pool.c) */
extern bool tenancy_catalog_take_spare(const char *server, const char *fingerprint, char **dbname,
									   int64 *version, char **versions);
extern List *tenancy_catalog_stale_spares(const char *server, const char *fingerprint);
extern int	tenancy_catalog_count_spares(const char *server, const char *fingerprint);
extern void tenancy_catalog_record_spare(const char *server, const char *dbname,
										 const char *fingerprint, int64 version, const char *versions);
extern void tenancy_catalog_spare_ready(const char *dbname);
extern void tenancy_catalog_forget_spare(const char *dbname, bool autonomous_write);
extern List *tenancy_catalog_spares(void);
extern bool tenancy_catalog_pools_wanted(void);
extern FleetBudget *tenancy_catalog_budget(List *budgets, const char *server);
extern Oid	tenancy_catalog_service_role(void);

/* tenants */
extern bool tenancy_catalog_fetch(const char *id, TenantRecord *rec);
extern void tenancy_catalog_lock_existing(const char *id, TenantRecord *rec);
extern List *tenancy_catalog_tenants(void);
extern Datum tenancy_catalog_row(const char *id);
extern char *tenancy_catalog_database_tenant(const char *server, const char *dbname);
extern void tenancy_catalog_register_ready(const TenantRecord *rec, Jsonb *metadata,
										   int64 operation_id, const char *versions);
extern void tenancy_catalog_set_state(const char *id, TenantState state,
									  const char *last_error, bool autonomous);
extern char *tenancy_catalog_applied_versions(const char *id);
extern void tenancy_catalog_record_failure(const char *id, const char *versions, int64 max,
										   const char *sqlstate, const char *error);
extern void tenancy_catalog_set_applied(const char *id, const char *versions, int64 max,
										bool clear_error);
extern void tenancy_catalog_delete(const char *id, bool autonomous);
extern bool tenancy_catalog_set_member(const char *id, Oid role, bool grant);
extern List *tenancy_catalog_members(const char *id);

/* provisioning operations and their cleanup records */
extern int64 tenancy_catalog_next_operation(void);
extern void tenancy_catalog_record_cleanup(const CleanupRecord *c);
extern List *tenancy_catalog_cleanup_records(const char *tenant);
extern void tenancy_catalog_forget_cleanup(int64 operation_id, bool autonomous);
extern void tenancy_catalog_create_schema(int64 operation_id);
extern bool tenancy_catalog_cleanup_record(int64 operation_id, CleanupRecord *out);

/* migrations and templates */
extern List *tenancy_catalog_migrations(void);
extern MigrationAddResult tenancy_catalog_add_migration(const TenancyMigration *m,
														const char *description);
extern void tenancy_catalog_lock_migrations(void);
extern MigrationRemoveResult tenancy_catalog_remove_migration(int64 version, char **tenant,
															  int64 *count);
extern List *tenancy_catalog_plan(int64 goal, const char *after, int limit, ArrayType *ids);
extern int	tenancy_catalog_count_tenants(bool ready);
extern int64 *tenancy_catalog_held_above(int64 goal, List *ids, int *n);
extern char *tenancy_catalog_migration_fingerprint(char **versions);
extern char *tenancy_catalog_template_fingerprint(const char *server, int64 *version);
extern void tenancy_catalog_set_template(const char *server, const char *dbname,
										 int64 version, const char *fingerprint);

/* fleet runs */
extern RemoteSession *tenancy_catalog_writer_open(void);
extern void tenancy_catalog_write_progress(RemoteSession *writer, int n, const ProgressRow *rows);
extern void tenancy_catalog_record_outcomes(int n, const ProgressRow *rows);

#endif							/* TENANCY_CATALOG_H */
