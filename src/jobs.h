/*-------------------------------------------------------------------------
 *
 * jobs.h
 *	  The job queue: tenancy.job and tenancy.job_tenant, and the shared
 *	  memory through which sessions wake the background worker and cancel
 *	  the job it runs.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/jobs.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_JOBS_H
#define TENANCY_JOBS_H

#include "nodes/pg_list.h"
#include "utils/array.h"

/* The kinds of job. */
#define JOB_MIGRATE_ALL		"migrate_all"
#define JOB_PROVISION_MANY	"provision_many"

/* A row of tenancy.job, as the worker runs it. */
typedef struct TenancyJob
{
	int64		id;
	char	   *kind;
	Oid			owner;			/* InvalidOid: the role is gone */
	char	   *owner_name;
	bool		cancel_requested;
	bool		resumed;		/* a worker had taken it up before */
	int			parallel;
	ArrayType  *tenants;		/* NULL: every ready tenant (migrate_all) */
	bool		verify;
	int			max_failures;	/* 0: no limit */
	int			failed;			/* tenants failed so far */
	int64		to_version;		/* -1: the latest */
	char	   *isolation;
	char	   *server;			/* NULL: placed */
} TenancyJob;

/* One tenant's outcome in a batch of a job. */
typedef struct JobOutcome
{
	char	   *tenant;
	char	   *status;
	char	   *sqlstate;		/* NULL if it did not fail */
	char	   *error;
} JobOutcome;

/* shared memory (from _PG_init, when preloaded) */
extern void tenancy_jobs_init(void);

/* sessions */
extern void tenancy_jobs_require_worker(void);
extern int64 tenancy_jobs_add(const TenancyJob *job, int total);
extern void tenancy_jobs_cancel(int64 id);

/* the worker */
extern void tenancy_jobs_attach_worker(void);
extern void tenancy_jobs_set_running(int64 id);
extern bool tenancy_jobs_cancelled(void);
extern bool tenancy_jobs_next(TenancyJob *job);
extern List *tenancy_jobs_batch(const TenancyJob *job, int limit);
extern void tenancy_jobs_record(const TenancyJob *job, List *outcomes);
extern void tenancy_jobs_finish(const TenancyJob *job, const char *state,
								const char *sqlstate, const char *error);

#endif							/* TENANCY_JOBS_H */
