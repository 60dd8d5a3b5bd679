/*-------------------------------------------------------------------------
 *
 * select.c
 *	  SQL-callable selection functions: tenancy.current_tenant(),
 *	  current_tenant_id(), use() and connstr().
 *
 * They resolve tenancy.current (or a tenant argument) through
 * selection.c: the tenant must exist, be granted to the current user and
 * be ready.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/select.c
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

#include "guc.h"
#include "conninfo.h"
#include "isolation.h"
#include "names.h"
#include "selection.h"

PG_FUNCTION_INFO_V1(tenancy_current_tenant);
PG_FUNCTION_INFO_V1(tenancy_current_tenant_id);
PG_FUNCTION_INFO_V1(tenancy_use);
PG_FUNCTION_INFO_V1(tenancy_connstr);

/*
 * tenancy.current_tenant() RETURNS text
 *
 * The selected tenant, checked.  55000 with a hint when none is selected.
 */
Datum
tenancy_current_tenant(PG_FUNCTION_ARGS)
{
	TenantRecord rec;

	tenancy_selection_resolve_current(TENANCY_SELECT_HINT, &rec);
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
	tenancy_selection_resolve_current("", &rec);
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
		tenancy_selection_resolve(tenant, &rec);
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
	tenancy_selection_sync(is_local);
	if (tenant[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(tenant));
}

/*
 * tenancy.connstr(tenant text DEFAULT NULL) RETURNS text
 *
 * A libpq connection string for the tenant's database (default: the selected
 * tenant), for applications that connect directly: host, port and database
 * only, no user and no password; for a schema tenant, the admin database with
 * the tenant's schema as search_path (options).  Checked like
 * current_tenant(): the tenant must exist, be granted to the caller and be
 * ready.
 */
Datum
tenancy_connstr(PG_FUNCTION_ARGS)
{
	TenantRecord rec;
	char	   *tenant;
	char	   *format = PG_NARGS() > 1 && !PG_ARGISNULL(1) ? text_to_cstring(PG_GETARG_TEXT_PP(1)) : "keyword";
	char	   *conninfo;

	if (strcmp(format, "keyword") != 0 && strcmp(format, "uri") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid connection string format \"%s\"", format),
				 errhint("Use 'keyword' (key=value, libpq's) or 'uri' (postgresql://).")));
	if (PG_ARGISNULL(0))
		tenancy_selection_resolve_current("Pass a tenant, or select one with SET LOCAL tenancy.current = '<tenant>'.", &rec);
	else
	{
		tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
		tenancy_name_validate(tenant);
		tenancy_selection_resolve(tenant, &rec);
	}
	conninfo = tenancy_isolation(rec.isolation)->connstr(&rec);
	if (strcmp(format, "uri") == 0)
		conninfo = tenancy_conninfo_uri(conninfo);
	PG_RETURN_TEXT_P(cstring_to_text(conninfo));
}
