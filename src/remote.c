/*-------------------------------------------------------------------------
 *
 * remote.c
 *	  Sessions on tenant servers through libpq, their results, and the one
 *	  path by which a remote failure becomes a local error.
 *
 * Every remote statement tenancy runs goes through a RemoteSession: the
 * blocking calls of provisioning and migrate() as much as the parallel
 * sessions of fleet work (fleet.c) and the kept connections of routed SQL
 * (kept.c).  Connecting and waiting for results always go through
 * PostgreSQL's latch (tenancy_remote_wait), so a cancel or a statement
 * timeout of the caller interrupts them; connecting is bounded by
 * tenancy.connect_timeout.  A session a non-superuser opens must have been
 * asked for a password by the server, or it is refused (2F003), dblink's
 * rule.
 *
 * Sessions are tracked from the moment they are started: every tracked
 * session is closed when the transaction that opened it ends, committed
 * or aborted, so no error, cancel or forgotten path leaves one open.  A
 * kept session (tenancy_remote_keep) is untracked: its owner closes it.
 * Closing a busy session sends a cancel request first, so the remote
 * statement stops, and closing a session inside a remote transaction rolls
 * that transaction back.
 *
 * Remote failures are RemoteErrors: the remote SQLSTATE, message, detail
 * and hint as the server sent them (a SQLSTATE that is not five digits or
 * upper-case letters becomes 08P01), except that a lost connection is
 * always 08006 "lost the connection to the remote server" with the remote
 * text in DETAIL (a remote 57P0x, the remote session's own termination,
 * would read to a client as "your session is being killed").
 * tenancy_remote_raise() is the only place they become local errors; the
 * callers' error context callbacks name the tenant and step.  Remote
 * NOTICEs and WARNINGs never reach this server's log: those of tenancy's
 * own sessions are dropped, those of kept sessions (the application's
 * SQL) are passed on to the client.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/remote.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "libpq-fe.h"

#include "guc.h"
#include "remote.h"

struct RemoteSession
{
	PGconn	   *conn;
	bool		busy;			/* a query was sent and not fully read */
	bool		connecting;		/* started with PQconnectStart, not done */
	PostgresPollingStatusType poll; /* what PQconnectPoll last asked for */
	TimestampTz connect_started;
	ConninfoKind kind;
	Oid			role;			/* who it authenticates as */
	char	   *tenant;			/* kept sessions: named in their notices */
	bool		shareable;		/* the service role's, to a maintenance
								 * database */
	char	   *server;			/* shareable sessions: their server, NULL:
								 * here */
	char	   *appname;		/* shareable sessions: their application_name */
	bool		here;			/* must reach this cluster (through the
								 * loopback server) */
};

static List *open_sessions = NIL;	/* tracked sessions, in TopMemoryContext */

/* Where this backend has seen the loopback server reach this cluster. */
static List *here_addresses = NIL;	/* of "host:port", in TopMemoryContext */

/*
 * Shareable sessions that no caller holds: the next tenancy_remote_open()
 * of their server in the same transaction takes one instead of
 * connecting.  At most one per server; all are closed with the
 * transaction, and before a fleet run (tenancy_remote_close_idle).
 */
static List *idle_sessions = NIL;

#define LOST_CONNECTION "lost the connection to the remote server"

/*
 * Is "s" an unsigned decimal number of at most 20 digits, as a server
 * prints counts, sizes and transaction ids?  For checking what a remote
 * server sent before it is parsed.
 */
bool
tenancy_remote_is_number(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 20)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* Remote notices of tenancy's own sessions: dropped (see the header). */
static void
drop_notice(void *arg, const PGresult *res)
{
}

/* Remote notices of a kept session: passed on to the client. */
static void
forward_notice(void *arg, const PGresult *res)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (primary != NULL)
		ereport(NOTICE,
				(errmsg_internal("%s", primary),
				 errcontext("remote notice from tenant \"%s\"", (const char *) arg)));
}

/* Transaction end: closes every tracked session.  Never throws. */
static void
remote_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT)
		tenancy_remote_close_all();
}

