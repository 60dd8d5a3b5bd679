/*-------------------------------------------------------------------------
 *
 * conninfo.c
 *	  Who remote work runs as, and the libpq connection strings that reach
 *	  tenant servers: built here and only here.
 *
 * tenancy's own remote work (provisioning, migrations, health, autonomous
 * catalog writes) runs as the service role named by tenancy.configure():
 * for this cluster through the loopback server, for a tenant server
 * through that dblink foreign server, in both cases with the service
 * role's user mapping.  Unconfigured, it runs as the calling superuser
 * over the local socket.  Routed SQL (tenancy.exec, tenancy.query) runs
 * as the calling role with its own user mapping.
 *
 * A connection string holds host, port and the other options of the
 * foreign server and of the user mapping (which may hold a password: it
 * is passed to libpq as a value, wiped after use and never printed), the
 * database, an application_name naming the tenant, and, for tenancy's own
 * sessions, an empty search_path, lock, statement and idle-in-transaction
 * timeouts; every session uses this database's encoding and
 * standard_conforming_strings (the migration engine parses migrations
 * here with the same setting).  Values are escaped by libpq's rules.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/conninfo.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "libpq-fe.h"

#include "conninfo.h"
#include "guc.h"

/*
 * Who tenancy's own remote work runs as (tenancy_conninfo_set_identity):
 * the configured service role and the foreign server that reaches this
 * cluster, or, when tenancy is not configured, the calling superuser over
 * the local socket.
 */
static Oid	service_role = InvalidOid;
static char *loopback_server = NULL;

/*
 * Sets who remote work runs as, for the rest of this call: "role" (a
 * non-superuser with CREATEDB whose user mappings hold its credentials) and
 * "server", the dblink foreign server that reaches this cluster; or, with
 * InvalidOid, the current user, who must then be a superuser (only
 * superusers may connect without a password, dblink's rule).  Raises 42501
 * otherwise.
 */
void
tenancy_conninfo_set_identity(Oid role, const char *server)
{
	if (!OidIsValid(role) && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to run tenancy operations"),
				 errdetail("No service role is configured, so only superusers can provision, migrate or drop tenants."),
				 errhint("A superuser can name one with tenancy.configure().")));
	service_role = role;
	if (loopback_server)
		pfree(loopback_server);
	loopback_server = server ? MemoryContextStrdup(TopMemoryContext, server) : NULL;
}

/* The foreign server that reaches this cluster, or NULL (the local socket). */
const char *
tenancy_conninfo_loopback(void)
{
	return loopback_server;
}

/*
 * The role tenancy's own sessions authenticate as, which also owns what
 * tenancy creates for tenants (databases, schemas) and runs their
 * migrations: the service role, or the calling superuser.
 */
Oid
tenancy_conninfo_service_role(void)
{
	return OidIsValid(service_role) ? service_role : GetUserId();
}

/* Appends key='value' to a conninfo string, escaped by libpq's rules. */
static void
append_conninfo(StringInfo buf, const char *key, const char *value)
{
	const char *p;

	appendStringInfo(buf, "%s='", key);
	for (p = value; *p; p++)
	{
		if (*p == '\\' || *p == '\'')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoString(buf, "' ");
}

/* Host (socket directory or address) and port this cluster is reached on. */
static void
append_loopback(StringInfo buf)
{
	char		port[16];
	const char *host = "localhost";

	if (tenancy_loopback_host != NULL && tenancy_loopback_host[0] != '\0')
		host = tenancy_loopback_host;
	else if (Unix_socket_directories != NULL && Unix_socket_directories[0] != '\0')
	{
		char	   *dirs = pstrdup(Unix_socket_directories);
		List	   *elems;

		if (SplitDirectoriesString(dirs, ',', &elems) && elems != NIL)
			host = (char *) linitial(elems);
	}
	snprintf(port, sizeof(port), "%d", PostPortNumber);
	append_conninfo(buf, "host", host);
	append_conninfo(buf, "port", port);
}

/*
 * Name of the database to run server-level commands in (CREATE and DROP
 * DATABASE): on this cluster, the admin database; on a foreign server, its
 * dbname option, else "postgres".
 */
static const char *
maintenance_database(const char *server)
{
	ForeignServer *fs;
	ListCell   *lc;

	if (server == NULL)
		return get_database_name(MyDatabaseId);
	fs = GetForeignServerByName(server, false);
	foreach(lc, fs->options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, "dbname") == 0)
			return defGetString(d);
	}
	return "postgres";
}

/*
 * Checks that "server" names a foreign server with a user mapping for the
 * service role, and that the service role cannot read that mapping's
 * options: 42704 or 42501.  pg_user_mappings shows a mapping's options
 * (its password) to the mapped role when it holds USAGE on the server or
 * owns it, and a schema tenant's migration runs as the service role in
 * this database, so either would hand the password to any migration.
 * tenancy reads the mapping itself and needs no USAGE; who may place
 * tenants on a server is the caller's USAGE (tenancy_conninfo_check_caller).
 * Unconfigured, remote work runs as a superuser, who sees everything
 * anyway.
 */
