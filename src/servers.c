/*-------------------------------------------------------------------------
 *
 * servers.c
 *	  SQL-callable server registry and fleet statistics: add_server(),
 *	  drain_server(), server_status(), tenant_stats().
 *
 * tenancy.server lists the dblink foreign servers new database tenants are
 * placed on (this cluster by its loopback server's name); provision()
 * without a server picks among the accepting ones (catalog.c).  The two
 * statistics functions ask each server one query, for all of its tenants
 * at once, through a service-role session to its maintenance database; a
 * server that does not answer is a row with its error, never a failed
 * call.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/servers.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "conninfo.h"
#include "pool.h"
#include "remote.h"
#include "scope.h"
#include "try.h"

PG_FUNCTION_INFO_V1(tenancy_add_server);
PG_FUNCTION_INFO_V1(tenancy_drain_server);
PG_FUNCTION_INFO_V1(tenancy_server_status);
PG_FUNCTION_INFO_V1(tenancy_tenant_stats);
PG_FUNCTION_INFO_V1(tenancy_fill_pools);

#define SERVER_COLUMNS "server, weight, max_sessions, accepting, added_at, warm_pool"

/* Runs "sql" on tenancy.server as the catalog owner; returns its one row. */
static Datum
server_row(const char *sql, int nargs, Oid *types, Datum *values, int expect, const char *server)
{
	PrivilegeScope scope;
	Datum		row;

	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	if (tenancy_scope_exec(sql, nargs, types, values, NULL, false, expect) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("server \"%s\" is not registered", server),
				 errhint("Register it with tenancy.add_server().")));
	row = PointerGetDatum(SPI_returntuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc));
	tenancy_scope_leave(&scope);
	return row;
}

/* A positive integer argument, or 22004 / 22023. */
static int32
positive_argument(FunctionCallInfo fcinfo, int argno, const char *what)
{
	int32		v;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	v = PG_GETARG_INT32(argno);
	if (v <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be positive", what),
				 errdetail("It is %d.", v)));
	return v;
}

/*
 * tenancy.add_server(server name, weight int, max_sessions int)
 * RETURNS tenancy.server
 *
 * Registers a dblink foreign server the caller may use (USAGE, unless it is
 * the loopback server) and the service role can reach (a user mapping, no
 * USAGE of its own): 42704 for a missing server or mapping, 42809 for a
 * server of another wrapper, 42501, 22023 for a weight or budget below 1.
 * Registered again, it takes the new weight and budget and accepts
 * tenants again.
 */
Datum
tenancy_add_server(PG_FUNCTION_ARGS)
{
	char	   *server;
	ForeignServer *fs;
	int32		weight;
	int32		max_sessions;
	int32		warm_pool = 0;
	Oid			types[4] = {TEXTOID, INT4OID, INT4OID, INT4OID};
	Datum		values[4];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server must not be null")));
	server = NameStr(*PG_GETARG_NAME(0));
	weight = positive_argument(fcinfo, 1, "weight");
	max_sessions = positive_argument(fcinfo, 2, "max_sessions");
	if (PG_NARGS() > 3)
	{
		if (PG_ARGISNULL(3) || PG_GETARG_INT32(3) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("warm_pool must be zero or more")));
		warm_pool = PG_GETARG_INT32(3);
	}
	tenancy_catalog_apply_config();
	fs = GetForeignServerByName(server, true);
	if (fs == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("server \"%s\" does not exist", server),
				 errhint("Create it with CREATE SERVER ... FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host ..., port ..., dbname ...).")));
	if (strcmp(GetForeignDataWrapper(fs->fdwid)->fdwname, "dblink_fdw") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a dblink server", server),
				 errdetail("Its foreign-data wrapper is \"%s\".", GetForeignDataWrapper(fs->fdwid)->fdwname)));
	tenancy_conninfo_check_caller(server);
	tenancy_conninfo_check_server(server);

	values[0] = CStringGetTextDatum(server);
	values[1] = Int32GetDatum(weight);
	values[2] = Int32GetDatum(max_sessions);
	values[3] = Int32GetDatum(warm_pool);
	PG_RETURN_DATUM(server_row("INSERT INTO tenancy.server (server, weight, max_sessions, warm_pool) "
							   "VALUES ($1, $2, $3, $4) ON CONFLICT (server) DO UPDATE "
							   "SET weight = excluded.weight, max_sessions = excluded.max_sessions, "
							   "warm_pool = excluded.warm_pool, accepting = true RETURNING " SERVER_COLUMNS,
							   4, types, values, SPI_OK_INSERT_RETURNING, server));
}

