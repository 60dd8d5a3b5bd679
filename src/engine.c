/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  The migration engine: the one way a registered migration is applied,
 *	  by migrate(), migrate_all(), the template build and provisioning,
 *	  for database and schema tenants alike.
 *
 * A run applies every registered migration a target's ledger lacks, in
 * ascending order, through a session of its own to the target's database
 * (a schema tenant's session goes to the admin database, with search_path
 * set to its schema), as the service role.  A migration never runs in the
 * caller's backend, so it never sees the caller's session state.  Each
 * migration is one remote transaction, in three round trips:
 *
 *	  pre        BEGIN; [SET LOCAL search_path]; LOCK the ledger; refuse
 *	             foreign triggers (42501); SELECT pg_current_xact_id()
 *	  migration  the migration's SQL, as a query of its own (so nothing it
 *	             contains, an open comment or quote included, can change
 *	             how tenancy's own statements parse)
 *	  post       check that the transaction is still the one "pre" saw,
 *	             insert the ledger row, COMMIT
 *
 * The check in "post" compares the remote transaction id with the one the
 * engine read before the migration ran, embedded in the check as a
 * literal: a migration that ended its transaction (COMMIT, ROLLBACK,
 * PREPARE TRANSACTION) is in another one whatever it sets or forges, so it
 * is caught (25000) and nothing is recorded as applied.  Before that, the
 * migration's statements are parsed here (raw parser, nothing executed)
 * and a migration with a top-level COMMIT, ROLLBACK or PREPARE TRANSACTION
 * is refused before anything is sent.  After any failure the engine rolls
 * the remote transaction back and, should the migration have prepared it,
 * rolls the prepared transaction back too, so nothing is left in
 * pg_prepared_xacts holding the ledger's lock.
 *
 * The engine is a state machine (tenancy_engine_next: given the last
 * result, the next query), so the blocking driver below and fleet runs
 * (migrate.c, through fleet.c) apply migrations with the same steps and
 * the same SQL.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/engine.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "engine.h"
#include "fault.h"
#include "ledger.h"
#include "try.h"

#define ENDS_TRANSACTION_DETAIL \
	"Migrations run inside a transaction that tenancy commits together with the ledger row; they must not contain COMMIT, ROLLBACK, PREPARE TRANSACTION or similar."

/* The error of a migration that ends its transaction. */
static RemoteError *
ends_transaction_error(int64 version, const char *statement)
{
	return tenancy_remote_error("25000",
								psprintf("migration " INT64_FORMAT " ends its transaction", version),
								statement ? psprintf("%s %s", statement, ENDS_TRANSACTION_DETAIL) :
								ENDS_TRANSACTION_DETAIL,
								NULL);
}

/* Arguments of scan_step(). */
typedef struct ScanStep
{
	TenancyMigration *m;
	RemoteError *refusal;		/* out */
} ScanStep;

/*
 * Parses a migration and finds the first top-level statement that would
 * end the transaction.  The parser runs with the settings every remote
 * session has (standard_conforming_strings on, so that a string the
 * remote server splits into statements is split here too), and warns of
 * nothing (its warnings would point into the caller's query).
 */
