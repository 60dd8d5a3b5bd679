/*-------------------------------------------------------------------------
 *
 * selection.c
 *	  The selected tenant: resolving tenancy.current, and keeping
 *	  search_path with a selected schema tenant.
 *
 * tenancy.current is a selector, checked for syntax when it is SET.  When
 * it is used, the tenant is looked up through the backend cache (cache.c):
 * a hit costs a hash probe, and a tenant provisioned, suspended, revoked
 * or dropped by another session is seen from the next statement on.  The
 * setting is never a credential: the current user must be a member.
 *
 * For schema tenants, search_path follows the selection: the selected
 * tenant's schema first, every other tenant schema off the path.  A tenant
 * that cannot be used (unknown, not granted, not ready) gets no schema on
 * the path.  The session hooks (hooks.c) apply this when the selection
 * changes and check it around statements; the state last found consistent
 * is remembered here, so an unchanged check costs two string compares.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/selection.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "cache.h"
#include "catalog.h"
#include "guc.h"
#include "names.h"
#include "selection.h"
#include "tenant_id.h"

/*
 * The state last found consistent (tenancy_selection_remember): the
 * selection, the path, the catalog's generation, and under strict_local the
 * transaction (a selection goes stale when the transaction ends).
 */
static char *checked_current = NULL;
static char *checked_path = NULL;
static uint64 checked_generation = 0;
static bool checked_strict = false;
static LocalTransactionId checked_lxid = InvalidLocalTransactionId;

/*
 * Is the selection from an earlier transaction while tenancy.strict_local
 * is on?  (A parallel worker cannot tell; its leader has checked.)
 */
static bool
selection_stale(void)
{
	return tenancy_strict_local && !IsParallelWorker() && tenancy_current_stamp != MyProc->lxid;
}

/*
 * Looks the tenant up and checks that it may be used now: 42704 if it does
 * not exist, 42501 if the current user may not use it (the setting is a
 * selector, never a credential) or, for the selection tenancy.current
 * holds ("selector" valid), if the role that made it may not, 55000 if it
 * is not ready.
 */
static void
resolve(const char *tenant, Oid selector, TenantRecord *rec)
{
	bool		permitted;

	if (!tenancy_cache_lookup(tenant, rec, InvalidOid, &permitted))
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
	if (OidIsValid(selector) && selector != GetUserId() &&
		(!tenancy_cache_lookup(tenant, rec, selector, &permitted) || !permitted))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for tenant \"%s\"", tenant),
				 errdetail("Tenant \"%s\" was selected by role \"%s\", which has not been granted access to it.",
						   tenant, GetUserNameFromId(selector, false)),
				 errhint("A selection is used only if the role that made it may use the tenant too: select it as a member.")));
	if (rec->state != TENANT_STATE_READY)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenant \"%s\" is not ready", tenant),
				 errdetail("Tenant \"%s\" is in state \"%s\".", tenant, tenancy_state_name(rec->state))));
}

/* resolve() for a tenant named explicitly, by the current user. */
void
tenancy_selection_resolve(const char *tenant, TenantRecord *rec)
{
	resolve(tenant, InvalidOid, rec);
}

/*
 * The selected tenant (tenancy_selection_current), resolved: usable by the
 * current user and by the role that selected it.
 */
void
tenancy_selection_resolve_current(const char *none_hint, TenantRecord *rec)
{
	resolve(tenancy_selection_current(none_hint), tenancy_current_selector, rec);
}

/*
 * The tenant tenancy.current selects, or a 55000 error: none selected, or
 * (with tenancy.strict_local) selected in an earlier transaction.  A
 * parallel worker cannot tell when its leader made the selection; the
 * leader's own checks stand for it.
 */
const char *
tenancy_selection_current(const char *none_hint)
{
	if (tenancy_current == NULL || tenancy_current[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no tenant is selected"),
				 errhint("%s", none_hint)));
	if (selection_stale())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenancy.current was set outside the current transaction"),
				 errdetail("tenancy.strict_local is on: behind a transaction pooler, a selection from an earlier transaction may belong to another client."),
				 errhint("Use SET LOCAL tenancy.current or tenancy.use() in the transaction that uses the tenant.")));
	return tenancy_current;
}

/*
 * The schema of the selected tenant if it is a schema tenant that may be
 * used now (by the current user and the role that selected it, and not
 * stale under strict_local), else NULL.  Never throws for a tenant that
 * cannot be used.
 */