/*
 * tenancy.drain_server(server name) RETURNS tenancy.server
 *
 * No new tenant is placed on the server; its tenants stay.  42704 if it is
 * not registered.
 */
Datum
tenancy_drain_server(PG_FUNCTION_ARGS)
{
	char	   *server;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server must not be null")));
	server = NameStr(*PG_GETARG_NAME(0));
	values[0] = CStringGetTextDatum(server);
	PG_RETURN_DATUM(server_row("UPDATE tenancy.server SET accepting = false "
							   "WHERE server OPERATOR(pg_catalog.=) $1 RETURNING " SERVER_COLUMNS,
							   1, types, values, SPI_OK_UPDATE_RETURNING, server));
}

/* A registered server and its database tenants. */
typedef struct ServerEntry
{
	char	   *server;			/* as registered */
	char	   *remote;			/* as connected to: NULL for this cluster */
	int32		weight;
	int32		max_sessions;
	bool		accepting;
	int32		warm_pool;
	List	   *tenants;		/* TenantRecord *, database tenants */
} ServerEntry;

/* The registered servers, each with its database tenants. */
static List *
registered_servers(void)
{
	PrivilegeScope scope;
	char	   *loopback = tenancy_catalog_loopback_server();
	List	   *servers = NIL;
	List	   *tenants = tenancy_catalog_tenants();
	ListCell   *lc;
	uint64		i;

	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	tenancy_scope_exec("SELECT server::pg_catalog.text, weight, max_sessions, accepting, warm_pool "
					   "FROM tenancy.server ORDER BY server", 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);
		ServerEntry *e = palloc0(sizeof(ServerEntry));
		bool		isnull;

		e->server = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		e->weight = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		e->max_sessions = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
		e->accepting = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4, &isnull));
		e->warm_pool = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 5, &isnull));
		e->remote = (loopback != NULL && strcmp(e->server, loopback) == 0) ? NULL : e->server;
		servers = lappend(servers, e);
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);

	foreach(lc, tenants)
	{
		TenantRecord *rec = (TenantRecord *) lfirst(lc);
		ListCell   *sc;

		if (rec->isolation != TENANT_ISOLATION_DATABASE)
			continue;
		foreach(sc, servers)
		{
			ServerEntry *e = (ServerEntry *) lfirst(sc);

			if (rec->server[0] ? (e->remote != NULL && strcmp(rec->server, e->remote) == 0) : e->remote == NULL)
				e->tenants = lappend(e->tenants, rec);
		}
	}
	return servers;
}

/* The server's tenant databases as an array literal: {"a","b"}. */
static char *
database_array(List *tenants)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, tenants)
	{
		const char *p;

		appendStringInfoString(&buf, foreach_current_index(lc) > 0 ? ",\"" : "\"");
		for (p = ((TenantRecord *) lfirst(lc))->database_name; *p; p++)
		{
			if (*p == '"' || *p == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, *p);
		}
		appendStringInfoChar(&buf, '"');
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* One query on a server, as one step for tenancy_try(). */
typedef struct ServerQuery
{
	const char *remote;
	const char *sql;
	const char *param;
	RemoteResult r;
} ServerQuery;

static void
server_query_step(void *arg)
{
	ServerQuery *q = (ServerQuery *) arg;
	RemoteSession *session = tenancy_remote_open(CONNINFO_SERVICE, q->remote, NULL, "tenancy/status");
	const char *params[1] = {q->param};

	PG_TRY();
	{
		tenancy_remote_call(session, q->sql, 1, params, true, &q->r);
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
	if (q->r.error != NULL)
		tenancy_remote_raise(q->r.error);
}

/* Runs q; returns NULL or the error's text ("SQLSTATE: message"). */
static char *
run_server_query(ServerQuery *q)
{
	ErrorData  *edata = tenancy_try(server_query_step, q);

	if (edata == NULL)
		return NULL;
	return psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode), edata->message);
}

/* A number a server sent, or NULL (nulls[col] set) if it is not one. */
static Datum
number_column(char **row, int col, bool *nulls)
{
	if (row[col] == NULL || !tenancy_remote_is_number(row[col]))
	{
		nulls[col] = true;
		return (Datum) 0;
	}
	return Int64GetDatum(strtoi64(row[col], NULL, 10));
}

/*
 * tenancy.server_status() RETURNS TABLE (server, weight, max_sessions,
 * accepting, tenants, total_size, sessions, reachable, error)
 *
 * One row per registered server: its database tenants (from the catalog),
 * their total size and the sessions connected to them (one query to the
 * server), whether it answered.
 */
