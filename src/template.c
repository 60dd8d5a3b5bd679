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
					   list_make3(tenancy_ddl_drop_database(tj->template_db, true),
								  tenancy_ddl_create_database(tj->template_db, "template0", true),
								  tenancy_ddl_revoke_public(tj->template_db)));
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
	TemplateJob tj = {server, tpl, appname, 0, NULL};

	*version = -1;
	*versions = NULL;
	if (!managed)
		return tpl;

	tenancy_lock_template(server, true);
	built_from = tenancy_catalog_template_fingerprint(server, &tj.version);
	wanted = tenancy_catalog_migration_fingerprint(&tj.versions);
	if (built_from == NULL || strcmp(built_from, wanted) != 0 ||
		!tenancy_ddl_database_exists(server, tpl))
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
