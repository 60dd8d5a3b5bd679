/*-------------------------------------------------------------------------
 *
 * routing.c
 *	  Resolving the selected tenant: tenancy.current_tenant() and
 *	  tenancy.use().
 *
 * tenancy.current is a selector, checked for syntax when it is SET.  Here,
 * when it is used, the tenant is looked up through the backend cache
 * (catalog.c): a cache hit costs a hash probe, and a tenant provisioned,
 * suspended or dropped by another session is seen from the next
 * transaction on.
 *
 * Schema tenants: whenever tenancy.current changes through SET, SET LOCAL,
 * RESET or tenancy.use(), the selected tenant's schema is put first on
 * search_path (and the previous tenant's taken off), with the same scope as
 * the selection: SET LOCAL's search_path goes at the end of the
 * transaction together with it, RESET takes the schema off.  The
 * PostgreSQL plan cache keys cached plans on search_path, so a plan made
 * for one tenant's tables is replanned for the next.  A tenant that cannot
 * be used (unknown, not granted, not ready) gets no schema on the path.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/routing.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"

#include "catalog.h"
#include "guc.h"
#include "tenancy.h"
#include "transport.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

PG_FUNCTION_INFO_V1(tenancy_current_tenant);
PG_FUNCTION_INFO_V1(tenancy_current_tenant_id);
PG_FUNCTION_INFO_V1(tenancy_use);
PG_FUNCTION_INFO_V1(tenancy_connstr);

/*
 * Looks the tenant up and checks that it may be used now: 42704 if it does
 * not exist, 42501 if the current user may not use it (the setting is a
 * selector, never a credential), 55000 if it is not ready.
 */
static void
resolve_tenant(const char *tenant, TenantRecord *rec)
{
	bool		permitted;

	if (!tenancy_catalog_lookup(tenant, rec, &permitted))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" does not exist", tenant)));
	if (!permitted)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for tenant \"%s\"", tenant),
				 errdetail("Role \"%s\" has not been granted access to tenant \"%s\".",
						   GetUserNameFromId(GetUserId(), false), tenant),
				 errhint("A tenancy admin can grant it with tenancy.grant_access().")));
	if (rec->state != TENANT_STATE_READY)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is not ready", tenant),
				 errdetail("Tenant \"%s\" is in state \"%s\".", tenant, tenancy_state_name(rec->state))));
}

/*
 * The tenant tenancy.current selects, or a 55000 error: none selected, or
 * (with tenancy.strict_local) selected in an earlier transaction.  A
 * parallel worker cannot tell when its leader made the selection; the
 * leader's own checks stand for it.
 */
static const char *
selected_tenant(const char *none_hint)
{
	if (tenancy_current == NULL || tenancy_current[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no tenant is selected"),
				 errhint("%s", none_hint)));
	if (tenancy_strict_local && !IsParallelWorker() && tenancy_current_stamp != MyProc->lxid)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenancy.current was set outside the current transaction"),
				 errdetail("tenancy.strict_local is on: behind a transaction pooler, a selection from an earlier transaction may belong to another client."),
				 errhint("Use SET LOCAL tenancy.current or tenancy.use() in the transaction that uses the tenant.")));
	return tenancy_current;
}

/*
 * The schema of "tenant" if it is a schema tenant the current user may use
 * now, else NULL.  Never throws for a tenant that cannot be used.
 */
static const char *
usable_schema(const char *tenant, TenantRecord *rec)
{
	bool		permitted;
	const char *why;

	if (tenant == NULL || tenant[0] == '\0' || !tenancy_name_syntax_ok(tenant, &why) ||
		!tenancy_catalog_lookup(tenant, rec, &permitted))
		return NULL;
	if (!permitted || rec->state != TENANT_STATE_READY || rec->isolation != TENANT_ISOLATION_SCHEMA)
		return NULL;
	return rec->schema_name;
}

