/*-------------------------------------------------------------------------
 *
 * hooks.c
 *	  The session hooks (utility, parse analysis, planner, executor,
 *	  transaction end): search_path kept with the selected schema tenant,
 *	  kept connections closed when a pooler resets a session.
 *
 * Whenever tenancy.current changes through SET, SET LOCAL, RESET or
 * tenancy.use(), the selected schema tenant's schema is put first on
 * search_path and every other tenant schema taken off, with the same scope
 * as the selection (selection.c).  PostgreSQL's plan cache keys cached
 * plans on search_path, so a plan made for one tenant's tables is
 * replanned for the next.  The same utility hook closes kept connections
 * on DISCARD ALL and RESET ALL (kept.c).
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/hooks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "cache.h"
#include "catalog.h"
#include "guc.h"
#include "hooks.h"
#include "kept.h"
#include "selection.h"
#include "try.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/*-------------------------------------------------------------------------
 * Keeping search_path and the selection together.
 *
 * SET, SET LOCAL, RESET tenancy.current and use() move search_path with
 * the selection (tenancy_selection_sync).  Other ways of changing either can
 * part them: a function's SET search_path clause restores the path when
 * it returns while a selection made inside stays, set_config() or a role
 * default selects without moving the path, a tenant is suspended or
 * revoked, the application sets its own path.  So, while a schema tenant
 * is selected, top-level statements are watched:
 *	  - after parse analysis and at executor start, a statement whose path
 *		holds another tenant's schema is refused (55000): it never reads or
 *		writes a tenant that is not the selected one;
 *	  - at the end of every top-level statement, a path that does not lead
 *		with the selected schema, or holds another tenant's, is corrected,
 *		with the scope of the latest change (LOCAL if search_path or the
 *		selection was set for the transaction, else for the session), so
 *		the next statement is parsed and planned under the right path.
 *		(A statement is never corrected in the middle: it was analysed
 *		under the path it started with, and its cached plan must say so.)
 * Statements nested in functions, in planning or in deferred triggers at
 * commit (any of which may set their own path on purpose), and tenancy's
 * own catalog reads, are left alone.  When neither the selection, the
 * path nor the catalog changed, a check costs two string comparisons.
 *
 * With tenancy.strict_local, a parallel plan is refused at executor start
 * while the selection comes from an earlier transaction: parallel workers
 * cannot tell when the leader selected.
 *-------------------------------------------------------------------------
 */
static int	nesting = 0;		/* executor, planner and utility depth */

/*
 * The hooks count their depth without PG_TRY (its sigjmp_buf would cost
 * every level of a deep recursion, executor run and finish being on its
 * path): an error unwinding through them leaves the count too high, and the
 * transaction callbacks put it back, to 0 when the transaction aborts and,
 * when a subtransaction aborts (an exception block caught the error), to
 * what it was when the subtransaction started.
 */
typedef struct NestingAtSubxact
{
	SubTransactionId subid;
	int			nesting;
} NestingAtSubxact;

static NestingAtSubxact *subxact_nesting = NULL;
static int	subxact_depth = 0;
static int	subxact_size = 0;
static bool checking = false;	/* inside check_selection() */
static bool committing = false; /* deferred triggers may run */

static post_parse_analyze_hook_type prev_post_parse_analyze = NULL;
static planner_hook_type prev_planner = NULL;
static ExecutorStart_hook_type prev_executor_start = NULL;
static ExecutorRun_hook_type prev_executor_run = NULL;
static ExecutorFinish_hook_type prev_executor_finish = NULL;
static ExecutorEnd_hook_type prev_executor_end = NULL;

/*
 * Checks search_path against the selection: with fix, corrects it (at a
 * statement's end); without, refuses a path holding another tenant's
 * schema.
 */
