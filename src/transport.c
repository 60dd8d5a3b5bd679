/*-------------------------------------------------------------------------
 *
 * transport.c
 *	  The only code in tenancy that talks to dblink.
 *
 * dblink's functions are called through the function manager, by OID,
 * after resolving dblink's schema from pg_extension at run time: dblink is
 * relocatable, and search_path must never decide which function runs.
 * Calling them directly (rather than through SPI) keeps conninfo strings
 * out of SQL text, so they cannot reach CONTEXT lines or the server log.
 *
 * Connections are named dblink connections ("tenancy_<depth>").  dblink keeps
 * named connections across errors, so every connection is closed on every
 * path: tenancy_transport_run() wraps work in PG_FINALLY.  Closing a
 * connection that is inside a remote transaction rolls that transaction
 * back.
 *
 * Conninfo is built here and only here: for this cluster (server NULL) from
 * the socket directory and port the server listens on; for a dblink
 * foreign server from its options and the caller's user mapping.  Values
 * are escaped by libpq's rules.  Remote sessions get an application_name
 * naming the tenant, an empty search_path, and lock, statement and
 * idle-in-transaction timeouts.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/transport.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "postmaster/postmaster.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/varlena.h"

#include "libpq-fe.h"
#include "storage/latch.h"
#include "utils/wait_event.h"

#include "guc.h"
#include "tenancy.h"
#include "transport.h"

/*
 * Connections are strictly nested (each is closed before its opener
 * returns), so the depth makes a unique, deterministic name.
 */
static int	connection_depth = 0;

/*
 * Who remote work runs as (tenancy_transport_set_identity): the configured
 * service role and the foreign server that reaches this cluster, or, when
 * tenancy is not configured, the calling superuser over the local socket.
 */
static Oid	service_role = InvalidOid;
static char *loopback_server = NULL;

/*
 * Sets who remote work runs as, for the rest of this call: "role" (a
 * non-superuser with CREATEDB whose user mappings hold its credentials) and
 * "server", the dblink foreign server that reaches this cluster; or, with
 * InvalidOid, the current user, who must then be a superuser (dblink lets
 * only superusers connect without a password).  Raises 42501 otherwise.
 */
void
tenancy_transport_set_identity(Oid role, const char *server)
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

/* The role remote connections authenticate as. */
static Oid
remote_role(void)
{
	return OidIsValid(service_role) ? service_role : GetUserId();
}

/*
 * The role that owns what tenancy creates for tenants (databases, schemas)
 * and runs their migrations: the service role, or the calling superuser.
 */
Oid
tenancy_transport_owner_role(void)
{
	return remote_role();
}

/*
 * Schema dblink is installed in.  Raises 55000 if dblink is missing (it is
 * a prerequisite of tenancy, but could have been dropped with CASCADE
 * elsewhere).  Result in CurrentMemoryContext.
 */
static char *
dblink_schema(void)
{
	Oid			extoid = get_extension_oid("dblink", true);
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			nsp = InvalidOid;

	if (!OidIsValid(extoid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"dblink\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION dblink.")));

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(nsp))
		elog(ERROR, "could not find the schema of extension \"dblink\"");
	return get_namespace_name(nsp);
}

/* OID of dblink function "fname" taking "nargs" text arguments (+ bool). */
static Oid
dblink_function(const char *schema, const char *fname, int ntext, bool trailing_bool)
{
	Oid			argtypes[3];
	int			i;

	for (i = 0; i < ntext; i++)
		argtypes[i] = TEXTOID;
	if (trailing_bool)
		argtypes[i++] = BOOLOID;
	return LookupFuncName(list_make2(makeString(pstrdup(schema)), makeString(pstrdup(fname))),
						  i, argtypes, false);
}

static char *build_conninfo_as(const char *server, const char *dbname, const char *appname,
							   Oid role, bool routed);

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

