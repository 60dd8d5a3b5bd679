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

#include "access/parallel.h"
#include "fmgr.h"
#include "miscadmin.h"

#include "cache.h"
#include "catalog.h"
#include "guc.h"
#include "hooks.h"
#include "jobs.h"
#include "remote.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * Refuses to load unless preloaded (pg_cron's rule): through
 * shared_preload_libraries (in the postmaster) or session_preload_libraries
 * (in each backend, while InitPostgres still runs: after its settings are
 * in place, before its first statement).  Loaded on demand (LOAD, or the
 * first call of a tenancy function, in normal processing), a selection
 * made before would already have let statements resolve names outside the
 * tenant.  Checked first, so that the refusal leaves nothing half-defined
 * and is raised again on every attempt.  Then defines every setting (and
 * reserves the "tenancy." prefix, so that a typo such as tenancy.curent is
 * refused), and registers the catalog's and the cache's invalidation
 * callbacks, the transaction callback that closes remote sessions, and the
 * session hooks (which also apply a selection the session starts with).
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress && IsNormalProcessingMode() &&
		!InitializingParallelWorker)	/* a worker loads its leader's
										 * libraries */
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenancy must be loaded via shared_preload_libraries or session_preload_libraries"),
				 errdetail("Loaded on demand, it could not keep search_path with the selected tenant from a session's first statement."),
				 errhint("Add tenancy to shared_preload_libraries (and restart) or to session_preload_libraries, then reconnect.")));
	tenancy_guc_init();
	tenancy_catalog_init();
	tenancy_cache_init();
	tenancy_remote_init();
	tenancy_hooks_init();
	tenancy_jobs_init();
	tenancy_worker_init();
}
