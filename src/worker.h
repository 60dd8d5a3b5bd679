/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The background worker that runs jobs and fills warm pools.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_WORKER_H
#define TENANCY_WORKER_H

extern void tenancy_worker_init(void);

#endif							/* TENANCY_WORKER_H */
