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

#include "tenancy.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * Defines every setting (and reserves the "tenancy." prefix) before anything
 * else, so that a placeholder such as tenancy.curent is refused from here on,
 * then registers the catalog cache's invalidation callback and the hook
 * that keeps search_path in line with the selected schema tenant.
 */
void
_PG_init(void)
{
	tenancy_guc_init();
	tenancy_catalog_init();
	tenancy_search_path_init();
}
