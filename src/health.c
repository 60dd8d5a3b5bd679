/*-------------------------------------------------------------------------
 *
 * health.c
 *	  SQL-callable health(): what each tenant looks like now.
 *
 * For each tenant (or one): its state in the catalog; for a database
 * tenant, from its server, whether its database accepts connections, its
 * size, the sessions connected to it and the age of its oldest unfrozen
 * transaction id; for a schema tenant, its size, from here; then, reading
 * its ledger through a session, whether it is reachable, the version its
 * ledger holds and whether that ledger has drifted from the registered
 * migrations.  One tenant's failure is its row's error, never the call's.
 *
 * The work is done in two parallel rounds (fleet.c): one query per server
 * for the databases of all its tenants, then one session per reachable
 * tenant for its ledger, at most HEALTH_PARALLEL at once.  Connections are
 * bounded by tenancy.connect_timeout, so a server that is down costs one
 * timeout, whatever number of tenants it holds.
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
#include "fleet.h"
#include "isolation.h"
#include "ledger.h"
#include "names.h"
#include "try.h"

PG_FUNCTION_INFO_V1(tenancy_health);

#define HEALTH_COLUMNS 12
#define HEALTH_PARALLEL 8

/* One tenant's findings. */
typedef struct TenantHealth
{
	TenantRecord *rec;
	char	  **stats;			/* datname, datallowconn, size, age,
								 * numbackends */
	RemoteResult ledger;		/* what reading its ledger returned */
	int64		size;			/* known here (schema tenants), or -1 */
	bool		reachable;
	char	   *error;			/* "SQLSTATE: message", or NULL */
} TenantHealth;

/* A conversation of either round: one query, its rows kept. */
typedef struct HealthTask
{
	FleetTask	task;			/* first: the runner's view */
	const char *sql;
	RemoteResult result;		/* copied out of the task's memory */
	RemoteError *error;
} HealthTask;

/* Sends the task's one query, then keeps what it returned. */
static const char *
health_next(void *arg, FleetTask *task, const RemoteResult *last)
{
	HealthTask *h = (HealthTask *) task;
	MemoryContext outer = (MemoryContext) arg;
	MemoryContext old;
	ListCell   *lc;

	if (last == NULL)
		return h->sql;
	old = MemoryContextSwitchTo(outer);
	h->result.nfields = last->nfields;
	if (last->error != NULL)
		h->error = tenancy_remote_error(last->error->sqlstate, last->error->message,
										last->error->detail, last->error->hint);
	foreach(lc, last->rows)
	{
		char	  **row = (char **) lfirst(lc);
		char	  **copy = palloc(sizeof(char *) * Max(last->nfields, 1));
		int			i;

		for (i = 0; i < last->nfields; i++)
			copy[i] = row[i] ? pstrdup(row[i]) : NULL;
		h->result.rows = lappend(h->result.rows, copy);
	}
	MemoryContextSwitchTo(old);
	return NULL;
}

/* A task that could not connect (or broke): its error. */
static void
health_finish(void *arg, FleetTask *task, const RemoteError *error)
{
	HealthTask *h = (HealthTask *) task;
	MemoryContext old;

	if (error == NULL || h->error != NULL)
		return;
	old = MemoryContextSwitchTo((MemoryContext) arg);
	h->error = tenancy_remote_error(error->sqlstate, error->message, error->detail, error->hint);
	MemoryContextSwitchTo(old);
}

static const FleetOps health_ops = {NULL, health_next, health_finish, NULL};

/* Runs "n" health tasks, at most HEALTH_PARALLEL at once. */
static void
run_tasks(HealthTask *tasks, int n)
{
	FleetTask **list = palloc(sizeof(FleetTask *) * Max(n, 1));
	List	   *budgets = tenancy_catalog_budgets();
	int			i;

	for (i = 0; i < n; i++)
	{
		tasks[i].result.nfields = -1;
		tasks[i].task.budget = tenancy_catalog_budget(budgets, tasks[i].task.server);
		list[i] = &tasks[i].task;
	}
	tenancy_fleet_run(list, n, Min(Max(n, 1), HEALTH_PARALLEL), &health_ops, CurrentMemoryContext);
}

/* A failure, as a row's error text. */
static char *
error_text(const RemoteError *e)
{
	return psprintf("%s: %s", e->sqlstate, tenancy_remote_error_text(e));
}

/*
 * Query for the databases of "dbnames" on one server: datname,
 * datallowconn, size, age(datfrozenxid) and connected sessions.
 */
static char *
databases_stats_sql(List *dbnames)
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

/*
 * Round one: one query per server, for the databases of all its database
 * tenants.  A server that fails gives each of its tenants its error.
 */
