/*-------------------------------------------------------------------------
 *
 * kept.c
 *	  Kept connections: the sessions routed SQL (tenancy.exec, query) runs
 *	  on in database tenants, kept per (tenant, role) across calls.
 *
 * Each backend keeps at most one session per (tenant, role): opened on
 * first use, as the calling role with its own credentials (conninfo.c),
 * and reused by later calls, in any transaction.  It is closed:
 *	  - when the tenant can no longer be used by that role (suspended,
 *		deprovisioned, access revoked): checked at every call for every kept
 *		session, from the backend tenant cache, and by this backend's own
 *		suspend() and deprovision() at once;
 *	  - when anything but a plain remote error happens during a call
 *		(cancel, timeout, lost connection, COPY), so no session is ever
 *		left busy or in an unknown state;
 *	  - on DISCARD ALL and RESET ALL (what poolers send between clients), so
 *		that nothing a client SET on a kept session reaches the next one;
 *	  - when the backend would keep more than tenancy.max_kept_connections:
 *		the least recently used goes first, so a pool of N connections
 *		reaching M tenants holds at most N times the budget;
 *	  - when it has been idle longer than tenancy.kept_idle_timeout: at the
 *		next call, and by the remote server itself (idle_session_timeout,
 *		a little later) if the backend never calls again;
 *	  - at backend exit.
 * Settings made through a kept session (SET statement_timeout,
 * application_name, ROLE) end with the local transaction that made them:
 * the first call of a later transaction sends RESET ALL and RESET ROLE
 * first, when a call may have set something.  Opening one needs USAGE on
 * the foreign server it goes through, as dblink's would.
 * A call that leaves the remote session inside a transaction block (a
 * BEGIN without COMMIT) is rolled back there and fails with 25000: a kept
 * session is never idle in transaction between calls.  Statements run in
 * autocommit on the remote side: they commit there even if the caller's
 * transaction rolls back.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/kept.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "utils/formatting.h"
#include "utils/timestamp.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "cache.h"
#include "catalog.h"
#include "conninfo.h"
#include "engine.h"
#include "guc.h"
#include "kept.h"

typedef struct KeptKey
{
	char		tenant[NAMEDATALEN];
	Oid			role;
} KeptKey;

typedef struct KeptSession
{
	KeptKey		key;			/* hash key */
	RemoteSession *session;
	int64		uses;
	TimestampTz last_used;
	LocalTransactionId used_in; /* the local transaction of the last call */
	bool		dirty;			/* a call may have changed its settings */
} KeptSession;

#define RESET_SETTINGS "RESET ALL; RESET ROLE"

/* Does "sql" say "set" anywhere (any case)? */
static bool
mentions_set(const char *sql)
{
	const char *p;

	for (p = sql; *p; p++)
		if (pg_strncasecmp(p, "set", 3) == 0)
			return true;
	return false;
}


static HTAB *kept = NULL;