static const char *
usable_schema(const char *tenant, TenantRecord *rec)
{
	bool		permitted;
	const char *why;

	if (tenant == NULL || tenant[0] == '\0' || selection_stale() ||
		!tenancy_name_syntax_ok(tenant, &why) ||
		!tenancy_cache_lookup(tenant, rec, tenancy_current_selector, &permitted))
		return NULL;
	if (!permitted || rec->state != TENANT_STATE_READY || rec->isolation != TENANT_ISOLATION_SCHEMA)
		return NULL;
	return rec->schema_name;
}

/*
 * The search_path the selection calls for: the current one without any
 * schema tenant's schema, with the selected tenant's schema (if it is a
 * usable schema tenant) first.  *schema is that schema or NULL; *foreign
 * says whether the current path holds another tenant's schema that the
 * current user could read through it (USAGE: a revoked or suspended
 * tenant's schema reaches nothing anyway).  Returns NULL when the current
 * path is already what the selection calls for.
 */
char *
tenancy_selection_wanted_path(const char **schema, bool *foreign)
{
	TenantRecord rec;
	char	   *path;
	List	   *elems;
	ListCell   *lc;
	StringInfoData buf;
	bool		same;

	*foreign = false;
	*schema = usable_schema(tenancy_current, &rec);
	if (*schema != NULL)
		*schema = pstrdup(*schema);
	path = pstrdup(namespace_search_path);
	if (!SplitIdentifierString(path, ',', &elems))
		return NULL;			/* cannot happen: search_path was checked */
	initStringInfo(&buf);
	same = true;
	if (*schema != NULL)
	{
		appendStringInfoString(&buf, quote_identifier(*schema));
		same = elems != NIL && strcmp((char *) linitial(elems), *schema) == 0;
	}
	foreach(lc, elems)
	{
		char	   *nsp = (char *) lfirst(lc);

		if (*schema != NULL && foreach_current_index(lc) == 0 && strcmp(nsp, *schema) == 0)
			continue;			/* the selected schema, in place */
		if (strcmp(nsp, "$user") != 0 && tenancy_cache_is_tenant_schema(nsp))
		{
			same = false;		/* another tenant's schema, or ours elsewhere */
			if (*schema == NULL || strcmp(nsp, *schema) != 0)
			{
				Oid			nspid = get_namespace_oid(nsp, true);

				if (OidIsValid(nspid) &&
					pg_namespace_aclcheck(nspid, GetUserId(), ACL_USAGE) == ACLCHECK_OK)
					*foreign = true;
			}
			continue;
		}
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, quote_identifier(nsp));
	}
	return same ? NULL : buf.data;
}

/*
 * Puts the selected tenant's schema (if it is a usable schema tenant) first
 * on search_path and takes every other tenant schema off, with the scope
 * of the selection (is_local: until the end of the transaction).
 */
void
tenancy_selection_sync(bool is_local)
{
	const char *schema;
	bool		foreign;
	char	   *path;

	if (!IsTransactionState() || !tenancy_catalog_installed())
		return;
	path = tenancy_selection_wanted_path(&schema, &foreign);
	if (path != NULL)
		(void) set_config_option("search_path", path,
								 PGC_USERSET, PGC_S_SESSION,
								 is_local ? GUC_ACTION_LOCAL : GUC_ACTION_SET,
								 true, 0, false);
	tenancy_selection_remember();	/* the statement-end check has nothing to
									 * do */
}

/*
 * Have the selection, search_path and the catalog stayed as they were when
 * last found consistent?
 */
bool
tenancy_selection_unchanged(void)
{
	return checked_current != NULL && strcmp(checked_current, tenancy_current) == 0 &&
		strcmp(checked_path, namespace_search_path) == 0 &&
		checked_generation == tenancy_cache_generation() &&
		checked_strict == tenancy_strict_local &&
		(!tenancy_strict_local || checked_lxid == MyProc->lxid);
}

/* Remembers the current selection and path as consistent. */
void
tenancy_selection_remember(void)
{
	if (checked_current)
		pfree(checked_current);
	if (checked_path)
		pfree(checked_path);
	checked_current = MemoryContextStrdup(TopMemoryContext, tenancy_current ? tenancy_current : "");
	checked_path = MemoryContextStrdup(TopMemoryContext, namespace_search_path);
	checked_generation = tenancy_cache_generation();
	checked_strict = tenancy_strict_local;
	checked_lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
}
