/*-------------------------------------------------------------------------
 *
 * fleet.h
 *	  Running many remote conversations at once, at most "parallel"
 *	  sessions at a time.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/fleet.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_FLEET_H
#define TENANCY_FLEET_H

#include "remote.h"

/*
 * How many sessions a run may open on one server at once (its
 * tenancy.server.max_sessions), shared by the tasks of that server.
 */
typedef struct FleetBudget
{
	int			max;
	int			running;		/* the runner's */
} FleetBudget;

/*
 * One conversation: a session to "dbname" on "server", queries sent one
 * after another.  Callers embed it as the first member of their own task.
 */
typedef struct FleetTask
{
	/* set by the caller */
	FleetBudget *budget;		/* its server's session budget, or NULL */
	const char *server;			/* NULL: this cluster */
	const char *dbname;			/* NULL: the server's maintenance database */
	const char *appname;
	bool		skip_rows;		/* set by next(): the query's rows are not
								 * wanted */
	bool		one_statement;	/* set by next(): send it as one statement
								 * (tenancy_remote_send_statement) */
	/* the runner's */
	RemoteSession *session;
	RemoteResult result;
	MemoryContext cxt;			/* what the task allocates while it runs */
} FleetTask;

/* What the runner asks of its caller; "arg" is the caller's. */
typedef struct FleetOps
{
	/* before connecting; false: skip the task (no session, no finish) */
	bool		(*begin) (void *arg, FleetTask *task);

	/*
	 * the next query, given the last result (NULL when just connected); NULL:
	 * done
	 */
	const char *(*next) (void *arg, FleetTask *task, const RemoteResult *last);

	/*
	 * once, after the session is closed; error set if it broke or never
	 * connected
	 */
	void		(*finish) (void *arg, FleetTask *task, const RemoteError *error);
	/* now and then while the run goes (may be NULL) */
	void		(*tick) (void *arg);
} FleetOps;

extern void tenancy_fleet_run(FleetTask **tasks, int ntasks, int parallel,
							  const FleetOps *ops, void *arg);

#endif							/* TENANCY_FLEET_H */