/* Host (socket directory or address) this cluster is reached on. */
static char *
loopback_host(void)
{
	char	   *dirs;
	List	   *elems;

	if (tenancy_loopback_host != NULL && tenancy_loopback_host[0] != '\0')
		return pstrdup(tenancy_loopback_host);
	if (Unix_socket_directories != NULL && Unix_socket_directories[0] != '\0')
	{
		dirs = pstrdup(Unix_socket_directories);
		if (SplitDirectoriesString(dirs, ',', &elems) && elems != NIL)
			return (char *) linitial(elems);
	}
	return pstrdup("localhost");
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
 * Checks that "server" names a foreign server the role remote work runs as
 * may use (USAGE) and has a user mapping for.  Raises 42704 or 42501.
 */
void
tenancy_transport_check_server(const char *server)
{
	ForeignServer *fs = GetForeignServerByName(server, false);
	AclResult	aclresult;

	aclresult = pg_foreign_server_aclcheck(fs->serverid, remote_role(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, fs->servername);
	(void) GetUserMapping(remote_role(), fs->serverid);
}

/*
 * Builds the conninfo for database "dbname" (NULL: the maintenance
 * database) on "server" (NULL: this cluster).  The result may hold a
 * password from a user mapping: it is passed to dblink as a value and never
 * printed.
 */
static char *
build_conninfo(const char *server, const char *dbname, const char *appname)
{
	return build_conninfo_as(server, dbname, appname, remote_role(), false);
}

/*
 * build_conninfo() for "role": its user mapping on the server (or, on this
 * cluster without a loopback server, its name over the local socket).
 * "routed" sessions carry the application's own SQL (tenancy.exec and
 * query), so they keep the tenant database's search_path.
 */
static char *
build_conninfo_as(const char *server, const char *dbname, const char *appname, Oid role,
				  bool routed)
{
	StringInfoData buf;
	StringInfoData opts;

	initStringInfo(&buf);
	if (dbname == NULL)
		dbname = maintenance_database(server);
	/* with a service role, this cluster is reached through its server */
	if (server == NULL && loopback_server != NULL && !routed)
		server = loopback_server;

	if (server == NULL)
	{
		char		port[16];

		snprintf(port, sizeof(port), "%d", PostPortNumber);
		append_conninfo(&buf, "host", loopback_host());
		append_conninfo(&buf, "port", port);
		append_conninfo(&buf, "user", GetUserNameFromId(role, false));
	}
	else
	{
		ForeignServer *fs;
		UserMapping *um;
		ListCell   *lc;
		bool		has_password = false;

		if (!routed)
			tenancy_transport_check_server(server);
		fs = GetForeignServerByName(server, false);
		um = GetUserMapping(role, fs->serverid);
		foreach(lc, list_concat(list_copy(fs->options), um->options))
		{
			DefElem    *d = (DefElem *) lfirst(lc);

			if (strcmp(d->defname, "password") == 0 && defGetString(d)[0] != '\0')
				has_password = true;

			if (strcmp(d->defname, "dbname") == 0 ||
				strcmp(d->defname, "application_name") == 0 ||
				strcmp(d->defname, "options") == 0)
				continue;
			append_conninfo(&buf, d->defname, defGetString(d));
		}

		/*
		 * dblink's rule (dblink_connstr_check): a non-superuser's connection
		 * must carry its own password, so that a password file or
		 * environment of the server's can never log it in as someone else.
		 */
		if (!has_password && !superuser_arg(role))
			ereport(ERROR,
					(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
					 errmsg("password is required"),
					 errdetail("Non-superusers must provide a password in the user mapping."),
					 errhint("Add a password option to the user mapping of role \"%s\" for server \"%s\".",
							 GetUserNameFromId(role, false), server)));
	}
	append_conninfo(&buf, "dbname", dbname);
	append_conninfo(&buf, "application_name", appname);
	{
		char		timeout[16];

		snprintf(timeout, sizeof(timeout), "%d", tenancy_connect_timeout);
		append_conninfo(&buf, "connect_timeout", timeout);
	}
	/*
	 * Remote sessions: empty search_path (migrations qualify names), lock and
	 * statement timeouts, a bound on idling inside a transaction, and a
	 * check every second that tenancy's end of the connection is still
	 * there, so that a remote statement stops soon after the local backend
	 * that sent it is killed, instead of running to completion.
	 */
	initStringInfo(&opts);
	appendStringInfo(&opts,
					 "%s-c lock_timeout=%d -c statement_timeout=%d "
					 "-c idle_in_transaction_session_timeout=%d "
					 "-c client_connection_check_interval=1000",
					 routed ? "" : "-c search_path= ",
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
 * server listens on; for a foreign server, its own options.
 */
char *
tenancy_transport_public_conninfo(const char *server, const char *dbname,
								  const char *search_path)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (server == NULL)
	{
		char		port[16];

		snprintf(port, sizeof(port), "%d", PostPortNumber);
		append_conninfo(&buf, "host", loopback_host());
		append_conninfo(&buf, "port", port);
	}
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
	buf.data[--buf.len] = '\0';	/* drop the trailing space */
	return buf.data;
}

/*
 * Opens a named dblink connection to "dbname" (NULL: the maintenance
 * database) on "server" (NULL: this cluster).  The caller must close it
 * with tenancy_transport_disconnect() on every path; prefer
 * tenancy_transport_run().  Raises dblink's 08001 if the server cannot be
 * reached.  Result in CurrentMemoryContext.
 */
TransportConn *
tenancy_transport_connect(const char *server, const char *dbname, const char *appname)
{
	TransportConn *conn = palloc0(sizeof(TransportConn));
	char	   *schema = dblink_schema();
	char	   *conninfo = build_conninfo(server, dbname, appname);
	Oid			connect_fn = dblink_function(schema, "dblink_connect", 2, false);

	snprintf(conn->name, NAMEDATALEN, "tenancy_%d", connection_depth + 1);
	conn->exec_fn = dblink_function(schema, "dblink_exec", 2, true);
	conn->query_fn = dblink_function(schema, "dblink", 2, true);
	fmgr_info(dblink_function(schema, "dblink_disconnect", 1, false), &conn->disconnect_fn);

	/*
	 * dblink decides at connect time whether a password is required: as the
	 * service role (not a superuser), it is, and dblink checks that the
	 * server asked for it.  The switch lasts for the call only.
	 */
	if (OidIsValid(service_role))
	{
		Oid			save_userid;
		int			save_sec_context;

		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(service_role, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		(void) OidFunctionCall2(connect_fn,
								CStringGetTextDatum(conn->name),
								CStringGetTextDatum(conninfo));
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	else
		(void) OidFunctionCall2(connect_fn,
								CStringGetTextDatum(conn->name),
								CStringGetTextDatum(conninfo));
	conn->open = true;
	connection_depth++;
	return conn;
}

/*
 * Closes a connection opened by tenancy_transport_connect().  Safe to call
 * in an error path (no catalog access) and more than once.
 */
void
tenancy_transport_disconnect(TransportConn *conn)
{
	if (conn == NULL || !conn->open)
		return;
	conn->open = false;
	connection_depth--;
	(void) FunctionCall1(&conn->disconnect_fn, CStringGetTextDatum(conn->name));
}

/*
 * Opens a connection, runs "work" on it and closes it, whether work
 * succeeds or throws.  Errors propagate unchanged (remote SQLSTATEs pass
 * through).
 */
void
tenancy_transport_run(const char *server, const char *dbname, const char *appname,
					  TransportWork work, void *arg)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	TransportConn *conn = tenancy_transport_connect(server, dbname, appname);

	PG_TRY();
	{
		work(conn, arg);
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(oldcontext);
		tenancy_transport_disconnect(conn);
	}
	PG_END_TRY();
}

/* Work function for tenancy_transport_exec_list(). */
static void
exec_list_work(TransportConn *conn, void *arg)
{
	ListCell   *lc;

	foreach(lc, (List *) arg)
		tenancy_transport_exec(conn, (const char *) lfirst(lc));
}

/*
 * Runs a list of remote commands (char *), in order and each on its own
 * (autocommit), on one connection opened and closed for them.
 */
void
tenancy_transport_exec_list(const char *server, const char *dbname,
							const char *appname, List *commands)
{
	tenancy_transport_run(server, dbname, appname, exec_list_work, commands);
}

/* Runs a remote command; a remote error is raised with its own SQLSTATE. */
void
tenancy_transport_exec(TransportConn *conn, const char *sql)
{
	Assert(conn->open);
	(void) OidFunctionCall3(conn->exec_fn,
							CStringGetTextDatum(conn->name),
							CStringGetTextDatum(sql),
							BoolGetDatum(true));
}

/*
 * Runs a remote query returning "ncolumns" columns, read as text.  Returns
 * a List of char *[ncolumns] rows (NULL for SQL NULL), in
 * CurrentMemoryContext.  dblink() is a set-returning function; we call it in
 * materialize mode with the expected row type.
 */
List *
tenancy_transport_query(TransportConn *conn, const char *sql, int ncolumns)
{
	LOCAL_FCINFO(fcinfo, 3);
	FmgrInfo	flinfo;
	ReturnSetInfo rsinfo;
	TupleDesc	tupdesc = CreateTemplateTupleDesc(ncolumns);
	TupleTableSlot *slot;
	List	   *rows = NIL;
	int			i;

	Assert(conn->open);
	for (i = 0; i < ncolumns; i++)
		TupleDescInitEntry(tupdesc, (AttrNumber) (i + 1), NULL, TEXTOID, -1, 0);

	fmgr_info(conn->query_fn, &flinfo);
	memset(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.econtext = CreateStandaloneExprContext();
	rsinfo.expectedDesc = tupdesc;
	rsinfo.allowedModes = (int) SFRM_Materialize;
	rsinfo.returnMode = SFRM_Materialize;

	InitFunctionCallInfoData(*fcinfo, &flinfo, 3, InvalidOid, NULL, (Node *) &rsinfo);
	fcinfo->args[0].value = CStringGetTextDatum(conn->name);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(sql);
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = BoolGetDatum(true);
	fcinfo->args[2].isnull = false;
	(void) FunctionCallInvoke(fcinfo);

	if (rsinfo.setResult != NULL)
	{
		slot = MakeSingleTupleTableSlot(rsinfo.setDesc, &TTSOpsMinimalTuple);
		while (tuplestore_gettupleslot(rsinfo.setResult, true, false, slot))
		{
			char	  **row = palloc(sizeof(char *) * ncolumns);

			slot_getallattrs(slot);
			for (i = 0; i < ncolumns; i++)
				row[i] = slot->tts_isnull[i] ? NULL : TextDatumGetCString(slot->tts_values[i]);
			rows = lappend(rows, row);
		}
		ExecDropSingleTupleTableSlot(slot);
		tuplestore_end(rsinfo.setResult);
	}
	FreeExprContext(rsinfo.econtext, true);
	return rows;
}

/* First column of the first row of a remote query, or NULL. */
char *
tenancy_transport_query_value(TransportConn *conn, const char *sql)
{
	List	   *rows = tenancy_transport_query(conn, sql, 1);

	if (rows == NIL)
		return NULL;
	return ((char **) linitial(rows))[0];
}

/* Work function for tenancy_transport_database_exists(). */
static void
exists_work(TransportConn *conn, void *arg)
{
	char	  **args = (char **) arg;

	args[1] = tenancy_transport_query_value(conn, tenancy_transport_sql_exists_database(args[0]));
}

/*
 * Does database "dbname" exist on "server"?  For this cluster, answered
 * from the local catalog without a connection.
 */
bool
tenancy_transport_database_exists(const char *server, const char *dbname)
{
	char	   *args[2];

	if (server == NULL)
		return OidIsValid(get_database_oid(dbname, true));
	args[0] = (char *) dbname;
	args[1] = NULL;
	tenancy_transport_run(server, NULL, "tenancy/check", exists_work, args);
	return args[1] != NULL;
}

/*
 * application_name of tenancy's remote sessions for a tenant, so they can be
 * found in pg_stat_activity.
 */
char *
tenancy_transport_appname(const char *tenant)
{
	return psprintf("tenancy/%s", tenant);
}

/*
 * Runs a transactional database-level command (ALTER DATABASE ... RENAME,
 * GRANT/REVOKE ON DATABASE) against "server".  On this cluster (server
 * NULL) it runs locally, in the caller's transaction, as the role that
 * owns tenant databases, so that it commits or rolls back with the catalog
 * rows written beside it (and works on a database the caller's transaction
 * has just renamed into place); on a foreign server it runs there and
 * commits on its own.
 */
static void
database_command(const char *server, const char *sql)
{
	if (server == NULL)
	{
		int			rc;
		Oid			save_userid;
		int			save_sec_context;

		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		SetUserIdAndSecContext(remote_role(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		rc = SPI_execute(sql, false, 0);
		if (rc != SPI_OK_UTILITY)
			elog(ERROR, "database command failed: %s", SPI_result_code_string(rc));
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	else
		tenancy_transport_exec_list(server, NULL, "tenancy/database", list_make1((char *) sql));
}

/* Renames a database (see database_command); both names validated. */
void
tenancy_transport_rename_database(const char *server, const char *from, const char *to)
{
	database_command(server, psprintf("ALTER DATABASE %s RENAME TO %s",
									  quote_identifier(from), quote_identifier(to)));
}

/* Grants or revokes CONNECT on a tenant database (see database_command). */
void
tenancy_transport_grant_connect(const char *server, const char *dbname, const char *role, bool grant)
{
	database_command(server, psprintf(grant ? "GRANT CONNECT ON DATABASE %s TO %s" :
									  "REVOKE CONNECT ON DATABASE %s FROM %s",
									  quote_identifier(dbname), quote_identifier(role)));
}

/*
 * Autonomous catalog writes: statements run in the admin database through a
 * loopback connection, so they commit whatever the caller's transaction
 * does.  Values are literals quoted here.
 */
char *
tenancy_transport_sql_cleanup_record(int64 operation_id, const char *tenant,
									 const char *server, const char *database_name,
									 const char *final_name)
{
	return psprintf("INSERT INTO tenancy.pending_cleanup (operation_id, tenant_id, server, database_name, final_name) "
					"VALUES (" INT64_FORMAT ", %s, %s, %s, %s)",
					operation_id, quote_literal_cstr(tenant),
					server ? quote_literal_cstr(server) : "NULL",
					quote_literal_cstr(database_name), quote_literal_cstr(final_name));
}

char *
tenancy_transport_sql_cleanup_forget(int64 operation_id)
{
	return psprintf("DELETE FROM tenancy.pending_cleanup WHERE operation_id OPERATOR(pg_catalog.=) " INT64_FORMAT,
					operation_id);
}

char *
tenancy_transport_sql_set_state(const char *tenant, const char *state, const char *last_error)
{
	return psprintf("UPDATE tenancy.tenant SET state = %s, last_error = %s, last_sqlstate = NULL, updated_at = pg_catalog.now() "
					"WHERE id OPERATOR(pg_catalog.=) %s",
					quote_literal_cstr(state),
					last_error ? quote_literal_cstr(last_error) : "NULL",
					quote_literal_cstr(tenant));
}

/*
 * A tenant's row of tenancy.migration_progress, written as a fleet run
 * starts and ends it (status "running" while it goes).
 */
char *
tenancy_transport_sql_record_progress(const char *tenant, const char *status,
									  int64 from_version, int64 to_version,
									  const char *sqlstate, const char *error)
{
	return psprintf("INSERT INTO tenancy.migration_progress AS p "
					"(tenant_id, status, from_version, to_version, error, sqlstate, backend_pid) "
					"VALUES (%s, %s, " INT64_FORMAT ", " INT64_FORMAT ", %s, %s, %d) "
					"ON CONFLICT (tenant_id) DO UPDATE SET status = excluded.status, "
					"from_version = excluded.from_version, to_version = excluded.to_version, "
					"error = excluded.error, sqlstate = excluded.sqlstate, "
					"backend_pid = excluded.backend_pid, updated_at = pg_catalog.now()",
					quote_literal_cstr(tenant), quote_literal_cstr(status),
					from_version, to_version,
					error ? quote_literal_cstr(error) : "NULL",
					sqlstate ? quote_literal_cstr(sqlstate) : "NULL",
					MyProcPid);
}

char *
tenancy_transport_sql_delete_tenant(const char *tenant)
{
	return psprintf("DELETE FROM tenancy.migration_progress WHERE tenant_id OPERATOR(pg_catalog.=) %s; "
					"DELETE FROM tenancy.tenant WHERE id OPERATOR(pg_catalog.=) %s",
					quote_literal_cstr(tenant), quote_literal_cstr(tenant));
}

/* CREATE DATABASE "dbname" TEMPLATE "template_db" */
char *
tenancy_transport_sql_create_database(const char *dbname, const char *template_db)
{
	return psprintf("CREATE DATABASE %s TEMPLATE %s",
					quote_identifier(dbname), quote_identifier(template_db));
}

/* Makes a database reachable only by roles granted CONNECT explicitly. */
char *
tenancy_transport_sql_revoke_public(const char *dbname)
{
	return psprintf("REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC",
					quote_identifier(dbname));
}

/* DROP DATABASE, optionally terminating the sessions connected to it. */
char *
tenancy_transport_sql_drop_database(const char *dbname, bool force)
{
	return psprintf("DROP DATABASE IF EXISTS %s%s", quote_identifier(dbname),
					force ? " WITH (FORCE)" : "");
}

/* ALTER DATABASE ... WITH ALLOW_CONNECTIONS true|false */
char *
tenancy_transport_sql_allow_connections(const char *dbname, bool allow)
{
	return psprintf("ALTER DATABASE %s WITH ALLOW_CONNECTIONS %s",
					quote_identifier(dbname), allow ? "true" : "false");
}

/* A database's datallowconn, size, transaction id age and sessions. */
char *
tenancy_transport_sql_database_stats(const char *dbname)
{
	return psprintf("SELECT d.datallowconn::text, pg_catalog.pg_database_size(d.oid)::text, "
					"pg_catalog.age(d.datfrozenxid)::text, "
					"(SELECT s.numbackends FROM pg_catalog.pg_stat_database s WHERE s.datid OPERATOR(pg_catalog.=) d.oid)::text "
					"FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) %s",
					quote_literal_cstr(dbname));
}

/* Query that returns a row iff database "dbname" exists. */
char *
tenancy_transport_sql_exists_database(const char *dbname)
{
	return psprintf("SELECT 'exists' FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) %s",
					quote_literal_cstr(dbname));
}

/*
 * The ledger table: tenancy.applied_migration in a tenant database, or
 * <schema>.tenancy_applied_migration for a schema tenant (whose sessions
 * run in the admin database, where schema tenancy is the extension's).
 */
static char *
ledger_table(const char *schema)
{
	if (schema == NULL)
		return "tenancy.applied_migration";
	return psprintf("%s." TENANCY_SCHEMA_LEDGER, quote_identifier(schema));
}

/*
 * Records an applied migration in the tenant's ledger, inside the
 * migration's remote transaction: duration is measured from the start of
 * that transaction.
 */
char *
tenancy_transport_sql_ledger_insert(int64 version, const char *checksum, const char *schema)
{
	return psprintf("INSERT INTO %s (version, checksum, duration) "
					"VALUES (" INT64_FORMAT ", %s, pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) pg_catalog.now())",
					ledger_table(schema), version, quote_literal_cstr(checksum));
}

/*
 * Query for the first enabled trigger in the tenant (its schema, or its
 * whole database) that would run, with the privileges of the role
 * migrations run as, a function owned by another role that is not a
 * superuser (a SECURITY DEFINER function runs as its owner, so it is not
 * counted): trigger name, table, function owner.
 * Migrations run as the service role, and a trigger fires with the
 * privileges of whoever runs the statement: a member granted TRIGGER on a
 * table could otherwise have its own code run as the service role.
 */
char *
tenancy_transport_sql_foreign_triggers(const char *schema)
{
	return psprintf("SELECT g.tgname::text, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), "
					"p.proowner::pg_catalog.regrole::text "
					"FROM pg_catalog.pg_trigger g "
					"JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid "
					"JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
					"JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) g.tgfoid "
					"JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) p.proowner "
					"WHERE NOT g.tgisinternal AND g.tgenabled OPERATOR(pg_catalog.<>) 'D' "
					"AND NOT p.prosecdef AND NOT r.rolsuper "
					"AND r.rolname OPERATOR(pg_catalog.<>) CURRENT_USER "
					"AND n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema']) %s "
					"LIMIT 1",
					schema ? psprintf("AND n.nspname OPERATOR(pg_catalog.=) %s", quote_literal_cstr(schema)) : "");
}

/* The message and hint of the refusal, for both paths. */
#define FOREIGN_TRIGGER_HINT \
	"Migrations refuse to run other roles' trigger functions: drop the trigger, or create it in a migration; never grant TRIGGER on tenant tables."

/*
 * A statement that raises 42501 in the remote session when
 * tenancy_transport_sql_foreign_triggers() finds a trigger.
 */
char *
tenancy_transport_sql_trigger_guard(const char *schema)
{
	return psprintf("DO $tenancy_guard$ DECLARE t record; BEGIN "
					"SELECT * INTO t FROM (%s) s(tgname, rel, owner); "
					"IF FOUND THEN RAISE EXCEPTION USING ERRCODE = '42501', "
					"MESSAGE = pg_catalog.format('trigger %%I on %%s would run a function of role %%s as role %%s', "
					"t.tgname, t.rel, t.owner, CURRENT_USER), HINT = %s; END IF; END $tenancy_guard$",
					tenancy_transport_sql_foreign_triggers(schema),
					quote_literal_cstr(FOREIGN_TRIGGER_HINT));
}

/* The local form of the refusal (schema tenants), from a row of the query. */
void
tenancy_transport_foreign_trigger_error(char **row)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("trigger %s on %s would run a function of role %s as role %s",
					quote_identifier(row[0]), row[1], row[2], GetUserNameFromId(GetUserId(), false)),
			 errhint(FOREIGN_TRIGGER_HINT)));
}

/* Locks a ledger against out-of-band migrators, inside a migration's transaction. */
char *
tenancy_transport_sql_ledger_lock(const char *schema)
{
	return psprintf("LOCK TABLE %s IN EXCLUSIVE MODE", ledger_table(schema));
}

/* Query for a ledger's rows (version, checksum as text), in version order. */
char *
tenancy_transport_sql_ledger_read(const char *schema)
{
	return psprintf("SELECT version::text, checksum FROM %s ORDER BY version", ledger_table(schema));
}


/*-------------------------------------------------------------------------
 * Asynchronous sessions, for fleet-wide work (migrate_all).
 *
 * dblink's asynchronous calls return one result per call and need a row
 * type for each, which a migration's arbitrary statements do not have, so
 * fleet work talks libpq directly, here beside dblink, with the same
 * conninfo (built above, from the same foreign servers and user mappings)
 * and the same rule dblink enforces: a non-superuser must have been asked
 * for a password.  Sessions are tracked so that every exit path, error or
 * cancel included, closes them (tenancy_transport_sessions_close_all), and
 * a busy one gets a cancel request first, so the remote statement stops.
 *-------------------------------------------------------------------------
 */
struct RemoteSession
{
	PGconn	   *conn;
	bool		busy;			/* a query was sent and not fully read */
	bool		connecting;		/* started with PQconnectStart, not done */
	PostgresPollingStatusType poll;	/* what PQconnectPoll last asked for */
	TimestampTz connect_started;
	char	   *tenant;			/* routed sessions: for notices */
};

static List *open_sessions = NIL;	/* in TopMemoryContext */

/*
 * Remote NOTICEs and WARNINGs.  libpq's default would write them to this
 * server's stderr, that is its log, whatever log_min_messages says: those
 * of tenancy's own sessions are dropped; those of routed sessions (the
 * application's SQL) are passed on to the client as NOTICEs.
 */
static void
drop_notice(void *arg, const PGresult *res)
{
}

static void
forward_notice(void *arg, const PGresult *res)
{
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (primary != NULL)
		ereport(NOTICE,
				(errmsg_internal("%s", primary),
				 errcontext("remote notice from tenant \"%s\"", (const char *) arg)));
}

/* Tracks a new session so that every exit path closes it. */
static RemoteSession *
track_session(PGconn *conn, bool connecting)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	RemoteSession *session = palloc0(sizeof(RemoteSession));

	session->conn = conn;
	PQsetNoticeReceiver(conn, drop_notice, NULL);
	session->connecting = connecting;
	session->poll = PGRES_POLLING_WRITING;
	session->connect_started = GetCurrentTimestamp();
	open_sessions = lappend(open_sessions, session);
	MemoryContextSwitchTo(old);
	return session;
}

/*
 * Opens a session to "dbname" on "server" (NULL: this cluster), blocking
 * for at most tenancy.connect_timeout.  Raises 08001 (with libpq's text in
 * DETAIL, which holds no password) or 2F003, as dblink does.
 */
/*
 * Connects with "conninfo" (wiped afterwards: it may hold a password),
 * blocking for at most tenancy.connect_timeout.  Raises 08001 with libpq's
 * text in DETAIL (which holds no password), or 2F003 when a non-superuser
 * ("as_superuser" false) got in without being asked for a password, as
 * dblink does; "hint" says what to do about the latter.
 */
static PGconn *
connect_blocking(char *conninfo, bool as_superuser, const char *hint)
{
	PGconn	   *conn = PQconnectdb(conninfo);

	memset(conninfo, 0, strlen(conninfo));
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = conn ? pstrdup(PQerrorMessage(conn)) : pstrdup("out of memory");

		if (conn)
			PQfinish(conn);
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not establish connection"),
				 errdetail_internal("%s", pchomp(msg))));
	}
	if (!as_superuser && !PQconnectionUsedPassword(conn))
	{
		PQfinish(conn);
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superuser cannot connect if the server does not request a password."),
				 errhint("%s", hint)));
	}
	return conn;
}

