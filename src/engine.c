/*-------------------------------------------------------------------------
 *
 * engine.c
 *	  The migration engine: the one way a registered migration is applied,
 *	  by migrate(), migrate_all(), the template build and provisioning,
 *	  for database and schema tenants alike.
 *
 * A run brings a target's ledger to the registered migrations (or, with
 * a goal, to those up to a version): the applied versions above the goal
 * are rolled back first, newest first, each by its down; then every
 * registered migration the ledger lacks is applied, in ascending order
 * (the ledger is a set of versions, not a high-water mark).  It goes
 * through a session of its own to the target's database (a schema
 * tenant's session goes to the admin database, with search_path set to
 * its schema), as the service role, so a migration never sees the
 * caller's session state.  Each migration (or down) is one remote
 * transaction:
 *
 *	  ledger     is the ledger a table the service role owns (42501)?
 *	             then read it (and create it, for a new database)
 *	  pre        BEGIN; RESET ALL and what else a session keeps; SET
 *	             LOCAL search_path (the migration's, or the tenant's
 *	             schema); LOCK the ledger; SELECT pg_current_xact_id()
 *	             and the guards (guard.c: 42501, checked here)
 *	  statements the migration's top-level statements, one query each (so
 *	             nothing one contains, an open comment or quote included,
 *	             can change how tenancy's own statements parse, and an
 *	             error names the statement that failed)
 *	  post       insert (or for a down delete) the ledger row if the
 *	             transaction is still the one "pre" saw, returning it
 *	  commit     COMMIT, only if it did
 *
 * No PL/pgSQL runs on this path (every check is a SELECT the engine reads):
 * loading it would cost each fresh tenant session more than a typical
 * migration.
 *
 * A migration registered with transactional => false runs its statements
 * outside a transaction, each committed on its own (CREATE INDEX
 * CONCURRENTLY), and its ledger row is written after the last succeeds,
 * in a transaction of its own; a failure leaves it unrecorded, so the
 * next run applies it again from its first statement.
 *
 * The condition in "post" compares the remote transaction id with the one
 * the engine read before the migration ran, embedded as a literal: a
 * migration that ended its transaction (COMMIT, ROLLBACK, PREPARE
 * TRANSACTION) is in another one whatever it sets or forges, so it
 * is caught (25000) and nothing is recorded as applied.  Before that, the
 * migration's statements are parsed here (raw parser, nothing executed):
 * that is how they are split, and a migration with a top-level COMMIT,
 * ROLLBACK or PREPARE TRANSACTION (any transaction command, outside a
 * transaction) is refused before anything is sent.  After any failure the
 * engine rolls the remote transaction back and, should the migration have
 * prepared it, rolls the prepared transaction back too, so nothing is left
 * in pg_prepared_xacts holding the ledger's lock.
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

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "engine.h"
#include "fault.h"
#include "guard.h"
#include "ledger.h"
#include "try.h"

#define ENDS_TRANSACTION_DETAIL \
	"Migrations run inside a transaction that tenancy commits together with the ledger row; they must not contain COMMIT, ROLLBACK, PREPARE TRANSACTION or similar."

#define OUTSIDE_TRANSACTION_DETAIL \
	"A migration registered with transactional => false runs each statement on its own; it must not contain transaction commands."

/* What a migration's or a down's SQL is called in messages. */
static char *
sql_name(int64 version, bool down)
{
	return down ? psprintf("the down of migration " INT64_FORMAT, version) :
		psprintf("migration " INT64_FORMAT, version);
}

/* Arguments of scan_step(). */
typedef struct ScanStep
{
	int64		version;
	const char *sql;
	bool		down;
	bool		transactional;
	List	   *statements;		/* out */
	RemoteError *refusal;		/* out */
} ScanStep;

/*
 * The line "offset" of "sql" is on, from 1, skipping the white space and
 * comments before the statement's first token.
 */
static int
statement_line(const char *sql, int offset)
{
	const char *p = sql + offset;
	int			line = 1;
	const char *q;

	for (;;)
	{
		while (*p && isspace((unsigned char) *p))
			p++;
		if (p[0] == '-' && p[1] == '-')
		{
			while (*p && *p != '\n')
				p++;
		}
		else if (p[0] == '/' && p[1] == '*')
		{
			int			depth = 1;	/* block comments nest */

			for (p += 2; *p && depth > 0; p++)
			{
				if (p[0] == '/' && p[1] == '*')
					depth++, p++;
				else if (p[0] == '*' && p[1] == '/')
					depth--, p++;
			}
		}
		else
			break;
	}
	for (q = sql; q < p; q++)
		if (*q == '\n')
			line++;
	return line;
}

