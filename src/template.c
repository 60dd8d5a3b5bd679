/*-------------------------------------------------------------------------
 *
 * template.c
 *	  The template new tenant databases are copied from: tenancy's own
 *	  (<prefix>template on each server), kept at the registered
 *	  migrations, or one the DBA names (tenancy.template_database).
 *
 * tenancy's own template is rebuilt from template0 whenever the registered
 * migrations change (their fingerprint, catalog.c), under the template's
 * exclusive lock; copies take it shared.  Rebuilding rather than migrating
 * in place keeps the template exactly what the registered migrations
 * produce, even if someone edited it by hand.  It is owned by the service
 * role, closed to connections (CREATE DATABASE cannot copy a database
 * others are connected to) and to PUBLIC.  A copy needs no connection: it
 * already has every migration and its ledger.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/template.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "catalog.h"
#include "database_ddl.h"
#include "engine.h"
#include "locks.h"
#include "names.h"
#include "remote.h"
#include "template.h"
#include "try.h"

/* A template (re)build, as steps for tenancy_try_or_undo(). */
typedef struct TemplateJob
{
	const char *server;
	const char *template_db;
	const char *appname;
	int64		version;
	char	   *versions;		/* the versions it holds ("{1,2}") */
} TemplateJob;

/*
 * What tenancy's template says about who built it (its COMMENT): this
 * catalog, by the cluster's system identifier and the admin database.  Two
 * catalogs with the same tenancy.database_prefix on one server would share
 * the template name: one's migrations (and grants) would reach the other's
 * tenants.
 */
static char *
template_marker(void)
{
	return psprintf("tenancy template of the catalog " UINT64_FORMAT "/%u (database %s)",
					GetSystemIdentifier(), MyDatabaseId,
					quote_identifier(get_database_name(MyDatabaseId)));
}

/*
 * Is a template whose marker is not exactly ours still this catalog's to
 * take over?  On this cluster (same system identifier): if the marker names
 * this database (renamed since) or a database that is gone.  From another
 * system identifier (this cluster after pg_upgrade or a restore): if it
 * names a database of the same name.  Otherwise another catalog built it.
 */
static bool
ours_to_take(const char *marker)
{
	uint64		sysid;
	unsigned int dboid;
	int			pos = 0;

	if (sscanf(marker, "tenancy template of the catalog " UINT64_FORMAT "/%u (database %n",
			   &sysid, &dboid, &pos) != 2 || pos == 0)
		return false;
	if (sysid == GetSystemIdentifier())
		return (Oid) dboid == MyDatabaseId || get_database_name((Oid) dboid) == NULL;
	return strcmp(marker + pos, psprintf("%s)", quote_identifier(get_database_name(MyDatabaseId)))) == 0;
}

static char *
comment_sql(const char *template_db)
{
	return psprintf("COMMENT ON DATABASE %s IS %s", quote_identifier(template_db),
					quote_literal_cstr(template_marker()));
}

/*
 * Builds tenancy's template afresh: dropped if it exists, created from
 * template0, closed to PUBLIC, given the ledger and every registered
 * migration by the migration engine, then closed to connections.
 */
static void
build_steps(void *arg)
{
	TemplateJob *tj = (TemplateJob *) arg;
	MigrationTarget target;
	MigrationRun run;

	tenancy_remote_run(tj->server, NULL, tj->appname,
					   list_make4(tenancy_ddl_drop_database(tj->template_db, true),
								  tenancy_ddl_create_database(tj->template_db, "template0", true),
								  tenancy_ddl_revoke_public(tj->template_db),
								  comment_sql(tj->template_db)));
	memset(&target, 0, sizeof(target));
	target.label = psprintf("template database \"%s\"", tj->template_db);
	target.server = tj->server;
	target.dbname = tj->template_db;
	target.appname = tj->appname;
	target.create_ledger = true;
	tenancy_engine_migrate(&target, tenancy_catalog_migrations(), -1, &run);
	tj->version = run.to_version;
	tj->versions = tenancy_engine_applied(&run);
	tenancy_remote_run(tj->server, NULL, tj->appname,
					   list_make1(tenancy_ddl_allow_connections(tj->template_db, false)));
}

/* After a failed build: drop the half-built template. */
static void
build_undo(void *arg)
{
	TemplateJob *tj = (TemplateJob *) arg;

	tenancy_remote_run(tj->server, NULL, tj->appname,
					   list_make1(tenancy_ddl_drop_database(tj->template_db, true)));
}

/*
 * Makes sure the template that new databases on "server" are copied from
 * is ready, and holds it (shared lock) for the copy.  With tenancy's own
 * template: (re)builds it when it is missing or the registered migrations
 * changed since it was built.  Returns the template's name; *version is
 * the migration version copies of it start at, or -1 for a template
 * tenancy does not manage (copies must then be migrated), and *versions
 * the versions copies hold (an array literal).
 */
char *
tenancy_template_prepare(const char *server, const char *appname, int64 *version,
						 char **versions)
{
	bool		managed;
	char	   *tpl = tenancy_name_template(&managed);
	char	   *built_from;
	char	   *wanted;
	char	   *comment;
	bool		exists;
	TemplateJob tj = {server, tpl, appname, 0, NULL};

	*version = -1;
	*versions = NULL;
	if (!managed)
		return tpl;

	tenancy_lock_template(server, true);
	built_from = tenancy_catalog_template_fingerprint(server, &tj.version);
	wanted = tenancy_catalog_migration_fingerprint(&tj.versions);
	exists = tenancy_ddl_database_comment(server, tpl, &comment);
	if (exists && comment != NULL && strcmp(comment, template_marker()) != 0 &&
		!ours_to_take(comment))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_DATABASE),
				 errmsg("template database \"%s\" belongs to another tenant catalog", tpl),
				 errdetail("Its comment says: %s.", comment),
				 errhint("Give each catalog on a server its own tenancy.database_prefix: it names the template and every tenant database.")));
	if (exists && (comment == NULL || strcmp(comment, template_marker()) != 0))
		tenancy_remote_run(server, NULL, appname, list_make1(comment_sql(tpl)));	/* unmarked, or a
																					 * dropped catalog's */
	if (built_from == NULL || strcmp(built_from, wanted) != 0 || !exists)
	{
		tenancy_try_or_undo(build_steps, build_undo, &tj);
		tenancy_catalog_set_template(server, tpl, tj.version, wanted);
	}
	*version = tj.version;
	*versions = tj.versions;
	tenancy_unlock_template(server, true);
	tenancy_lock_template(server, false);
	return tpl;
}