/* Registers the transaction callback.  Called once from _PG_init. */
void
tenancy_remote_init(void)
{
	RegisterXactCallback(remote_xact_callback, NULL);
}

/*
 * A copy of remote text that is valid in this database's encoding: the
 * server was asked to convert to it, but a broken or hostile one may not
 * have; invalid bytes become '?'.
 */
static char *
valid_text(const char *s)
{
	char	   *copy = pchomp(pstrdup(s));
	char	   *p;

	if (pg_verifymbstr(copy, strlen(copy), true))
		return copy;
	for (p = copy; *p; p++)
		if (IS_HIGHBIT_SET(*p))
			*p = '?';
	return copy;
}

/*
 * A RemoteError with these fields, copied into CurrentMemoryContext.  A
 * SQLSTATE that is not five digits or upper-case letters (a broken or
 * hostile server) becomes 08P01, protocol violation.
 */
RemoteError *
tenancy_remote_error(const char *sqlstate, const char *message, const char *detail,
					 const char *hint)
{
	RemoteError *e = palloc0(sizeof(RemoteError));
	bool		valid = sqlstate != NULL && strlen(sqlstate) == 5;
	int			i;

	for (i = 0; valid && i < 5; i++)
		valid = (sqlstate[i] >= '0' && sqlstate[i] <= '9') ||
			(sqlstate[i] >= 'A' && sqlstate[i] <= 'Z');
	e->sqlstate = pstrdup(valid ? sqlstate : "08P01");
	e->message = message ? valid_text(message) : pstrdup("unknown remote error");
	e->detail = detail ? valid_text(detail) : NULL;
	e->hint = hint ? valid_text(hint) : NULL;
	return e;
}

/* The lost-connection error, with "text" (the remote's words) as detail. */
static RemoteError *
lost_connection(const char *text)
{
	return tenancy_remote_error("08006", LOST_CONNECTION, text, NULL);
}

/*
 * Raises a remote failure as a local error: its SQLSTATE, message, detail
 * and hint unchanged.  The only place where a remote failure becomes an
 * ERROR.
 */
void
tenancy_remote_raise(const RemoteError *e)
{
	const char *s = e->sqlstate;

	ereport(ERROR,
			(errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
			 errmsg_internal("%s", e->message),
			 e->detail ? errdetail_internal("%s", e->detail) : 0,
			 e->hint ? errhint("%s", e->hint) : 0));
	pg_unreachable();
}

/*
 * A remote failure as one line of text (result rows, last_error): its
 * message, and for a connection failure (class 08, 2F003) libpq's or the
 * server's words from its detail, which say what went wrong.
 */
char *
tenancy_remote_error_text(const RemoteError *e)
{
	if (e->detail != NULL &&
		(strncmp(e->sqlstate, "08", 2) == 0 || strcmp(e->sqlstate, "2F003") == 0))
		return psprintf("%s: %s", e->message, e->detail);
	return pstrdup(e->message);
}

/*
 * Starts opening a session without waiting (PQconnectStart); drive it
 * with tenancy_remote_connected() whenever tenancy_remote_wait() returns.
 * "kind" says who it runs as (conninfo.c).  Raises only for what fails
 * before any network traffic (unknown server, no user mapping, a
 * non-superuser's mapping without a password, out of memory).
 */
RemoteSession *
tenancy_remote_start(ConninfoKind kind, const char *server, const char *dbname,
					 const char *appname)
{
	char	   *conninfo = tenancy_conninfo_build(kind, server, dbname, appname);
	PGconn	   *conn;
	MemoryContext old;
	RemoteSession *session;

	conn = PQconnectStart(conninfo);
	memset(conninfo, 0, strlen(conninfo));	/* it may hold a password */
	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	PQsetNoticeReceiver(conn, drop_notice, NULL);

	old = MemoryContextSwitchTo(TopMemoryContext);
	session = palloc0(sizeof(RemoteSession));
	session->conn = conn;
	session->connecting = true;
	session->poll = PGRES_POLLING_WRITING;
	session->connect_started = GetCurrentTimestamp();
	session->kind = kind;
	session->role = kind == CONNINFO_SERVICE ? tenancy_conninfo_service_role() : GetUserId();
	session->here = tenancy_conninfo_loopback() != NULL &&
		(server == NULL ? kind == CONNINFO_SERVICE : strcmp(server, tenancy_conninfo_loopback()) == 0);
	open_sessions = lappend(open_sessions, session);
	MemoryContextSwitchTo(old);
	return session;
}

