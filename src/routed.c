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
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "isolation.h"
#include "kept.h"
#include "selection.h"

/* the protocol counts bind parameters in 16 bits */
#define MAX_STATEMENT_PARAMS 65535

PG_FUNCTION_INFO_V1(tenancy_exec);
PG_FUNCTION_INFO_V1(tenancy_query);

/* CONTEXT line of every error raised while running a tenant's SQL. */
static void
routed_error_callback(void *arg)
{
	errcontext("running SQL on tenant \"%s\"", (const char *) arg);
}

/*
 * The bind parameters of a call with arguments after the SQL (VARIADIC
 * "any": each keeps its type), or NULL.  Each value is also put through
 * its type's output function, for a remote server.
 */
static StatementParams *
statement_params(FunctionCallInfo fcinfo)
{
	StatementParams *p;
	Datum	   *values;
	Oid		   *types;
	bool	   *nulls;
	int			n;
	int			i;

	if (PG_NARGS() < 2)
		return NULL;
	n = extract_variadic_args(fcinfo, 1, true, &values, &types, &nulls);
	if (n <= 0)
		return NULL;
	if (n > MAX_STATEMENT_PARAMS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many parameters: %d", n),
				 errdetail("At most %d are allowed.", MAX_STATEMENT_PARAMS)));
	p = palloc(sizeof(StatementParams));
	p->n = n;
	p->types = types;
	p->values = values;
	p->nulls = palloc(n);
	p->text = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
	{
		Oid			out;
		bool		varlena;

		if (types[i] == UNKNOWNOID)
			types[i] = TEXTOID; /* a literal: text, as for any bind value */
		p->nulls[i] = nulls[i] ? 'n' : ' ';
		if (nulls[i])
		{
			p->text[i] = NULL;
			continue;
		}
		getTypeOutputInfo(types[i], &out, &varlena);
		p->text[i] = OidOutputFunctionCall(out, values[i]);
	}
	return p;
}

/*
 * Closes kept connections that can no longer be used, resolves the
 * selected tenant (checked as current_tenant() does), then runs "sql" in
 * it, with "params" (may be NULL).
 */
static void
run_routed(const char *sql, const StatementParams *params, RemoteResult *r, bool want_rows)
{
	TenantRecord rec;
	ErrorContextCallback errcb;

	tenancy_kept_sweep();
	tenancy_selection_resolve_current(TENANCY_SELECT_HINT, &rec);

	errcb.callback = routed_error_callback;
	errcb.arg = rec.id;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	tenancy_isolation(rec.isolation)->run_sql(&rec, sql, params, want_rows, r);
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
 * tenancy.exec(sql text [, VARIADIC params "any"]) RETURNS text
 *
 * Runs one or more statements in the selected tenant's database and
 * returns the command status of the last one ("INSERT 0 1"); with
 * parameters, one statement, with $1, $2, ... bound to them.
 */
Datum
tenancy_exec(PG_FUNCTION_ARGS)
{
	char	   *sql = sql_argument(fcinfo);
	StatementParams *params = statement_params(fcinfo);
	RemoteResult r;

	memset(&r, 0, sizeof(r));
	run_routed(sql, params, &r, false);
	PG_RETURN_TEXT_P(cstring_to_text(r.status ? r.status : ""));
}

/*
 * tenancy.query(sql text [, VARIADIC params "any"]) RETURNS SETOF record
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

	StatementParams *params = statement_params(fcinfo);

	InitMaterializedSRF(fcinfo, 0);
	desc = rsinfo->setDesc;
	memset(&r, 0, sizeof(r));
	run_routed(sql, params, &r, true);
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
