/*-------------------------------------------------------------------------
 *
 * access.c
 *	  SQL-callable grant_access() and revoke_access(): which roles may use
 *	  which tenant.
 *
 * tenancy.current is a selector anyone can SET; tenancy.member says who may
 * use a tenant, and every resolution checks it (selection.c, through the
 * cached catalog, so a revoke takes effect on the next statement of every
 * session).  Granting also grants what the isolation model needs
 * (isolation_*.c): CONNECT on a tenant database, in the caller's
 * transaction on this cluster and on the tenant's server otherwise; USAGE
 * and DML in a tenant schema.  Revoking revokes it.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/access.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "catalog.h"
#include "isolation.h"
#include "names.h"

PG_FUNCTION_INFO_V1(tenancy_grant_access);
PG_FUNCTION_INFO_V1(tenancy_revoke_access);

/*
 * Common body: validates, locks the tenant, changes tenancy.member and the
 * database privilege.  Doing it again is a NOTICE.
 */
static void
change_access(FunctionCallInfo fcinfo, bool grant)
{
	char	   *tenant;
	Oid			role;
	char	   *rolename;
	TenantRecord rec;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant name must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role must not be null")));
	tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
	tenancy_name_validate(tenant);
	role = PG_GETARG_OID(1);
	rolename = GetUserNameFromId(role, false);
	tenancy_catalog_apply_config();

	tenancy_catalog_lock_existing(tenant, &rec);

	if (!tenancy_catalog_set_member(tenant, role, grant))
	{
		ereport(NOTICE,
				(errmsg(grant ? "role \"%s\" already has access to tenant \"%s\", skipping" :
						"role \"%s\" has no access to tenant \"%s\", skipping",
						rolename, tenant)));
		return;
	}
	if (rec.state == TENANT_STATE_DROPPING)
		return;
	tenancy_isolation(rec.isolation)->grant(&rec, rolename, grant);
}

/* tenancy.grant_access(tenant text, role regrole) */
Datum
tenancy_grant_access(PG_FUNCTION_ARGS)
{
	change_access(fcinfo, true);
	PG_RETURN_VOID();
}

/* tenancy.revoke_access(tenant text, role regrole) */
Datum
tenancy_revoke_access(PG_FUNCTION_ARGS)
{
	change_access(fcinfo, false);
	PG_RETURN_VOID();
}