/*
 * The setting the statement would change that changes how the following
 * ones are read, or NULL: standard_conforming_strings (set to anything but
 * on) or client_encoding (set at all: a client encoding whose characters
 * can end in a backslash's byte hides a quote from tenancy's parser), or
 * any other mention of either (set_config(), a function's SET clause),
 * failing closed.  A setting changed where no statement names it (a name
 * built at run time, a function) is caught after whatever changed it: the
 * session is then broken (remote.c), and the run fails with 0A000.
 */
static const char *
changes_reading(Node *stmt, const char *sql)
{
	if (IsA(stmt, VariableSetStmt) && ((VariableSetStmt *) stmt)->name != NULL)
	{
		VariableSetStmt *set = (VariableSetStmt *) stmt;
		A_Const    *value;

		if (pg_strcasecmp(set->name, "client_encoding") == 0)
			return set->kind != VAR_RESET && set->kind != VAR_SET_DEFAULT ? "client_encoding" : NULL;
		if (pg_strcasecmp(set->name, "standard_conforming_strings") != 0)
			return NULL;
		if (set->kind != VAR_SET_VALUE || list_length(set->args) != 1 ||
			!IsA(linitial(set->args), A_Const))
			return set->kind != VAR_RESET && set->kind != VAR_SET_DEFAULT ?
				"standard_conforming_strings" : NULL;
		value = (A_Const *) linitial(set->args);
		return value->isnull || !IsA(&value->val, String) ||
			(pg_strcasecmp(strVal(&value->val), "on") != 0 &&
			 pg_strcasecmp(strVal(&value->val), "true") != 0) ?
			"standard_conforming_strings" : NULL;
	}
	else
	{
		char	   *lower = asc_tolower(sql, strlen(sql));

		if (strstr(lower, "standard_conforming_strings") != NULL)
			return "standard_conforming_strings";
		if (strstr(lower, "client_encoding") != NULL)
			return "client_encoding";
		return NULL;
	}
}

/* The name of a transaction command, or NULL for a harmless one. */
static const char *
transaction_command(TransactionStmt *stmt, bool transactional)
{
	switch (stmt->kind)
	{
		case TRANS_STMT_COMMIT:
			return "COMMIT";
		case TRANS_STMT_ROLLBACK:
			return "ROLLBACK";
		case TRANS_STMT_PREPARE:
			return "PREPARE TRANSACTION";
		case TRANS_STMT_COMMIT_PREPARED:
			return "COMMIT PREPARED";
		case TRANS_STMT_ROLLBACK_PREPARED:
			return "ROLLBACK PREPARED";
		default:
			/* BEGIN, SAVEPOINT, ...: harmless inside a transaction only */
			return transactional ? NULL : "a transaction command";
	}
}

/*
 * The raw parse trees of "sql" (a List of RawStmt) as a remote session of
 * tenancy's reads it: standard_conforming_strings on (so that a string the
 * remote server reads as one is one here too), warning of nothing (its
 * warnings would point into the caller's query).  Raises the parser's
 * error.
 */