static void
probe_servers(TenantHealth *th, int n)
{
	HealthTask *tasks = palloc0(sizeof(HealthTask) * Max(n, 1));
	List	  **names = palloc0(sizeof(List *) * Max(n, 1));
	int		   *task_of = palloc(sizeof(int) * Max(n, 1));
	int			ntasks = 0;
	int			i,
				j;

	for (i = 0; i < n; i++)
	{
		task_of[i] = -1;
		if (th[i].rec->isolation != TENANT_ISOLATION_DATABASE)
			continue;
		for (j = 0; j < i; j++)
			if (task_of[j] >= 0 && strcmp(th[j].rec->server, th[i].rec->server) == 0)
				task_of[i] = task_of[j];
		if (task_of[i] < 0)
		{
			task_of[i] = ntasks++;
			tasks[task_of[i]].task.server = TENANCY_SERVER(th[i].rec);
			tasks[task_of[i]].task.appname = "tenancy/health";
		}
		names[task_of[i]] = lappend(names[task_of[i]], th[i].rec->database_name);
	}
	for (j = 0; j < ntasks; j++)
		tasks[j].sql = databases_stats_sql(names[j]);
	run_tasks(tasks, ntasks);

	for (i = 0; i < n; i++)
	{
		HealthTask *h;
		ListCell   *lc;

		if (task_of[i] < 0)
			continue;
		h = &tasks[task_of[i]];
		if (h->error != NULL)
		{
			th[i].error = error_text(h->error);
			continue;
		}
		foreach(lc, h->result.rows)
		{
			char	  **row = (char **) lfirst(lc);

			if (h->result.nfields == 5 && row[0] != NULL &&
				strcmp(row[0], th[i].rec->database_name) == 0 &&
				row[1] != NULL && tenancy_remote_is_number(row[2]) && tenancy_remote_is_number(row[3]) && tenancy_remote_is_number(row[4]))
				th[i].stats = row;
		}
		if (th[i].stats == NULL)
			th[i].error = psprintf("3D000: database \"%s\" does not exist", th[i].rec->database_name);
		else if (strcmp(th[i].stats[1], "true") != 0)
			th[i].error = pstrdup("the database does not allow connections");
	}
}

/* Round two: each tenant that can be reached, its ledger. */
static void
probe_ledgers(TenantHealth *th, int n)
{
	HealthTask *tasks = palloc0(sizeof(HealthTask) * Max(n, 1));
	int		   *tenant_of = palloc(sizeof(int) * Max(n, 1));
	int			ntasks = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		MigrationTarget target;

		if (th[i].error != NULL)
			continue;
		tenancy_isolation_target(th[i].rec, &target);
		tasks[ntasks].task.server = target.server;
		tasks[ntasks].task.dbname = target.dbname;
		tasks[ntasks].task.appname = target.appname;
		tasks[ntasks].sql = tenancy_ledger_sql_read(target.schema);
		tenant_of[ntasks++] = i;
	}
	run_tasks(tasks, ntasks);
	for (i = 0; i < ntasks; i++)
	{
		TenantHealth *t = &th[tenant_of[i]];

		if (tasks[i].error != NULL)
			t->error = error_text(tasks[i].error);
		else
		{
			t->ledger = tasks[i].result;
			t->reachable = true;
		}
	}
}

/* A schema tenant, as one step for tenancy_try(): its schema and size. */
static void
probe_local_step(void *arg)
{
	TenantHealth *t = (TenantHealth *) arg;

	t->size = tenancy_isolation(t->rec->isolation)->local_size(t->rec);
}

static void
probe_local(TenantHealth *t)
{
	ErrorData  *edata = tenancy_try(probe_local_step, t);

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
		/* digits only (checked), clamped: a server cannot make this throw */
		values[7] = Int64GetDatum(strtoi64(t->stats[2], NULL, 10));
		values[8] = Int32GetDatum((int32) Min(strtoi64(t->stats[4], NULL, 10), PG_INT32_MAX));
		values[9] = BoolGetDatum(strcmp(t->stats[1], "true") == 0);
		values[10] = Int32GetDatum((int32) Min(strtoi64(t->stats[3], NULL, 10), PG_INT32_MAX));
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
		RemoteError *drift = tenancy_ledger_check(&t->ledger, migrations,
												  psprintf("tenant \"%s\"", rec->id), &version, NULL);

		if (drift == NULL)
		{
			values[5] = Int64GetDatum(version);
			nulls[5] = false;
		}
		else
		{
			values[6] = CStringGetTextDatum(drift->message);
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
		char	   *tenant = tenancy_name_argument(fcinfo, 0);
		TenantRecord *rec = palloc(sizeof(TenantRecord));

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
		t->ledger.nfields = -1;
		probe_local(t);
	}
	probe_servers(th, n);
	probe_ledgers(th, n);
	for (i = 0; i < n; i++)
		health_row(rsinfo, &th[i], migrations, latest);
	return (Datum) 0;
}
