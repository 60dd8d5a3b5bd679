/*-------------------------------------------------------------------------
 *
 * reconcile.c
 *	  SQL-callable reconcile(): compares the catalog with what exists and
 *	  repairs what interrupted operations left.
 *
 * Temporary objects of interrupted provisionings (from their cleanup records,
 * repair.c), interrupted deprovisions (state dropping: the drop is finished
 * and the row deleted), and rows whose database or schema is missing (marked
 * failed): existence is asked once per tenant server (one query for all its
 * databases) and, on this cluster, answered from the local catalog.
 * Operations still running (their tenant's lock is held) are reported and
 * skipped.  With check_ledgers, each ready tenant's ledger is read and its
 * catalog summary (applied_versions and applied_version) rebuilt from it if
 * they differ; a ledger that cannot be read is reported and the others are
 * still checked.  With dry_run, it only reports.  Concurrent calls serialise
 * on one lock; a second run right after a first finds nothing.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/reconcile.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "catalog.h"
#include "conninfo.h"
#include "database_ddl.h"
#include "isolation.h"
#include "ledger.h"
#include "locks.h"
#include "remote.h"
#include "pool.h"
#include "repair.h"
#include "try.h"

PG_FUNCTION_INFO_V1(tenancy_reconcile);

/* Emits one row of reconcile()'s result. */
static void
report(void *arg, const char *tenant, const char *object, const char *problem,
	   const char *action)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) arg;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (tenant != NULL)
		values[0] = CStringGetTextDatum(tenant);
	else
		nulls[0] = true;		/* a spare of a warm pool: no tenant yet */
	values[1] = CStringGetTextDatum(object);
	values[2] = CStringGetTextDatum(problem);
	values[3] = CStringGetTextDatum(action);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* Arguments of read_ledger(). */
typedef struct LedgerRead
{
	const TenantRecord *rec;
	int64		max;			/* out: the highest version */
	char	   *versions;		/* out: every version, an array literal */
} LedgerRead;

/*
 * Reads a registered tenant's ledger through a session of its own, for
 * tenancy_try(): raises a remote failure, and XX001 for a damaged ledger
 * (drift is not reconcile's business: migrate() reports it).
 */
