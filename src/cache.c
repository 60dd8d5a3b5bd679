/*-------------------------------------------------------------------------
 *
 * cache.c
 *	  The backend-local tenant cache on the routing hot path, and the memo
 *	  of which schemas are tenant schemas.
 *
 * The cache maps tenant id -> TenantRecord (and the roles granted the
 * tenant) for tenants that exist.  It lives in its own context under
 * CacheMemoryContext and is invalidated pg_cron's way: a statement trigger
 * on tenancy.tenant and tenancy.member (tenancy_cache_invalidate) calls
 * CacheInvalidateRelcacheByRelid() for tenancy.tenant, and our relcache
 * callback marks the cache stale.  Other sessions therefore see a
 * provisioned, suspended, revoked or dropped tenant from their next
 * statement on, without re-reading the catalog on every call.  Unknown ids
 * are not cached (no negative entries), so SETting random names cannot
 * grow the cache.  A miss runs one kept plan as the catalog owner.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "cache.h"
#include "catalog.h"
#include "scope.h"

PG_FUNCTION_INFO_V1(tenancy_cache_invalidate);
PG_FUNCTION_INFO_V1(tenancy_cache_stats);

typedef struct TenantCacheEntry
{
	char		id[NAMEDATALEN];	/* hash key */
	TenantRecord rec;
	int			nmembers;
	Oid		   *members;		/* roles granted the tenant, in the cache
								 * context */
} TenantCacheEntry;

static HTAB *tenant_cache = NULL;
static MemoryContext tenant_cache_context = NULL;
static bool tenant_cache_valid = false;
static Oid	watched_relid = InvalidOid; /* tenancy.tenant, when the cache was
										 * built */

/*
 * Kept plan for the routing lookup: prepared once per backend under the
 * pinned search_path (the plan cache replans under that same path), so a
 * cache miss costs one plan execution, not a parse and plan.
 */
static SPIPlanPtr lookup_plan = NULL;

/* Bumped whenever the catalog may have changed (see the callback). */
static uint64 catalog_generation = 0;

/*
 * Which schema names are schema tenants' schemas: a name -> bool memo,
 * emptied when the catalog changes (the session hooks ask for each
 * element of search_path they rewrite or check).
 */
typedef struct SchemaNameEntry
{
	NameData	name;			/* hash key */
	bool		is_tenant;
} SchemaNameEntry;

static HTAB *schema_names = NULL;
static uint64 schema_names_generation = 0;

/* Counters of this backend's cache, shown by tenancy.cache_stats(). */
static int64 cache_hits = 0;
static int64 cache_misses = 0;
static int64 cache_invalidations = 0;

/*
 * Relcache callback: any invalidation of tenancy.tenant (or a full reset)
 * marks the cache stale.  Must not throw or allocate.
 */
static void
tenant_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == watched_relid)
	{
		catalog_generation++;
		if (tenant_cache_valid)
			cache_invalidations++;
		tenant_cache_valid = false;
		watched_relid = InvalidOid;
	}
}

/* Registers the invalidation callback.  Called once from _PG_init. */
void
tenancy_cache_init(void)
{
	CacheRegisterRelcacheCallback(tenant_relcache_callback, (Datum) 0);
}

/*
 * The snapshot catalog reads for the cache run under (pop it after): a new
 * one, taken after the invalidations accepted so far, never the statement's
 * or (REPEATABLE READ) the transaction's.  An invalidation is sent only
 * once its transaction shows as committed, so a read under a snapshot taken
 * after the invalidation was accepted sees the change it announced: a
 * revoke or a suspend is never answered from a snapshot older than itself,
 * and never cached so.  A catalog snapshot rather than a transaction
 * snapshot, so that a later SET TRANSACTION ISOLATION LEVEL still works and
 * parallel mode allows it.
 */
static void
push_lookup_snapshot(void)
{
	InvalidateCatalogSnapshot();
	PushActiveSnapshot(GetCatalogSnapshot(tenancy_catalog_tenant_table()));
}

/*
 * Reads one tenant row and its members with the kept lookup plan (routing's
 * cache misses).  The members are copied into "members_cxt".
 */