List *
tenancy_engine_parse(const char *sql)
{
	int			nestlevel = NewGUCNestLevel();
	List	   *stmts;

	(void) set_config_option("standard_conforming_strings", "on",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("escape_string_warning", "off",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	stmts = raw_parser(sql, RAW_PARSE_DEFAULT);
	AtEOXact_GUC(false, nestlevel);
	return stmts;
}

/*
 * Parses a migration's (or a down's) SQL into its top-level statements,
 * and finds the first that would end the transaction
 * (tenancy_engine_parse).
 */
static void
scan_step(void *arg)
{
	ScanStep   *ss = (ScanStep *) arg;
	List	   *stmts = tenancy_engine_parse(ss->sql);
	ListCell   *lc;

	foreach(lc, stmts)
	{
		RawStmt    *raw = (RawStmt *) lfirst(lc);
		MigrationStatement *st = palloc(sizeof(MigrationStatement));
		int			len = raw->stmt_len > 0 ? raw->stmt_len : (int) strlen(ss->sql) - raw->stmt_location;
		const char *what;
		const char *setting;

		st->sql = pnstrdup(ss->sql + raw->stmt_location, len);
		st->simple = false;
		st->line = statement_line(ss->sql, raw->stmt_location);
		ss->statements = lappend(ss->statements, st);

		/*
		 * The split above is right only while every statement is read as the
		 * remote session starts: standard_conforming_strings on, in the
		 * database's encoding.
		 */
		if ((setting = changes_reading(raw->stmt, st->sql)) != NULL)
		{
			ss->refusal = tenancy_remote_error("0A000",
											   psprintf("%s changes %s", sql_name(ss->version, ss->down), setting),
											   psprintf("Statement %d (line %d) sets it. Migrations are split into statements as the remote session reads them: with standard_conforming_strings on, in the database's encoding; only SET standard_conforming_strings = on and RESET client_encoding are accepted.",
														foreach_current_index(lc) + 1, st->line),
											   "Write string literals for standard_conforming_strings = on (E'...' for backslash escapes), in the database's encoding.");
			return;
		}
		if (!IsA(raw->stmt, TransactionStmt) ||
			(what = transaction_command((TransactionStmt *) raw->stmt, ss->transactional)) == NULL)
			continue;
		ss->refusal = tenancy_remote_error("25000",
										   ss->transactional ?
										   psprintf("%s ends its transaction", sql_name(ss->version, ss->down)) :
										   psprintf("%s contains a transaction command", sql_name(ss->version, ss->down)),
										   psprintf("Statement %d (line %d) is %s. %s",
													foreach_current_index(lc) + 1, st->line, what,
													ss->transactional ? ENDS_TRANSACTION_DETAIL :
													OUTSIDE_TRANSACTION_DETAIL),
										   NULL);
		return;
	}
}

/*
 * Parses one SQL text of a migration; returns why it may not run (25000,
 * or the parser's error), or NULL, and sets *statements.
 */
static RemoteError *
scan(const TenancyMigration *m, const char *sql, bool down, List **statements)
{
	ScanStep	ss = {m->version, sql, down, m->transactional, NIL, NULL};
	ErrorData  *edata = NULL;

	*statements = NIL;
	if (tenancy_fault_skip("statement_scan") || tenancy_fault_is("statement_scan", "whole"))
	{
		MigrationStatement *st = palloc(sizeof(MigrationStatement));

		/*
		 * tests: the whole text as one statement, unchecked; with "skip" sent
		 * as a simple query too, as if the scan and the one-statement
		 * protocol had both missed what it holds
		 */
		st->sql = pstrdup(sql);
		st->line = 1;
		st->simple = tenancy_fault_skip("statement_scan");
		*statements = list_make1(st);
		return NULL;
	}
	edata = tenancy_try(scan_step, &ss);
	if (edata != NULL)
		return tenancy_remote_error(unpack_sql_state(edata->sqlerrcode),
									psprintf("%s cannot be parsed: %s", sql_name(m->version, down),
											 edata->message),
									edata->detail, edata->hint);
	*statements = ss.statements;
	return ss.refusal;
}

/*
 * Checks each migration of "migrations" once: splits its SQL and its down
 * into statements, and records in it why either may not run: one of its
 * top-level statements ends the transaction (25000), or this server
 * cannot parse it (the parser's error).  Failing closed: what tenancy
 * cannot read is not sent.  Tests switch the check off (fault point
 * statement_scan:skip) to show that the transaction check after each
 * migration stands on its own.
 */
void
tenancy_engine_check(List *migrations)
{
	ListCell   *lc;

	foreach(lc, migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);
		MemoryContext old;

		if (m->checked)
			continue;
		/* what is found lives as long as the migration */
		old = MemoryContextSwitchTo(GetMemoryChunkContext(m));
		m->refusal = scan(m, m->sql, false, &m->statements);
		m->down_refusal = m->down ? scan(m, m->down, true, &m->down_statements) : NULL;
		MemoryContextSwitchTo(old);
		m->checked = true;
	}
}

/* The error of rolling back a migration that has no down. */
static RemoteError *
no_down_error(int64 version, int64 goal)
{
	return tenancy_remote_error("55000",
								psprintf("migration " INT64_FORMAT " cannot be rolled back", version),
								psprintf("It was registered without a down, and to_version " INT64_FORMAT " is below it.",
										 goal),
								"Remove it with tenancy.remove_migration() before any tenant applies it, or choose a higher to_version.");
}

/*
 * Before anything runs: 22023 for a goal outside 0 .. the highest
 * registered version, 55000 when a version above the goal that a tenant
 * holds ("held": the catalog's summaries) has no down.  A goal of -1
 * means every registered migration.  Each run checks its own tenant's
 * ledger again before it runs anything.
 */
void
tenancy_engine_check_goal(List *migrations, int64 goal, const int64 *held, int nheld)
{
	int64		latest = migrations ? ((TenancyMigration *) llast(migrations))->version : 0;
	ListCell   *lc;

	if (goal == -1)
		return;
	if (goal < 0 || goal > latest)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("to_version " INT64_FORMAT " is out of range", goal),
				 errdetail("to_version must be between 0 and the highest registered version, " INT64_FORMAT ".",
						   latest)));
	foreach(lc, migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);
		int			i;

		if (m->version <= goal || m->down != NULL)
			continue;
		for (i = 0; i < nheld; i++)
		{
			if (held[i] == m->version)
				tenancy_remote_raise(no_down_error(m->version, goal));
		}
	}
}