static void
read_ledger(void *arg)
{
	LedgerRead *lr = (LedgerRead *) arg;
	MigrationTarget target;
	RemoteSession *session;
	RemoteResult r;
	RemoteError *error;

	tenancy_isolation_target(lr->rec, &target);
	session = tenancy_remote_open(CONNINFO_SERVICE, target.server, target.dbname, target.appname);
	PG_TRY();
	{
		tenancy_remote_call(session, tenancy_ledger_sql_read(target.schema), 0, NULL, true, &r);
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
	if (r.error != NULL)
		tenancy_remote_raise(r.error);
	error = tenancy_ledger_versions(&r, target.label, &lr->max, &lr->versions);
	if (error != NULL)
		tenancy_remote_raise(error);
}

/* The databases found on one tenant server, asked once per run. */
typedef struct ServerDatabases
{
	const char *server;
	List	   *names;			/* its tenants' databases */
	bool		asked;			/* false: it could not be asked */
	List	   *found;			/* those that exist */
} ServerDatabases;

/* Asks one server, for tenancy_try(). */
static void
ask_server(void *arg)
{
	ServerDatabases *sd = (ServerDatabases *) arg;

	sd->found = tenancy_ddl_databases_existing(sd->server, sd->names);
	sd->asked = true;
}

/*
 * For every tenant server: which of its tenants' databases exist, one
 * query per server (the restart that bootstrap() is must not open a
 * session per tenant).  A server that cannot be asked is left unasked:
 * its tenants are checked one by one, and an error reported there.
 */
static List *
existing_remote_databases(List *tenants)
{
	List	   *servers = NIL;
	ListCell   *lc;

	foreach(lc, tenants)
	{
		TenantRecord *t = (TenantRecord *) lfirst(lc);
		ServerDatabases *sd = NULL;
		ListCell   *sc;

		if (t->isolation != TENANT_ISOLATION_DATABASE || t->server[0] == '\0')
			continue;
		foreach(sc, servers)
		{
			if (strcmp(((ServerDatabases *) lfirst(sc))->server, t->server) == 0)
				sd = (ServerDatabases *) lfirst(sc);
		}
		if (sd == NULL)
		{
			sd = palloc0(sizeof(ServerDatabases));
			sd->server = t->server;
			servers = lappend(servers, sd);
		}
		sd->names = lappend(sd->names, t->database_name);
	}
	foreach(lc, servers)
		(void) tenancy_try(ask_server, lfirst(lc));
	return servers;
}

/*
 * Does a tenant's object exist?  A remote database found by the one query
 * to its server is; anything else is checked on its own (on this cluster
 * from the local catalog, without a connection), so that a database the
 * query missed is never marked failed on its word alone.
 */
static bool
object_exists(const TenantRecord *t, List *servers)
{
	ListCell   *lc;

	if (t->isolation == TENANT_ISOLATION_DATABASE && t->server[0] != '\0')
	{
		foreach(lc, servers)
		{
			ServerDatabases *sd = (ServerDatabases *) lfirst(lc);
			ListCell   *fc;

			if (!sd->asked || strcmp(sd->server, t->server) != 0)
				continue;
			foreach(fc, sd->found)
			{
				if (strcmp((char *) lfirst(fc), t->database_name) == 0)
					return true;
			}
		}
	}
	return tenancy_repair_object_exists(t);
}

/*
 * tenancy.reconcile(dry_run boolean, check_ledgers boolean) RETURNS
 * TABLE(tenant, object, problem, action)
 */
Datum
tenancy_reconcile(PG_FUNCTION_ARGS)
{
	RepairReport out;
	ListCell   *lc;
	List	   *tenants;
	List	   *servers;
	bool		check_ledgers = PG_NARGS() > 1 && !PG_ARGISNULL(1) && PG_GETARG_BOOL(1);

	InitMaterializedSRF(fcinfo, 0);
	out.dry_run = PG_ARGISNULL(0) ? false : PG_GETARG_BOOL(0);
	out.report = report;
	out.arg = fcinfo->resultinfo;
	tenancy_catalog_apply_config();

	tenancy_lock_reconcile();

	foreach(lc, tenancy_catalog_cleanup_records(NULL))
	{
		CleanupRecord *c = (CleanupRecord *) lfirst(lc);

		if (!tenancy_try_lock_tenant(c->tenant))
		{
			report(out.arg, c->tenant, c->temporary_name, "provisioning in progress", "none");
			continue;
		}
		tenancy_repair_cleanup(c, &out);
	}
	tenancy_pool_repair(&out);

	tenants = tenancy_catalog_tenants();
	servers = existing_remote_databases(tenants);
	foreach(lc, tenants)
	{
		TenantRecord *t = (TenantRecord *) lfirst(lc);
		const IsolationModel *model = tenancy_isolation(t->isolation);
		const char *object = tenancy_isolation_object(t);

		if (t->state == TENANT_STATE_FAILED)
			continue;

		if (!tenancy_try_lock_tenant(t->id))
		{
			report(out.arg, t->id, object, "operation in progress", "none");
			continue;
		}
		if (t->state == TENANT_STATE_DROPPING)
		{
			report(out.arg, t->id, object, "interrupted deprovisioning",
				   out.dry_run ? psprintf("would drop %s and remove tenant", model->name) :
				   psprintf("dropped %s, removed tenant", model->name));
			if (!out.dry_run)
			{
				model->drop(TENANCY_SERVER(t), object, true, !model->transactional,
							tenancy_conninfo_appname(t->id));
				tenancy_catalog_delete(t->id, false);
			}
		}
		else if (!object_exists(t, servers))
		{
			report(out.arg, t->id, object, psprintf("%s is missing", model->name),
				   out.dry_run ? "would mark tenant failed" : "marked tenant failed");
			if (!out.dry_run)
				tenancy_catalog_set_state(t->id, TENANT_STATE_FAILED,
										  psprintf("%s \"%s\" does not exist", model->name, object),
										  false);
		}
		else if (check_ledgers && t->state == TENANT_STATE_READY)
		{
			LedgerRead	lr = {t, 0, NULL};
			ErrorData  *edata = tenancy_try(read_ledger, &lr);
			char	   *catalog = tenancy_catalog_applied_versions(t->id);

			/* one unreachable tenant does not stop the others */
			if (edata != NULL)
				report(out.arg, t->id, object,
					   psprintf("its ledger could not be read: %s", edata->message), "none");
			else if (strcmp(lr.versions, catalog) != 0 || lr.max != t->applied_version)
			{
				report(out.arg, t->id, object,
					   psprintf("catalog says version " INT64_FORMAT " %s, the ledger " INT64_FORMAT " %s",
								t->applied_version, catalog, lr.max, lr.versions),
					   out.dry_run ? "would set applied_versions from the ledger" : "set applied_versions from the ledger");
				if (!out.dry_run)
					tenancy_catalog_set_applied(t->id, lr.versions, lr.max, false);
			}
		}
	}
	return (Datum) 0;
}