RemoteSession *
tenancy_transport_session_open(const char *server, const char *dbname, const char *appname)
{
	PGconn	   *conn = connect_blocking(build_conninfo(server, dbname, appname),
										superuser_arg(remote_role()),
										"Target server's authentication method must be changed.");

	return track_session(conn, false);
}

/*
 * Starts opening a session without waiting (PQconnectStart); drive it with
 * tenancy_transport_session_connected() whenever sessions_wait() returns.
 * Raises only for what fails before any network traffic (unknown server,
 * no user mapping, out of memory).
 */
RemoteSession *
tenancy_transport_session_start(const char *server, const char *dbname, const char *appname)
{
	char	   *conninfo = build_conninfo(server, dbname, appname);
	PGconn	   *conn;

	conn = PQconnectStart(conninfo);
	memset(conninfo, 0, strlen(conninfo));	/* it may hold a password */
	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	return track_session(conn, true);
}

/*
 * Advances a session started by tenancy_transport_session_start().  Returns
 * true once it is connected; false while it is still connecting; on
 * failure, false with *sqlstate (08001, or 2F003 as dblink would) and
 * *message set.  tenancy.connect_timeout is enforced here (libpq enforces
 * it only for blocking connects).
 */
bool
tenancy_transport_session_connected(RemoteSession *session, char **sqlstate, char **message)
{
	*sqlstate = NULL;
	*message = NULL;
	if (!session->connecting)
		return true;
	if (PQstatus(session->conn) != CONNECTION_BAD)
		session->poll = PQconnectPoll(session->conn);
	if (session->poll == PGRES_POLLING_OK)
	{
		session->connecting = false;
		if (!superuser_arg(remote_role()) && !PQconnectionUsedPassword(session->conn))
		{
			*sqlstate = pstrdup("2F003");
			*message = pstrdup("password is required: non-superuser cannot connect if the server does not request a password");
			return false;
		}
		return true;
	}
	if (session->poll == PGRES_POLLING_FAILED || PQstatus(session->conn) == CONNECTION_BAD)
	{
		*sqlstate = pstrdup("08001");
		*message = psprintf("could not establish connection: %s", pchomp(PQerrorMessage(session->conn)));
		return false;
	}
	if (TimestampDifferenceExceeds(session->connect_started, GetCurrentTimestamp(),
								   tenancy_connect_timeout * 1000))
	{
		*sqlstate = pstrdup("08001");
		*message = psprintf("could not establish connection: timeout expired after %d s", tenancy_connect_timeout);
		return false;
	}
	return false;
}

