/*-------------------------------------------------------------------------
 *
 * repair.c
 *	  Repairing what an interrupted provisioning left, from its cleanup
 *	  record (for reconcile(), and for the next provision() of the same
 *	  tenant).
 *
 * A cleanup record names what the operation may have created: its object
 * under the temporary name, and, on a tenant server, under the final name
 * (the rename committed there, the registration here did not).  On this
 * cluster the rename is transactional, so an object under the final name
 * is never the operation's to drop.  Drops commit on their own; the record
 * is deleted in the caller's transaction.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/repair.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "conninfo.h"
#include "isolation.h"
#include "names.h"
#include "repair.h"

static void
report(const RepairReport *out, const char *tenant, const char *object,
	   const char *problem, const char *action)
{
	if (out->report != NULL)
		out->report(out->arg, tenant, object, problem, action);
}

/*
 * Drops what the interrupted provisioning of "c" left and removes its
 * record (with out->dry_run, only reports).  The caller holds the
 * tenant's lock.
 */
void
tenancy_repair_cleanup(const CleanupRecord *c, const RepairReport *out)
{
	const IsolationModel *model = tenancy_isolation(c->isolation);
	const char *server = c->server[0] ? c->server : NULL;
	const char *appname = tenancy_conninfo_appname(c->tenant);
	const char *kind = model->name;
	TenantRecord t;
	bool		claimed;

	/* a record names only a temporary name of its own operation */
	if (strcmp(c->temporary_name, tenancy_name_temporary(c->operation_id)) != 0)
	{
		report(out, c->tenant, c->temporary_name,
			   psprintf("cleanup record of operation " INT64_FORMAT " does not name its temporary %s",
						c->operation_id, kind),
			   out->dry_run ? "would remove record" : "removed record, dropped nothing");
		if (!out->dry_run)
			tenancy_catalog_forget_cleanup(c->operation_id, false);
		return;
	}
	claimed = tenancy_catalog_fetch(c->tenant, &t) && t.isolation == c->isolation &&
		strcmp(tenancy_isolation_object(&t), c->final_name) == 0 &&
		strcmp(t.server, c->server) == 0;

	if (model->exists(server, c->temporary_name))
	{
		report(out, c->tenant, c->temporary_name,
			   psprintf("temporary %s of an interrupted provisioning", kind),
			   out->dry_run ? psprintf("would drop %s", kind) : psprintf("dropped %s", kind));
		if (!out->dry_run)
			model->drop(server, c->temporary_name, true, true, appname);
	}
	if (server != NULL && !claimed && model->exists(server, c->final_name))
	{
		report(out, c->tenant, c->final_name,
			   psprintf("%s renamed by an interrupted provisioning but not registered", kind),
			   out->dry_run ? psprintf("would drop %s", kind) : psprintf("dropped %s", kind));
		if (!out->dry_run)
			model->drop(server, c->final_name, true, true, appname);
	}
	report(out, c->tenant, psprintf("operation " INT64_FORMAT, c->operation_id),
		   "cleanup record of an interrupted provisioning",
		   out->dry_run ? "would remove record" : "removed record");
	if (!out->dry_run)
		tenancy_catalog_forget_cleanup(c->operation_id, false);
}

/* Does what a tenant row says exists (its database or schema) exist? */
bool
tenancy_repair_object_exists(const TenantRecord *rec)
{
	return tenancy_isolation(rec->isolation)->exists(TENANCY_SERVER(rec),
													 tenancy_isolation_object(rec));
}