static bool
lookup_tenant(const char *id, TenantRecord *rec, MemoryContext members_cxt,
			  int *nmembers, Oid **members)
{
	PrivilegeScope scope;
	Datum		values[1];
	bool		found;
	int			rc;

	values[0] = CStringGetTextDatum(id);
	tenancy_scope_enter(&scope, tenancy_catalog_owner(), 0);
	if (lookup_plan == NULL)
	{
		Oid			types[1] = {TEXTOID};
		int			nestlevel = tenancy_scope_pin_path();
		SPIPlanPtr	plan;

		plan = SPI_prepare("SELECT " TENANCY_TENANT_COLUMNS ", "
						   "ARRAY(SELECT m.role::pg_catalog.oid FROM tenancy.member m "
						   "WHERE m.tenant_id OPERATOR(pg_catalog.=) tenancy.tenant.id) "
						   "FROM tenancy.tenant WHERE id OPERATOR(pg_catalog.=) $1",
						   1, types);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare tenant lookup: %s", SPI_result_code_string(SPI_result));
		AtEOXact_GUC(false, nestlevel);
		lookup_plan = plan;
	}
	push_lookup_snapshot();
	rc = SPI_execute_plan(lookup_plan, values, NULL, true, 1);
	PopActiveSnapshot();
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "tenant lookup failed: %s", SPI_result_code_string(rc));
	found = SPI_processed > 0;
	*nmembers = 0;
	*members = NULL;
	if (found)
	{
		bool		isnull;
		Datum		arr = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 9, &isnull);
		Datum	   *elems;
		int			n;
		int			i;

		tenancy_catalog_record_from_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, rec);
		deconstruct_array(DatumGetArrayTypeP(arr), OIDOID, sizeof(Oid), true, TYPALIGN_INT,
						  &elems, NULL, &n);
		*members = MemoryContextAlloc(members_cxt, sizeof(Oid) * Max(n, 1));
		for (i = 0; i < n; i++)
			(*members)[i] = DatumGetObjectId(elems[i]);
		*nmembers = n;
	}
	tenancy_scope_leave(&scope);
	return found;
}

/*
 * May "user" use a tenant with these members?  Superusers may use any
 * tenant (as they bypass every permission check); other roles must have
 * the privileges of a role granted the tenant (tenancy.member), which
 * includes being a member of it with INHERIT.
 */
static bool
may_use(Oid user, int nmembers, const Oid *members)
{
	int			i;

	if (superuser_arg(user))
		return true;
	for (i = 0; i < nmembers; i++)
		if (has_privs_of_role(user, members[i]))
			return true;
	return false;
}

/*
 * Looks a tenant up through the backend cache: the routing hot path.  A hit
 * costs one hash probe (and, for roles that are not superusers, a role
 * membership check per member role).  Returns false for an unknown tenant;
 * *permitted says whether the current user may use it, and so may
 * "selector" (the role that selected it) unless that is InvalidOid.  The
 * caller must be in a transaction.
 */