/* Closes a session (cancelling its query if one is running). */
void
tenancy_transport_session_close(RemoteSession *session)
{
	if (session == NULL)
		return;
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
	pfree(session);
}

/* Closes every open session; safe in error paths. */
void
tenancy_transport_sessions_close_all(void)
{
	while (open_sessions != NIL)
		tenancy_transport_session_close((RemoteSession *) linitial(open_sessions));
}

/*
 * Sends "sql" (one or more statements) without waiting.  Returns false,
 * with *message set, if it could not be sent.
 */
bool
tenancy_transport_session_send(RemoteSession *session, const char *sql, char **message)
{
	if (!PQsendQuery(session->conn, sql))
	{
		*message = pchomp(pstrdup(PQerrorMessage(session->conn)));
		return false;
	}
	session->busy = true;
	return true;
}

/* Has the query sent on this session finished (results ready to read)? */
bool
tenancy_transport_session_ready(RemoteSession *session)
{
	if (session->connecting || !session->busy)
		return true;
	if (!PQconsumeInput(session->conn))
		return true;			/* broken: reading will report it */
	return !PQisBusy(session->conn);
}

/*
 * Waits until at least one of the busy sessions has something to read, the
 * latch is set or timeout_ms passes; interruptible (cancel works here).
 */
void
tenancy_transport_sessions_wait(RemoteSession **sessions, int n, long timeout_ms)
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

