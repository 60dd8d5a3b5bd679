/*-------------------------------------------------------------------------
 *
 * tenancy.h
 *	  The base of every layer: types and limits shared by tenancy's C
 *	  files.  No functions are declared here (each module has its own
 *	  header), and nothing here talks to libpq or dblink.
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

#include "nodes/pg_list.h"

/* The canonical form of a tenant id, stated once for messages. */
#define TENANCY_ID_PATTERN "^[a-z0-9][a-z0-9_-]*$"

/* The migration ledger's table in a schema tenant's schema. */
#define TENANCY_SCHEMA_LEDGER "tenancy_applied_migration"

/*
 * The oid of the role a remote session runs as, in SQL: to_regrole() reads
 * the syscache, where pg_roles, a view, costs a fresh session far more.
 */
#define TENANCY_SQL_CURRENT_ROLE_OID \
	"pg_catalog.to_regrole(pg_catalog.quote_ident(CURRENT_USER))::pg_catalog.oid"

/* Longest tenancy.database_prefix accepted (leaves 43 bytes for the id). */
#define TENANCY_MAX_PREFIX_LEN 20

/*
 * Advisory lock classes: per-tenant locks, reconcile, fault injection.
 * tenancy's own locks carry TENANCY_LOCK_FIELD4 in the tag's last field,
 * which SQL's pg_advisory_lock() functions never set (they use 1 and 2):
 * no role can take them, or hold them in a prepared transaction, to stall
 * tenancy.  The fault-injection class stays reachable (tests hold it).
 */
#define TENANCY_LOCK_FIELD4 3
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
	char		database_name[NAMEDATALEN]; /* "" for schema tenants */
	char		schema_name[NAMEDATALEN];	/* "" for database tenants */
	char		server[NAMEDATALEN];	/* "" means this cluster */
	TenantState state;
	int64		applied_version;
	bool		has_error;		/* last_error is set */
} TenantRecord;

/* One top-level statement of a migration's SQL. */
typedef struct MigrationStatement
{
	char	   *sql;
	int			line;			/* where it starts in the migration, from 1 */
	bool		simple;			/* tests only: sent as a simple query */
} MigrationStatement;

/* A registered migration. */
typedef struct TenancyMigration
{
	int64		version;
	char	   *sql;
	char	   *checksum;
	char	   *search_path;	/* canonical; "" for an empty path */
	char	   *down;			/* or NULL */
	bool		transactional;
	/* set by the migration engine's check (tenancy_engine_check) */
	bool		checked;
	struct RemoteError *refusal;	/* why it may not run, or NULL */
	struct RemoteError *down_refusal;	/* why its down may not run */
	List	   *statements;		/* of sql: MigrationStatement */
	List	   *down_statements;	/* of down */
} TenancyMigration;

/* The server of a record, as the remote layer takes it (NULL: this cluster). */
#define TENANCY_SERVER(rec) ((rec)->server[0] != '\0' ? (rec)->server : NULL)

#endif							/* TENANCY_H */
