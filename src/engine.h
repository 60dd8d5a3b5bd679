/*-------------------------------------------------------------------------
 *
 * engine.h
 *	  The migration engine: applying registered migrations to one target
 *	  (a tenant database, a tenant schema, a template) in a session of its
 *	  own.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/engine.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_ENGINE_H
#define TENANCY_ENGINE_H

#include "nodes/pg_list.h"

#include "remote.h"

/* Where a migration run goes. */
typedef struct MigrationTarget
{
	const char *label;			/* 'tenant "x"', 'template database "y"' */
	const char *server;			/* NULL: this cluster */
	const char *dbname;
	const char *appname;
	const char *schema;			/* a schema tenant's schema, else NULL */
	bool		create_ledger;	/* a new database or schema */
} MigrationTarget;

/* Where a run is. */
typedef enum EngineStep
{
	ENGINE_START,
	ENGINE_LEDGER,				/* reading (and creating) the ledger */
	ENGINE_PRE,					/* BEGIN, locks, guard, transaction id */
	ENGINE_MIGRATION,			/* the migration's own SQL */
	ENGINE_POST,				/* the check, the ledger row, COMMIT */
	ENGINE_CLEANUP,				/* after a failure: ROLLBACK, prepared? */
	ENGINE_ROLLBACK_PREPARED,
	ENGINE_DONE
} EngineStep;

/* One run: the state the engine keeps between two queries. */
typedef struct MigrationRun
{
	MigrationTarget target;
	List	   *migrations;		/* registered, ascending, checked */
	List	   *pending;		/* still to apply */
	EngineStep	step;
	char	   *xid;			/* the current migration's transaction */
	char	   *started;		/* when its "pre" ran, on the remote clock */
	List	   *prepared;		/* after a failure: gids to roll back */
	int64		current;		/* version being applied, or 0 */
	int64		from_version;	/* ledger version before the run */
	int64		to_version;		/* ledger version reached */
	RemoteError *error;			/* why the run failed, or NULL */
} MigrationRun;

extern void tenancy_engine_check(List *migrations);
extern void tenancy_engine_begin(MigrationRun *run, const MigrationTarget *target,
								 List *migrations);
extern const char *tenancy_engine_next(MigrationRun *run, const RemoteResult *last);
extern char *tenancy_engine_error_text(const MigrationRun *run);
extern void tenancy_engine_cleanup(MigrationRun *run);
extern int64 tenancy_engine_migrate(const MigrationTarget *target, List *migrations,
									int64 *from);

#endif							/* TENANCY_ENGINE_H */
