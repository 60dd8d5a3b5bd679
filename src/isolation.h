/*-------------------------------------------------------------------------
 *
 * isolation.h
 *	  Isolation models: what a tenant's data lives in (its own database,
 *	  or its own schema in the admin database), chosen once per tenant.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/isolation.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_ISOLATION_H
#define TENANCY_ISOLATION_H

#include "engine.h"
#include "tenancy.h"

/*
 * Everything that differs between isolation models.  A tenant's object is
 * its database or its schema; "server" is NULL for this cluster.  A
 * third model would be one more of these, in a file of its own.
 */
typedef struct IsolationModel
{
	TenantIsolation isolation;
	const char *name;			/* as in tenancy.tenant.isolation */

	/*
	 * true: the object lives in the admin database, so changing it commits or
	 * rolls back with the caller's transaction (no autonomous state changes
	 * around it, nothing for reconcile to finish).
	 */
	bool		transactional;

	/* the object's name for a tenant id (validated); 42939 if reserved */
	char	   *(*object_name) (const char *tenant);
	bool		(*exists) (const char *server, const char *name);
	/* 42P04 / 42P06: an object by that name exists but is no tenant's */
	void		(*refuse_existing) (const char *name);

	/*
	 * Provisioning.  prepare() readies what copies are made from and returns
	 * the migration version they start at (and in *versions the versions they
	 * hold), or -1 when migrations must be applied from scratch; create()
	 * makes the object under its temporary name, committed on its own, and
	 * unless "open" (its migrations are to run) closed to every session, so
	 * that nobody holds it when it is renamed; rename() puts it in place, in
	 * the caller's transaction where the model allows, and opens it.
	 */
	int64		(*prepare) (const char *server, const char *appname, char **source,
							char **versions);
	void		(*create) (const char *server, const char *name, const char *source,
						   int64 operation_id, const char *appname, bool open);
	/* what create() sends to the server, for fleet runs; NULL: not remote */
	List	   *(*create_statements) (const char *name, const char *source, bool open);
	void		(*rename) (const char *server, const char *from, const char *to);

	/*
	 * drops it if it exists: committed on its own, or in the caller's
	 * transaction
	 */
	void		(*drop) (const char *server, const char *name, bool force, bool autonomous,
						 const char *appname);

	/* access: a member's privileges on the object */
	void		(*grant) (const TenantRecord *rec, const char *role, bool grant);
	/* suspend/resume: what makes the object unreachable, and back */
	void		(*set_suspended) (const TenantRecord *rec, bool suspended);

	/* where its migrations run, and how applications reach it */
	void		(*migration_target) (const char *server, const char *name, MigrationTarget *target);
	char	   *(*connstr) (const TenantRecord *rec);

	/*
	 * runs an application's SQL in the tenant (tenancy.exec, query); raises
	 * its errors
	 */
	void		(*run_sql) (const TenantRecord *rec, const char *sql,
							const StatementParams *params, bool want_rows, RemoteResult *r);
	/* total size of its tables, when known here without a connection, else -1 */
	int64		(*local_size) (const TenantRecord *rec);
} IsolationModel;

extern const IsolationModel tenancy_database_model;
extern const IsolationModel tenancy_schema_model;

extern const IsolationModel *tenancy_isolation(TenantIsolation isolation);
extern const IsolationModel *tenancy_isolation_by_name(const char *name);
extern const char *tenancy_isolation_object(const TenantRecord *rec);
extern void tenancy_isolation_target(const TenantRecord *rec, MigrationTarget *target);

/* schema tenants: creating a schema for a provisioning operation */
extern void tenancy_schema_create_local(const char *name, Oid owner);

#endif							/* TENANCY_ISOLATION_H */
