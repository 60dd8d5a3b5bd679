/*-------------------------------------------------------------------------
 *
 * health.c
 *	  SQL-callable health(): what each tenant's database looks like now.
 *
 * For each tenant (or one): its state in the catalog; from its server,
 * whether its database accepts connections, its size, the sessions
 * connected to it and the age of its oldest unfrozen transaction id; then,
 * connecting to it, whether it is reachable, the version its ledger holds
 * and whether that ledger has drifted from the registered migrations.  One
 * tenant's failure is its row's error, never the call's.
 *
 * The work is done in two parallel rounds (transport.c): one query per
 * server for the databases of all its tenants, then one session per
 * reachable tenant database for its ledger, at most HEALTH_PARALLEL at
 * once.  Connections are bounded by tenancy.connect_timeout, so a server
 * that is down costs one timeout, whatever number of tenants it holds.
 * Schema tenants are looked at here, without a connection.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/health.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "catalog.h"
#include "migrate.h"
#include "schema.h"
#include "tenancy.h"
#include "transport.h"

PG_FUNCTION_INFO_V1(tenancy_health);

#define HEALTH_COLUMNS 12
#define HEALTH_PARALLEL 8

/* One tenant's findings. */
typedef struct TenantHealth
{
	TenantRecord *rec;
	char	  **stats;			/* datname, datallowconn, size, age, numbackends */
	List	   *ledger;			/* rows of version, checksum */
	int64		size;			/* schema tenants: size of the schema, or -1 */
	bool		reachable;
	char	   *error;			/* "SQLSTATE: message", or NULL */
} TenantHealth;

/* Same server (NULL and "" mean this cluster)? */
static bool
same_server(const TenantRecord *a, const TenantRecord *b)
{
	return strcmp(a->server, b->server) == 0;
}

/*
 * Round one: one query per server, for the databases of all its database
 * tenants.  A server that fails gives each of its tenants its error.
 */
static void
probe_servers(TenantHealth *th, int n)
{
	ParallelQuery *queries = palloc0(sizeof(ParallelQuery) * n);
	int		   *query_of = palloc(sizeof(int) * n);
	int			nqueries = 0;
	int			i,
				j;

	for (i = 0; i < n; i++)
	{
		query_of[i] = -1;
		if (th[i].rec->isolation != TENANT_ISOLATION_DATABASE)
			continue;
		for (j = 0; j < i; j++)
			if (query_of[j] >= 0 && same_server(th[j].rec, th[i].rec))
				query_of[i] = query_of[j];
		if (query_of[i] < 0)
		{
			query_of[i] = nqueries++;
			queries[query_of[i]].server = th[i].rec->server[0] ? th[i].rec->server : NULL;
			queries[query_of[i]].appname = "tenancy/health";
			queries[query_of[i]].ncolumns = 5;
		}
		/* the list of names, kept in "sql" until the query is built */
		queries[query_of[i]].sql = (const char *) lappend((List *) queries[query_of[i]].sql,
														  th[i].rec->database_name);
	}
	for (j = 0; j < nqueries; j++)
		queries[j].sql = tenancy_transport_sql_databases_stats((List *) queries[j].sql);
	tenancy_transport_parallel_queries(queries, nqueries, Min(nqueries, HEALTH_PARALLEL));

	for (i = 0; i < n; i++)
	{
		ParallelQuery *q;
		ListCell   *lc;

		if (query_of[i] < 0)
			continue;
		q = &queries[query_of[i]];
		if (q->sqlstate != NULL)
		{
			th[i].error = psprintf("%s: %s", q->sqlstate, q->message);
			continue;
		}
		foreach(lc, q->rows)
		{
			char	  **row = (char **) lfirst(lc);

			if (strcmp(row[0], th[i].rec->database_name) == 0)
				th[i].stats = row;
		}
		if (th[i].stats == NULL)
			th[i].error = psprintf("3D000: database \"%s\" does not exist", th[i].rec->database_name);
		else if (strcmp(th[i].stats[1], "true") != 0)
			th[i].error = pstrdup("the database does not allow connections");
	}
}

/* Round two: each tenant database that allows connections, its ledger. */
static void
probe_ledgers(TenantHealth *th, int n)
{
	ParallelQuery *queries = palloc0(sizeof(ParallelQuery) * n);
	int		   *tenant_of = palloc(sizeof(int) * n);
	int			nqueries = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		ParallelQuery *q;

		if (th[i].stats == NULL || th[i].error != NULL)
			continue;
		q = &queries[nqueries];
		q->server = th[i].rec->server[0] ? th[i].rec->server : NULL;
		q->dbname = th[i].rec->database_name;
		q->appname = tenancy_transport_appname(th[i].rec->id);
		q->sql = tenancy_transport_sql_ledger_read(NULL);
		q->ncolumns = 2;
		tenant_of[nqueries++] = i;
	}
	tenancy_transport_parallel_queries(queries, nqueries, Min(Max(nqueries, 1), HEALTH_PARALLEL));
	for (i = 0; i < nqueries; i++)
	{
		TenantHealth *t = &th[tenant_of[i]];

		if (queries[i].sqlstate != NULL)
			t->error = psprintf("%s: %s", queries[i].sqlstate, queries[i].message);
		else
		{
			t->ledger = queries[i].rows;
			t->reachable = true;
		}
	}
}

