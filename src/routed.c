/*-------------------------------------------------------------------------
 *
 * routed.c
 *	  SQL-callable routed queries: tenancy.exec() and tenancy.query() run
 *	  an application's SQL in the selected tenant.
 *
 * For a database tenant the SQL runs in its database on a connection the
 * session keeps (kept.c); for a schema tenant, here, in the caller's
 * transaction, with the tenant's schema first on search_path
 * (isolation_schema.c).  Everything below is about the first; the rest of
 * this comment is kept.c's contract, as users see it.
 *
 * Each backend keeps at most one connection per (tenant, role): opened on
 * first use, as the calling role with its own credentials (transport.c),
 * and reused by later calls, in any transaction.  It is closed:
 *	  - when the tenant can no longer be used by that role (suspended,
 *		deprovisioned, access revoked): checked at every call for every kept
 *		connection, from the backend tenant cache, and by this backend's own
 *		suspend() and deprovision() at once;
 *	  - when anything but a plain remote error happens during a call
 *		(cancel, timeout, lost connection, COPY), so no connection is ever
 *		left busy or in an unknown state;
 *	  - on DISCARD ALL and RESET ALL (what poolers send between clients), so
 *		that nothing a client SET on a kept connection reaches the next one;
 *	  - at backend exit.
 * A call that leaves the remote session inside a transaction block (a
 * BEGIN without COMMIT) is rolled back there and fails with 25000: a kept
 * connection is never idle in transaction between calls.
 *
 * Statements run in autocommit on the remote side: they commit there even
 * if the caller's transaction rolls back (as with dblink_exec).
 *
 * Schema tenants need no connection: their SQL runs here, in the caller's
 * transaction, as the caller, with the tenant's schema first on
 * search_path (schema.c).
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/routed.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "isolation.h"
#include "kept.h"
#include "selection.h"

PG_FUNCTION_INFO_V1(tenancy_exec);
PG_FUNCTION_INFO_V1(tenancy_query);

/* CONTEXT line of every error raised while running a tenant's SQL. */
static void
routed_error_callback(void *arg)
{
	errcontext("running SQL on tenant \"%s\"", (const char *) arg);
}

/*
 * Closes kept connections that can no longer be used, resolves the
 * selected tenant (checked as current_tenant() does), then runs "sql" in
 * it.
 */
static void
run_routed(const char *sql, RemoteResult *r, bool want_rows)
{
	TenantRecord rec;
	ErrorContextCallback errcb;

	tenancy_kept_sweep();
	tenancy_selection_resolve(tenancy_selection_current(TENANCY_SELECT_HINT), &rec);

	errcb.callback = routed_error_callback;
	errcb.arg = rec.id;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	tenancy_isolation(rec.isolation)->run_sql(&rec, sql, want_rows, r);
	error_context_stack = errcb.previous;
}

/* The SQL argument: NULL or blank is 22004 / 42601. */
static char *
sql_argument(FunctionCallInfo fcinfo)
{
	char	   *sql;
	const char *p;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("SQL must not be null")));
	sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	for (p = sql; *p && isspace((unsigned char) *p); p++)
		;
	if (*p == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("SQL must not be empty")));
	return sql;
}

/*
 * tenancy.exec(sql text) RETURNS text
 *
 * Runs one or more statements in the selected tenant's database and
 * returns the command status of the last one ("INSERT 0 1").
 */
Datum
tenancy_exec(PG_FUNCTION_ARGS)
{
	char	   *sql = sql_argument(fcinfo);
	RemoteResult r;

	memset(&r, 0, sizeof(r));
	run_routed(sql, &r, false);
	PG_RETURN_TEXT_P(cstring_to_text(r.status ? r.status : ""));
}

/*
 * tenancy.query(sql text) RETURNS SETOF record
 *
 * Runs a query in the selected tenant's database and returns its rows,
 * typed by the caller's column definition list: SELECT * FROM
 * tenancy.query('...') AS t(id int, name text).  42804 if the number of
 * columns differs; each value goes through its column type's input
 * function (22P02 and friends for values that do not fit).
 */
Datum
tenancy_query(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *sql = sql_argument(fcinfo);
	RemoteResult r;
	TupleDesc	desc;
	AttInMetadata *attinmeta;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	desc = rsinfo->setDesc;
	memset(&r, 0, sizeof(r));
	run_routed(sql, &r, true);
	if (r.nfields < 0)
		return (Datum) 0;		/* a command without rows: no rows */
	if (r.nfields != desc->natts)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("remote query result rowtype does not match the specified FROM clause rowtype"),
				 errdetail("The query returned %d columns; the column definition list has %d.",
						   r.nfields, desc->natts)));
	attinmeta = TupleDescGetAttInMetadata(desc);
	foreach(lc, r.rows)
	{
		HeapTuple	tup = BuildTupleFromCStrings(attinmeta, (char **) lfirst(lc));

		tuplestore_puttuple(rsinfo->setResult, tup);
		heap_freetuple(tup);
	}
	return (Datum) 0;
}