/*
 * Reads every result of the finished query.  On success returns the rows
 * of the last result that had any (char *[ncolumns], NULL for SQL NULL) and
 * sets *sqlstate NULL.  On failure sets *sqlstate and *message from the
 * first error (08006 if the connection broke) and returns NIL.  Results in
 * CurrentMemoryContext.
 */
List *
tenancy_transport_session_result(RemoteSession *session, int ncolumns,
								 char **sqlstate, char **message)
{
	List	   *rows = NIL;
	PGresult   *res;

	*sqlstate = NULL;
	*message = NULL;
	while ((res = PQgetResult(session->conn)) != NULL)
	{
		ExecStatusType st = PQresultStatus(res);

		if (st == PGRES_TUPLES_OK && *sqlstate == NULL && PQntuples(res) > 0 &&
			PQnfields(res) >= ncolumns)
		{
			int			r,
						c;

			rows = NIL;
			for (r = 0; r < PQntuples(res); r++)
			{
				char	  **row = palloc(sizeof(char *) * Max(ncolumns, 1));

				for (c = 0; c < ncolumns; c++)
					row[c] = PQgetisnull(res, r, c) ? NULL : pstrdup(PQgetvalue(res, r, c));
				rows = lappend(rows, row);
			}
		}
		else if ((st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE) && *sqlstate == NULL)
		{
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

			*sqlstate = pstrdup(state ? state : "08006");
			*message = pchomp(pstrdup(primary ? primary : PQerrorMessage(session->conn)));

			/*
			 * The remote session's own termination (admin or crash shutdown,
			 * cannot connect now) is, for us, a lost connection: passed on
			 * as 57P0x it would read as "your session is being killed".
			 */
			if (strncmp(*sqlstate, "57P0", 4) == 0)
			{
				*message = psprintf("lost connection to the tenant server: %s", *message);
				*sqlstate = pstrdup("08006");
			}
		}
		PQclear(res);
	}
	session->busy = false;
	if (*sqlstate == NULL && PQstatus(session->conn) == CONNECTION_BAD)
	{
		*sqlstate = pstrdup("08006");
		*message = pchomp(pstrdup(PQerrorMessage(session->conn)));
	}
	return *sqlstate ? NIL : rows;
}