/* Starts a run of "migrations" (checked) on "target" (copied). */
void
tenancy_engine_begin(MigrationRun *run, const MigrationTarget *target, List *migrations,
					 int64 goal)
{
	memset(run, 0, sizeof(*run));
	run->target = *target;
	run->migrations = migrations;
	run->goal = goal;
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
 * Is "s" the remote clock as "pre" reads it: seconds since the Unix epoch,
 * digits with at most one decimal point?  Read as a number, it means the
 * same instant to every session, whatever DateStyle and TimeZone the
 * tenant's database gives it.
 */
static bool
is_epoch(const char *s)
{
	bool		point = false;
	int			digits = 0;

	if (s == NULL || strlen(s) > 32)
		return false;
	for (; *s; s++)
	{
		if (*s == '.' && !point)
			point = true;
		else if (*s >= '0' && *s <= '9')
			digits++;
		else
			return false;
	}
	return digits > 0;
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
					"OR pg_catalog.extract('epoch'::pg_catalog.text, prepared) OPERATOR(pg_catalog.>=) %s::pg_catalog.numeric) "
					"ORDER BY 1",
					quote_literal_cstr(run->xid), quote_literal_cstr(run->started));
}

/*
 * The run failed inside a transaction (the migration's, or the one that
 * writes a non-transactional migration's ledger row): roll it back, and
 * find the transactions the migration prepared, to roll them back too.
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

/* Orders migrations by version, ascending. */
static int
by_version(const ListCell *a, const ListCell *b)
{
	int64		va = ((TenancyMigration *) lfirst(a))->version;
	int64		vb = ((TenancyMigration *) lfirst(b))->version;

	return va < vb ? -1 : va > vb ? 1 : 0;
}

/* The highest version the ledger holds now. */
static int64
ledger_max(const MigrationRun *run)
{
	return run->applied ? ((TenancyMigration *) llast(run->applied))->version : 0;
}

/*
 * What a migration may have left in the session, besides settings:
 * prepared statements, temporary tables (which would shadow the tenant's
 * on the next migration's path), cursors, LISTENs and advisory locks.
 * DISCARD ALL would do, but it cannot run in a transaction block.
 */
#define SESSION_RESET \
	"DEALLOCATE ALL; DISCARD TEMP; CLOSE ALL; UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all();"

/*
 * The search_path the guards check: a schema tenant's schema, or the
 * migration's path.
 */
static const char *
guard_path(const MigrationRun *run)
{
	return run->target.schema ? quote_identifier(run->target.schema) : run->m->search_path;
}

/*
 * The settings and checks a migration (or down) starts with: it starts
 * from the session's initial settings (its connection options: empty
 * search_path, tenancy's timeouts, its application_name), whatever the
 * one before SET or PREPAREd; a database tenant's migration then runs
 * under its own search_path, a schema tenant's under its schema.  The
 * first migration of a run needs no reset: every run has a session of its
 * own, and the ledger queries before it change nothing in it.  The query
 * returns the transaction's id, the remote clock, and whether the guards
 * are worth asking (guard.c).
 */
static char *
pre_query(const MigrationRun *run)
{
	const TenancyMigration *m = run->m;
	const char *schema = run->target.schema;
	const char *path = schema ? psprintf("%s, pg_temp", quote_identifier(schema)) : m->search_path;
	const char *set_path = path[0] ? psprintf("SET %s search_path = %s; ",
											  m->transactional ? "LOCAL" : "SESSION", path) : "";
	const char *reset = run->nup + run->ndown == 0 ? "" :
	"RESET ALL; RESET ROLE; " SESSION_RESET " ";
	char	   *suspect = tenancy_guard_expr_suspect(schema, guard_path(run));

	if (!m->transactional)
		return psprintf("%s%sSELECT NULL, pg_catalog.extract('epoch'::pg_catalog.text, pg_catalog.clock_timestamp()), %s",
						reset, set_path, suspect);
	return psprintf("BEGIN; %s%s%s; "
					"SELECT pg_catalog.pg_current_xact_id(), "
					"pg_catalog.extract('epoch'::pg_catalog.text, pg_catalog.clock_timestamp()), %s",
					reset, set_path, tenancy_ledger_sql_lock(schema), suspect);
}

