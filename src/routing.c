/*-------------------------------------------------------------------------
 *
 * routing.c
 *	  Resolving the selected tenant: tenancy.current_tenant(),
 *	  current_tenant_id(), use() and connstr().
 *
 * tenancy.current is a selector, checked for syntax when it is SET.  Here,
 * when it is used, the tenant is looked up through the backend cache
 * (catalog.c): a cache hit costs a hash probe, and a tenant provisioned,
 * suspended or dropped by another session is seen from the next
 * transaction on.
 *
 * For schema tenants, search_path follows the selection: search_path.c.
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
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "catalog.h"
#include "guc.h"
#include "tenancy.h"
#include "transport.h"

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
	tenancy_search_path_sync(is_local);
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