/*
 * Advances a session started by tenancy_remote_start().  Returns true
 * once it is connected; false while it is still connecting; on failure,
 * false with *error set: 08001 (with libpq's text, which holds no
 * password, as detail), including when tenancy.connect_timeout passes, or
 * 2F003 when a non-superuser got in without being asked for a password.
 */
bool
tenancy_remote_connected(RemoteSession *session, RemoteError **error)
{
	*error = NULL;
	if (!session->connecting)
		return true;
	if (PQstatus(session->conn) != CONNECTION_BAD)
		session->poll = PQconnectPoll(session->conn);
	if (session->poll == PGRES_POLLING_OK)
	{
		session->connecting = false;
		if (!superuser_arg(session->role) && !PQconnectionUsedPassword(session->conn))
		{
			*error = tenancy_remote_error("2F003", "password is required",
										  "Non-superuser cannot connect if the server does not request a password.",
										  session->kind == CONNINFO_SERVICE ?
										  "Target server's authentication method must be changed." :
										  psprintf("Give role \"%s\" a user mapping with its password on tenancy's loopback server, or on the tenant's server.",
												   GetUserNameFromId(session->role, false)));
			return false;
		}
		if (session->here)
			tenancy_remote_check_here(session, tenancy_conninfo_loopback());
		return true;
	}
	if (session->poll == PGRES_POLLING_FAILED || PQstatus(session->conn) == CONNECTION_BAD)
	{
		*error = tenancy_remote_error("08001", "could not establish connection",
									  PQerrorMessage(session->conn), NULL);
		return false;
	}
	if (TimestampDifferenceExceeds(session->connect_started, GetCurrentTimestamp(),
								   tenancy_connect_timeout * 1000))
	{
		*error = tenancy_remote_error("08001", "could not establish connection",
									  psprintf("timeout expired after %d s", tenancy_connect_timeout),
									  NULL);
		return false;
	}
	return false;
}

/*
 * Raises 55000 unless the connected "session", through foreign server
 * "server", reaches this cluster: the
 * server it reaches started at the same microsecond as this one.  For
 * sessions through the loopback server, whose options a restored dump
 * (or a copied cluster) brings along unchanged, pointing at the cluster it
 * came from: without this check a restored admin database would write to
 * the original's catalog and tenants.  Asked once per backend for each
 * host and port.
 */
