/*-------------------------------------------------------------------------
 *
 * isolation.c
 *	  Choosing a tenant's isolation model: the one place that asks
 *	  "database or schema tenant?".
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/isolation.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "conninfo.h"
#include "isolation.h"

/* The model of an isolation. */
const IsolationModel *
tenancy_isolation(TenantIsolation isolation)
{
	return isolation == TENANT_ISOLATION_SCHEMA ? &tenancy_schema_model : &tenancy_database_model;
}

/* The model named "name" ('database', 'schema'), or NULL. */
const IsolationModel *
tenancy_isolation_by_name(const char *name)
{
	if (strcmp(name, tenancy_database_model.name) == 0)
		return &tenancy_database_model;
	if (strcmp(name, tenancy_schema_model.name) == 0)
		return &tenancy_schema_model;
	return NULL;
}

/* The name of a tenant's object: its database or its schema. */
const char *
tenancy_isolation_object(const TenantRecord *rec)
{
	return rec->isolation == TENANT_ISOLATION_SCHEMA ? rec->schema_name : rec->database_name;
}

/* Where a registered tenant's migrations run (label and appname included). */
void
tenancy_isolation_target(const TenantRecord *rec, MigrationTarget *target)
{
	tenancy_isolation(rec->isolation)->migration_target(TENANCY_SERVER(rec),
														tenancy_isolation_object(rec), target);
	target->label = psprintf("tenant \"%s\"", rec->id);
	target->appname = tenancy_conninfo_appname(rec->id);
}
