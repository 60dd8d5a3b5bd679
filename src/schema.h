/*-------------------------------------------------------------------------
 *
 * schema.h
 *	  Schema tenants: the tenant's schema in the admin database.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/schema.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_SCHEMA_H
#define TENANCY_SCHEMA_H

#include "nodes/pg_list.h"

extern bool tenancy_schema_exists(const char *schema);
extern void tenancy_schema_create(const char *schema);
extern void tenancy_schema_drop(const char *schema);
extern void tenancy_schema_grant_access(const char *schema, const char *role, bool grant);
extern List *tenancy_schema_ledger(const char *schema);
extern int64 tenancy_schema_size(const char *schema);
extern int64 tenancy_schema_migrate(const char *schema, const char *target,
									List *migrations, int64 *from, int64 *attempting);

extern void tenancy_schema_run(const char *schema, const char *sql, bool want_rows,
							   char **status, int *nfields, List **rows);

#endif							/* TENANCY_SCHEMA_H */