void
tenancy_remote_check_here(RemoteSession *session, const char *server)
{
	char	   *address = psprintf("%s:%s", PQhost(session->conn), PQport(session->conn));
	int64		started = PgStartTime +
	(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	RemoteResult r;
	char	  **row;
	ListCell   *lc;
	MemoryContext old;

	foreach(lc, here_addresses)
		if (strcmp((char *) lfirst(lc), address) == 0)
		return;
	tenancy_remote_call(session,
						"SELECT (pg_catalog.extract('epoch'::pg_catalog.text, pg_catalog.pg_postmaster_start_time()) "
						"OPERATOR(pg_catalog.*) 1000000::pg_catalog.numeric)::pg_catalog.int8::pg_catalog.text",
						0, NULL, true, &r);
	if (r.error != NULL)
		tenancy_remote_raise(r.error);
	row = list_length(r.rows) == 1 && r.nfields == 1 ? (char **) linitial(r.rows) : NULL;
	if (row == NULL || row[0] == NULL || strcmp(row[0], psprintf(INT64_FORMAT, started)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenancy's loopback server \"%s\" does not reach this cluster", server),
				 errdetail("It reaches the server at %s, which is another one (it started at another time).",
						   address),
				 errhint("Point the foreign server at this cluster (ALTER SERVER %s OPTIONS (SET host ..., SET port ...)), as after restoring a dump of the admin database into another cluster.",
						 quote_identifier(server))));
	old = MemoryContextSwitchTo(TopMemoryContext);
	here_addresses = lappend(here_addresses, pstrdup(address));
	MemoryContextSwitchTo(old);
}

static void session_finish(RemoteSession *session);

static bool
same_server(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/*
 * An idle shareable session of "server", still connected and still the
 * service role's, taken out of the idle list and named "appname"; or NULL.
 */
static RemoteSession *
take_idle(const char *server, const char *appname)
{
	ListCell   *lc;

	foreach(lc, idle_sessions)
	{
		RemoteSession *session = (RemoteSession *) lfirst(lc);

		if (!same_server(session->server, server))
			continue;
		idle_sessions = foreach_delete_current(idle_sessions, lc);
		/* a server that closed it meanwhile shows only once its input is read */
		if (!PQconsumeInput(session->conn) || PQstatus(session->conn) != CONNECTION_OK ||
			PQisBusy(session->conn) ||
			session->role != tenancy_conninfo_service_role())
		{
			session_finish(session);
			return NULL;
		}
		if (strcmp(session->appname, appname ? appname : "") != 0)
		{
			char	   *literal = PQescapeLiteral(session->conn, appname ? appname : "",
												  strlen(appname ? appname : ""));

			if (literal == NULL)
			{
				session_finish(session);
				return NULL;
			}
			pfree(session->appname);
			session->appname = MemoryContextStrdup(TopMemoryContext, appname ? appname : "");
			tenancy_remote_exec(session, psprintf("SET application_name = %s", literal));
			PQfreemem(literal);
		}
		return session;
	}
	return NULL;
}

/*
 * Opens a session and waits until it is connected (interruptibly).  Raises
 * what tenancy_remote_start() and tenancy_remote_connected() report.  A
 * session of the service role to a server's maintenance database (dbname
 * NULL), where only tenancy's own statements run, is shareable: closed, it
 * waits for the next such open in the same transaction, so that the steps
 * of one provisioning share one session.
 */
RemoteSession *
tenancy_remote_open(ConninfoKind kind, const char *server, const char *dbname,
					const char *appname)
{
	RemoteSession *session;
	RemoteError *error;

	if (kind == CONNINFO_SERVICE && dbname == NULL)
	{
		session = take_idle(server, appname);
		if (session != NULL)
			return session;
	}
	session = tenancy_remote_start(kind, server, dbname, appname);
	if (kind == CONNINFO_SERVICE && dbname == NULL)
	{
		session->shareable = true;
		session->server = server ? MemoryContextStrdup(TopMemoryContext, server) : NULL;
		session->appname = MemoryContextStrdup(TopMemoryContext, appname ? appname : "");
	}

	while (!tenancy_remote_connected(session, &error))
	{
		if (error != NULL)
		{
			tenancy_remote_close(session);
			tenancy_remote_raise(error);
		}
		tenancy_remote_wait(&session, 1, 1000);
	}
	return session;
}

/*
 * Makes a session outlive its transaction (a kept connection): no longer
 * tracked, its notices passed on to the client as from "tenant".  The
 * caller must close it.
 */
void
tenancy_remote_keep(RemoteSession *session, const char *tenant)
{
	open_sessions = list_delete_ptr(open_sessions, session);
	session->tenant = MemoryContextStrdup(TopMemoryContext, tenant);
	PQsetNoticeReceiver(session->conn, forward_notice, session->tenant);
}

/* Closes a session, cancelling its query if one is running.  Never throws. */
static void
session_finish(RemoteSession *session)
{
	if (session->busy)
	{
		PGcancel   *cancel = PQgetCancel(session->conn);
		char		errbuf[256];

		if (cancel)
		{
			(void) PQcancel(cancel, errbuf, sizeof(errbuf));
			PQfreeCancel(cancel);
		}
	}
	PQfinish(session->conn);
	open_sessions = list_delete_ptr(open_sessions, session);
	idle_sessions = list_delete_ptr(idle_sessions, session);
	if (session->tenant)
		pfree(session->tenant);
	if (session->server)
		pfree(session->server);
	if (session->appname)
		pfree(session->appname);
	pfree(session);
}

/*
 * Closes a session, or, if it is shareable and idle (connected, no query
 * under way, no transaction open) and its server has no idle session yet,
 * keeps it for the next open of that server in this transaction.  Never
 * throws.
 */
void
tenancy_remote_close(RemoteSession *session)
{
	ListCell   *lc;

	if (session == NULL)
		return;
	if (session->shareable && !session->busy && !session->connecting &&
		PQstatus(session->conn) == CONNECTION_OK &&
		PQtransactionStatus(session->conn) == PQTRANS_IDLE &&
		!list_member_ptr(idle_sessions, session))
	{
		bool		taken = false;

		foreach(lc, idle_sessions)
			if (same_server(((RemoteSession *) lfirst(lc))->server, session->server))
			taken = true;
		if (!taken)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			idle_sessions = lappend(idle_sessions, session);
			MemoryContextSwitchTo(old);
			return;
		}
	}
	session_finish(session);
}

/* Closes the idle shareable sessions (before a fleet run: its budgets). */
void
tenancy_remote_close_idle(void)
{
	while (idle_sessions != NIL)
		session_finish((RemoteSession *) linitial(idle_sessions));
}

/* Closes every tracked session; safe in error paths. */
void
tenancy_remote_close_all(void)
{
	while (open_sessions != NIL)
		session_finish((RemoteSession *) linitial(open_sessions));
	idle_sessions = NIL;
}

/*
 * Sends "sql" without waiting: with no parameters and not "single" as a
 * simple query (one or more statements), otherwise as one statement
 * (extended protocol: a text the server reads as several is refused
 * there, 42601) with text parameters $1..$n (NULL elements for SQL NULL).
 * Returns false with *error set (a lost connection) if it could not be
 * sent.
 */
static bool
send_typed(RemoteSession *session, const char *sql, int nparams, const Oid *types,
		   const char *const *params, bool single, RemoteError **error)
{
	int			ok;

	*error = NULL;
	if (nparams == 0 && !single)
		ok = PQsendQuery(session->conn, sql);
	else
		ok = PQsendQueryParams(session->conn, sql, nparams, types, params, NULL, NULL, 0);
	if (!ok)
	{
		*error = lost_connection(PQerrorMessage(session->conn));
		return false;
	}
	session->busy = true;
	return true;
}

bool
tenancy_remote_send(RemoteSession *session, const char *sql, int nparams,
					const char *const *params, RemoteError **error)
{
	return send_typed(session, sql, nparams, NULL, params, false, error);
}

/*
 * Sends "sql" as one statement, without parameters: for a migration's
 * statements, so that a text the server splits differently from
 * tenancy's parser cannot run a second statement unseen.
 */
bool
tenancy_remote_send_statement(RemoteSession *session, const char *sql, RemoteError **error)
{
	return send_typed(session, sql, 0, NULL, NULL, true, error);
}

/* Can the session be read without blocking (a result, or it broke)? */
bool
tenancy_remote_ready(RemoteSession *session)
{
	if (session->connecting || !session->busy)
		return true;
	if (!PQconsumeInput(session->conn))
		return true;			/* broken: collecting will report it */
	return !PQisBusy(session->conn);
}

/*
 * Waits until at least one of the sessions has something to read (or, if
 * connecting, can go on connecting), the latch is set or timeout_ms
 * passes; interruptible (a cancel or timeout of the caller throws here).
 */
void
tenancy_remote_wait(RemoteSession **sessions, int n, long timeout_ms)
{
	WaitEventSet *set = CreateWaitEventSet(CurrentMemoryContext, n + 2);
	WaitEvent	event;
	int			i;

	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < n; i++)
	{
		RemoteSession *rs = sessions[i];

		if (rs == NULL || PQsocket(rs->conn) < 0)
			continue;
		if (rs->connecting)
			AddWaitEventToSet(set, rs->poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE,
							  PQsocket(rs->conn), NULL, NULL);
		else if (rs->busy)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, PQsocket(rs->conn), NULL, NULL);
	}
	(void) WaitEventSetWait(set, timeout_ms, &event, 1, PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* Copies the rows of a result (text, NULL for SQL NULL). */
static List *
copy_rows(const PGresult *res)
{
	List	   *rows = NIL;
	int			nfields = PQnfields(res);
	int			i,
				j;

	for (i = 0; i < PQntuples(res); i++)
	{
		char	  **row = palloc(sizeof(char *) * Max(nfields, 1));

		for (j = 0; j < nfields; j++)
			row[j] = PQgetisnull(res, i, j) ? NULL : pstrdup(PQgetvalue(res, i, j));
		rows = lappend(rows, row);
	}
	return rows;
}

/* Records one result in *r (see tenancy_remote_collect). */
static void
take_result(RemoteSession *session, PGresult *res, bool want_rows, RemoteResult *r)
{
	switch (PQresultStatus(res))
	{
		case PGRES_TUPLES_OK:
		case PGRES_COMMAND_OK:
		case PGRES_EMPTY_QUERY:
			if (r->error == NULL)
			{
				r->status = pstrdup(PQcmdStatus(res));
				r->nfields = PQresultStatus(res) == PGRES_TUPLES_OK ? PQnfields(res) : -1;
				r->rows = want_rows && r->nfields >= 0 ? copy_rows(res) : NIL;
			}
			break;
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			/* no COPY from or to the client: the session ends */
			if (r->error == NULL)
				r->error = tenancy_remote_error("0A000",
												"COPY from or to the client is not supported in tenancy's remote sessions",
												NULL, NULL);
			r->broken = true;
			break;
		default:
			if (r->error == NULL)
				r->error = tenancy_remote_error(PQresultErrorField(res, PG_DIAG_SQLSTATE),
												PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?
												PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) :
												PQerrorMessage(session->conn),
												PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL),
												PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
			break;
	}
}

