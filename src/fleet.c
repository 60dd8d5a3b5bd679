/*-------------------------------------------------------------------------
 *
 * fleet.c
 *	  Running many remote conversations at once: the one scheduler of
 *	  fleet work (migrate_all, health).
 *
 * Each task is a conversation with one database: a session is started
 * asynchronously, then the caller's next() says what to send, result by
 * result, until it says nothing more.  At most "parallel" sessions are open at
 * once, and at most a server's budget on that server: a free slot takes the
 * first waiting task whose server has room, so a slow or saturated server does
 * not hold the others back; one task's failure (cannot connect, lost
 * connection) ends that task only.  Waiting goes through the latch, so a
 * cancel stops the run, and every session is closed on every exit path (here,
 * and by remote.c at the end of the transaction).  What a task allocates while
 * it runs lives in its own memory context, deleted when it finishes, so memory
 * stays flat however many tasks a run has.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/fleet.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "fleet.h"
#include "try.h"

#define FLEET_TICK_MS 250

/* Arguments of start_step(). */
typedef struct StartStep
{
	FleetTask  *task;
} StartStep;

static void
start_step(void *arg)
{
	FleetTask  *t = ((StartStep *) arg)->task;

	t->session = tenancy_remote_start(CONNINFO_SERVICE, t->server, t->dbname, t->appname);
}

/* Ends a task: closes its session, tells the caller, frees its memory. */
static void
end_task(const FleetOps *ops, void *arg, FleetTask *t, const RemoteError *error)
{
	tenancy_remote_close(t->session);
	t->session = NULL;
	if (t->budget != NULL)
		t->budget->running--;
	ops->finish(arg, t, error);
	MemoryContextDelete(t->cxt);
	t->cxt = NULL;
}

/* Sends the task's next query, or ends it when there is none. */
static void
advance(const FleetOps *ops, void *arg, FleetTask *t, const RemoteResult *last)
{
	MemoryContext old = MemoryContextSwitchTo(t->cxt);
	const char *sql = ops->next(arg, t, last);
	RemoteError *error = NULL;

	if (sql != NULL)
	{
		memset(&t->result, 0, sizeof(t->result));
		t->result.nfields = -1;
		if (t->one_statement ? tenancy_remote_send_statement(t->session, sql, &error) :
			tenancy_remote_send(t->session, sql, 0, NULL, &error))
		{
			MemoryContextSwitchTo(old);
			return;
		}
	}
	MemoryContextSwitchTo(old);
	end_task(ops, arg, t, error);
}

/*
 * Starts a task's session, catching what fails before any network traffic
 * (an unknown server, a missing user mapping), so that such a task fails
 * alone.  Returns false if it ended.
 */
static bool
start_task(const FleetOps *ops, void *arg, FleetTask *t)
{
	StartStep	ss = {t};
	ErrorData  *edata;
	MemoryContext old;

	t->cxt = AllocSetContextCreate(CurrentMemoryContext, "tenancy fleet task", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(t->cxt);
	edata = tenancy_try(start_step, &ss);
	MemoryContextSwitchTo(old);
	if (edata == NULL)
		return true;
	end_task(ops, arg, t, tenancy_remote_error(unpack_sql_state(edata->sqlerrcode),
											   edata->message, edata->detail, edata->hint));
	return false;
}

/* Handles whatever a ready session has: connection progress or results. */
static void
step_task(const FleetOps *ops, void *arg, FleetTask *t, bool *connecting)
{
	RemoteError *error;
	MemoryContext old = MemoryContextSwitchTo(t->cxt);

	if (*connecting)
	{
		bool		connected = tenancy_remote_connected(t->session, &error);

		MemoryContextSwitchTo(old);
		if (connected)
		{
			*connecting = false;
			advance(ops, arg, t, NULL);
		}
		else if (error != NULL)
			end_task(ops, arg, t, error);
		return;
	}
	if (!tenancy_remote_collect(t->session, !t->skip_rows, &t->result))
	{
		MemoryContextSwitchTo(old);
		return;					/* more results to come */
	}
	MemoryContextSwitchTo(old);
	if (t->result.broken)
		end_task(ops, arg, t, t->result.error);
	else
		advance(ops, arg, t, &t->result);
}

/*
 * Runs every task of "tasks", at most "parallel" at once, and returns when
 * all have finished.  Interruptible.
 */
void
tenancy_fleet_run(FleetTask **tasks, int ntasks, int parallel, const FleetOps *ops, void *arg)
{
	FleetTask **slots = palloc0(sizeof(FleetTask *) * parallel);
	bool	   *connecting = palloc0(sizeof(bool) * parallel);
	RemoteSession **busy = palloc(sizeof(RemoteSession *) * parallel);
	bool	   *taken = palloc0(sizeof(bool) * Max(ntasks, 1));
	int			first = 0;		/* no task before it is waiting */

	tenancy_remote_close_idle();	/* every session counts against a budget */
	PG_TRY();
	{
		for (;;)
		{
			int			active = 0;
			bool		started_any = false;
			int			i;

			for (i = 0; i < parallel; i++)
			{
				int			k;

				while (first < ntasks && taken[first])
					first++;
				for (k = first; slots[i] == NULL && k < ntasks; k++)
				{
					FleetTask  *t = tasks[k];

					if (taken[k] || (t->budget != NULL && t->budget->running >= t->budget->max))
						continue;
					taken[k] = true;
					started_any = true;
					if (ops->begin != NULL && !ops->begin(arg, t))
						continue;
					if (t->budget != NULL)
						t->budget->running++;
					if (start_task(ops, arg, t))
					{
						slots[i] = t;
						connecting[i] = true;
					}
				}
				if (slots[i] != NULL)
					busy[active++] = slots[i]->session;
			}
			if (active == 0)
			{
				while (first < ntasks && taken[first])
					first++;
				if (first >= ntasks)
					break;
				if (!started_any)
					elog(ERROR, "fleet run stalled with %d tasks waiting", ntasks - first);
				continue;		/* tasks that ended at start freed a budget */
			}
			tenancy_remote_wait(busy, active, FLEET_TICK_MS);
			for (i = 0; i < parallel; i++)
			{
				FleetTask  *t = slots[i];

				if (t == NULL || !tenancy_remote_ready(t->session))
					continue;
				step_task(ops, arg, t, &connecting[i]);
				if (t->session == NULL)
					slots[i] = NULL;
			}
			if (ops->tick != NULL)
				ops->tick(arg);
		}
	}
	PG_FINALLY();
	{
		int			i;

		for (i = 0; i < parallel; i++)
			if (slots[i] != NULL && slots[i]->session != NULL)
			{
				tenancy_remote_close(slots[i]->session);
				slots[i]->session = NULL;
			}
	}
	PG_END_TRY();
}