static void
check_selection(bool fix)
{
	const char *schema = NULL;
	bool		foreign = false;
	char	   *volatile path = NULL;

	if (checking || committing || nesting > 0 || tenancy_current == NULL ||
		tenancy_current[0] == '\0' || !IsTransactionState() || IsParallelWorker())
		return;					/* (a parallel worker's leader has checked) */
	if (tenancy_selection_unchanged())
		return;
	if (!tenancy_catalog_installed())
		return;

	checking = true;
	PG_TRY();
	{
		path = tenancy_selection_wanted_path(&schema, &foreign);
	}
	PG_FINALLY();
	{
		checking = false;
	}
	PG_END_TRY();

	/*
	 * With any selection, another tenant's schema on the path is wrong: with
	 * a database tenant, or one that cannot be used now (not granted, not
	 * ready, or under strict_local selected in an earlier transaction), every
	 * tenant schema is another tenant's.
	 */
	if (path == NULL)
	{
		tenancy_selection_remember();
		return;
	}
	if (!fix)
	{
		if (foreign)
			(void) tenancy_selection_current("");	/* 55000 if stale */
		if (foreign)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("search_path holds another tenant's schema while tenant \"%s\" is selected",
							tenancy_current),
					 errdetail("search_path is \"%s\".", namespace_search_path),
					 errhint("Any SET, SHOW or transaction statement brings search_path back in line with the selection; then run the statement again. Select tenants with SET [LOCAL] tenancy.current or tenancy.use().")));
		return;
	}
	(void) set_config_option("search_path", path,
							 PGC_USERSET, PGC_S_SESSION,
							 tenancy_search_path_is_local() || tenancy_current_is_local() ?
							 GUC_ACTION_LOCAL : GUC_ACTION_SET,
							 true, 0, false);
	tenancy_selection_remember();
}

/*
 * Utility statements that never read tables: always allowed, so that a
 * session whose path is refused can still SET, RESET, SHOW, end its
 * transaction or DISCARD (and be corrected at the end of that statement).
 */
static bool
reads_no_tables(Query *query)
{
	Node	   *stmt = query->utilityStmt;

	return query->commandType == CMD_UTILITY && stmt != NULL &&
		(IsA(stmt, VariableSetStmt) || IsA(stmt, VariableShowStmt) ||
		 IsA(stmt, TransactionStmt) || IsA(stmt, DiscardStmt));
}

static void
tenancy_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate)
{
	if (prev_post_parse_analyze)
		prev_post_parse_analyze(pstate, query, jstate);
	if (!reads_no_tables(query))
		check_selection(false);
}

static PlannedStmt *
tenancy_planner(Query *parse, const char *query_string, int cursorOptions, ParamListInfo boundParams)
{
	PlannedStmt *result;

	nesting++;					/* the planner may run functions */
	if (prev_planner)
		result = prev_planner(parse, query_string, cursorOptions, boundParams);
	else
		result = standard_planner(parse, query_string, cursorOptions, boundParams);
	nesting--;
	return result;
}

/*-------------------------------------------------------------------------
 * A selection a session starts with.
 *
 * tenancy.current from ALTER DATABASE/ROLE ... SET or a connection option
 * is in place before the session's first statement, so search_path must be
 * too: a session whose first statements fail would otherwise never get the
 * tenant's schema (nothing would complete to correct it).  It is applied
 * once, when the session's settings are final: at the commit of the
 * transaction in which the backend read them (InitPostgres), which loads
 * session_preload_libraries too.  A failure is a WARNING: the session
 * starts, and its statements are checked as usual.
 *-------------------------------------------------------------------------
 */
static bool session_started = false;

static void
apply_session_selection(void *arg)
{
	if (tenancy_current == NULL || tenancy_current[0] == '\0' || !tenancy_catalog_installed())
		return;
	tenancy_selection_sync(false);
}

static void
session_selection(void)
{
	ErrorData  *edata;

	session_started = true;
	if (MyBackendType != B_BACKEND)
		return;
	edata = tenancy_try(apply_session_selection, NULL);
	if (edata != NULL)
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("could not apply the selection of tenant \"%s\" at connection: %s",
						tenancy_current, edata->message)));
}

static void
tenancy_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (!session_started && IsUnderPostmaster)
				session_selection();
			committing = true;
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			committing = true;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			committing = false;
			/* an error unwound the hooks; a procedure's ROLLBACK did not */
			if (!SPI_inside_nonatomic_context())
				nesting = 0;
			subxact_depth = 0;
			break;
		default:
			committing = false;
			subxact_depth = 0;
			break;
	}
}

