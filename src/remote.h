/*-------------------------------------------------------------------------
 *
 * remote.h
 *	  Sessions on tenant servers (libpq), their results, and the one path
 *	  by which a remote failure becomes a local error.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/remote.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_REMOTE_H
#define TENANCY_REMOTE_H

#include "nodes/pg_list.h"

#include "conninfo.h"

/* A libpq session; opaque outside remote.c. */
typedef struct RemoteSession RemoteSession;

/* A remote failure, in the fields PostgreSQL reports. */
typedef struct RemoteError
{
	char	   *sqlstate;		/* five characters, always valid */
	char	   *message;
	char	   *detail;			/* or NULL */
	char	   *hint;			/* or NULL */
} RemoteError;

/* What a query sent on a session returned. */
typedef struct RemoteResult
{
	char	   *status;			/* command status of the last result */
	int			nfields;		/* its columns; -1 if it returned no rows */
	List	   *rows;			/* its rows: char *[nfields], NULL for NULL */
	RemoteError *error;			/* the first error, or NULL */
	bool		broken;			/* the session cannot be used again (lost, or
								 * a service session whose reading of SQL
								 * changed: 0A000) */
	bool		in_transaction; /* left inside a transaction block */
} RemoteResult;

/*
 * Bind parameters of an application's statement (tenancy.exec() and
 * tenancy.query() with arguments after the SQL): each one's type, its
 * value as a datum (what SPI takes) and as text (what libpq sends; NULL for
 * SQL NULL).
 */
typedef struct StatementParams
{
	int			n;
	Oid		   *types;
	Datum	   *values;
	char	   *nulls;			/* SPI's: 'n' for NULL, ' ' otherwise */
	const char **text;
} StatementParams;

extern void tenancy_remote_init(void);

/* opening and closing */
extern RemoteSession *tenancy_remote_start(ConninfoKind kind, const char *server,
										   const char *dbname, const char *appname);
extern bool tenancy_remote_connected(RemoteSession *session, RemoteError **error);
extern RemoteSession *tenancy_remote_open(ConninfoKind kind, const char *server,
										  const char *dbname, const char *appname);
extern void tenancy_remote_keep(RemoteSession *session, const char *tenant);
extern void tenancy_remote_check_here(RemoteSession *session, const char *server);
extern void tenancy_remote_close(RemoteSession *session);
extern void tenancy_remote_close_idle(void);
extern void tenancy_remote_close_all(void);

/* asynchronous queries */
extern bool tenancy_remote_send(RemoteSession *session, const char *sql, int nparams,
								const char *const *params, RemoteError **error);
extern bool tenancy_remote_send_statement(RemoteSession *session, const char *sql,
										  RemoteError **error);
extern bool tenancy_remote_ready(RemoteSession *session);
extern void tenancy_remote_wait(RemoteSession **sessions, int n, long timeout_ms);
extern bool tenancy_remote_collect(RemoteSession *session, bool want_rows, RemoteResult *r);

/* waiting for one */
extern void tenancy_remote_call_params(RemoteSession *session, const char *sql,
									   const StatementParams *params, bool want_rows,
									   RemoteResult *r);
extern void tenancy_remote_call(RemoteSession *session, const char *sql, int nparams,
								const char *const *params, bool want_rows, RemoteResult *r);
extern void tenancy_remote_call_statement(RemoteSession *session, const char *sql,
										  bool want_rows, RemoteResult *r);
extern void tenancy_remote_exec(RemoteSession *session, const char *sql);
extern List *tenancy_remote_query(RemoteSession *session, const char *sql, int ncolumns);
extern void tenancy_remote_run(const char *server, const char *dbname, const char *appname,
							   List *commands);

extern bool tenancy_remote_is_number(const char *s);

/* the one remote-error path */
extern RemoteError *tenancy_remote_error(const char *sqlstate, const char *message,
										 const char *detail, const char *hint);
extern void tenancy_remote_raise(const RemoteError *error) pg_attribute_noreturn();
extern char *tenancy_remote_error_text(const RemoteError *error);

#endif							/* TENANCY_REMOTE_H */