/*
 * Does the server still read what tenancy sends as tenancy's parser does:
 * client_encoding the database's (as the connection set it), and
 * standard_conforming_strings on?  Both are reported by the server
 * whenever they change (ParameterStatus), so asking costs no round trip.
 */
static bool
reads_as_sent(RemoteSession *session)
{
	const char *encoding = PQparameterStatus(session->conn, "client_encoding");
	const char *strings = PQparameterStatus(session->conn, "standard_conforming_strings");

	return encoding != NULL && pg_strcasecmp(encoding, GetDatabaseEncodingName()) == 0 &&
		strings != NULL && strcmp(strings, "on") == 0;
}

/*
 * Reads the results of the query sent last that have arrived, into *r
 * (zeroed by the caller before it sent the query, nfields -1): the command
 * status and, with want_rows, the rows of the last result; the first
 * error; whether the session broke (then the error is a lost connection)
 * or was left inside a transaction block.  Returns true once every result
 * is read, false if more are to come (wait, then call again).  Never
 * blocks: call it when tenancy_remote_ready() says so.  Results in
 * CurrentMemoryContext.
 */
bool
tenancy_remote_collect(RemoteSession *session, bool want_rows, RemoteResult *r)
{
	PGresult   *res;

	while (!r->broken && tenancy_remote_ready(session))
	{
		res = PQgetResult(session->conn);
		if (res == NULL)
			break;
		take_result(session, res, want_rows, r);
		PQclear(res);
	}
	if (!r->broken && PQstatus(session->conn) != CONNECTION_BAD && PQisBusy(session->conn))
		return false;

	session->busy = false;
	if (PQstatus(session->conn) == CONNECTION_BAD)
		r->broken = true;
	/* a remote 57P0x (its termination) reads to a client as its own: 08006 */
	if ((r->broken || (r->error != NULL && strncmp(r->error->sqlstate, "57P0", 4) == 0)) &&
		(r->error == NULL || strcmp(r->error->sqlstate, "08006") != 0))
		r->error = lost_connection(r->error ? r->error->message : PQerrorMessage(session->conn));
	r->in_transaction = !r->broken && PQtransactionStatus(session->conn) != PQTRANS_IDLE;

	/*
	 * tenancy builds SQL with literals quoted for the settings a session
	 * starts with, and reads SQL as it does (a migration's statements, a
	 * member's routed SQL, tenancy's own queries); once something changed
	 * them (the SQL sent, or a constraint, trigger or default firing in
	 * tenancy's own statements), the session must not be used again.
	 */
	if (!r->broken && !reads_as_sent(session))
	{
		r->broken = true;
		r->error = tenancy_remote_error("0A000",
										"the remote session no longer reads SQL as tenancy sends it",
										"Its client_encoding or standard_conforming_strings was changed (by the SQL sent, or by a function, constraint, trigger or default it ran).",
										"Leave both as the session starts: standard_conforming_strings on, the database's encoding.");
	}
	return true;
}