/* The guards themselves, when "pre" found them worth asking. */
static char *
guard_query(const MigrationRun *run)
{
	return psprintf("SELECT %s, %s", tenancy_guard_expr_triggers(run->target.schema),
					tenancy_guard_expr_path(guard_path(run)));
}

/*
 * After the last statement: the ledger row, written (or for a down
 * deleted) only if the transaction is still the one "pre" saw; the
 * statement returns the row, and the engine commits only if it did.  A
 * migration registered with transactional => false gets its row in a
 * transaction of its own.
 */
static char *
post_query(const MigrationRun *run)
{
	const TenancyMigration *m = run->m;
	const char *schema = run->target.schema;

	if (!m->transactional)
		return psprintf("BEGIN; %s; %s", tenancy_ledger_sql_lock(schema),
						run->down ? tenancy_ledger_sql_delete(m->version, schema, NULL) :
						tenancy_ledger_sql_insert(m->version, m->checksum, schema, NULL));
	return run->down ? tenancy_ledger_sql_delete(m->version, schema, run->xid) :
		tenancy_ledger_sql_insert(m->version, m->checksum, schema, run->xid);
}

/*
 * Starts the next migration to roll back (first) or to apply, or ends the
 * run.
 */
static const char *
next_migration(MigrationRun *run)
{
	TenancyMigration *m;

	run->to_version = ledger_max(run);
	run->xid = NULL;
	run->statement = 0;
	if (run->undo != NIL)
	{
		m = (TenancyMigration *) linitial(run->undo);
		run->down = true;
	}
	else if (run->pending != NIL)
	{
		m = (TenancyMigration *) linitial(run->pending);
		run->down = false;
	}
	else
	{
		run->m = NULL;
		run->step = ENGINE_DONE;
		return NULL;
	}
	run->m = m;
	Assert(m->checked);
	if (run->down && m->down == NULL)
		return fail(run, no_down_error(m->version, run->goal));
	if (run->down ? m->down_refusal != NULL : m->refusal != NULL)
		return fail(run, run->down ? m->down_refusal : m->refusal);

	/*
	 * A schema tenant's migration is checked for code it leaves (guard.c)
	 * before it commits; outside a transaction each statement would commit
	 * before that check, and what it left would stay.
	 */
	if (run->target.schema != NULL && !m->transactional)
		return fail(run, tenancy_remote_error("0A000",
											  psprintf("%s cannot run on a schema tenant", sql_name(m->version, run->down)),
											  "It was registered with transactional => false; a schema tenant's migrations run in a transaction, which is checked for code left in the admin database before it commits.",
											  "Register it with transactional => true, or keep such migrations to database tenants."));
	run->step = ENGINE_PRE;
	return pre_query(run);
}

/*
 * After the ledger read: what to roll back (the versions above the goal,
 * newest first) and what to apply (the registered ones up to the goal
 * that the ledger lacks, ascending).
 */
static void
plan(MigrationRun *run)
{
	ListCell   *lc;

	run->applied = list_copy(run->applied);
	list_sort(run->applied, by_version);
	foreach(lc, run->applied)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);

		if (run->goal >= 0 && m->version > run->goal)
			run->undo = lcons(m, run->undo);
	}
	foreach(lc, run->migrations)
	{
		TenancyMigration *m = (TenancyMigration *) lfirst(lc);

		if ((run->goal < 0 || m->version <= run->goal) && !list_member_ptr(run->applied, m))
			run->pending = lappend(run->pending, m);
	}
}

/* A version the run would roll back that has no down, or NULL. */
static TenancyMigration *
undo_without_down(const MigrationRun *run)
{
	ListCell   *lc;

	foreach(lc, run->undo)
	{
		if (((TenancyMigration *) lfirst(lc))->down == NULL)
			return (TenancyMigration *) lfirst(lc);
	}
	return NULL;
}

/* The failure of the statement last sent. */
static const char *
statement_failed(MigrationRun *run, RemoteError *error)
{
	run->failed_statement = run->statement;
	if (run->m->transactional)
		return fail_in_transaction(run, error);
	return fail(run, error);
}

