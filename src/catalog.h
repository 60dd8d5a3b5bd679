/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Access to tenancy's catalog tables and the backend tenant cache.
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

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "tenancy.h"

/* Result of registering a migration. */
typedef enum MigrationAddResult
{
	MIGRATION_ADDED,
	MIGRATION_ALREADY_REGISTERED,	/* same version, same checksum */
	MIGRATION_CONFLICT,			/* same version, other checksum */
	MIGRATION_OUT_OF_ORDER		/* lower than the highest registered */
} MigrationAddResult;

/* A row of tenancy.pending_cleanup. */
typedef struct CleanupRecord
{
	int64		operation_id;
	char		tenant[NAMEDATALEN];
	char		server[NAMEDATALEN];	/* "" means this cluster */
	char		database_name[NAMEDATALEN];
	char		final_name[NAMEDATALEN];
} CleanupRecord;

extern Oid	tenancy_catalog_owner(void);
extern bool tenancy_catalog_installed(void);
extern uint64 tenancy_catalog_generation(void);
extern bool tenancy_catalog_is_tenant_schema(const char *nspname);
extern void tenancy_catalog_apply_config(void);
extern char *tenancy_catalog_loopback_server(void);
extern bool tenancy_catalog_lookup(const char *id, TenantRecord *rec, bool *permitted);
extern bool tenancy_catalog_fetch(const char *id, TenantRecord *rec);
extern void tenancy_catalog_set_state(const char *id, TenantState state,
									  const char *last_error);
extern void tenancy_catalog_set_applied(const char *id, int64 version, bool clear_error);
extern void tenancy_catalog_record_migrations(int n, Datum *ids, Datum *versions,
											  Datum *sqlstates, bool *sqlstate_nulls,
											  Datum *errors, bool *error_nulls);
extern void tenancy_catalog_delete(const char *id);
extern bool tenancy_catalog_set_member(const char *id, Oid role, bool grant);
extern List *tenancy_catalog_members(const char *id);
extern Datum tenancy_catalog_row(const char *id);
extern void tenancy_catalog_lock_tenant(const char *id, bool nowait);
extern void tenancy_catalog_lock_existing(const char *id, TenantRecord *rec);
extern bool tenancy_catalog_try_lock_tenant(const char *id);
extern void tenancy_catalog_unlock_tenant(const char *id);
extern void tenancy_catalog_lock_reconcile(void);
extern void tenancy_catalog_register_ready(const TenantRecord *rec, Jsonb *metadata,
										   int64 operation_id);
extern int64 tenancy_catalog_next_operation(void);
extern List *tenancy_catalog_cleanup_records(const char *tenant);
extern void tenancy_catalog_forget_cleanup(int64 operation_id);
extern List *tenancy_catalog_tenants(void);
extern char *tenancy_catalog_migration_fingerprint(void);
extern char *tenancy_catalog_template_fingerprint(const char *server, int64 *version);
extern void tenancy_catalog_set_template(const char *server, const char *dbname,
										 int64 version, const char *fingerprint);
extern void tenancy_catalog_lock_template(const char *server, bool exclusive);
extern void tenancy_catalog_unlock_template(const char *server, bool exclusive);

extern List *tenancy_catalog_migrations(void);
extern MigrationAddResult tenancy_catalog_add_migration(int64 version,
														const char *sql,
														const char *checksum,
														const char *description,
														int64 *highest);

#endif							/* TENANCY_CATALOG_H */
