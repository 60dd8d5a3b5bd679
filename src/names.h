/*-------------------------------------------------------------------------
 *
 * names.h
 *	  Tenant ids, the names derived from them, and state names.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/names.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_NAMES_H
#define TENANCY_NAMES_H

#include "fmgr.h"

#include "tenancy.h"

extern void tenancy_name_validate(const char *name);
extern char *tenancy_name_database(const char *tenant);
extern char *tenancy_name_schema(const char *tenant);
extern char *tenancy_name_template(bool *managed);
extern char *tenancy_name_temporary(int64 operation_id);
extern char *tenancy_name_argument(FunctionCallInfo fcinfo, int argno);
extern const char *tenancy_state_name(TenantState state);
extern TenantState tenancy_state_from_name(const char *name);

#endif							/* TENANCY_NAMES_H */