/* The next statement of the current migration (or down), or "post". */
static const char *
next_statement(MigrationRun *run)
{
	List	   *statements = run->down ? run->m->down_statements : run->m->statements;

	if (run->statement < list_length(statements))
	{
		run->step = ENGINE_STATEMENT;
		return ((MigrationStatement *) list_nth(statements, run->statement++))->sql;
	}
	if (run->target.schema != NULL)
	{
		run->step = ENGINE_CHECK;
		return psprintf("SELECT %s", tenancy_guard_expr_code());
	}
	run->step = ENGINE_POST;
	return post_query(run);
}

/* After the ledger guard: the ledger's rows (creating it first if new). */
static const char *
ledger_read(MigrationRun *run)
{
	const char *schema = run->target.schema;

	run->step = ENGINE_LEDGER;
	if (run->target.create_ledger)
		return psprintf("%s; %s", tenancy_ledger_sql_setup(schema), tenancy_ledger_sql_select(schema));
	return tenancy_ledger_sql_select(schema);
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
	RemoteError *error;
	char	  **row;

	if (last != NULL && last->error != NULL && run->step != ENGINE_CLEANUP &&
		run->step != ENGINE_ROLLBACK_PREPARED)
	{
		if (run->step == ENGINE_LEDGER || run->step == ENGINE_LEDGER_GUARD ||
			run->step == ENGINE_LEDGER_DETAIL)
			return fail(run, last->error);
		if (run->step == ENGINE_STATEMENT)
			return statement_failed(run, last->error);
		if ((run->step == ENGINE_PRE || run->step == ENGINE_GUARD || run->step == ENGINE_CHECK) &&
			!run->m->transactional)
			return fail(run, last->error);
		return fail_in_transaction(run, last->error);
	}

	switch (run->step)
	{
		case ENGINE_START:
			run->step = ENGINE_LEDGER_GUARD;
			return psprintf("SELECT %s", tenancy_ledger_expr_suspect(schema));

		case ENGINE_LEDGER_GUARD:
			if (last->nfields != 1 || list_length(last->rows) != 1)
				return fail(run, tenancy_remote_error("08P01", "unexpected answer to a ledger check", NULL, NULL));
			row = (char **) linitial(last->rows);
			if (row[0] == NULL || strcmp(row[0], "f") != 0)
			{
				run->step = ENGINE_LEDGER_DETAIL;
				return psprintf("SELECT %s", tenancy_ledger_expr_guard(schema));
			}
			return ledger_read(run);

		case ENGINE_LEDGER_DETAIL:
			if (last->nfields != 1 || list_length(last->rows) != 1)
				return fail(run, tenancy_remote_error("08P01", "unexpected answer to a ledger check", NULL, NULL));
			row = (char **) linitial(last->rows);
			if (row[0] != NULL)
				return fail(run, tenancy_ledger_refusal(row[0]));
			return ledger_read(run);

		case ENGINE_LEDGER:
			error = tenancy_ledger_check(last, run->migrations, run->target.label,
										 &run->from_version, &run->applied);
			if (error != NULL)
				return fail(run, error);
			run->read = true;
			plan(run);
			/* refused before anything runs, not halfway */
			{
				TenancyMigration *nodown = undo_without_down(run);

				if (nodown != NULL)
					return fail(run, no_down_error(nodown->version, run->goal));
			}
			return next_migration(run);

		case ENGINE_PRE:
			row = list_length(last->rows) == 1 ? (char **) linitial(last->rows) : NULL;
			if (last->nfields != 3 || row == NULL || !is_epoch(row[1]) ||
				(run->m->transactional && !tenancy_remote_is_number(row[0])))
			{
				error = tenancy_remote_error("08P01", "unexpected answer to a transaction id query",
											 NULL, NULL);
				return run->m->transactional ? fail_in_transaction(run, error) : fail(run, error);
			}
			run->xid = row[0] ? pstrdup(row[0]) : NULL;
			run->started = pstrdup(row[1]);
			if (row[2] == NULL || strcmp(row[2], "f") != 0)
			{
				run->step = ENGINE_GUARD;
				return guard_query(run);
			}
			return next_statement(run);

		case ENGINE_GUARD:
			row = list_length(last->rows) == 1 ? (char **) linitial(last->rows) : NULL;
			if (last->nfields != 2 || row == NULL)
			{
				error = tenancy_remote_error("08P01", "unexpected answer to a migration guard", NULL, NULL);
				return run->m->transactional ? fail_in_transaction(run, error) : fail(run, error);
			}
			if (row[0] != NULL || row[1] != NULL)
			{
				error = tenancy_guard_refusal(row[0] ? GUARD_TRIGGERS : GUARD_PATH,
											  row[0] ? row[0] : row[1]);
				return run->m->transactional ? fail_in_transaction(run, error) : fail(run, error);
			}
			return next_statement(run);

		case ENGINE_STATEMENT:

			/*
			 * A statement that left the migration's transaction (or, outside
			 * one, opened a transaction) stops the migration at once: no
			 * statement after it may run where it does not belong.
			 */
			if (last->in_transaction != run->m->transactional)
			{
				run->failed_statement = run->statement;
				return fail_in_transaction(run,
										   tenancy_remote_error("25000",
																run->m->transactional ?
																psprintf("%s ends its transaction", sql_name(run->m->version, run->down)) :
																psprintf("%s opens a transaction", sql_name(run->m->version, run->down)),
																run->m->transactional ? ENDS_TRANSACTION_DETAIL :
																OUTSIDE_TRANSACTION_DETAIL,
																NULL));
			}
			return next_statement(run);

		case ENGINE_CHECK:
			row = list_length(last->rows) == 1 ? (char **) linitial(last->rows) : NULL;
			if (last->nfields != 1 || row == NULL || row[0] != NULL)
			{
				error = row != NULL && last->nfields == 1 ?
					tenancy_guard_refusal(GUARD_CODE, psprintf("%s %s", sql_name(run->m->version, run->down), row[0])) :
					tenancy_remote_error("08P01", "unexpected answer to a migration guard", NULL, NULL);
				return run->m->transactional ? fail_in_transaction(run, error) : fail(run, error);
			}
			run->step = ENGINE_POST;
			return post_query(run);

		case ENGINE_POST:
			if (run->m->transactional && list_length(last->rows) != 1)
				return fail_in_transaction(run,
										   tenancy_remote_error("25000",
																psprintf("%s ends its transaction", sql_name(run->m->version, run->down)),
																ENDS_TRANSACTION_DETAIL, NULL));
			run->step = ENGINE_COMMIT;
			return "COMMIT";

		case ENGINE_COMMIT:
			if (run->down)
			{
				run->applied = list_delete_ptr(run->applied, run->m);
				run->undo = list_delete_first(run->undo);
				run->ndown++;
			}
			else
			{
				run->applied = lappend(run->applied, run->m);
				list_sort(run->applied, by_version);
				run->pending = list_delete_first(run->pending);
				run->nup++;
			}
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
			return NULL;
	}
	return NULL;
}

