/*-------------------------------------------------------------------------
 *
 * tenancy.h
 *	  Types, limits and cross-module declarations shared by tenancy's
 *	  C files.  Nothing here talks to libpq or dblink.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/tenancy.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_H
#define TENANCY_H

#include "postgres.h"

/* The canonical form of a tenant id, stated once for messages. */
#define TENANCY_ID_PATTERN "^[a-z0-9][a-z0-9_-]*$"

/* The migration ledger's table in a schema tenant's schema. */
#define TENANCY_SCHEMA_LEDGER "tenancy_applied_migration"

/* Longest tenancy.database_prefix accepted (leaves 43 bytes for the id). */
#define TENANCY_MAX_PREFIX_LEN 20

/* Advisory lock classes: per-tenant locks, reconcile, fault injection. */
#define TENANCY_LOCK_CLASS 0x74656e61
#define TENANCY_RECONCILE_LOCK_CLASS 0x74656e62
#define TENANCY_FAULT_LOCK_CLASS 0x74656e63
#define TENANCY_TEMPLATE_LOCK_CLASS 0x74656e64

/* Tenant states, as stored in tenancy.tenant.state. */
typedef enum TenantState
{
	TENANT_STATE_PROVISIONING,
	TENANT_STATE_READY,
	TENANT_STATE_SUSPENDED,
	TENANT_STATE_FAILED,
	TENANT_STATE_DROPPING
} TenantState;

/* Isolation models. */
typedef enum TenantIsolation
{
	TENANT_ISOLATION_DATABASE,
	TENANT_ISOLATION_SCHEMA
} TenantIsolation;

/*
 * The part of a tenancy.tenant row that C code works with.  Fixed-size so
 * that it can live in the backend cache without extra allocations.
 */
typedef struct TenantRecord
{
	char		id[NAMEDATALEN];
	TenantIsolation isolation;
	char		database_name[NAMEDATALEN];	/* "" for schema tenants */
	char		schema_name[NAMEDATALEN];	/* "" for database tenants */
	char		server[NAMEDATALEN];	/* "" means this cluster */
	TenantState state;
	int64		applied_version;
	bool		has_error;		/* last_error is set */
} TenantRecord;

/* A registered migration. */
typedef struct TenancyMigration
{
	int64		version;
	char	   *sql;
	char	   *checksum;
} TenancyMigration;

/* names.c */
extern bool tenancy_name_syntax_ok(const char *name, const char **why);
extern void tenancy_name_validate(const char *name);
extern char *tenancy_name_database(const char *tenant);
extern char *tenancy_name_schema(const char *tenant);
extern char *tenancy_name_template(bool *managed);
extern const char *tenancy_state_name(TenantState state);
extern TenantState tenancy_state_from_name(const char *name);

/* try.c */
extern ErrorData *tenancy_try(void (*step) (void *), void *arg);

/* search_path.c */
extern void tenancy_search_path_sync(bool is_local);

/* routing.c, routed.c */
extern void tenancy_routing_resolve_selected(TenantRecord *rec);
extern void tenancy_routed_forget(const char *tenant);

/* fault.c */
extern void tenancy_fault(const char *point);

/* module init functions, called from _PG_init */
extern void tenancy_guc_init(void);
extern void tenancy_catalog_init(void);
extern void tenancy_search_path_init(void);

#endif							/* TENANCY_H */