/* Is "nsp" the schema of a schema tenant (named <prefix><id>)? */
static bool
is_tenant_schema(const char *nsp)
{
	size_t		len = strlen(tenancy_database_prefix);
	TenantRecord rec;
	bool		permitted;
	const char *why;

	return strncmp(nsp, tenancy_database_prefix, len) == 0 &&
		tenancy_name_syntax_ok(nsp + len, &why) &&
		tenancy_catalog_lookup(nsp + len, &rec, &permitted) &&
		rec.isolation == TENANT_ISOLATION_SCHEMA &&
		strcmp(rec.schema_name, nsp) == 0;
}

/*
 * Could the first element of search_path be a tenant schema?  A prefix
 * test on the raw setting, so that switching between database tenants
 * never parses search_path.
 */
static bool
path_may_lead_with_tenant(void)
{
	const char *p = namespace_search_path;
	size_t		len = strlen(tenancy_database_prefix);

	while (*p == ' ')
		p++;
	if (*p == '"')
		p++;
	return strncmp(p, tenancy_database_prefix, len) == 0;
}

/*
 * Puts the selected tenant's schema (if it is a usable schema tenant) first
 * on search_path, after taking off any tenant schema that leads it, with
 * the scope of the selection (is_local: until the end of the transaction).
 * Does nothing, and costs one cache probe, when neither the new selection
 * nor the path involves a schema tenant.
 */
static void
sync_search_path(bool is_local)
{
	TenantRecord rec;
	const char *schema;
	char	   *path;
	List	   *elems;
	ListCell   *lc;
	StringInfoData buf;
	bool		stripped = false;

	if (!IsTransactionState() || !tenancy_catalog_installed())
		return;
	schema = usable_schema(tenancy_current, &rec);
	if (schema == NULL && !path_may_lead_with_tenant())
		return;					/* database tenants: nothing to do */

	path = pstrdup(namespace_search_path);
	if (!SplitIdentifierString(path, ',', &elems))
		elems = NIL;			/* cannot happen: search_path was checked */
	initStringInfo(&buf);
	if (schema != NULL)
		appendStringInfoString(&buf, quote_identifier(schema));
	foreach(lc, elems)
	{
		char	   *nsp = (char *) lfirst(lc);

		if (!stripped && foreach_current_index(lc) == 0 && is_tenant_schema(nsp))
		{
			stripped = true;
			continue;
		}
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, quote_identifier(nsp));
	}
	if (schema == NULL && !stripped)
		return;
	(void) set_config_option("search_path", buf.data,
							 PGC_USERSET, PGC_S_SESSION,
							 is_local ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
							 true, 0, false);
}

/*
 * ProcessUtility hook: after SET [LOCAL] / RESET tenancy.current, brings
 * search_path in line with the selection (schema tenants).
 */
static void
tenancy_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		selection = false;
	bool		is_local = false;
	bool		reset_all = false;

	if (IsA(parsetree, VariableSetStmt))
	{
		VariableSetStmt *stmt = (VariableSetStmt *) parsetree;

		selection = stmt->name != NULL && strcmp(stmt->name, "tenancy.current") == 0 &&
			stmt->kind != VAR_SET_MULTI;
		is_local = stmt->is_local;
		reset_all = stmt->kind == VAR_RESET_ALL;
	}
	else if (IsA(parsetree, DiscardStmt))
		reset_all = ((DiscardStmt *) parsetree)->target == DISCARD_ALL;
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	if (selection)
		sync_search_path(is_local);
	if (reset_all)
		tenancy_routed_forget(NULL);	/* a pooler's next client starts afresh */
}

/* Installs the hook.  Called once from _PG_init. */
void
tenancy_routing_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = tenancy_process_utility;
}

/*
 * The selected tenant, checked as current_tenant() checks it (55000 when
 * none, 42704, 42501, 55000), for routed queries.
 */
void
tenancy_routing_resolve_selected(TenantRecord *rec)
{
	resolve_tenant(selected_tenant("Select one with SET LOCAL tenancy.current = '<tenant>' or SELECT tenancy.use('<tenant>')."),
				   rec);
}