void
tenancy_conninfo_check_server(const char *server)
{
	ForeignServer *fs = GetForeignServerByName(server, false);
	Oid			role = tenancy_conninfo_service_role();

	(void) GetUserMapping(role, fs->serverid);
	if (!OidIsValid(service_role))
		return;
	if (has_privs_of_role(role, fs->owner) ||
		pg_foreign_server_aclcheck(fs->serverid, role, ACL_USAGE) == ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("service role \"%s\" can read its own user mapping for server \"%s\"",
						GetUserNameFromId(role, false), fs->servername),
				 errdetail("It %s the server, so pg_user_mappings shows it the mapping's password, and a schema tenant's migration runs as the service role.",
						   has_privs_of_role(role, fs->owner) ? "owns" : "holds USAGE on"),
				 errhint("REVOKE USAGE ON FOREIGN SERVER %s FROM %s (and from PUBLIC), and leave the server to another owner: tenancy reads the mapping itself.",
						 quote_identifier(fs->servername),
						 quote_identifier(GetUserNameFromId(role, false)))));
}

/*
 * Checks that the calling role may use foreign server "server" (USAGE, as
 * dblink requires) to place a tenant on it: 42704 or 42501.  The loopback
 * server is this cluster, where tenants go without naming a server.
 */
void
tenancy_conninfo_check_caller(const char *server)
{
	if (loopback_server != NULL && strcmp(server, loopback_server) == 0)
		return;
	tenancy_conninfo_check_usage(server);
}

/*
 * Checks that the current user holds USAGE on foreign server "server", as
 * dblink requires to connect through it: 42704 or 42501.
 */
void
tenancy_conninfo_check_usage(const char *server)
{
	ForeignServer *fs = GetForeignServerByName(server, false);
	AclResult	aclresult;

	aclresult = pg_foreign_server_aclcheck(fs->serverid, GetUserId(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, fs->servername);
}

/*
 * Appends the options of foreign server "server" and of "role"'s user
 * mapping for it (but not dbname, application_name and options, which are
 * tenancy's).  A non-superuser's mapping must carry a password, dblink's
 * rule (dblink_connstr_check), so that no password file or environment of
 * this server's can log it in as someone else: 2F003 otherwise.
 */
static void
append_server(StringInfo buf, const char *server, Oid role)
{
	ForeignServer *fs = GetForeignServerByName(server, false);
	UserMapping *um = GetUserMapping(role, fs->serverid);
	ListCell   *lc;
	bool		has_password = false;

	foreach(lc, list_concat(list_copy(fs->options), um->options))
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, "password") == 0 && defGetString(d)[0] != '\0')
			has_password = true;
		if (strcmp(d->defname, "dbname") == 0 ||
			strcmp(d->defname, "application_name") == 0 ||
			strcmp(d->defname, "options") == 0)
			continue;
		append_conninfo(buf, d->defname, defGetString(d));
	}
	if (!has_password && !superuser_arg(role))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superusers must provide a password in the user mapping."),
				 errhint("Add a password option to the user mapping of role \"%s\" for server \"%s\".",
						 GetUserNameFromId(role, false), server)));
}

/*
 * Builds the conninfo for database "dbname" (NULL: the maintenance
 * database) on "server" (NULL: this cluster).  CONNINFO_SERVICE sessions
 * run as the service role (through the loopback server for this cluster,
 * once configured) with an empty search_path; CONNINFO_ROUTED sessions run
 * as the current user (the caller passes tenancy's loopback server for
 * this cluster, or NULL for the local socket, which serves only
 * superusers) and keep the database's search_path.  Both get lock and
 * statement timeouts, a bound on idling inside a transaction, and a check
 * every second that tenancy's end of the connection is still there, so a
 * remote statement stops soon after the backend that sent it is killed.
 * The result may hold a password.
 */
