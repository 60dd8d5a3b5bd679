/*-------------------------------------------------------------------------
 *
 * routed.c
 *	  SQL-callable routed queries: tenancy.exec() and tenancy.query() run
 *	  an application's SQL in the selected tenant.
 *
 * For a database tenant the SQL runs in its database on a connection the
 * session keeps per (tenant, role), as the calling role with its own
 * credentials, closed when the tenant can no longer be used, on errors
 * that leave it in an unknown state and on DISCARD ALL (kept.c).
 * Statements run in autocommit there: they commit even if the caller's
 * transaction rolls back.  For a schema tenant the SQL runs here, in the
 * caller's transaction, as the caller, with the tenant's schema first on
 * search_path (isolation_schema.c).  Either way the tenant is resolved as
 * current_tenant() resolves it, and errors name it in CONTEXT.
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
	tenancy_selection_resolve_current(TENANCY_SELECT_HINT, &rec);

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