static HTAB *
kept_table(void)
{
	if (kept == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(KeptKey);
		ctl.entrysize = sizeof(KeptSession);
		ctl.hcxt = TopMemoryContext;
		kept = hash_create("tenancy kept sessions", 8, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	return kept;
}

static void
close_entry(KeptSession *ks)
{
	RemoteSession *session = ks->session;

	hash_search(kept, &ks->key, HASH_REMOVE, NULL);
	if (session != NULL)
		tenancy_remote_close(session);
}

/*
 * Closes the kept sessions for which "doomed" says so (all with NULL).
 * "tenant" is passed on to it.
 */
static void
close_where(bool (*doomed) (const KeptSession *ks, const char *tenant), const char *tenant)
{
	HASH_SEQ_STATUS seq;
	KeptSession *ks;
	List	   *victims = NIL;
	ListCell   *lc;

	if (kept == NULL || hash_get_num_entries(kept) == 0)
		return;
	hash_seq_init(&seq, kept);
	while ((ks = (KeptSession *) hash_seq_search(&seq)) != NULL)
		if (doomed(ks, tenant))
			victims = lappend(victims, ks);
	foreach(lc, victims)
		close_entry((KeptSession *) lfirst(lc));
	list_free(victims);
}

static bool
of_tenant(const KeptSession *ks, const char *tenant)
{
	return tenant == NULL || strcmp(ks->key.tenant, tenant) == 0;
}

/*
 * Closes this backend's kept sessions to "tenant" (all roles), or all of
 * them with NULL.  Called by suspend(), deprovision(), DISCARD ALL.
 */
void
tenancy_kept_forget(const char *tenant)
{
	close_where(of_tenant, tenant);
}

/* Is the tenant of this current user's session no longer usable by it? */
static bool
unusable(const KeptSession *ks, const char *unused)
{
	TenantRecord rec;
	bool		permitted = false;

	if (ks->key.role != GetUserId())
		return false;			/* checked when that role calls again */
	return !tenancy_cache_lookup(ks->key.tenant, &rec, InvalidOid, &permitted) ||
		!permitted || rec.state != TENANT_STATE_READY;
}

/* Has it been idle longer than tenancy.kept_idle_timeout? */
static bool
idle_too_long(const KeptSession *ks)
{
	return tenancy_kept_idle_timeout > 0 &&
		TimestampDifferenceExceeds(ks->last_used, GetCurrentTimestamp(), tenancy_kept_idle_timeout);
}

static bool
unusable_or_idle(const KeptSession *ks, const char *unused)
{
	return unusable(ks, unused) || idle_too_long(ks);
}

/*
 * Closes kept sessions whose tenant its role may no longer use (gone, not
 * ready, or no longer granted) and those idle too long.  A cache probe per
 * kept session.
 */
void
tenancy_kept_sweep(void)
{
	close_where(unusable_or_idle, NULL);
}

/* Closes the least recently used kept sessions until one more fits. */
static void
make_room(void)
{
	while (hash_get_num_entries(kept_table()) >= tenancy_max_kept_connections)
	{
		HASH_SEQ_STATUS seq;
		KeptSession *ks;
		KeptSession *oldest = NULL;

		hash_seq_init(&seq, kept);
		while ((ks = (KeptSession *) hash_seq_search(&seq)) != NULL)
			if (oldest == NULL || ks->last_used < oldest->last_used)
				oldest = ks;
		if (oldest == NULL)
			return;
		close_entry(oldest);
	}
}

/*
 * Refuses (0A000) routed SQL with a top-level PREPARE TRANSACTION, COMMIT
 * PREPARED or ROLLBACK PREPARED: a prepared transaction outlives the call,
 * the kept connection and a revoke, holding its locks (the ledger's, say,
 * against every migration) and a slot of max_prepared_transactions.  None
 * can run from a function, so the top level is all there is to read; it
 * is read as the remote session reads it (a session whose reading changed
 * is closed, remote.c).
 */
static void
refuse_two_phase(const char *sql)
{
	ListCell   *lc;

	/*
	 * all three need the keyword, which no escape can spell: most SQL is not
	 * parsed
	 */
	if (strstr(asc_tolower(sql, strlen(sql)), "prepare") == NULL)
		return;
	foreach(lc, tenancy_engine_parse(sql))
	{
		Node	   *stmt = ((RawStmt *) lfirst(lc))->stmt;

		if (IsA(stmt, TransactionStmt) &&
			(((TransactionStmt *) stmt)->kind == TRANS_STMT_PREPARE ||
			 ((TransactionStmt *) stmt)->kind == TRANS_STMT_COMMIT_PREPARED ||
			 ((TransactionStmt *) stmt)->kind == TRANS_STMT_ROLLBACK_PREPARED))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("two-phase commit is not supported in tenancy.exec() and tenancy.query()"),
					 errdetail("A prepared transaction would outlive the call and the kept connection, holding its locks.")));
	}
}

