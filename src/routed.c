/*-------------------------------------------------------------------------
 *
 * routed.c
 *	  Routed queries: tenancy.exec() and tenancy.query() run SQL in the
 *	  selected tenant's database, through a connection the session keeps.
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
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "schema.h"
#include "tenancy.h"
#include "transport.h"

PG_FUNCTION_INFO_V1(tenancy_exec);
PG_FUNCTION_INFO_V1(tenancy_query);

/* A kept connection. */
typedef struct KeptKey
{
	char		tenant[NAMEDATALEN];
	Oid			role;
} KeptKey;

typedef struct KeptConnection
{
	KeptKey		key;			/* hash key */
	RemoteSession *session;
	int64		uses;
} KeptConnection;

static HTAB *kept = NULL;

static HTAB *
kept_table(void)
{
	if (kept == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(KeptKey);
		ctl.entrysize = sizeof(KeptConnection);
		ctl.hcxt = TopMemoryContext;
		kept = hash_create("tenancy kept connections", 8, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return kept;
}

static void
close_entry(KeptConnection *kc)
{
	RemoteSession *session = kc->session;

	hash_search(kept, &kc->key, HASH_REMOVE, NULL);
	if (session != NULL)
		tenancy_transport_routed_close(session);
}

/*
 * Closes this backend's kept connections to "tenant" (all roles), or all of
 * them with NULL.  Called by suspend() and deprovision().
 */
void
tenancy_routed_forget(const char *tenant)
{
	HASH_SEQ_STATUS seq;
	KeptConnection *kc;
	List	   *doomed = NIL;
	ListCell   *lc;

	if (kept == NULL)
		return;
	hash_seq_init(&seq, kept);
	while ((kc = (KeptConnection *) hash_seq_search(&seq)) != NULL)
		if (tenant == NULL || strcmp(kc->key.tenant, tenant) == 0)
			doomed = lappend(doomed, kc);
	foreach(lc, doomed)
		close_entry((KeptConnection *) lfirst(lc));
	list_free(doomed);
}

/*
 * Closes kept connections whose tenant its role may no longer use: gone,
 * not ready, or no longer granted.  A cache probe per kept connection.
 */
static void
sweep(void)
{
	HASH_SEQ_STATUS seq;
	KeptConnection *kc;
	List	   *doomed = NIL;
	ListCell   *lc;

	if (kept == NULL || hash_get_num_entries(kept) == 0)
		return;
	hash_seq_init(&seq, kept);
	while ((kc = (KeptConnection *) hash_seq_search(&seq)) != NULL)
	{
		TenantRecord rec;
		bool		permitted = false;

		if (kc->key.role != GetUserId())
			continue;			/* checked when that role calls again */
		if (!tenancy_catalog_lookup(kc->key.tenant, &rec, &permitted) ||
			!permitted || rec.state != TENANT_STATE_READY)
			doomed = lappend(doomed, kc);
	}
	foreach(lc, doomed)
		close_entry((KeptConnection *) lfirst(lc));
	list_free(doomed);
}

/* CONTEXT line of every error raised while running a tenant's SQL. */
static void
routed_error_callback(void *arg)
{
	errcontext("running SQL on tenant \"%s\"", (const char *) arg);
}

/* Raises the remote error of "r", SQLSTATE and fields passed through. */
static void
raise_remote(const RoutedResult *r)
{
	const char *s = r->sqlstate;

	ereport(ERROR,
			(errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
			 errmsg_internal("%s", r->message),
			 r->detail ? errdetail_internal("%s", r->detail) : 0,
			 r->hint ? errhint("%s", r->hint) : 0));
}

/*
 * Runs "sql" on the kept connection of database tenant "rec", opening it
 * if needed.  Any failure other than a plain remote error closes it.
 */
static void
run_remote(const TenantRecord *rec, const char *sql, bool want_rows, RoutedResult *r)
{
	KeptKey		key;
	KeptConnection *kc;
	bool		found;

	memset(&key, 0, sizeof(key));
	strlcpy(key.tenant, rec->id, NAMEDATALEN);
	key.role = GetUserId();
	kc = (KeptConnection *) hash_search(kept_table(), &key, HASH_ENTER, &found);
	if (!found)
	{
		kc->session = NULL;
		kc->uses = 0;
		PG_TRY();
		{
			kc->session = tenancy_transport_routed_open(rec->server[0] ? rec->server : tenancy_catalog_loopback_server(),
														rec->database_name,
														tenancy_transport_appname(rec->id),
														rec->id);
		}
		PG_CATCH();
		{
			hash_search(kept, &key, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}

	PG_TRY();
	{
		tenancy_transport_routed_run(kc->session, sql, want_rows, r);
		if (r->in_transaction)
		{
			RoutedResult rb;

			tenancy_transport_routed_run(kc->session, "ROLLBACK", false, &rb);
			if (rb.sqlstate != NULL || rb.in_transaction)
				r->broken = true;
		}
	}
	PG_CATCH();
	{
		/* cancel, timeout, out of memory: the session's state is unknown */
		close_entry(kc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	kc->uses++;

	if (r->broken)
		close_entry(kc);
	if (r->sqlstate != NULL)
		raise_remote(r);
	if (r->in_transaction)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("the SQL left a transaction open on tenant \"%s\"", rec->id),
				 errdetail("tenancy rolled it back: a kept connection is never left idle in a transaction."),
				 errhint("Send the whole transaction in one call, e.g. 'BEGIN; ...; COMMIT'.")));
}

/*
 * Resolves the selected tenant (checked as current_tenant() does) after
 * closing kept connections that can no longer be used, then runs "sql" in
 * it.
 */
static void
run_routed(const char *sql, RoutedResult *r, bool want_rows)
{
	TenantRecord rec;
	ErrorContextCallback errcb;

	sweep();
	tenancy_routing_resolve_selected(&rec);

	errcb.callback = routed_error_callback;
	errcb.arg = rec.id;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	if (rec.isolation == TENANT_ISOLATION_SCHEMA)
		tenancy_schema_run(rec.schema_name, sql, want_rows, &r->status, &r->nfields, &r->rows);
	else
		run_remote(&rec, sql, want_rows, r);
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
	RoutedResult r;

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
	RoutedResult r;
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