bool
tenancy_cache_lookup(const char *id, TenantRecord *rec, Oid selector, bool *permitted)
{
	int			nmembers;
	Oid		   *members;
	TenantCacheEntry *entry;
	char		key[NAMEDATALEN];
	bool		found;

	/*
	 * Take in pending invalidations first (cheap when there are none), so
	 * that a message arriving during a miss's catalog read does not throw
	 * away the entry that read produces.
	 */
	AcceptInvalidationMessages();

	if (!tenant_cache_valid || tenant_cache == NULL)
	{
		HASHCTL		ctl;

		if (tenant_cache_context == NULL)
			tenant_cache_context = AllocSetContextCreate(CacheMemoryContext,
														 "tenancy tenant cache",
														 ALLOCSET_DEFAULT_SIZES);
		else
			MemoryContextReset(tenant_cache_context);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(TenantCacheEntry);
		ctl.hcxt = tenant_cache_context;
		tenant_cache = hash_create("tenancy tenant cache", 256, &ctl,
								   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		/* look the table up now, so later invalidations of it are noticed */
		watched_relid = tenancy_catalog_tenant_table();
		tenant_cache_valid = true;
	}

	memset(key, 0, sizeof(key));
	strlcpy(key, id, NAMEDATALEN);
	entry = hash_search(tenant_cache, key, HASH_FIND, NULL);
	if (entry != NULL)
	{
		cache_hits++;
		*rec = entry->rec;
		*permitted = may_use(GetUserId(), entry->nmembers, entry->members) &&
			(!OidIsValid(selector) || may_use(selector, entry->nmembers, entry->members));
		return true;
	}
	cache_misses++;

	if (!lookup_tenant(id, rec, tenant_cache_context, &nmembers, &members))
		return false;
	*permitted = may_use(GetUserId(), nmembers, members) &&
		(!OidIsValid(selector) || may_use(selector, nmembers, members));

	/* an invalidation may have arrived while reading; only then skip */
	if (tenant_cache_valid && tenant_cache != NULL)
	{
		entry = hash_search(tenant_cache, key, HASH_ENTER, &found);
		entry->rec = *rec;
		entry->nmembers = nmembers;
		entry->members = members;
	}
	return true;
}

/*
 * tenancy.cache_stats() RETURNS TABLE(entries, hits, misses, invalidations)
 *
 * This backend's tenant cache: entries held now, and counters since the
 * backend started.
 */
Datum
tenancy_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum((tenant_cache_valid && tenant_cache) ? (int64) hash_get_num_entries(tenant_cache) : 0);
	values[1] = Int64GetDatum(cache_hits);
	values[2] = Int64GetDatum(cache_misses);
	values[3] = Int64GetDatum(cache_invalidations);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* A number that changes whenever the catalog may have changed. */
uint64
tenancy_cache_generation(void)
{
	return catalog_generation;
}

/*
 * Is "nspname" the schema of a schema tenant (any state)?  Answered from a
 * per-backend memo; a miss reads the catalog (unique index on
 * schema_name).
 */
bool
tenancy_cache_is_tenant_schema(const char *nspname)
{
	NameData	key;
	SchemaNameEntry *entry;
	bool		found;

	if (strlen(nspname) >= NAMEDATALEN)
		return false;
	if (schema_names == NULL || schema_names_generation != catalog_generation ||
		hash_get_num_entries(schema_names) > 1000)
	{
		HASHCTL		ctl;

		if (schema_names != NULL)
			hash_destroy(schema_names);
		ctl.keysize = sizeof(NameData);
		ctl.entrysize = sizeof(SchemaNameEntry);
		ctl.hcxt = TopMemoryContext;
		schema_names = hash_create("tenancy schema names", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		schema_names_generation = catalog_generation;
	}
	memset(&key, 0, sizeof(key));
	namestrcpy(&key, nspname);
	entry = (SchemaNameEntry *) hash_search(schema_names, &key, HASH_FIND, &found);
	if (!found)
	{
		PrivilegeScope scope;
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		bool		is_tenant;

		values[0] = CStringGetTextDatum(nspname);
		push_lookup_snapshot();
		tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
		tenancy_scope_exec("SELECT 1 FROM tenancy.tenant WHERE schema_name OPERATOR(pg_catalog.=) $1",
						   1, types, values, NULL, true, SPI_OK_SELECT);
		is_tenant = SPI_processed > 0;
		tenancy_scope_leave(&scope);
		PopActiveSnapshot();
		/* the catalog read may have processed an invalidation: start afresh */
		if (schema_names_generation != catalog_generation)
			return is_tenant;
		entry = (SchemaNameEntry *) hash_search(schema_names, &key, HASH_ENTER, &found);
		entry->is_tenant = is_tenant;
	}
	return entry->is_tenant;
}

/*
 * Statement trigger on tenancy.tenant and tenancy.member: tells every
 * backend (including this one, at the next command) that its tenant cache
 * is stale.  The invalidation is always for tenancy.tenant, the relation the
 * cache watches.
 */
Datum
tenancy_cache_invalidate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("tenancy_cache_invalidate() must be called as a trigger")));
	(void) trigdata;
	CacheInvalidateRelcacheByRelid(tenancy_catalog_tenant_table());
	return PointerGetDatum(NULL);
}
