/*-------------------------------------------------------------------------
 *
 * tenancy.c
 *	  Module entry point: PG_MODULE_MAGIC and _PG_init, which calls the
 *	  init function of each module.  No logic lives here.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/tenancy.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "cache.h"
#include "catalog.h"
#include "guc.h"
#include "hooks.h"
#include "remote.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * Defines every setting (and reserves the "tenancy." prefix) before anything
 * else, so that a placeholder such as tenancy.curent is refused from here on,
 * then registers the catalog's and the cache's invalidation callbacks, the
 * transaction callback that closes remote sessions, and the session hooks.
 */
void
_PG_init(void)
{
	tenancy_guc_init();
	tenancy_catalog_init();
	tenancy_cache_init();
	tenancy_remote_init();
	tenancy_hooks_init();
}