/* Arguments of parallel_start_step(). */
typedef struct ParallelStart
{
	ParallelQuery *query;
	RemoteSession *session;
} ParallelStart;

static void
parallel_start_step(void *arg)
{
	ParallelStart *ps = (ParallelStart *) arg;

	ps->session = tenancy_transport_session_start(ps->query->server, ps->query->dbname,
												  ps->query->appname);
}

/* Records a query's failure. */
static void
parallel_fail(ParallelQuery *q, const char *sqlstate, const char *message)
{
	q->sqlstate = pstrdup(sqlstate);
	q->message = pstrdup(message);
}

/*
 * Runs each query of "queries" on a session of its own (server, database),
 * at most "parallel" at once, connecting asynchronously, and fills in each
 * one's rows (its first ncolumns columns as text) or its failure (SQLSTATE
 * and message: 08001 when its server cannot be reached within
 * tenancy.connect_timeout).  One query's failure never stops the others;
 * interruptible; every session is closed on every exit path.
 */
void
tenancy_transport_parallel_queries(ParallelQuery *queries, int n, int parallel)
{
	RemoteSession **sessions = palloc0(sizeof(RemoteSession *) * parallel);
	ParallelQuery **running = palloc0(sizeof(ParallelQuery *) * parallel);
	bool	   *connecting = palloc0(sizeof(bool) * parallel);
	RemoteSession **busy = palloc(sizeof(RemoteSession *) * parallel);
	int			next = 0;

	PG_TRY();
	{
		for (;;)
		{
			int			active = 0;
			int			i;

			for (i = 0; i < parallel && next < n; i++)
			{
				ParallelStart ps;
				ErrorData  *edata;

				if (sessions[i] != NULL)
					continue;
				ps.query = &queries[next++];
				ps.session = NULL;
				edata = tenancy_try(parallel_start_step, &ps);
				if (edata != NULL)
				{
					parallel_fail(ps.query, unpack_sql_state(edata->sqlerrcode), edata->message);
					i--;		/* the slot is still free */
					continue;
				}
				sessions[i] = ps.session;
				running[i] = ps.query;
				connecting[i] = true;
			}
			for (i = 0; i < parallel; i++)
				if (sessions[i] != NULL)
					busy[active++] = sessions[i];
			if (active == 0)
				break;
			tenancy_transport_sessions_wait(busy, active, 1000);

			for (i = 0; i < parallel; i++)
			{
				ParallelQuery *q = running[i];
				char	   *sqlstate;
				char	   *message;
				bool		done = false;

				if (sessions[i] == NULL || !tenancy_transport_session_ready(sessions[i]))
					continue;
				if (connecting[i])
				{
					if (tenancy_transport_session_connected(sessions[i], &sqlstate, &message))
					{
						connecting[i] = false;
						if (!tenancy_transport_session_send(sessions[i], q->sql, &message))
						{
							parallel_fail(q, "08006", message);
							done = true;
						}
					}
					else if (sqlstate != NULL)
					{
						parallel_fail(q, sqlstate, message);
						done = true;
					}
				}
				else
				{
					q->rows = tenancy_transport_session_result(sessions[i], q->ncolumns, &sqlstate, &message);
					if (sqlstate != NULL)
						parallel_fail(q, sqlstate, message);
					done = true;
				}
				if (done)
				{
					tenancy_transport_session_close(sessions[i]);
					sessions[i] = NULL;
				}
			}
		}
	}
	PG_FINALLY();
	{
		int			i;

		for (i = 0; i < parallel; i++)
			if (sessions[i] != NULL)
				tenancy_transport_session_close(sessions[i]);
	}
	PG_END_TRY();
}

