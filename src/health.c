/*-------------------------------------------------------------------------
 *
 * health.c
 *	  SQL-callable health(): what each tenant's database looks like now.
 *
 * For each tenant (or one): its state in the catalog; from its server,
 * whether its database accepts connections, its size, the sessions
 * connected to it and the age of its oldest unfrozen transaction id; then,
 * connecting to it (bounded by tenancy.connect_timeout, so a server that is
 * down cannot hang the call), whether it is reachable, the version its
 * ledger holds and whether that ledger has drifted from the registered
 * migrations.  One tenant's failure is its row's error, never the call's.
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

/* One tenant's findings. */
typedef struct HealthProbe
{
	const TenantRecord *rec;
	List	   *migrations;
	char	  **stats;			/* datallowconn, size, age, numbackends */
	List	   *ledger;
	int64		size;			/* schema tenants: size of the schema, or -1 */
	bool		reachable;
} HealthProbe;

static void
stats_work(TransportConn *conn, void *arg)
{
	HealthProbe *p = (HealthProbe *) arg;
	List	   *rows = tenancy_transport_query(conn, tenancy_transport_sql_database_stats(p->rec->database_name), 4);

	p->stats = rows ? (char **) linitial(rows) : NULL;
}

static void
ledger_work(TransportConn *conn, void *arg)
{
	HealthProbe *p = (HealthProbe *) arg;

	p->ledger = tenancy_transport_query(conn, TRANSPORT_SQL_LEDGER_READ, 2);
	p->reachable = true;
}

/* What needs connections, as one step for tenancy_try(). */
static void
probe_step(void *arg)
{
	HealthProbe *p = (HealthProbe *) arg;
	const char *server = p->rec->server[0] ? p->rec->server : NULL;
	const char *appname = tenancy_transport_appname(p->rec->id);

	tenancy_transport_run(server, NULL, appname, stats_work, p);
	if (p->stats == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_DATABASE),
				 errmsg("database \"%s\" does not exist", p->rec->database_name)));
	if (strcmp(p->stats[0], "true") == 0)
		tenancy_transport_run(server, p->rec->database_name, appname, ledger_work, p);
}

/* The same for a schema tenant: no connection, the schema is local. */
static void
probe_schema_step(void *arg)
{
	HealthProbe *p = (HealthProbe *) arg;

	if (!tenancy_schema_exists(p->rec->schema_name))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_SCHEMA),
				 errmsg("schema \"%s\" does not exist", p->rec->schema_name)));
	p->size = tenancy_schema_size(p->rec->schema_name);
	p->ledger = tenancy_schema_ledger(p->rec->schema_name);
	p->reachable = true;
}

/* Emits one tenant's row. */
static void
health_row(ReturnSetInfo *rsinfo, const TenantRecord *rec, List *migrations, int64 latest)
{
	HealthProbe p = {rec, migrations, NULL, NIL, -1, false};
	Datum		values[HEALTH_COLUMNS];
	bool		nulls[HEALTH_COLUMNS];
	ErrorData  *edata = NULL;
	int			i;

	for (i = 0; i < HEALTH_COLUMNS; i++)
		nulls[i] = true;
	values[0] = CStringGetTextDatum(rec->id);
	nulls[0] = false;
	values[1] = CStringGetTextDatum(tenancy_state_name(rec->state));
	nulls[1] = false;
	values[3] = Int64GetDatum(rec->applied_version);
	nulls[3] = false;
	values[4] = Int64GetDatum(latest);
	nulls[4] = false;

	edata = tenancy_try(rec->isolation == TENANT_ISOLATION_SCHEMA ? probe_schema_step : probe_step, &p);
	values[2] = BoolGetDatum(p.reachable);
	nulls[2] = false;
	if (p.stats != NULL)
	{
		values[7] = Int64GetDatum(pg_strtoint64(p.stats[1]));
		values[8] = Int32GetDatum(pg_strtoint32(p.stats[3]));
		values[9] = BoolGetDatum(strcmp(p.stats[0], "true") == 0);
		values[10] = Int32GetDatum(pg_strtoint32(p.stats[2]));
		nulls[7] = nulls[8] = nulls[9] = nulls[10] = false;
	}
	if (p.size >= 0)
	{
		values[7] = Int64GetDatum(p.size);
		nulls[7] = false;
	}
	if (p.reachable)
	{
		int64		version;
		char	   *drift;
		char	   *detail;

		if (tenancy_migrate_check_ledger(p.ledger, migrations, psprintf("tenant \"%s\"", rec->id),
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
	else if (edata == NULL && p.stats != NULL)
	{
		values[11] = CStringGetTextDatum("the database does not allow connections");
		nulls[11] = false;
	}
	if (edata != NULL)
	{
		values[11] = CStringGetTextDatum(psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode),
												  edata->detail ? psprintf("%s: %s", edata->message, edata->detail) : edata->message));
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
	int64		latest = 0;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);
	tenancy_catalog_apply_config();
	migrations = tenancy_catalog_migrations();
	if (migrations != NIL)
		latest = ((TenancyMigration *) llast(migrations))->version;

	if (!PG_ARGISNULL(0))
	{
		char	   *tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
		TenantRecord rec;

		tenancy_name_validate(tenant);
		if (!tenancy_catalog_fetch(tenant, &rec))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("tenant \"%s\" does not exist", tenant)));
		health_row(rsinfo, &rec, migrations, latest);
		return (Datum) 0;
	}
	foreach(lc, tenancy_catalog_tenants())
		health_row(rsinfo, (TenantRecord *) lfirst(lc), migrations, latest);
	return (Datum) 0;
}
