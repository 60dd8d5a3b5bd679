/*-------------------------------------------------------------------------
 *
 * pool.c
 *	  Warm pools: spare databases, already at the latest migration, that
 *	  provision() takes by renaming instead of copying the template.
 *
 * A spare is a copy of tenancy's template on a registered server, named
 * like a provisioning's temporary object (<prefix>tmp_<operation id>) and
 * recorded in tenancy.spare with the fingerprint of the migrations it
 * holds.  Its row commits on its own before the database is created
 * (ready false) and is marked ready once it is, so reconcile() can explain
 * every spare: it drops what an unready row names, and forgets a ready row
 * whose database is gone.  A spare whose fingerprint is not the current
 * one is never taken, and fill_pools() drops it.  provision() takes a
 * ready, current spare with FOR UPDATE SKIP LOCKED and deletes its row in
 * the caller's transaction; from there on the spare is the provisioning's
 * temporary object, under its cleanup record (provision.c).
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/pool.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "database_ddl.h"
#include "isolation.h"
#include "names.h"
#include "pool.h"
#include "remote.h"
#include "template.h"

/*
 * Takes a ready spare of "server" (NULL: this cluster) holding exactly the
 * registered migrations, if there is one: its database name, and the
 * version and versions copies of it hold.  The spare's row is deleted in
 * the caller's transaction.
 */
bool
tenancy_pool_take(const char *server, char **dbname, int64 *version, char **versions)
{
	char	   *ignored;
	char	   *fingerprint = tenancy_catalog_migration_fingerprint(&ignored);

	return tenancy_catalog_take_spare(server, fingerprint, dbname, version, versions);
}

/*
 * Brings the pool of "server" (NULL: this cluster) to "want" current
 * spares: drops the spares of older migrations, then copies the template
 * until there are enough.  Sets *created and *dropped.
 */
void
tenancy_pool_fill(const char *server, int want, int *created, int *dropped)
{
	const char *appname = "tenancy/pool";
	int64		version;
	char	   *versions;
	char	   *template_db;
	char	   *ignored;
	char	   *fingerprint = tenancy_catalog_migration_fingerprint(&ignored);
	List	   *stale = tenancy_catalog_stale_spares(server, fingerprint);
	ListCell   *lc;
	int			have;

	*created = 0;
	*dropped = 0;
	/* a full pool of current spares: nothing to do, and no session opened */
	have = tenancy_catalog_count_spares(server, fingerprint);	/* the stale not counted */
	if (stale == NIL && have >= want)
		return;
	template_db = tenancy_template_prepare(server, appname, &version, &versions);
	foreach(lc, stale)
	{
		const char *dbname = (const char *) lfirst(lc);

		tenancy_remote_run(server, NULL, appname, list_make1(tenancy_ddl_drop_database(dbname, true)));
		tenancy_catalog_forget_spare(dbname, false);	/* this transaction
														 * holds its row */
		(*dropped)++;
	}
	for (; have < want; have++)
	{
		char	   *dbname = tenancy_name_temporary(tenancy_catalog_next_operation());

		tenancy_catalog_record_spare(server, dbname, fingerprint, version, versions);
		tenancy_remote_run(server, NULL, appname,
						   tenancy_database_model.create_statements(dbname, template_db, false));
		tenancy_catalog_spare_ready(dbname);
		(*created)++;
	}
}

/*
 * reconcile()'s part: drops the database of every unready spare (an
 * interrupted fill) and forgets it, and forgets ready spares whose
 * database is gone.  Reports each through "out".
 */
void
tenancy_pool_repair(const RepairReport *out)
{
	ListCell   *lc;

	foreach(lc, tenancy_catalog_spares())
	{
		SpareRecord *s = (SpareRecord *) lfirst(lc);
		const char *server = s->server[0] ? s->server : NULL;
		bool		exists = tenancy_ddl_database_exists(server, s->dbname);

		if (s->ready && exists)
			continue;
		out->report(out->arg, NULL, s->dbname,
					s->ready ? "spare database is missing" : "interrupted spare creation",
					out->dry_run ? "would forget the spare" : "forgot the spare");
		if (out->dry_run)
			continue;
		if (exists)
			tenancy_remote_run(server, NULL, "tenancy/pool",
							   list_make1(tenancy_ddl_drop_database(s->dbname, true)));
		tenancy_catalog_forget_spare(s->dbname, true);
	}
}