static void
scan_step(void *arg)
{
	ScanStep   *ss = (ScanStep *) arg;
	int			nestlevel = NewGUCNestLevel();
	List	   *stmts;
	ListCell   *lc;

	(void) set_config_option("standard_conforming_strings", "on",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("escape_string_warning", "off",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	stmts = raw_parser(ss->m->sql, RAW_PARSE_DEFAULT);
	AtEOXact_GUC(false, nestlevel);

	foreach(lc, stmts)
	{
		Node	   *stmt = ((RawStmt *) lfirst(lc))->stmt;
		const char *what = NULL;

		if (!IsA(stmt, TransactionStmt))
			continue;
		switch (((TransactionStmt *) stmt)->kind)
		{
			case TRANS_STMT_COMMIT:
				what = "COMMIT";
				break;
			case TRANS_STMT_ROLLBACK:
				what = "ROLLBACK";
				break;
			case TRANS_STMT_PREPARE:
				what = "PREPARE TRANSACTION";
				break;
			case TRANS_STMT_COMMIT_PREPARED:
				what = "COMMIT PREPARED";
				break;
			case TRANS_STMT_ROLLBACK_PREPARED:
				what = "ROLLBACK PREPARED";
				break;
			default:
				break;			/* BEGIN, SAVEPOINT, ...: harmless inside */
		}
		if (what != NULL)
		{
			ss->refusal = ends_transaction_error(ss->m->version,
												 psprintf("Statement %d of the migration is %s.",
														  foreach_current_index(lc) + 1, what));
			return;
		}
	}
}

/*
 * Checks each migration of "migrations" once, and records in it why it
 * may not run: one of its top-level statements ends the transaction
 * (25000), or this server cannot parse it (the parser's error).  Failing
 * closed: what tenancy cannot read is not sent.  Tests switch the check
 * off (fault point statement_scan:skip) to show that the transaction
 * check after each migration stands on its own.
 */
void
tenancy_engine_check(List *migrations)
{
	ListCell   *lc;

	foreach(lc, migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);
		ScanStep	ss = {m, NULL};
		ErrorData  *edata = NULL;
		MemoryContext old;

		if (m->checked)
			continue;
		/* the refusal lives as long as the migration */
		old = MemoryContextSwitchTo(GetMemoryChunkContext(m));
		if (!tenancy_fault_skip("statement_scan"))
			edata = tenancy_try(scan_step, &ss);
		if (edata != NULL)
			ss.refusal = tenancy_remote_error(unpack_sql_state(edata->sqlerrcode),
											  psprintf("migration " INT64_FORMAT " cannot be parsed: %s",
													   m->version, edata->message),
											  edata->detail, edata->hint);
		MemoryContextSwitchTo(old);
		m->refusal = ss.refusal;
		m->checked = true;
	}
}

/* Starts a run of "migrations" (checked) on "target" (copied). */
void
tenancy_engine_begin(MigrationRun *run, const MigrationTarget *target, List *migrations)
{
	memset(run, 0, sizeof(*run));
	run->target = *target;
	run->migrations = migrations;
	run->step = ENGINE_START;
}

/* The run failed: nothing more to send. */
static const char *
fail(MigrationRun *run, RemoteError *error)
{
	if (run->error == NULL)
		run->error = error;
	run->step = ENGINE_DONE;
	return NULL;
}

/*
 * The query that finds the transactions a failed migration may have
 * prepared: in this database, by this role, the one "pre" started or any
 * prepared since it started (a migration that committed and began again
 * before preparing).  tenancy itself never prepares transactions.
 */
static char *
prepared_query(const MigrationRun *run)
{
	return psprintf("SELECT gid::pg_catalog.text FROM pg_catalog.pg_prepared_xacts "
					"WHERE database OPERATOR(pg_catalog.=) pg_catalog.current_database() "
					"AND owner OPERATOR(pg_catalog.=) CURRENT_USER "
					"AND (transaction OPERATOR(pg_catalog.=) pg_catalog.xid(%s::pg_catalog.xid8) "
					"OR prepared OPERATOR(pg_catalog.>=) %s::pg_catalog.timestamptz) ORDER BY 1",
					quote_literal_cstr(run->xid), quote_literal_cstr(run->started));
}

/*
 * The run failed inside a migration's transaction: roll it back, and find
 * the transactions the migration prepared, to roll them back too.
 */
static const char *
fail_in_transaction(MigrationRun *run, RemoteError *error)
{
	if (run->error == NULL)
		run->error = error;
	run->step = ENGINE_CLEANUP;
	if (run->xid == NULL)
		return "ROLLBACK";
	return psprintf("ROLLBACK; %s", prepared_query(run));
}

/*
 * After the cleanup query: ROLLBACK PREPARED of the next transaction it
 * found, one per round trip (it cannot run inside a transaction block).
 */
static const char *
rollback_prepared(MigrationRun *run)
{
	char	   *gid;

	if (run->prepared == NIL)
	{
		run->step = ENGINE_DONE;
		return NULL;
	}
	gid = (char *) linitial(run->prepared);
	run->prepared = list_delete_first(run->prepared);
	run->step = ENGINE_ROLLBACK_PREPARED;
	return psprintf("ROLLBACK PREPARED %s", quote_literal_cstr(gid));
}

/* Starts the next pending migration, or ends the run. */
static const char *
next_migration(MigrationRun *run)
{
	TenancyMigration *m;
	const char *schema = run->target.schema;

	if (run->pending == NIL)
	{
		run->step = ENGINE_DONE;
		run->current = 0;
		return NULL;
	}
	m = (TenancyMigration *) linitial(run->pending);
	run->current = m->version;
	run->xid = NULL;
	Assert(m->checked);
	if (m->refusal != NULL)
		return fail(run, m->refusal);
	run->step = ENGINE_PRE;

	/*
	 * Each migration starts from the session's initial settings (its
	 * connection options: empty search_path, tenancy's timeouts, its
	 * application_name), whatever the one before SET or PREPAREd.
	 */
	return psprintf("BEGIN; RESET ALL; RESET ROLE; DEALLOCATE ALL; %s%s; %s; "
					"SELECT pg_catalog.pg_current_xact_id()::pg_catalog.text, "
					"pg_catalog.clock_timestamp()::pg_catalog.text",
					schema ? psprintf("SET LOCAL search_path = %s, pg_temp; ", quote_identifier(schema)) : "",
					tenancy_ledger_sql_lock(schema),
					tenancy_ledger_sql_trigger_guard(schema));
}

/*
 * The next query of a run, given the result of the last one (NULL before
 * the first); NULL when the run is over, with run->error set if it
 * failed.  Never throws for what a remote server sends.  Allocates in
 * CurrentMemoryContext.
 */
const char *
tenancy_engine_next(MigrationRun *run, const RemoteResult *last)
{
	const char *schema = run->target.schema;
	TenancyMigration *m = run->pending ? (TenancyMigration *) linitial(run->pending) : NULL;
	RemoteError *error;

	if (last != NULL && last->error != NULL && run->step != ENGINE_CLEANUP &&
		run->step != ENGINE_ROLLBACK_PREPARED)
	{
		if (run->step == ENGINE_LEDGER)
			return fail(run, last->error);
		return fail_in_transaction(run, last->error);
	}

	switch (run->step)
	{
		case ENGINE_START:
			run->step = ENGINE_LEDGER;
			if (run->target.create_ledger)
				return psprintf("%s; %s", tenancy_ledger_sql_setup(schema), tenancy_ledger_sql_read(schema));
			return tenancy_ledger_sql_read(schema);

		case ENGINE_LEDGER:
			error = tenancy_ledger_check(last, run->migrations, run->target.label,
										 &run->from_version, &run->pending);
			if (error != NULL)
				return fail(run, error);
			run->to_version = run->from_version;
			return next_migration(run);

		case ENGINE_PRE:
			if (last->nfields != 2 || list_length(last->rows) != 1 ||
				!tenancy_remote_is_number(((char **) linitial(last->rows))[0]) ||
				((char **) linitial(last->rows))[1] == NULL)
				return fail_in_transaction(run, tenancy_remote_error("08P01",
																	 "unexpected answer to a transaction id query",
																	 NULL, NULL));
			run->xid = pstrdup(((char **) linitial(last->rows))[0]);
			run->started = pstrdup(((char **) linitial(last->rows))[1]);
			run->step = ENGINE_MIGRATION;
			return m->sql;

		case ENGINE_MIGRATION:
			run->step = ENGINE_POST;
			return psprintf("DO $tenancy_guard$ BEGIN "
							"IF pg_catalog.pg_current_xact_id() OPERATOR(pg_catalog.<>) %s::pg_catalog.xid8 THEN "
							"RAISE EXCEPTION USING ERRCODE = '25000', MESSAGE = %s, DETAIL = %s; "
							"END IF; END $tenancy_guard$; %s; COMMIT",
							quote_literal_cstr(run->xid),
							quote_literal_cstr(psprintf("migration " INT64_FORMAT " ends its transaction", m->version)),
							quote_literal_cstr(ENDS_TRANSACTION_DETAIL),
							tenancy_ledger_sql_insert(m->version, m->checksum, schema));

		case ENGINE_POST:
			run->to_version = Max(run->to_version, m->version);
			run->pending = list_delete_first(run->pending);
			return next_migration(run);

		case ENGINE_CLEANUP:
			run->prepared = NIL;
			if (last != NULL && last->error == NULL && last->nfields == 1)
			{
				ListCell   *lc;

				foreach(lc, last->rows)
					if (((char **) lfirst(lc))[0] != NULL)
					run->prepared = lappend(run->prepared, pstrdup(((char **) lfirst(lc))[0]));
			}
			return rollback_prepared(run);

		case ENGINE_ROLLBACK_PREPARED:
			return rollback_prepared(run);

		case ENGINE_DONE:
			run->step = ENGINE_DONE;
			return NULL;
	}
	return NULL;
}

/*
 * A failed run's error as one line for a result row or last_error: the
 * error, prefixed with the migration it happened in unless it names it.
 */
char *
tenancy_engine_error_text(const MigrationRun *run)
{
	char	   *text = tenancy_remote_error_text(run->error);

	if (run->current > 0 && strncmp(text, "migration ", 10) != 0)
		return psprintf("migration " INT64_FORMAT ": %s", run->current, text);
	return text;
}

/* tenancy_engine_cleanup()'s work, for tenancy_try(). */
static void
cleanup_step(void *arg)
{
	MigrationRun *run = (MigrationRun *) arg;
	RemoteSession *session = tenancy_remote_open(CONNINFO_SERVICE, run->target.server,
												 run->target.dbname, run->target.appname);
	RemoteResult r;
	const char *sql;

	PG_TRY();
	{
		tenancy_remote_call(session, prepared_query(run), 0, NULL, true, &r);
		run->step = ENGINE_CLEANUP;
		for (sql = tenancy_engine_next(run, &r); sql != NULL; sql = tenancy_engine_next(run, &r))
			tenancy_remote_call(session, sql, 0, NULL, true, &r);
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
}

/*
 * After a run's session broke inside a migration's transaction (the
 * session is gone, and with it the transaction, unless the migration
 * prepared it): on a fresh session, rolls back what the migration
 * prepared.  Never throws; a failure is a WARNING (the transactions stay
 * in pg_prepared_xacts for a DBA).
 */
void
tenancy_engine_cleanup(MigrationRun *run)
{
	ErrorData  *edata;

	if (run->xid == NULL || run->started == NULL)
		return;
	edata = tenancy_try(cleanup_step, run);
	if (edata != NULL)
		ereport(WARNING,
				(errmsg("could not check %s for transactions a failed migration prepared: %s",
						run->target.label, edata->message),
				 errhint("Look in pg_prepared_xacts there, and roll back what migration " INT64_FORMAT " prepared.",
						 run->current)));
	run->xid = NULL;
}

/* CONTEXT of errors while a run goes: the target and the version. */
static void
engine_error_callback(void *arg)
{
	MigrationRun *run = (MigrationRun *) arg;

	if (run->current > 0)
		errcontext("migrating %s to version " INT64_FORMAT, run->target.label, run->current);
	else
		errcontext("migrating %s", run->target.label);
}

/*
 * Applies the migrations "target" lacks (see the header) on a session
 * opened and closed here, waiting for each step.  Raises the run's error
 * (the remote SQLSTATE, XX001 for drift or a damaged ledger, 25000 for a
 * migration that ends its transaction) with a CONTEXT line naming the
 * target and version; what committed before stays.  Returns the ledger's
 * version afterwards and sets *from to the one before.
 */
int64
tenancy_engine_migrate(const MigrationTarget *target, List *migrations, int64 *from)
{
	MigrationRun run;
	ErrorContextCallback errcb;
	RemoteSession *session;
	RemoteResult r;
	const char *sql;

	tenancy_engine_check(migrations);
	tenancy_engine_begin(&run, target, migrations);
	errcb.callback = engine_error_callback;
	errcb.arg = &run;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	session = tenancy_remote_open(CONNINFO_SERVICE, target->server, target->dbname, target->appname);
	PG_TRY();
	{
		for (sql = tenancy_engine_next(&run, NULL); sql != NULL; sql = tenancy_engine_next(&run, &r))
		{
			tenancy_remote_call(session, sql, 0, NULL, true, &r);
			if (r.broken)
			{
				if (run.error == NULL)
					run.error = r.error;
				tenancy_engine_cleanup(&run);
				break;
			}
		}
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
	if (run.error != NULL)
		tenancy_remote_raise(run.error);
	error_context_stack = errcb.previous;
	*from = run.from_version;
	return run.to_version;
}
