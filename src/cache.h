/*-------------------------------------------------------------------------
 *
 * cache.h
 *	  The backend-local tenant cache and the tenant-schema memo.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_CACHE_H
#define TENANCY_CACHE_H

#include "tenancy.h"

extern void tenancy_cache_init(void);
extern bool tenancy_cache_lookup(const char *id, TenantRecord *rec, Oid selector, bool *permitted);
extern uint64 tenancy_cache_generation(void);
extern bool tenancy_cache_is_tenant_schema(const char *nspname);

#endif							/* TENANCY_CACHE_H */