/*
 * Runs "sql" (with "params", if not NULL, as bind parameters) on the kept
 * session of database tenant "rec" for the current user, opening it if
 * needed, and fills *r.  Raises the remote error (its
 * SQLSTATE, detail and hint), or 25000 if the SQL left a transaction open
 * (rolled back first).  Any failure other than a plain remote error closes
 * the session.
 */
void
tenancy_kept_run(const TenantRecord *rec, const char *sql, const StatementParams *params,
				 bool want_rows, RemoteResult *r)
{
	KeptKey		key;
	KeptSession *ks;
	bool		found;
	bool		reset;

	refuse_two_phase(sql);
	memset(&key, 0, sizeof(key));
	strlcpy(key.tenant, rec->id, NAMEDATALEN);
	key.role = GetUserId();
	if (hash_search(kept_table(), &key, HASH_FIND, NULL) == NULL)
	{
		const char *server = rec->server[0] ? rec->server : tenancy_catalog_loopback_server();

		if (server != NULL)
			tenancy_conninfo_check_usage(server);
		make_room();
	}
	ks = (KeptSession *) hash_search(kept_table(), &key, HASH_ENTER, &found);
	if (!found)
	{
		ks->session = NULL;
		ks->uses = 0;
		ks->used_in = MyProc->lxid;
		ks->dirty = false;
		PG_TRY();
		{
			const char *server = rec->server[0] ? rec->server : tenancy_catalog_loopback_server();

			ks->session = tenancy_remote_open(CONNINFO_ROUTED, server, rec->database_name,
											  tenancy_conninfo_appname(rec->id));
			/* a tenant of this cluster, through the loopback server */
			if (!rec->server[0] && server != NULL)
				tenancy_remote_check_here(ks->session, server);
			tenancy_remote_keep(ks->session, rec->id);
		}
		PG_CATCH();
		{
			hash_search(kept, &key, HASH_REMOVE, NULL);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}

	/*
	 * Settings made in an earlier local transaction end with it: if a call
	 * then may have made some (its SQL says "set" anywhere: SET, RESET,
	 * set_config()), the first call of a later transaction resets them, in a
	 * round trip of its own (prefixed, it would put the SQL in an implicit
	 * transaction block).
	 */
	reset = ks->dirty && ks->used_in != MyProc->lxid;
	ks->last_used = GetCurrentTimestamp();
	PG_TRY();
	{
		if (reset)
		{
			tenancy_remote_call(ks->session, RESET_SETTINGS, 0, NULL, false, r);
			if (r->error != NULL)
				r->broken = true;
			else
				ks->dirty = false;
		}
		if (r->broken && reset)
			;					/* the session cannot be trusted: closed below */
		else if (params != NULL && params->n > 0)
			tenancy_remote_call_params(ks->session, sql, params, want_rows, r);
		else
			tenancy_remote_call(ks->session, sql, 0, NULL, want_rows, r);
		ks->used_in = MyProc->lxid;
		if (mentions_set(sql))
			ks->dirty = true;
		if (r->in_transaction)
		{
			RemoteResult rb;

			tenancy_remote_call(ks->session, "ROLLBACK", 0, NULL, false, &rb);
			if (rb.error != NULL || rb.in_transaction)
				r->broken = true;
		}
	}
	PG_CATCH();
	{
		/* cancel, timeout, out of memory: the session's state is unknown */
		close_entry(ks);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ks->uses++;

	if (r->broken)
		close_entry(ks);
	if (r->error != NULL)
		tenancy_remote_raise(r->error);
	if (r->in_transaction)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("the SQL left a transaction open on tenant \"%s\"", rec->id),
				 errdetail("tenancy rolled it back: a kept connection is never left idle in a transaction."),
				 errhint("Send the whole transaction in one call, e.g. 'BEGIN; ...; COMMIT'.")));
}