/*
 * Query for the databases of "dbnames" on one server: datname,
 * datallowconn, size, age(datfrozenxid) and connected sessions.
 */
char *
tenancy_transport_sql_databases_stats(List *dbnames)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoString(&buf,
						   "SELECT d.datname::text, d.datallowconn::text, pg_catalog.pg_database_size(d.oid)::text, "
						   "pg_catalog.age(d.datfrozenxid)::text, "
						   "(SELECT s.numbackends FROM pg_catalog.pg_stat_database s WHERE s.datid OPERATOR(pg_catalog.=) d.oid)::text "
						   "FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) ANY (ARRAY[");
	foreach(lc, dbnames)
	{
		if (foreach_current_index(lc) > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, quote_literal_cstr((char *) lfirst(lc)));
	}
	appendStringInfoString(&buf, "]::pg_catalog.text[])");
	return buf.data;
}

/*-------------------------------------------------------------------------
 * Routed sessions: tenancy.exec() and tenancy.query() (routed.c).
 *
 * A routed session runs the application's own SQL, so it authenticates as
 * the calling role with that role's own user mapping (never the service
 * role's), and the dblink password rule applies to it.  It is not tracked
 * in open_sessions: routed.c keeps it across calls and closes it itself.
 *-------------------------------------------------------------------------
 */

/*
 * Opens a routed session to "dbname" on "server" as the current user (for
 * this cluster, the caller passes tenancy's loopback server; NULL means the
 * local socket, which serves only superusers, by dblink's password rule).
 * Raises 08001, 2F003 (no password asked for a non-superuser) or 42704 (no
 * user mapping).
 */
