/*-------------------------------------------------------------------------
 *
 * transport.h
 *	  The only interface to dblink: connections to tenant servers, remote
 *	  commands and queries, and the builders of remote SQL.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/transport.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_TRANSPORT_H
#define TENANCY_TRANSPORT_H

#include "fmgr.h"
#include "nodes/pg_list.h"

/* An open, named dblink connection owned by tenancy. */
typedef struct TransportConn
{
	char		name[NAMEDATALEN];
	Oid			exec_fn;
	Oid			query_fn;
	FmgrInfo	disconnect_fn;	/* resolved up front: used in error paths */
	bool		open;
} TransportConn;

/* An asynchronous libpq session (fleet work); opaque outside transport.c. */
typedef struct RemoteSession RemoteSession;

/* Work done on a connection by tenancy_transport_run(). */
typedef void (*TransportWork) (TransportConn *conn, void *arg);

extern TransportConn *tenancy_transport_connect(const char *server,
												const char *dbname,
												const char *appname);
extern void tenancy_transport_disconnect(TransportConn *conn);
extern void tenancy_transport_run(const char *server, const char *dbname,
								  const char *appname,
								  TransportWork work, void *arg);
extern void tenancy_transport_exec_list(const char *server, const char *dbname,
										const char *appname, List *commands);
extern void tenancy_transport_exec(TransportConn *conn, const char *sql);
extern List *tenancy_transport_query(TransportConn *conn, const char *sql,
									 int ncolumns);
extern char *tenancy_transport_query_value(TransportConn *conn, const char *sql);
extern bool tenancy_transport_database_exists(const char *server,
											  const char *dbname);
extern void tenancy_transport_check_server(const char *server);
extern void tenancy_transport_set_identity(Oid role, const char *server);
extern Oid	tenancy_transport_owner_role(void);
extern char *tenancy_transport_appname(const char *tenant);
extern char *tenancy_transport_public_conninfo(const char *server, const char *dbname,
											   const char *search_path);
extern void tenancy_transport_rename_database(const char *server, const char *from,
											  const char *to);
extern void tenancy_transport_grant_connect(const char *server, const char *dbname,
											const char *role, bool grant);

extern RemoteSession *tenancy_transport_session_open(const char *server, const char *dbname,
													 const char *appname);
extern RemoteSession *tenancy_transport_session_start(const char *server, const char *dbname,
													  const char *appname);
extern bool tenancy_transport_session_connected(RemoteSession *session, char **sqlstate,
												char **message);
extern void tenancy_transport_session_close(RemoteSession *session);
extern void tenancy_transport_sessions_close_all(void);
extern bool tenancy_transport_session_send(RemoteSession *session, const char *sql,
										   char **message);
extern bool tenancy_transport_session_ready(RemoteSession *session);
extern void tenancy_transport_sessions_wait(RemoteSession **sessions, int n, long timeout_ms);
extern List *tenancy_transport_session_result(RemoteSession *session, int ncolumns,
											  char **sqlstate, char **message);

/* One query of tenancy_transport_parallel_queries(). */
typedef struct ParallelQuery
{
	const char *server;			/* NULL: this cluster */
	const char *dbname;			/* NULL: the maintenance database */
	const char *appname;
	const char *sql;
	int			ncolumns;
	List	   *rows;			/* out: char *[ncolumns] */
	char	   *sqlstate;		/* out: NULL on success */
	char	   *message;
} ParallelQuery;

extern void tenancy_transport_parallel_queries(ParallelQuery *queries, int n, int parallel);
extern char *tenancy_transport_sql_databases_stats(List *dbnames);

/* What a routed statement (tenancy.exec, tenancy.query) returned. */
typedef struct RoutedResult
{
	char	   *status;			/* command status of the last result */
	int			nfields;		/* its columns; -1 if it returned no rows */
	List	   *rows;			/* char *[nfields], NULL for SQL NULL */
	char	   *sqlstate;		/* first error, or NULL */
	char	   *message;
	char	   *detail;
	char	   *hint;
	bool		in_transaction; /* the session was left in a transaction block */
	bool		broken;			/* the session cannot be used again */
} RoutedResult;

extern RemoteSession *tenancy_transport_routed_open(const char *server, const char *dbname,
													const char *appname, const char *tenant);
extern void tenancy_transport_routed_run(RemoteSession *session, const char *sql, bool want_rows,
										 RoutedResult *r);
extern void tenancy_transport_routed_close(RemoteSession *session);

/* Remote SQL builders: names are quoted here, never by callers. */
extern char *tenancy_transport_sql_create_database(const char *dbname,
												   const char *template_db);
extern char *tenancy_transport_sql_revoke_public(const char *dbname);
extern char *tenancy_transport_sql_drop_database(const char *dbname, bool force);
extern char *tenancy_transport_sql_allow_connections(const char *dbname, bool allow);
extern char *tenancy_transport_sql_exists_database(const char *dbname);
extern char *tenancy_transport_sql_database_stats(const char *dbname);
extern char *tenancy_transport_sql_ledger_insert(int64 version, const char *checksum,
												 const char *schema);
extern char *tenancy_transport_sql_ledger_read(const char *schema);
extern char *tenancy_transport_sql_ledger_lock(const char *schema);
extern char *tenancy_transport_sql_foreign_triggers(const char *schema);
extern char *tenancy_transport_sql_trigger_guard(const char *schema);
extern void tenancy_transport_foreign_trigger_error(char **row);
extern char *tenancy_transport_sql_cleanup_record(int64 operation_id, const char *tenant,
												  const char *server, const char *database_name,
												  const char *final_name);
extern char *tenancy_transport_sql_cleanup_forget(int64 operation_id);
extern char *tenancy_transport_sql_set_state(const char *tenant, const char *state,
											 const char *last_error);
extern char *tenancy_transport_sql_delete_tenant(const char *tenant);
extern char *tenancy_transport_sql_migration_script(int64 version, const char *sql,
													const char *checksum, const char *schema);
extern char *tenancy_transport_sql_record_progress(const char *tenant, const char *status,
												   int64 from_version, int64 to_version,
												   const char *sqlstate, const char *error);

/*
 * Fixed remote statements for the per-tenant migration ledger, which lives
 * in the tenant database as tenancy.applied_migration.  Everything is
 * schema-qualified: remote sessions run with an empty search_path.
 */
#define TRANSPORT_SQL_LEDGER_SETUP \
	"CREATE SCHEMA IF NOT EXISTS tenancy; " \
	"CREATE TABLE IF NOT EXISTS tenancy.applied_migration (" \
	"version bigint PRIMARY KEY, " \
	"checksum text NOT NULL, " \
	"applied_at timestamptz NOT NULL DEFAULT pg_catalog.now(), " \
	"duration interval NOT NULL); " \
	"COMMENT ON TABLE tenancy.applied_migration IS " \
	"'tenancy migration ledger: one row per migration applied to this database, written in the migration''s own transaction'"
#define TRANSPORT_SQL_LEDGER_MAX \
	"SELECT pg_catalog.max(version)::text FROM tenancy.applied_migration"
#define TRANSPORT_SQL_XACT_ID \
	"SELECT pg_catalog.pg_current_xact_id()::text"

#endif							/* TENANCY_TRANSPORT_H */
