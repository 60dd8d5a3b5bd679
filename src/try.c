/*-------------------------------------------------------------------------
 *
 * try.c
 *	  Running a step in a subtransaction and catching its error.
 *
 * PostgreSQL code may only go on after an error once the subtransaction it
 * happened in has been rolled back (that releases locks, buffers, SPI
 * connections and memory the step held).  tenancy_try() packages that
 * idiom (plpgsql's exception blocks use it too) for the places that must
 * survive a step's failure: undoing a failed provisioning, and one tenant's
 * failure in a fleet run.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/try.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "try.h"

/*
 * Runs step(arg) in a subtransaction.  Returns NULL if it succeeded (its
 * effects stay, in the caller's transaction), or the error it raised,
 * copied into the caller's memory context, after rolling the subtransaction
 * back.  The caller may re-throw it with ReThrowError (SQLSTATE, detail and
 * context kept).
 */
ErrorData *
tenancy_try(void (*step) (void *), void *arg)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		step(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/*
 * Runs step(arg) in a subtransaction.  If it throws, the subtransaction is
 * rolled back, undo(arg) runs in a subtransaction of its own (its failure
 * is only a WARNING: reconcile() finishes the job), and the original error
 * is re-thrown unchanged (SQLSTATE, detail and context kept).
 */
void
tenancy_try_or_undo(void (*step) (void *), void (*undo) (void *), void *arg)
{
	ErrorData  *edata = tenancy_try(step, arg);
	ErrorData  *undo_error;

	if (edata == NULL)
		return;
	undo_error = tenancy_try(undo, arg);
	if (undo_error != NULL)
		ereport(WARNING,
				(errmsg("could not undo a failed tenancy operation: %s", undo_error->message),
				 errhint("Run tenancy.reconcile() to finish the cleanup.")));
	ReThrowError(edata);
}
