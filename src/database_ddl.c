/*-------------------------------------------------------------------------
 *
 * database_ddl.c
 *	  Database-level commands (CREATE, DROP, ALTER DATABASE, GRANT ON
 *	  DATABASE) for tenant databases and templates, on this cluster or a
 *	  tenant server.  Names are quoted here, never by callers.
 *
 * CREATE and DROP DATABASE cannot run inside a transaction block, so they
 * run through a session of their own (remote.c) and commit there,
 * whatever the caller's transaction does.  Transactional commands (ALTER
 * DATABASE ... RENAME, GRANT/REVOKE ON DATABASE) run, on this cluster, in
 * the caller's transaction as the role that owns tenant databases, so
 * that they commit or roll back with the catalog rows written beside them
 * (and work on a database the caller's transaction has just renamed into
 * place); on a tenant server they commit there on their own.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/database_ddl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "conninfo.h"
#include "database_ddl.h"
#include "remote.h"
#include "scope.h"

/*
 * CREATE DATABASE "dbname" TEMPLATE "template_db", closed to connections
 * (ALLOW_CONNECTIONS false, superusers included) unless "open"
 */
char *
tenancy_ddl_create_database(const char *dbname, const char *template_db, bool open)
{
	return psprintf("CREATE DATABASE %s TEMPLATE %s%s",
					quote_identifier(dbname), quote_identifier(template_db),
					open ? "" : " ALLOW_CONNECTIONS false");
}

/* Makes a database reachable only by roles granted CONNECT explicitly. */
char *
tenancy_ddl_revoke_public(const char *dbname)
{
	return psprintf("REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC",
					quote_identifier(dbname));
}

/* DROP DATABASE, optionally terminating the sessions connected to it. */
char *
tenancy_ddl_drop_database(const char *dbname, bool force)
{
	return psprintf("DROP DATABASE IF EXISTS %s%s", quote_identifier(dbname),
					force ? " WITH (FORCE)" : "");
}

/* ALTER DATABASE ... WITH ALLOW_CONNECTIONS true|false */
char *
tenancy_ddl_allow_connections(const char *dbname, bool allow)
{
	return psprintf("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %s",
					quote_identifier(dbname), allow ? "true" : "false");
}

/*
 * Does database "dbname" exist on "server"?  For this cluster, answered
 * from the local catalog without a connection.
 */
bool
tenancy_ddl_database_exists(const char *server, const char *dbname)
{
	if (server == NULL)
		return OidIsValid(get_database_oid(dbname, true));
	return tenancy_ddl_databases_existing(server, list_make1((char *) dbname)) != NIL;
}

/*
 * Whether database "dbname" exists on "server" (NULL: this cluster), and in
 * *comment its COMMENT (NULL if none): one query, on a session of its own
 * for another server.
 */
bool
tenancy_ddl_database_comment(const char *server, const char *dbname, char **comment)
{
	const char *sql = "SELECT pg_catalog.shobj_description(d.oid, 'pg_database') "
	"FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) $1";
	bool		exists;

	*comment = NULL;
	if (server == NULL)
	{
		PrivilegeScope scope;
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(dbname)};

		tenancy_scope_enter(&scope, GetUserId(), SCOPE_PIN_PATH);
		exists = tenancy_scope_exec(sql, 1, types, values, NULL, true, SPI_OK_SELECT) > 0;
		if (exists)
		{
			char	   *c = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			*comment = c ? MemoryContextStrdup(scope.caller_context, c) : NULL;
		}
		tenancy_scope_leave(&scope);
	}
	else
	{
		RemoteSession *session = tenancy_remote_open(CONNINFO_SERVICE, server, NULL, "tenancy/check");
		RemoteResult r;
		const char *params[1] = {dbname};

		PG_TRY();
		{
			tenancy_remote_call(session, sql, 1, params, true, &r);
			if (r.error != NULL)
				tenancy_remote_raise(r.error);
		}
		PG_FINALLY();
		{
			tenancy_remote_close(session);
		}
		PG_END_TRY();
		exists = r.nfields == 1 && list_length(r.rows) == 1;
		if (exists && ((char **) linitial(r.rows))[0] != NULL)
			*comment = pstrdup(((char **) linitial(r.rows))[0]);
	}
	return exists;
}

/*
 * Which of "dbnames" (a List of char *) exist on "server" (not NULL), in
 * one query on one session: a List of the names found.
 */
List *
tenancy_ddl_databases_existing(const char *server, List *dbnames)
{
	RemoteSession *session;
	RemoteResult r;
	StringInfoData sql;
	const char **params = palloc(sizeof(char *) * list_length(dbnames));
	List	   *found;
	ListCell   *lc;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT datname::pg_catalog.text FROM pg_catalog.pg_database "
						   "WHERE datname OPERATOR(pg_catalog.=) ANY (ARRAY[");
	foreach(lc, dbnames)
	{
		appendStringInfo(&sql, "%s$%d", foreach_current_index(lc) > 0 ? ", " : "",
						 foreach_current_index(lc) + 1);
		params[foreach_current_index(lc)] = (const char *) lfirst(lc);
	}
	appendStringInfoString(&sql, "]::pg_catalog.name[])");

	session = tenancy_remote_open(CONNINFO_SERVICE, server, NULL, "tenancy/check");
	PG_TRY();
	{
		tenancy_remote_call(session, sql.data, list_length(dbnames), params, true, &r);
		if (r.error != NULL)
			tenancy_remote_raise(r.error);
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
	found = NIL;
	foreach(lc, r.rows)
		if (r.nfields == 1 && ((char **) lfirst(lc))[0] != NULL)
		found = lappend(found, pstrdup(((char **) lfirst(lc))[0]));
	return found;
}

/*
 * Runs a transactional database-level command: on this cluster (server
 * NULL) in the caller's transaction as the role that owns tenant
 * databases; on a tenant server there, committed on its own.
 */
void
tenancy_ddl_transactional(const char *server, const char *sql)
{
	PrivilegeScope scope;

	if (server != NULL)
	{
		tenancy_remote_run(server, NULL, "tenancy/database", list_make1((char *) sql));
		return;
	}
	tenancy_scope_enter(&scope, tenancy_conninfo_service_role(), SCOPE_PIN_PATH);
	tenancy_scope_exec(sql, 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	tenancy_scope_leave(&scope);
}