/*
 * Sends "sql" (see tenancy_remote_send) and waits for all of its results,
 * interruptibly: a cancel or timeout of the caller throws here, and the
 * caller must then close the session (that cancels the remote statement).
 * Fills *r as tenancy_remote_collect does; never raises a remote error.
 */
static void
call_typed(RemoteSession *session, const char *sql, int nparams, const Oid *types,
		   const char *const *params, bool single, bool want_rows, RemoteResult *r)
{
	RemoteError *error;

	memset(r, 0, sizeof(*r));
	r->nfields = -1;
	if (!send_typed(session, sql, nparams, types, params, single, &error))
	{
		r->error = error;
		r->broken = true;
		return;
	}
	for (;;)
	{
		while (!tenancy_remote_ready(session))
			tenancy_remote_wait(&session, 1, 1000);
		if (tenancy_remote_collect(session, want_rows, r))
			break;
	}
}

void
tenancy_remote_call(RemoteSession *session, const char *sql, int nparams,
					const char *const *params, bool want_rows, RemoteResult *r)
{
	call_typed(session, sql, nparams, NULL, params, false, want_rows, r);
}

/* tenancy_remote_call() of one statement (see tenancy_remote_send_statement). */
void
tenancy_remote_call_statement(RemoteSession *session, const char *sql, bool want_rows,
							  RemoteResult *r)
{
	call_typed(session, sql, 0, NULL, NULL, true, want_rows, r);
}