/* A schema tenant, as one step for tenancy_try(): no connection needed. */
static void
probe_schema_step(void *arg)
{
	TenantHealth *t = (TenantHealth *) arg;

	if (!tenancy_schema_exists(t->rec->schema_name))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", t->rec->schema_name)));
	t->size = tenancy_schema_size(t->rec->schema_name);
	t->ledger = tenancy_schema_ledger(t->rec->schema_name);
	t->reachable = true;
}

static void
probe_schema(TenantHealth *t)
{
	ErrorData  *edata = tenancy_try(probe_schema_step, t);

	if (edata != NULL)
		t->error = psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode), edata->message);
}

/* Emits one tenant's row. */
static void
health_row(ReturnSetInfo *rsinfo, const TenantHealth *t, List *migrations, int64 latest)
{
	const TenantRecord *rec = t->rec;
	Datum		values[HEALTH_COLUMNS];
	bool		nulls[HEALTH_COLUMNS];
	int			i;

	for (i = 0; i < HEALTH_COLUMNS; i++)
		nulls[i] = true;
	values[0] = CStringGetTextDatum(rec->id);
	values[1] = CStringGetTextDatum(tenancy_state_name(rec->state));
	values[2] = BoolGetDatum(t->reachable);
	values[3] = Int64GetDatum(rec->applied_version);
	values[4] = Int64GetDatum(latest);
	nulls[0] = nulls[1] = nulls[2] = nulls[3] = nulls[4] = false;
	if (t->stats != NULL)
	{
		values[7] = Int64GetDatum(pg_strtoint64(t->stats[2]));
		values[8] = Int32GetDatum(pg_strtoint32(t->stats[4]));
		values[9] = BoolGetDatum(strcmp(t->stats[1], "true") == 0);
		values[10] = Int32GetDatum(pg_strtoint32(t->stats[3]));
		nulls[7] = nulls[8] = nulls[9] = nulls[10] = false;
	}
	if (t->size >= 0)
	{
		values[7] = Int64GetDatum(t->size);
		nulls[7] = false;
	}
	if (t->reachable)
	{
		int64		version;
		char	   *drift;
		char	   *detail;

		if (tenancy_migrate_check_ledger(t->ledger, migrations, psprintf("tenant \"%s\"", rec->id),
										 &version, &drift, &detail))
		{
			values[5] = Int64GetDatum(version);
			nulls[5] = false;
		}
		else
		{
			values[6] = CStringGetTextDatum(drift);
			nulls[6] = false;
		}
	}
	if (t->error != NULL)
	{
		values[11] = CStringGetTextDatum(t->error);
		nulls[11] = false;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * tenancy.health(tenant text DEFAULT NULL) RETURNS TABLE(tenant, state,
 * reachable, applied_version, latest_version, ledger_version, drift,
 * database_size, connections, allow_connections, xid_age, error)
 */
Datum
tenancy_health(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	List	   *migrations;
	List	   *tenants;
	TenantHealth *th;
	int64		latest = 0;
	int			n;
	int			i;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();
	migrations = tenancy_catalog_migrations();
	if (migrations != NIL)
		latest = ((TenancyMigration *) llast(migrations))->version;

	if (!PG_ARGISNULL(0))
	{
		char	   *tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
		TenantRecord *rec = palloc(sizeof(TenantRecord));

		tenancy_name_validate(tenant);
		if (!tenancy_catalog_fetch(tenant, rec))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("tenant \"%s\" does not exist", tenant)));
		tenants = list_make1(rec);
	}
	else
		tenants = tenancy_catalog_tenants();

	n = list_length(tenants);
	th = palloc0(sizeof(TenantHealth) * Max(n, 1));
	foreach(lc, tenants)
	{
		TenantHealth *t = &th[foreach_current_index(lc)];

		t->rec = (TenantRecord *) lfirst(lc);
		t->size = -1;
		if (t->rec->isolation == TENANT_ISOLATION_SCHEMA)
			probe_schema(t);
	}
	probe_servers(th, n);
	probe_ledgers(th, n);
	for (i = 0; i < n; i++)
		health_row(rsinfo, &th[i], migrations, latest);
	return (Datum) 0;
}