RemoteSession *
tenancy_transport_routed_open(const char *server, const char *dbname, const char *appname,
							  const char *tenant)
{
	PGconn	   *conn;
	RemoteSession *session;

	conn = connect_blocking(build_conninfo_as(server, dbname, appname, GetUserId(), true),
							superuser(),
							psprintf("Give role \"%s\" a user mapping with its password on tenancy's loopback server, or on the tenant's server.",
									 GetUserNameFromId(GetUserId(), false)));
	session = MemoryContextAllocZero(TopMemoryContext, sizeof(RemoteSession));
	session->conn = conn;
	session->tenant = MemoryContextStrdup(TopMemoryContext, tenant);
	PQsetNoticeReceiver(conn, forward_notice, session->tenant);
	return session;
}

/* Closes a routed session, cancelling what it runs. */
void
tenancy_transport_routed_close(RemoteSession *session)
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
	if (session->tenant)
		pfree(session->tenant);
	pfree(session);
}

/*
 * Runs "sql" (one or more statements) on a routed session and waits for
 * it, interruptibly: a cancel or timeout of the caller throws here, and the
 * caller must then close the session (which cancels the remote statement).
 * Fills *r: the last result's command status, its rows (columns as text,
 * NULL for SQL NULL) and column count, or the first error's fields; and
 * whether the session was left inside a transaction block.
 */
void
tenancy_transport_routed_run(RemoteSession *session, const char *sql, bool want_rows,
							 RoutedResult *r)
{
	PGresult   *res;

	memset(r, 0, sizeof(*r));
	r->nfields = -1;
	if (!PQsendQuery(session->conn, sql))
	{
		r->sqlstate = "08006";
		r->message = pchomp(pstrdup(PQerrorMessage(session->conn)));
		r->broken = true;
		return;
	}
	session->busy = true;
	for (;;)
	{
		while (!tenancy_transport_session_ready(session))
			tenancy_transport_sessions_wait(&session, 1, 1000);
		res = PQgetResult(session->conn);
		if (res == NULL)
			break;
		switch (PQresultStatus(res))
		{
			case PGRES_TUPLES_OK:
			case PGRES_COMMAND_OK:
				if (r->sqlstate == NULL)
				{
					int			nrows = PQntuples(res);
					int			i,
								j;

					r->status = pstrdup(PQcmdStatus(res));
					r->nfields = PQresultStatus(res) == PGRES_TUPLES_OK ? PQnfields(res) : -1;
					r->rows = NIL;
					for (i = 0; want_rows && i < nrows; i++)
					{
						char	  **row = palloc(sizeof(char *) * Max(r->nfields, 1));

						for (j = 0; j < r->nfields; j++)
							row[j] = PQgetisnull(res, i, j) ? NULL : pstrdup(PQgetvalue(res, i, j));
						r->rows = lappend(r->rows, row);
					}
				}
				break;
			case PGRES_COPY_IN:
			case PGRES_COPY_OUT:
			case PGRES_COPY_BOTH:
				/* no COPY through tenancy: ends the session */
				if (r->sqlstate == NULL)
				{
					r->sqlstate = "0A000";
					r->message = pstrdup("COPY is not supported in tenancy.exec() and tenancy.query()");
				}
				r->broken = true;
				break;
			default:
				if (r->sqlstate == NULL)
				{
					const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
					const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
					const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
					const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);

					r->sqlstate = pstrdup(state ? state : "08006");
					r->message = pchomp(pstrdup(primary ? primary : PQerrorMessage(session->conn)));
					r->detail = detail ? pstrdup(detail) : NULL;
					r->hint = hint ? pstrdup(hint) : NULL;
				}
				break;
		}
		PQclear(res);
		if (r->broken)
			break;
	}
	session->busy = false;
	if (PQstatus(session->conn) == CONNECTION_BAD)
	{
		r->broken = true;
		if (r->sqlstate == NULL || strncmp(r->sqlstate, "57P0", 4) == 0)
		{
			r->message = psprintf("lost the connection to the tenant's server: %s",
								  r->message ? r->message : pchomp(pstrdup(PQerrorMessage(session->conn))));
			r->sqlstate = "08006";
		}
	}
	r->in_transaction = !r->broken && PQtransactionStatus(session->conn) != PQTRANS_IDLE;
}

/*
 * One migration as one remote round trip: its SQL between BEGIN and the
 * ledger row, in one transaction.  A guard token set with SET LOCAL at the
 * start must still be there after the migration's SQL, or the migration
 * ended tenancy's transaction itself (25000, raised remotely before the
 * ledger row is written).  The migration's SQL starts and ends on lines of
 * its own, so a trailing comment cannot swallow what follows.
 */
char *
tenancy_transport_sql_migration_script(int64 version, const char *sql, const char *checksum,
									   const char *schema)
{
	char	   *token = psprintf("t%d_" INT64_FORMAT, MyProcPid, version);

	return psprintf("BEGIN;\n"
					"%s"
					"SET LOCAL tenancy_guard.token = %s;\n"
					"%s;\n"
					"%s;\n"
					"%s\n;\n"
					"DO $tenancy_guard$ BEGIN "
					"IF pg_catalog.current_setting('tenancy_guard.token', true) IS DISTINCT FROM %s THEN "
					"RAISE EXCEPTION USING ERRCODE = '25000', MESSAGE = %s; END IF; END $tenancy_guard$;\n"
					"%s;\n"
					"COMMIT",
					schema ? psprintf("SET LOCAL search_path = %s, pg_temp;\n", quote_identifier(schema)) : "",
					quote_literal_cstr(token),
					tenancy_transport_sql_ledger_lock(schema),
					tenancy_transport_sql_trigger_guard(schema),
					sql,
					quote_literal_cstr(token),
					quote_literal_cstr(psprintf("migration " INT64_FORMAT " ended the transaction", version)),
					tenancy_transport_sql_ledger_insert(version, checksum, schema));
}