/*
 * tenancy_remote_call() of one statement with an application's bind
 * parameters, in text.  Built-in types are sent as such (their OIDs are the
 * same on every server); others as unknown, for the server to infer.
 */
void
tenancy_remote_call_params(RemoteSession *session, const char *sql,
						   const StatementParams *params, bool want_rows, RemoteResult *r)
{
	Oid		   *types = palloc(sizeof(Oid) * Max(params->n, 1));
	int			i;

	for (i = 0; i < params->n; i++)
		types[i] = params->types[i] < FirstGenbkiObjectId ? params->types[i] : InvalidOid;
	call_typed(session, sql, params->n, types, params->text, false, want_rows, r);
}

/* Runs a remote command; a remote failure is raised. */
void
tenancy_remote_exec(RemoteSession *session, const char *sql)
{
	RemoteResult r;

	tenancy_remote_call(session, sql, 0, NULL, false, &r);
	if (r.error != NULL)
		tenancy_remote_raise(r.error);
}

/*
 * Runs a remote query and returns its rows (char *[ncolumns], NULL for
 * SQL NULL) in CurrentMemoryContext.  A remote failure is raised, and so
 * is a result with fewer columns than expected (08P01: whatever a tenant
 * server sends is checked before it is read).
 */
List *
tenancy_remote_query(RemoteSession *session, const char *sql, int ncolumns)
{
	RemoteResult r;

	tenancy_remote_call(session, sql, 0, NULL, true, &r);
	if (r.error != NULL)
		tenancy_remote_raise(r.error);
	if (r.nfields < ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("remote query returned %d columns instead of %d", r.nfields, ncolumns)));
	return r.rows;
}

/*
 * Runs a list of remote commands (char *), in order and each on its own
 * (autocommit), as the service role on a session opened and closed for
 * them ("dbname" NULL: the server's maintenance database).
 */
void
tenancy_remote_run(const char *server, const char *dbname, const char *appname,
				   List *commands)
{
	RemoteSession *session = tenancy_remote_open(CONNINFO_SERVICE, server, dbname, appname);

	PG_TRY();
	{
		ListCell   *lc;

		foreach(lc, commands)
			tenancy_remote_exec(session, (const char *) lfirst(lc));
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
}