/*
 * tenancy.current_tenant() RETURNS text
 *
 * The selected tenant, checked.  55000 with a hint when none is selected.
 */
Datum
tenancy_current_tenant(PG_FUNCTION_ARGS)
{
	TenantRecord rec;

	resolve_tenant(selected_tenant("Select one with SET LOCAL tenancy.current = '<tenant>' or SELECT tenancy.use('<tenant>')."),
				   &rec);
	PG_RETURN_TEXT_P(cstring_to_text(rec.id));
}

/*
 * tenancy.current_tenant_id() RETURNS text
 *
 * For row-level security policies on shared tables (USING (tenant_id =
 * tenancy.current_tenant_id())): like current_tenant(), but NULL when no
 * tenant is selected, so that such a policy matches no row instead of
 * failing.  A tenant that is selected but cannot be used is still an error
 * (42704, 42501, 55000), never a silent empty result.  STABLE and parallel
 * safe: parallel workers see the leader's tenancy.current and check it the
 * same way.
 */
Datum
tenancy_current_tenant_id(PG_FUNCTION_ARGS)
{
	TenantRecord rec;

	if (tenancy_current == NULL || tenancy_current[0] == '\0')
		PG_RETURN_NULL();
	resolve_tenant(selected_tenant(""), &rec);
	PG_RETURN_TEXT_P(cstring_to_text(rec.id));
}

/*
 * tenancy.use(tenant text, is_local boolean DEFAULT true) RETURNS text
 *
 * Selects a tenant like SET [LOCAL] tenancy.current, but checks it first
 * (42602, 42704, 55000), so a bad call changes nothing; callable with a
 * bind parameter.  NULL or '' clears the selection and returns NULL.
 */
Datum
tenancy_use(PG_FUNCTION_ARGS)
{
	bool		is_local = PG_ARGISNULL(1) ? true : PG_GETARG_BOOL(1);
	char	   *tenant = PG_ARGISNULL(0) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	TenantRecord rec;

	if (tenant[0] != '\0')
	{
		tenancy_name_validate(tenant);
		resolve_tenant(tenant, &rec);
	}
	if (is_local && !IsTransactionBlock())
		ereport(WARNING,
				(errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
				 errmsg("tenancy.use() with is_local has no effect outside a transaction block"),
				 errhint("Call it after BEGIN, or pass is_local => false.")));
	(void) set_config_option("tenancy.current", tenant,
							 PGC_USERSET, PGC_S_SESSION,
							 is_local ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
							 true, 0, false);
	sync_search_path(is_local);
	if (tenant[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(tenant));
}

/*
 * tenancy.connstr(tenant text DEFAULT NULL) RETURNS text
 *
 * A libpq connection string for the tenant's database (default: the
 * selected tenant), for applications that connect directly: host, port
 * and database only, no user and no password; for a schema tenant, the
 * admin database with the tenant's schema as search_path (options).  Checked like
 * current_tenant(): the tenant must exist, be granted to the caller and be
 * ready.
 */
Datum
tenancy_connstr(PG_FUNCTION_ARGS)
{
	TenantRecord rec;
	char	   *tenant;

	if (PG_ARGISNULL(0))
		tenant = pstrdup(selected_tenant("Pass a tenant, or select one with SET LOCAL tenancy.current = '<tenant>'."));
	else
	{
		tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
		tenancy_name_validate(tenant);
	}
	resolve_tenant(tenant, &rec);
	if (rec.isolation == TENANT_ISOLATION_SCHEMA)
		PG_RETURN_TEXT_P(cstring_to_text(tenancy_transport_public_conninfo(NULL, get_database_name(MyDatabaseId),
																		   quote_identifier(rec.schema_name))));
	PG_RETURN_TEXT_P(cstring_to_text(tenancy_transport_public_conninfo(rec.server[0] ? rec.server : NULL,
																	   rec.database_name, NULL)));
}
