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
	ENGINE_LEDGER_GUARD,		/* is the ledger the service role's? */
	ENGINE_LEDGER_DETAIL,		/* if not: what is wrong with it */
	ENGINE_LEDGER,				/* reading (and creating) the ledger */
	ENGINE_PRE,					/* BEGIN, settings, locks, xid, suspect? */
	ENGINE_GUARD,				/* if suspect: the guards' refusals */
	ENGINE_STATEMENT,			/* the migration's (or down's) statements */
	ENGINE_CHECK,				/* a schema tenant's schema: no code in it */
	ENGINE_POST,				/* the ledger row, if still in its transaction */
	ENGINE_COMMIT,				/* COMMIT */
	ENGINE_CLEANUP,				/* after a failure: ROLLBACK, prepared? */
	ENGINE_ROLLBACK_PREPARED,
	ENGINE_DONE
} EngineStep;

/* One run: the state the engine keeps between two queries. */
typedef struct MigrationRun
{
	MigrationTarget target;
	List	   *migrations;		/* registered, ascending, checked */
	int64		goal;			/* highest version to keep; -1: every one */
	bool		read;			/* the ledger has been read */
	List	   *applied;		/* registered migrations the ledger holds */
	List	   *undo;			/* still to roll back, newest first */
	List	   *pending;		/* still to apply, ascending */
	EngineStep	step;
	TenancyMigration *m;		/* being applied or rolled back, or NULL */
	bool		down;			/* m is being rolled back */
	int			statement;		/* statements of it sent so far */
	int			failed_statement;	/* the one that failed (from 1), or 0 */
	char	   *xid;			/* m's transaction */
	char	   *started;		/* when its "pre" ran, on the remote clock
								 * (seconds since the Unix epoch) */
	List	   *prepared;		/* after a failure: gids to roll back */
	int64		from_version;	/* highest ledger version before the run */
	int64		to_version;		/* and now */
	int			nup;			/* migrations applied */
	int			ndown;			/* migrations rolled back */
	RemoteError *error;			/* why the run failed, or NULL */
} MigrationRun;

extern void tenancy_engine_check(List *migrations);
extern void tenancy_engine_check_goal(List *migrations, int64 goal, const int64 *held, int nheld);
extern void tenancy_engine_begin(MigrationRun *run, const MigrationTarget *target,
								 List *migrations, int64 goal);
extern const char *tenancy_engine_next(MigrationRun *run, const RemoteResult *last);
extern bool tenancy_engine_wants_rows(const MigrationRun *run);
extern bool tenancy_engine_one_statement(const MigrationRun *run);
extern List *tenancy_engine_parse(const char *sql);
extern char *tenancy_engine_error_text(const MigrationRun *run);
extern const char *tenancy_engine_status(const MigrationRun *run);
extern char *tenancy_engine_applied(const MigrationRun *run);
extern void tenancy_engine_broke(MigrationRun *run, RemoteError *error);
extern void tenancy_engine_run(const MigrationTarget *target, List *migrations,
							   int64 goal, MigrationRun *run);
extern void tenancy_engine_raise(MigrationRun *run) pg_attribute_noreturn();
extern void tenancy_engine_migrate(const MigrationTarget *target, List *migrations,
								   int64 goal, MigrationRun *run);

#endif							/* TENANCY_ENGINE_H */