Datum
tenancy_server_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();
	foreach(lc, registered_servers())
	{
		ServerEntry *e = (ServerEntry *) lfirst(lc);
		Datum		values[9];
		bool		nulls[9] = {false};
		ServerQuery q;
		char	   *error;

		memset(&q, 0, sizeof(q));
		q.remote = e->remote;
		q.sql = "SELECT COALESCE(pg_catalog.sum(pg_catalog.pg_database_size(d.oid)), 0)::pg_catalog.text, "
			"(SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a "
			"WHERE a.datname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[]))::pg_catalog.text "
			"FROM pg_catalog.pg_database d WHERE d.datname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])";
		q.param = database_array(e->tenants);
		error = run_server_query(&q);

		values[0] = DirectFunctionCall1(namein, CStringGetDatum(e->server));
		values[1] = Int32GetDatum(e->weight);
		values[2] = Int32GetDatum(e->max_sessions);
		values[3] = BoolGetDatum(e->accepting);
		values[4] = Int64GetDatum(list_length(e->tenants));
		values[7] = BoolGetDatum(error == NULL);
		if (error == NULL && q.r.nfields == 2 && list_length(q.r.rows) == 1)
		{
			char	  **row = (char **) linitial(q.r.rows);
			bool		n2[2] = {false, false};

			values[5] = number_column(row, 0, n2);
			values[6] = Int32GetDatum((int32) Min(DatumGetInt64(number_column(row, 1, n2)), PG_INT32_MAX));
			nulls[5] = n2[0];
			nulls[6] = n2[1];
		}
		else
			nulls[5] = nulls[6] = true;
		if (error != NULL)
			values[8] = CStringGetTextDatum(error);
		else
			nulls[8] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Emits one row of tenant_stats(). */
static void
stats_row(ReturnSetInfo *rsinfo, const char *tenant, const char *server, char **row,
		  const char *error)
{
	Datum		values[11];
	bool		nulls[11];
	int			i;

	for (i = 0; i < 11; i++)
		nulls[i] = true;
	values[0] = CStringGetTextDatum(tenant);
	nulls[0] = false;
	if (server != NULL)
	{
		values[1] = DirectFunctionCall1(namein, CStringGetDatum(server));
		nulls[1] = false;
	}
	if (row != NULL)
	{
		bool		n[9];

		memset(n, false, sizeof(n));
		/* row: transactions .. sessions as numbers, then last activity */
		for (i = 0; i < 7; i++)
		{
			values[2 + i] = number_column(row, i, n);
			nulls[2 + i] = n[i];
		}
		if (!nulls[8])
			values[8] = Int32GetDatum((int32) Min(DatumGetInt64(values[8]), PG_INT32_MAX));
		/* microseconds since the Unix epoch: no DateStyle to agree on */
		if (row[7] != NULL && tenancy_remote_is_number(row[7]))
		{
			values[9] = TimestampTzGetDatum(strtoi64(row[7], NULL, 10) -
											(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
			nulls[9] = false;
		}
	}
	if (error != NULL)
	{
		values[10] = CStringGetTextDatum(error);
		nulls[10] = false;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * tenancy.tenant_stats() RETURNS TABLE (tenant, server, transactions,
 * rows_read, rows_written, blocks_read, blocks_hit, size, sessions,
 * last_activity, error)
 *
 * Database tenants from pg_stat_database of their server, one query per
 * server (this cluster included) for all of its tenants; last_activity is
 * the latest state change of a session connected now.  Schema tenants
 * from this database's table statistics, summed per schema (no
 * transactions or sessions: PostgreSQL counts those per database).  A
 * server that does not answer gives its tenants a row with the error.
 */
Datum
tenancy_tenant_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *tenants;
	List	   *servers = NIL;	/* char *, "" for this cluster */
	ListCell   *lc;
	ListCell   *sc;

	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();
	tenants = tenancy_catalog_tenants();
	foreach(lc, tenants)
	{
		TenantRecord *rec = (TenantRecord *) lfirst(lc);
		bool		seen = false;

		if (rec->isolation != TENANT_ISOLATION_DATABASE)
			continue;
		foreach(sc, servers)
			if (strcmp((char *) lfirst(sc), rec->server) == 0)
			seen = true;
		if (!seen)
			servers = lappend(servers, rec->server);
	}

	foreach(sc, servers)
	{
		const char *server = (const char *) lfirst(sc);
		List	   *mine = NIL;
		ServerQuery q;
		char	   *error;

		foreach(lc, tenants)
		{
			TenantRecord *rec = (TenantRecord *) lfirst(lc);

			if (rec->isolation == TENANT_ISOLATION_DATABASE && strcmp(rec->server, server) == 0)
				mine = lappend(mine, rec);
		}
		memset(&q, 0, sizeof(q));
		q.remote = server[0] ? server : NULL;
		q.sql = "SELECT d.datname::pg_catalog.text, "
			"(s.xact_commit OPERATOR(pg_catalog.+) s.xact_rollback)::pg_catalog.text, "
			"(s.tup_returned OPERATOR(pg_catalog.+) s.tup_fetched)::pg_catalog.text, "
			"(s.tup_inserted OPERATOR(pg_catalog.+) s.tup_updated OPERATOR(pg_catalog.+) s.tup_deleted)::pg_catalog.text, "
			"s.blks_read::pg_catalog.text, s.blks_hit::pg_catalog.text, "
			"pg_catalog.pg_database_size(d.oid)::pg_catalog.text, s.numbackends::pg_catalog.text, "
			"(SELECT (pg_catalog.date_part('epoch', pg_catalog.max(a.state_change)) "
			"OPERATOR(pg_catalog.*) 1000000)::pg_catalog.int8 FROM pg_catalog.pg_stat_activity a "
			"WHERE a.datid OPERATOR(pg_catalog.=) d.oid)::pg_catalog.text "
			"FROM pg_catalog.pg_database d JOIN pg_catalog.pg_stat_database s ON s.datid OPERATOR(pg_catalog.=) d.oid "
			"WHERE d.datname OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.name[])";
		q.param = database_array(mine);
		error = run_server_query(&q);
		foreach(lc, mine)
		{
			TenantRecord *rec = (TenantRecord *) lfirst(lc);
			char	  **found = NULL;
			ListCell   *rc;

			if (error == NULL && q.r.nfields == 9)
				foreach(rc, q.r.rows)
			{
				char	  **row = (char **) lfirst(rc);

				if (row[0] != NULL && strcmp(row[0], rec->database_name) == 0)
					found = row + 1;
			}
			stats_row(rsinfo, rec->id, server[0] ? server : NULL, found,
					  error ? error : found ? NULL : "its database was not found on its server");
		}
	}

	/* schema tenants: this database's statistics, per schema */
	{
		PrivilegeScope scope;
		uint64		i;

		tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
		tenancy_scope_exec("SELECT t.id, NULL, "
						   "COALESCE(pg_catalog.sum(COALESCE(s.seq_tup_read, 0) OPERATOR(pg_catalog.+) COALESCE(s.idx_tup_fetch, 0)), 0)::pg_catalog.text, "
						   "COALESCE(pg_catalog.sum(s.n_tup_ins OPERATOR(pg_catalog.+) s.n_tup_upd OPERATOR(pg_catalog.+) s.n_tup_del), 0)::pg_catalog.text, "
						   "COALESCE(pg_catalog.sum(io.heap_blks_read), 0)::pg_catalog.text, "
						   "COALESCE(pg_catalog.sum(io.heap_blks_hit), 0)::pg_catalog.text, "
						   "COALESCE(pg_catalog.sum(pg_catalog.pg_total_relation_size(s.relid)), 0)::pg_catalog.text, "
						   "NULL, NULL "
						   "FROM tenancy.tenant t "
						   "LEFT JOIN pg_catalog.pg_stat_user_tables s ON s.schemaname OPERATOR(pg_catalog.=) t.schema_name "
						   "LEFT JOIN pg_catalog.pg_statio_user_tables io ON io.relid OPERATOR(pg_catalog.=) s.relid "
						   "WHERE t.isolation OPERATOR(pg_catalog.=) 'schema' GROUP BY t.id ORDER BY t.id",
						   0, NULL, NULL, NULL, true, SPI_OK_SELECT);
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *row[8];
			int			j;

			for (j = 0; j < 8; j++)
				row[j] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, j + 2);
			stats_row(rsinfo, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
					  NULL, row, NULL);
		}
		tenancy_scope_leave(&scope);
	}
	return (Datum) 0;
}

/*
 * tenancy.fill_pools() RETURNS TABLE (server, spares, created, dropped)
 *
 * Brings the warm pool of every accepting registered server to its
 * warm_pool spares at the registered migrations (pool.c); a drained server
 * only loses its stale spares.  One row per server with a pool.
 */
Datum
tenancy_fill_pools(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();
	foreach(lc, registered_servers())
	{
		ServerEntry *e = (ServerEntry *) lfirst(lc);
		int			want = e->accepting ? e->warm_pool : 0;
		int			created;
		int			dropped;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		if (e->warm_pool == 0)
			continue;
		tenancy_pool_fill(e->remote, want, &created, &dropped);
		values[0] = DirectFunctionCall1(namein, CStringGetDatum(e->server));
		values[1] = Int32GetDatum(Max(want, 0));
		values[2] = Int32GetDatum(created);
		values[3] = Int32GetDatum(dropped);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
