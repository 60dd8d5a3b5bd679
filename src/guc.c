/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Every tenancy.* setting: definitions and check hooks.
 *
 * tenancy.current is the tenant selector.  Its check hook validates syntax
 * only (it may run at startup, on reload or during ALTER ROLE ... SET,
 * possibly outside a transaction), so it never reads the catalog; the
 * tenant is looked up when it is used (selection.c).  After defining the
 * settings we reserve the "tenancy" prefix, so that a typo such as
 * tenancy.curent is refused instead of being kept as a placeholder.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

#include "guc.h"
#include "tenant_id.h"

char	   *tenancy_current = NULL;
char	   *tenancy_database_prefix = NULL;
char	   *tenancy_template_database = NULL;
char	   *tenancy_loopback_host = NULL;
int			tenancy_connect_timeout = 10;
int			tenancy_remote_lock_timeout = 5000;
int			tenancy_lock_wait_timeout = 60000;
int			tenancy_max_kept_connections = 8;
int			tenancy_kept_idle_timeout = 60000;
int			tenancy_remote_statement_timeout = 0;
char	   *tenancy_fault_injection = NULL;
char	   *tenancy_worker_database = NULL;
int			tenancy_worker_naptime = 10;
bool		tenancy_strict_local = false;

/*
 * Who made the selection tenancy.current holds, and when: the local
 * transaction in which its value was SET (or taken from a default at
 * connection), and the role that was the current user then.  Both travel
 * with the value as the GUC's "extra" (SelectionStamp), so a value restored
 * by ROLLBACK [TO SAVEPOINT] or at the end of a transaction comes back with
 * its own stamp, never with the time of the restore.  With
 * tenancy.strict_local, a selection made in another transaction is refused
 * (behind a transaction pooler it may belong to another client); a
 * selection is used only if the role that made it may use the tenant too
 * (a SECURITY DEFINER function does not launder a non-member's selection).
 */
LocalTransactionId tenancy_current_stamp = InvalidLocalTransactionId;
Oid			tenancy_current_selector = InvalidOid;

typedef struct SelectionStamp
{
	LocalTransactionId lxid;
	Oid			selector;
} SelectionStamp;

/*
 * The GUC records of tenancy.current and search_path, to tell a SET LOCAL
 * value from a SET one (the session hooks keep the two in step with the same
 * scope).
 */
static struct config_generic *current_gconf = NULL;
static struct config_generic *search_path_gconf = NULL;

static struct config_generic *
find_option_record(const char *name)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			i;

	for (i = 0; i < n; i++)
		if (strcmp(vars[i]->name, name) == 0)
			return vars[i];
	return NULL;
}

static bool
value_is_local(struct config_generic *gconf)
{
	GucStack   *stack = gconf ? gconf->stack : NULL;

	return stack != NULL && (stack->state == GUC_LOCAL || stack->state == GUC_SET_LOCAL);
}

/*
 * Does tenancy.current, or search_path, hold a value that ends with the
 * current transaction (SET LOCAL, use(..., is_local), ...)?
 */
bool
tenancy_current_is_local(void)
{
	return value_is_local(current_gconf);
}

bool
tenancy_search_path_is_local(void)
{
	return value_is_local(search_path_gconf);
}

/* Assign hook for tenancy.current: the value's stamp.  Never throws. */
static void
assign_current(const char *newval, void *extra)
{
	SelectionStamp *stamp = (SelectionStamp *) extra;

	tenancy_current_stamp = stamp ? stamp->lxid : InvalidLocalTransactionId;
	tenancy_current_selector = stamp ? stamp->selector : InvalidOid;
}

/*
 * Check hook for tenancy.current: '' (no tenant) or a syntactically valid
 * tenant id.  Syntax only; never touches the catalog.
 */
static bool
check_current(char **newval, void **extra, GucSource source)
{
	const char *why;
	SelectionStamp *stamp;

	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (tenancy_name_syntax_ok(*newval, &why))
	{
		/* GUC frees the extra with free() */
		stamp = (SelectionStamp *) malloc(sizeof(SelectionStamp));
		if (stamp == NULL)
			return false;
		stamp->lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
		stamp->selector = OidIsValid(MyDatabaseId) ? GetUserId() : InvalidOid;
		*extra = stamp;
		return true;
	}
	GUC_check_errdetail("%s", why);
	GUC_check_errhint("A tenant id matches %s, has no \"--\" and is at most %d bytes; use '' to select no tenant.",
					  TENANCY_ID_PATTERN, NAMEDATALEN - 1);
	return false;
}

/*
 * Check hook for tenancy.database_prefix: empty, or lower-case ASCII letters,
 * digits and underscores starting with a letter, at most
 * TENANCY_MAX_PREFIX_LEN bytes.
 */
static bool
check_prefix(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;

	if (p == NULL || p[0] == '\0')
		return true;
	if (strlen(p) > TENANCY_MAX_PREFIX_LEN)
	{
		GUC_check_errdetail("The prefix is %d bytes long; the maximum is %d.",
							(int) strlen(p), TENANCY_MAX_PREFIX_LEN);
		return false;
	}
	if (!(p[0] >= 'a' && p[0] <= 'z'))
	{
		GUC_check_errdetail("The prefix must start with a lower-case ASCII letter.");
		return false;
	}
	for (; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
		{
			GUC_check_errdetail("The prefix may contain only lower-case ASCII letters, digits and underscores.");
			return false;
		}
	}
	return true;
}