/*
 * Whether the query tenancy_engine_next() just returned needs its rows:
 * not a migration's own statements (a large SELECT in a migration would
 * only be copied to be thrown away).
 */
bool
tenancy_engine_wants_rows(const MigrationRun *run)
{
	return run->step != ENGINE_STATEMENT;
}

/*
 * Whether the query tenancy_engine_next() just returned is one of the
 * migration's statements, to be sent as one statement (extended protocol),
 * so that a text the server splits differently from tenancy's parser
 * cannot run a statement the scan never saw.  tenancy's own queries go as
 * simple queries (several statements in one round trip).
 */
bool
tenancy_engine_one_statement(const MigrationRun *run)
{
	List	   *statements;

	if (run->step != ENGINE_STATEMENT)
		return false;
	statements = run->down ? run->m->down_statements : run->m->statements;
	return !((MigrationStatement *) list_nth(statements, run->statement - 1))->simple;
}

/* The statement that failed: ", statement 2 (line 3)", or "". */
static char *
failed_statement(const MigrationRun *run)
{
	List	   *statements;

	if (run->m == NULL || run->failed_statement == 0)
		return "";
	statements = run->down ? run->m->down_statements : run->m->statements;
	return psprintf(", statement %d (line %d)", run->failed_statement,
					((MigrationStatement *) list_nth(statements, run->failed_statement - 1))->line);
}

/*
 * A failed run's error as one line for a result row or last_error: the
 * error, prefixed with the migration (and statement) it happened in
 * unless the message names the migration.
 */
char *
tenancy_engine_error_text(const MigrationRun *run)
{
	char	   *text = tenancy_remote_error_text(run->error);

	if (run->m == NULL || strncmp(text, "migration ", 10) == 0 ||
		strncmp(text, "the down of migration ", 22) == 0)
		return text;

	return psprintf("%s%s: %s", sql_name(run->m->version, run->down), failed_statement(run), text);
}

/* A finished run's outcome: failed, rolled_back, migrated or up_to_date. */
const char *
tenancy_engine_status(const MigrationRun *run)
{
	if (run->error != NULL)
		return "failed";
	if (run->ndown > 0)
		return "rolled_back";
	if (run->nup > 0)
		return "migrated";
	return "up_to_date";
}