char *
tenancy_conninfo_build(ConninfoKind kind, const char *server, const char *dbname,
					   const char *appname)
{
	StringInfoData buf;
	StringInfoData opts;
	char		timeout[16];
	Oid			role = kind == CONNINFO_SERVICE ? tenancy_conninfo_service_role() : GetUserId();

	initStringInfo(&buf);
	if (dbname == NULL)
		dbname = maintenance_database(server);
	if (server == NULL && kind == CONNINFO_SERVICE && loopback_server != NULL)
		server = loopback_server;

	if (server == NULL)
	{
		append_loopback(&buf);
		append_conninfo(&buf, "user", GetUserNameFromId(role, false));
	}
	else
	{
		if (kind == CONNINFO_SERVICE)
			tenancy_conninfo_check_server(server);
		append_server(&buf, server, role);
	}
	append_conninfo(&buf, "dbname", dbname);
	append_conninfo(&buf, "application_name", appname);
	snprintf(timeout, sizeof(timeout), "%d", tenancy_connect_timeout);
	append_conninfo(&buf, "connect_timeout", timeout);
	/* the server converts what it sends to this database's encoding */
	append_conninfo(&buf, "client_encoding", GetDatabaseEncodingName());

	initStringInfo(&opts);
	appendStringInfo(&opts,
					 "%s-c standard_conforming_strings=on -c lock_timeout=%d -c statement_timeout=%d "
					 "-c idle_in_transaction_session_timeout=%d "
					 "-c client_connection_check_interval=1000",
					 kind == CONNINFO_SERVICE ? "-c search_path= " :
					 tenancy_kept_idle_timeout > 0 ?
					 psprintf("-c idle_session_timeout=%d ",
							  tenancy_kept_idle_timeout > INT_MAX - 10000 ? INT_MAX : tenancy_kept_idle_timeout + 10000) : "",
					 tenancy_remote_lock_timeout, tenancy_remote_statement_timeout,
					 Max(tenancy_remote_statement_timeout, 60000));
	append_conninfo(&buf, "options", opts.data);
	return buf.data;
}

/*
 * The conninfo an application uses to connect to "dbname" on "server"
 * directly: where (host, hostaddr, port) and which database, never who or
 * with what password (those are the application's own).  For this cluster,
 * tenancy.loopback_host (or the first socket directory) and the port the
 * server listens on; for a foreign server, its own options.  With
 * "search_path", an options value that sets it.
 */
char *
tenancy_conninfo_public(const char *server, const char *dbname, const char *search_path)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (server == NULL)
		append_loopback(&buf);
	else
	{
		ForeignServer *fs = GetForeignServerByName(server, false);
		ListCell   *lc;

		foreach(lc, fs->options)
		{
			DefElem    *d = (DefElem *) lfirst(lc);

			if (strcmp(d->defname, "host") == 0 || strcmp(d->defname, "hostaddr") == 0 ||
				strcmp(d->defname, "port") == 0)
				append_conninfo(&buf, d->defname, defGetString(d));
		}
	}
	append_conninfo(&buf, "dbname", dbname);
	if (search_path != NULL)
	{
		StringInfoData opt;
		const char *p;

		/* the server splits options at spaces; a backslash escapes one */
		initStringInfo(&opt);
		appendStringInfoString(&opt, "-csearch_path=");
		for (p = search_path; *p; p++)
		{
			if (*p == ' ' || *p == '\\')
				appendStringInfoChar(&opt, '\\');
			appendStringInfoChar(&opt, *p);
		}
		append_conninfo(&buf, "options", opt.data);
	}
	buf.data[--buf.len] = '\0'; /* drop the trailing space */
	return buf.data;
}

/* Appends "s" percent-encoded (RFC 3986: all but unreserved characters). */
static void
append_percent_encoded(StringInfo buf, const char *s)
{
	const unsigned char *p;

	for (p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(buf, *p);
		else
			appendStringInfo(buf, "%%%02X", *p);
	}
}

/*
 * A connection string of tenancy_conninfo_public() as a URI:
 * postgresql://host:port/dbname?key=value..., every part percent-encoded
 * (a socket directory as host too, which libpq and node-postgres decode).
 */
char *
tenancy_conninfo_uri(const char *conninfo)
{
	char	   *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	PQconninfoOption *o;
	StringInfoData buf;
	const char *host = NULL;
	const char *port = NULL;
	const char *dbname = NULL;
	bool		first = true;

	if (opts == NULL)
		elog(ERROR, "could not parse a connection string: %s", err ? err : "out of memory");
	for (o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			dbname = o->val;
	}
	initStringInfo(&buf);
	appendStringInfoString(&buf, "postgresql://");
	if (host != NULL)
		append_percent_encoded(&buf, host);
	if (port != NULL)
		appendStringInfo(&buf, ":%s", port);
	appendStringInfoChar(&buf, '/');
	if (dbname != NULL)
		append_percent_encoded(&buf, dbname);
	for (o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL || strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "port") == 0 ||
			strcmp(o->keyword, "dbname") == 0)
			continue;
		appendStringInfo(&buf, "%s%s=", first ? "?" : "&", o->keyword);
		append_percent_encoded(&buf, o->val);
		first = false;
	}
	PQconninfoFree(opts);
	return buf.data;
}

/*
 * application_name of tenancy's remote sessions for a tenant, so they can
 * be found in pg_stat_activity.
 */
char *
tenancy_conninfo_appname(const char *tenant)
{
	return psprintf("tenancy/%s", tenant);
}