/*
 * Check hook for tenancy.template_database: empty (tenancy's own template),
 * or a plain identifier that fits in NAMEDATALEN (it is quoted wherever it
 * is used, but refusing odd names here keeps messages simple).
 */
static bool
check_template(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;

	if (p == NULL || p[0] == '\0')
		return true;
	if (strlen(p) >= NAMEDATALEN)
	{
		GUC_check_errdetail("The template database name must be at most %d bytes long.", NAMEDATALEN - 1);
		return false;
	}
	for (; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
		{
			GUC_check_errdetail("The template database name may contain only lower-case ASCII letters, digits and underscores.");
			return false;
		}
	}
	return true;
}

/*
 * Defines every tenancy.* setting, then reserves the prefix.  Called from
 * _PG_init, whether or not the library is preloaded.
 */
void
tenancy_guc_init(void)
{
	DefineCustomStringVariable("tenancy.current",
							   "Sets the tenant selected for this session or transaction.",
							   "A tenant id, or an empty string for no tenant. The tenant is checked when it is used.",
							   &tenancy_current,
							   "",
							   PGC_USERSET,
							   GUC_REPORT,
							   check_current, assign_current, NULL);

	DefineCustomBoolVariable("tenancy.strict_local",
							 "Sets whether a tenant must be selected in the transaction that uses it.",
							 "For transaction pooling: a selection made by SET (not SET LOCAL) in an earlier transaction may belong to another client.",
							 &tenancy_strict_local,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("tenancy.database_prefix",
							   "Sets the prefix of the names of tenant databases.",
							   NULL,
							   &tenancy_database_prefix,
							   "tenant_",
							   PGC_SUSET,
							   0,
							   check_prefix, NULL, NULL);

	DefineCustomStringVariable("tenancy.template_database",
							   "Sets the template database new tenant databases are copied from.",
							   "Empty means tenancy's own template on each server, kept at the latest migration.",
							   &tenancy_template_database,
							   "",
							   PGC_SUSET,
							   0,
							   check_template, NULL, NULL);

	DefineCustomStringVariable("tenancy.loopback_host",
							   "Sets the host or socket directory used to reach this cluster.",
							   "Empty means the first entry of unix_socket_directories, or localhost if there is none.",
							   &tenancy_loopback_host,
							   "",
							   PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("tenancy.connect_timeout",
							"Sets the time allowed for connecting to a tenant server.",
							NULL,
							&tenancy_connect_timeout,
							10, 1, 3600,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenancy.max_kept_connections",
							"Sets how many routed connections one backend keeps open.",
							"Opening one more closes the least recently used.",
							&tenancy_max_kept_connections,
							8, 1, 1000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenancy.kept_idle_timeout",
							"Sets how long a routed connection may stay idle before it is closed.",
							"Zero keeps it until the backend exits. The remote server closes it 10 seconds later on its own.",
							&tenancy_kept_idle_timeout,
							60000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenancy.lock_wait_timeout",
							"Sets how long a tenancy operation waits for another one on the same tenant.",
							"Zero waits without limit. A migration that calls back into tenancy for its own tenant would otherwise wait forever.",
							&tenancy_lock_wait_timeout,
							60000, 0, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenancy.remote_lock_timeout",
							"Sets lock_timeout for tenancy's remote sessions.",
							"Zero disables the timeout.",
							&tenancy_remote_lock_timeout,
							5000, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("tenancy.remote_statement_timeout",
							"Sets statement_timeout for tenancy's remote sessions.",
							"Zero disables the timeout.",
							&tenancy_remote_statement_timeout,
							0, 0, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * Only the postmaster starts the worker, and only there may a
	 * PGC_POSTMASTER setting be defined (not from session_preload_libraries).
	 */
	DefineCustomStringVariable("tenancy.database",
							   "Sets the database whose background jobs and warm pools the worker tends.",
							   "Empty disables the worker. Read at server start, when tenancy is in shared_preload_libraries.",
							   &tenancy_worker_database,
							   "postgres",
							   process_shared_preload_libraries_in_progress ? PGC_POSTMASTER : PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("tenancy.worker_naptime",
							"Sets how often the background worker looks for work on its own.",
							"Starting or cancelling a job wakes it at once; warm pools are checked this often.",
							&tenancy_worker_naptime,
							10, 1, 3600,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomStringVariable("tenancy.fault_injection",
							   "Sets a provisioning step to fail or wait at (testing only).",
							   "Form: '<point>:error' or '<point>:wait'. Empty disables fault injection.",
							   &tenancy_fault_injection,
							   "",
							   PGC_SUSET,
							   GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);

	MarkGUCPrefixReserved("tenancy");
	current_gconf = find_option_record("tenancy.current");
	search_path_gconf = find_option_record("search_path");
}
