/*-------------------------------------------------------------------------
 *
 * scope.c
 *	  The one privilege scope: every statement tenancy runs in this
 *	  backend, on its catalog or on a tenant's objects, runs inside it.
 *
 * tenancy_scope_enter() switches to a role (the catalog owner for catalog
 * access, the service role for what it owns), as a security-restricted
 * operation (no SET ROLE, no temporary objects), optionally with
 * search_path pinned to pg_catalog, pg_temp (so nothing on the caller's
 * path can change which objects a statement reaches) and, for DDL on
 * tenants' objects, lock_timeout set to tenancy.remote_lock_timeout and
 * client_min_messages to warning; then it connects SPI.
 * tenancy_scope_leave() undoes all of it; on error, (sub)transaction abort
 * restores the user and the settings.  Values always travel as SPI
 * parameters.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/scope.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "guc.h"
#include "scope.h"

/*
 * Starts a GUC nest level with search_path pinned to pg_catalog, pg_temp;
 * returns it, for AtEOXact_GUC(false, level).
 */
int
tenancy_scope_pin_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/*
 * Enters the scope as "role" with "flags" (SCOPE_PIN_PATH, SCOPE_DDL).
 * Must be paired with tenancy_scope_leave().
 */
void
tenancy_scope_enter(PrivilegeScope *scope, Oid role, int flags)
{
	scope->caller_context = CurrentMemoryContext;
	GetUserIdAndSecContext(&scope->save_userid, &scope->save_sec_context);
	SetUserIdAndSecContext(role, scope->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	scope->nestlevel = 0;
	if (flags & SCOPE_PIN_PATH)
		scope->nestlevel = tenancy_scope_pin_path();
	if (flags & SCOPE_DDL)
	{
		if (scope->nestlevel == 0)
			scope->nestlevel = NewGUCNestLevel();
		(void) set_config_option("lock_timeout", psprintf("%d", tenancy_remote_lock_timeout),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		(void) set_config_option("client_min_messages", "warning",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* Leaves the scope: SPI, settings, user, in that order. */
void
tenancy_scope_leave(PrivilegeScope *scope)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	if (scope->nestlevel > 0)
		AtEOXact_GUC(false, scope->nestlevel);
	SetUserIdAndSecContext(scope->save_userid, scope->save_sec_context);
}

/*
 * Runs one statement inside the scope, with parameters, and checks that it
 * returned "expect" (an SPI_OK_ code).  Returns SPI_processed.  Never with
 * a parallel plan (which SPI_execute_with_args allows): tenancy's catalog
 * reads run inside setting hooks, and a parallel worker restoring the
 * leader's settings would run those hooks, and their reads, again.
 */
uint64
tenancy_scope_exec(const char *sql, int nargs, Oid *types, Datum *values,
				   const char *nulls, bool read_only, int expect)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, types, 0);
	int			rc;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed: %s", SPI_result_code_string(SPI_result));
	rc = SPI_execute_plan(plan, values, nulls, read_only, 0);
	SPI_freeplan(plan);

	if (rc != expect)
		elog(ERROR, "statement failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}
