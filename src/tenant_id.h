/*-------------------------------------------------------------------------
 *
 * tenant_id.h
 *	  The syntax of a tenant id.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/tenant_id.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_TENANT_ID_H
#define TENANCY_TENANT_ID_H

#include "tenancy.h"

extern bool tenancy_name_syntax_ok(const char *name, const char **why);
extern bool tenancy_name_chars_ok(const char *name, const char **why);

#endif							/* TENANCY_TENANT_ID_H */