static void
tenancy_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	switch (event)
	{
		case SUBXACT_EVENT_START_SUB:
			if (subxact_depth == subxact_size)
			{
				subxact_size = Max(16, subxact_size * 2);
				subxact_nesting = subxact_nesting == NULL ?
					MemoryContextAlloc(TopMemoryContext, sizeof(NestingAtSubxact) * subxact_size) :
					repalloc(subxact_nesting, sizeof(NestingAtSubxact) * subxact_size);
			}
			subxact_nesting[subxact_depth].subid = mySubid;
			subxact_nesting[subxact_depth].nesting = nesting;
			subxact_depth++;
			break;
		case SUBXACT_EVENT_COMMIT_SUB:
		case SUBXACT_EVENT_ABORT_SUB:
			while (subxact_depth > 0 && subxact_nesting[subxact_depth - 1].subid >= mySubid)
			{
				subxact_depth--;
				if (event == SUBXACT_EVENT_ABORT_SUB &&
					subxact_nesting[subxact_depth].subid == mySubid)
					nesting = subxact_nesting[subxact_depth].nesting;
			}
			break;
		default:
			break;
	}
}

static void
tenancy_executor_start(QueryDesc *queryDesc, int eflags)
{
	if (nesting == 0)
		check_selection(false);
	/* at any depth: EXECUTE runs its plan inside a utility statement */
	if (tenancy_strict_local && tenancy_current != NULL && tenancy_current[0] != '\0' &&
		tenancy_current_stamp != MyProc->lxid &&
		queryDesc->plannedstmt->parallelModeNeeded && !IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenancy.current was set outside the current transaction"),
				 errdetail("tenancy.strict_local is on, and parallel workers cannot check when the selection was made."),
				 errhint("Use SET LOCAL tenancy.current or tenancy.use() in the transaction that uses the tenant.")));
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

static void
tenancy_executor_end(QueryDesc *queryDesc)
{
	if (prev_executor_end)
		prev_executor_end(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
	if (nesting == 0)
		check_selection(true);
}

/*
 * After a top-level SELECT has run to completion, the statement-end check
 * runs at once rather than at executor end: with the extended protocol, an
 * unnamed portal ends only when the next statement is bound, after that
 * statement was parsed, so SELECT set_config('tenancy.current', $1, true)
 * would leave the next statement analysed under the old path.  A SELECT
 * without data-modifying WITH has no triggers left to fire.
 */
static void
tenancy_executor_run(QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once)
{
	nesting++;
	if (prev_executor_run)
		prev_executor_run(queryDesc, direction, count, execute_once);
	else
		standard_ExecutorRun(queryDesc, direction, count, execute_once);
	nesting--;
	if (nesting == 0 && count == 0 && queryDesc->operation == CMD_SELECT &&
		!queryDesc->plannedstmt->hasModifyingCTE)
		check_selection(true);
}

static void
tenancy_executor_finish(QueryDesc *queryDesc)
{
	nesting++;
	if (prev_executor_finish)
		prev_executor_finish(queryDesc);
	else
		standard_ExecutorFinish(queryDesc);
	nesting--;
}

/*
 * ProcessUtility hook: after SET [LOCAL] / RESET tenancy.current, brings
 * search_path in line with the selection (schema tenants).
 */
static void
tenancy_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	volatile bool selection = false;
	volatile bool is_local = false;
	volatile bool reset_all = false;

	if (IsA(parsetree, VariableSetStmt))
	{
		VariableSetStmt *stmt = (VariableSetStmt *) parsetree;

		selection = stmt->name != NULL && strcmp(stmt->name, "tenancy.current") == 0 &&
			stmt->kind != VAR_SET_MULTI;
		is_local = stmt->is_local;
		reset_all = stmt->kind == VAR_RESET_ALL;
	}
	else if (IsA(parsetree, DiscardStmt))
		reset_all = ((DiscardStmt *) parsetree)->target == DISCARD_ALL;
	nesting++;
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	if (selection)				/* tenancy's own catalog reads are not checked */
		tenancy_selection_sync(is_local);
	if (reset_all)
		tenancy_kept_forget(NULL);	/* a pooler's next client starts afresh */
	nesting--;
	if (nesting == 0)
		check_selection(true);
}

/* Installs the hooks.  Called once from _PG_init. */
void
tenancy_hooks_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = tenancy_process_utility;
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = tenancy_post_parse_analyze;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = tenancy_executor_start;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = tenancy_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = tenancy_executor_finish;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = tenancy_executor_end;
	prev_planner = planner_hook;
	planner_hook = tenancy_planner;
	RegisterXactCallback(tenancy_xact_callback, NULL);
	RegisterSubXactCallback(tenancy_subxact_callback, NULL);
}