/*
 * The versions the ledger holds, as an array literal ("{1,2,5}") for the
 * catalog's summary, or NULL when the ledger was not read.
 */
char *
tenancy_engine_applied(const MigrationRun *run)
{
	StringInfoData buf;
	ListCell   *lc;

	if (!run->read)
		return NULL;
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	foreach(lc, run->applied)
		appendStringInfo(&buf, "%s" INT64_FORMAT, foreach_current_index(lc) > 0 ? "," : "",
						 ((TenancyMigration *) lfirst(lc))->version);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* tenancy_engine_broke()'s cleanup, for tenancy_try(). */
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
 * After a run's session broke ("error": lost, or no longer reading SQL as
 * tenancy sends it): the run fails with that error, at the statement it
 * was sending if any, and if it broke inside a migration's transaction
 * (the session is gone, and with it the transaction, unless the migration
 * prepared it), what the migration prepared is rolled back on a fresh
 * session.  Never throws; a failure of that is a WARNING (the
 * transactions stay in pg_prepared_xacts for a DBA).
 */
void
tenancy_engine_broke(MigrationRun *run, RemoteError *error)
{
	ErrorData  *edata;

	if (run->error == NULL)
		run->error = error;
	if (run->step == ENGINE_STATEMENT && run->failed_statement == 0)
		run->failed_statement = run->statement;
	run->step = ENGINE_DONE;
	if (run->xid == NULL || run->started == NULL)
		return;
	edata = tenancy_try(cleanup_step, run);
	if (edata != NULL)
		ereport(WARNING,
				(errmsg("could not check %s for transactions a failed migration prepared: %s",
						run->target.label, edata->message),
				 errhint("Look in pg_prepared_xacts there, and roll back what migration " INT64_FORMAT " prepared.",
						 run->m ? run->m->version : 0)));
	run->xid = NULL;
}

/* CONTEXT of errors while a run goes: the target, version and statement. */
static void
engine_error_callback(void *arg)
{
	MigrationRun *run = (MigrationRun *) arg;

	if (run->m == NULL)
		errcontext("migrating %s", run->target.label);
	else if (run->down)
		errcontext("rolling back migration " INT64_FORMAT " of %s%s", run->m->version,
				   run->target.label, failed_statement(run));
	else
		errcontext("migrating %s to version " INT64_FORMAT "%s", run->target.label,
				   run->m->version, failed_statement(run));
}

/*
 * Brings "target" to "goal" (see the header) on a session opened and
 * closed here, waiting for each step; the run's outcome, its error
 * included, is left in *run (nothing is raised for what the remote side
 * sends).
 */
void
tenancy_engine_run(const MigrationTarget *target, List *migrations, int64 goal,
				   MigrationRun *run)
{
	ErrorContextCallback errcb;
	RemoteSession *session;
	RemoteResult r;
	const char *sql;

	tenancy_engine_check(migrations);
	tenancy_engine_begin(run, target, migrations, goal);
	errcb.callback = engine_error_callback;
	errcb.arg = run;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	session = tenancy_remote_open(CONNINFO_SERVICE, target->server, target->dbname, target->appname);
	PG_TRY();
	{
		for (sql = tenancy_engine_next(run, NULL); sql != NULL; sql = tenancy_engine_next(run, &r))
		{
			if (tenancy_engine_one_statement(run))
				tenancy_remote_call_statement(session, sql, tenancy_engine_wants_rows(run), &r);
			else
				tenancy_remote_call(session, sql, 0, NULL, tenancy_engine_wants_rows(run), &r);
			if (r.broken)
			{
				tenancy_engine_broke(run, r.error);
				break;
			}
		}
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
	error_context_stack = errcb.previous;
}

/*
 * Raises a failed run's error (the remote SQLSTATE, XX001 for drift or a
 * damaged ledger, 25000 for a migration that ends its transaction, 55000
 * for a version without down to roll back) with a CONTEXT line naming the
 * target, version and statement.
 */
void
tenancy_engine_raise(MigrationRun *run)
{
	ErrorContextCallback errcb;

	Assert(run->error != NULL);
	errcb.callback = engine_error_callback;
	errcb.arg = run;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	tenancy_remote_raise(run->error);
}

/* tenancy_engine_run(), raising the run's error; what committed stays. */
void
tenancy_engine_migrate(const MigrationTarget *target, List *migrations, int64 goal,
					   MigrationRun *run)
{
	tenancy_engine_run(target, migrations, goal, run);
	if (run->error != NULL)
		tenancy_engine_raise(run);
}
