/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Reading and writing tenancy's catalog tables (tenancy.tenant,
 *	  tenancy.migration) through SPI, per-tenant locks, and the backend-local
 *	  tenant cache used on the routing hot path.
 *
 * Catalog access runs as the owner of tenancy.tenant (the installing
 * superuser) with search_path pinned to pg_catalog, pg_temp, so that callers
 * who may use a tenant but cannot read the catalog (application roles) can
 * still resolve it, and so that nothing on the caller's search_path can
 * change which objects the queries reach.  Values always travel as SPI
 * parameters.
 *
 * The cache maps tenant id -> TenantRecord for tenants that exist.  It lives
 * in its own context under CacheMemoryContext and is invalidated pg_cron's
 * way: a statement trigger on tenancy.tenant calls
 * CacheInvalidateRelcacheByRelid(), and our relcache callback marks the
 * cache stale.  Other sessions therefore see a provisioned or dropped tenant
 * from their next transaction on, without re-reading the catalog on every
 * call.  Unknown ids are not cached (no negative entries), so SETting random
 * names cannot grow the cache.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/catalog.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "tenancy.h"
#include "transport.h"

PG_FUNCTION_INFO_V1(tenancy_cache_invalidate);
PG_FUNCTION_INFO_V1(tenancy_cache_stats);

typedef struct TenantCacheEntry
{
	char		id[NAMEDATALEN];	/* hash key */
	TenantRecord rec;
	int			nmembers;
	Oid		   *members;		/* roles granted the tenant, in the cache context */
} TenantCacheEntry;

static HTAB *tenant_cache = NULL;
static MemoryContext tenant_cache_context = NULL;
static bool tenant_cache_valid = false;
static Oid	tenant_relid = InvalidOid;

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
 * emptied when the catalog changes (routing.c asks for each element of
 * search_path it rewrites or checks).
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

/* Saved state while running as the catalog owner. */
typedef struct CatalogScope
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel; /* 0 if search_path was not pinned */
	MemoryContext caller_context;
} CatalogScope;

/*
 * Relcache callback: any invalidation of tenancy.tenant (or a full reset)
 * marks the cache stale.  Must not throw or allocate.
 */
static void
tenant_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == tenant_relid)
	{
		catalog_generation++;
		if (tenant_cache_valid)
			cache_invalidations++;
		tenant_cache_valid = false;
		tenant_relid = InvalidOid;
	}
}

/* Registers the invalidation callback.  Called once from _PG_init. */
void
tenancy_catalog_init(void)
{
	CacheRegisterRelcacheCallback(tenant_relcache_callback, (Datum) 0);
}

/*
 * OID of tenancy.tenant; errors if the extension is not installed in this
 * database (the caller is then running a tenancy function out of place).
 */
static Oid
tenant_table_oid(void)
{
	if (!OidIsValid(tenant_relid))
	{
		Oid			nsp = get_namespace_oid("tenancy", true);
		Oid			relid = OidIsValid(nsp) ? get_relname_relid("tenant", nsp) : InvalidOid;

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"tenancy\" is not installed in this database"),
					 errhint("Run CREATE EXTENSION tenancy CASCADE in the admin database.")));
		tenant_relid = relid;
	}
	return tenant_relid;
}

/*
 * Is the extension installed in this database?  Answered from the syscache
 * (or the remembered OID), never throws.
 */
bool
tenancy_catalog_installed(void)
{
	Oid			nsp;

	if (OidIsValid(tenant_relid))
		return true;
	nsp = get_namespace_oid("tenancy", true);
	return OidIsValid(nsp) && OidIsValid(get_relname_relid("tenant", nsp));
}

/* Owner of tenancy.tenant: the role catalog access runs as. */
Oid
tenancy_catalog_owner(void)
{
	Oid			relid = tenant_table_oid();
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* Pins search_path for the statements that follow; returns the nest level. */
static int
pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/*
 * Switches to the catalog owner and connects SPI; with pin, also pins
 * search_path (needed whenever a statement is parsed).  Must be paired with
 * catalog_leave().  On error, transaction (or subtransaction) abort restores
 * the user id and the GUC nest level.
 */
static void
catalog_enter_ext(CatalogScope *scope, bool pin)
{
	Oid			owner = tenancy_catalog_owner();

	scope->caller_context = CurrentMemoryContext;
	GetUserIdAndSecContext(&scope->save_userid, &scope->save_sec_context);
	SetUserIdAndSecContext(owner, scope->save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	scope->save_nestlevel = pin ? pin_search_path() : 0;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
catalog_enter(CatalogScope *scope)
{
	catalog_enter_ext(scope, true);
}

/* Undoes catalog_enter(). */
static void
catalog_leave(CatalogScope *scope)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	if (scope->save_nestlevel > 0)
		AtEOXact_GUC(true, scope->save_nestlevel);
	SetUserIdAndSecContext(scope->save_userid, scope->save_sec_context);
}

/*
 * Runs one catalog statement with text-or-other parameters and checks that
 * it returned "expect".  Returns SPI_processed.
 */
static uint64
catalog_exec(const char *sql, int nargs, Oid *types, Datum *values,
			 const char *nulls, bool read_only, int expect)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls,
										   read_only, 0);

	if (rc != expect)
		elog(ERROR, "catalog statement failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/* Column text or "" if null, copied into "dst" (NAMEDATALEN bytes). */
static void
copy_name_column(HeapTuple tup, TupleDesc desc, int col, char *dst)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	strlcpy(dst, v ? v : "", NAMEDATALEN);
}

/* Fills "rec" from a row of TENANT_COLUMNS. */
#define TENANT_COLUMNS "id, isolation, database_name, schema_name, server, state, applied_version, last_error IS NOT NULL"
static void
record_from_tuple(HeapTuple tup, TupleDesc desc, TenantRecord *rec)
{
	char	   *isolation = SPI_getvalue(tup, desc, 2);
	bool		isnull;

	memset(rec, 0, sizeof(*rec));
	copy_name_column(tup, desc, 1, rec->id);
	rec->isolation = strcmp(isolation, "schema") == 0 ?
		TENANT_ISOLATION_SCHEMA : TENANT_ISOLATION_DATABASE;
	copy_name_column(tup, desc, 3, rec->database_name);
	copy_name_column(tup, desc, 4, rec->schema_name);
	copy_name_column(tup, desc, 5, rec->server);
	rec->state = tenancy_state_from_name(SPI_getvalue(tup, desc, 6));
	rec->applied_version = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
	rec->has_error = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
}

/*
 * Reads one tenant row with a fresh snapshot.  Returns false if there is
 * none.  Always reads the catalog (no cache).  No row lock: the per-tenant
 * advisory lock serialises tenancy's operations, and a row lock would block
 * the autonomous catalog updates that some operations commit through a
 * loopback connection.
 */
static bool
read_tenant_fresh(const char *id, TenantRecord *rec)
{
	CatalogScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		found;

	values[0] = CStringGetTextDatum(id);
	catalog_enter(&scope);
	catalog_exec("SELECT " TENANT_COLUMNS " FROM tenancy.tenant WHERE id OPERATOR(pg_catalog.=) $1",
				 1, types, values, NULL, false, SPI_OK_SELECT);
	found = SPI_processed > 0;
	if (found)
		record_from_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, rec);
	catalog_leave(&scope);
	return found;
}

/*
 * Reads the catalog from a utility statement or a hook (SET, the
 * search_path checks) need a snapshot of their own.  Before the
 * transaction has taken its first snapshot, a catalog snapshot is used
 * rather than the transaction snapshot, so that a later SET TRANSACTION
 * ISOLATION LEVEL (or BEGIN ISOLATION LEVEL) still works.  Returns whether
 * one was pushed (pop it after).
 */
static bool
push_lookup_snapshot(void)
{
	if (ActiveSnapshotSet())
		return false;
	if (FirstSnapshotSet)
		PushActiveSnapshot(GetTransactionSnapshot());
	else
		PushActiveSnapshot(GetCatalogSnapshot(tenant_table_oid()));
	return true;
}

/*
 * Reads one tenant row and its members with the kept lookup plan (routing's
 * cache misses).  The members are copied into "members_cxt".
 */
static bool
lookup_tenant(const char *id, TenantRecord *rec, MemoryContext members_cxt,
			  int *nmembers, Oid **members)
{
	CatalogScope scope;
	Datum		values[1];
	bool		found;
	bool		pushed;
	int			rc;

	values[0] = CStringGetTextDatum(id);
	catalog_enter_ext(&scope, false);
	if (lookup_plan == NULL)
	{
		Oid			types[1] = {TEXTOID};
		int			nestlevel = pin_search_path();
		SPIPlanPtr	plan;

		plan = SPI_prepare("SELECT " TENANT_COLUMNS ", "
						   "ARRAY(SELECT m.role::pg_catalog.oid FROM tenancy.member m "
						   "WHERE m.tenant_id OPERATOR(pg_catalog.=) tenancy.tenant.id) "
						   "FROM tenancy.tenant WHERE id OPERATOR(pg_catalog.=) $1",
						   1, types);
		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare tenant lookup: %s", SPI_result_code_string(SPI_result));
		AtEOXact_GUC(true, nestlevel);
		lookup_plan = plan;
	}
	pushed = push_lookup_snapshot();
	rc = SPI_execute_plan(lookup_plan, values, NULL, true, 1);
	if (pushed)
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

		record_from_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, rec);
		deconstruct_array(DatumGetArrayTypeP(arr), OIDOID, sizeof(Oid), true, TYPALIGN_INT,
						  &elems, NULL, &n);
		*members = MemoryContextAlloc(members_cxt, sizeof(Oid) * Max(n, 1));
		for (i = 0; i < n; i++)
			(*members)[i] = DatumGetObjectId(elems[i]);
		*nmembers = n;
	}
	catalog_leave(&scope);
	return found;
}

/*
 * May the current user use a tenant with these members?  Superusers may
 * use any tenant (as they bypass every permission check); other roles must
 * have the privileges of a role granted the tenant (tenancy.member), which
 * includes being a member of it with INHERIT.
 */
static bool
may_use(int nmembers, const Oid *members)
{
	Oid			user = GetUserId();
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
 * *permitted says whether the current user may use it.  The caller must be
 * in a transaction.
 */
bool
tenancy_catalog_lookup(const char *id, TenantRecord *rec, bool *permitted)
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
		(void) tenant_table_oid();
		tenant_cache_valid = true;
	}

	memset(key, 0, sizeof(key));
	strlcpy(key, id, NAMEDATALEN);
	entry = hash_search(tenant_cache, key, HASH_FIND, NULL);
	if (entry != NULL)
	{
		cache_hits++;
		*rec = entry->rec;
		*permitted = may_use(entry->nmembers, entry->members);
		return true;
	}
	cache_misses++;

	if (!lookup_tenant(id, rec, tenant_cache_context, &nmembers, &members))
		return false;
	*permitted = may_use(nmembers, members);

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

/* Reads a tenant row without the cache (admin operations). */
bool
tenancy_catalog_fetch(const char *id, TenantRecord *rec)
{
	return read_tenant_fresh(id, rec);
}

/*
 * Registers a provisioned tenant as ready at rec->applied_version, in the
 * caller's transaction: inserts the row (or, for a tenant whose earlier
 * attempt left a failed row, updates it) and deletes the cleanup record of
 * the operation, so that both happen or neither.
 */
void
tenancy_catalog_register_ready(const TenantRecord *rec, Jsonb *metadata, int64 operation_id)
{
	CatalogScope scope;
	Oid			types[8] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, JSONBOID, INT8OID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = "        ";

	values[0] = CStringGetTextDatum(rec->id);
	values[1] = CStringGetTextDatum(rec->isolation == TENANT_ISOLATION_SCHEMA ? "schema" : "database");
	values[2] = CStringGetTextDatum(rec->database_name);
	if (rec->database_name[0] == '\0')
		nulls[2] = 'n';
	values[3] = CStringGetTextDatum(rec->server);
	if (rec->server[0] == '\0')
		nulls[3] = 'n';
	values[4] = Int64GetDatum(rec->applied_version);
	values[5] = JsonbPGetDatum(metadata);
	values[6] = Int64GetDatum(operation_id);

	values[7] = CStringGetTextDatum(rec->schema_name);
	if (rec->schema_name[0] == '\0')
		nulls[7] = 'n';

	catalog_enter(&scope);
	catalog_exec("INSERT INTO tenancy.tenant AS t (id, isolation, database_name, server, state, applied_version, metadata, schema_name) "
				 "VALUES ($1, $2, $3, $4::pg_catalog.name, 'ready', $5, $6, $8) "
				 "ON CONFLICT (id) DO UPDATE SET isolation = excluded.isolation, "
				 "database_name = excluded.database_name, schema_name = excluded.schema_name, "
				 "server = excluded.server, state = 'ready', "
				 "applied_version = excluded.applied_version, metadata = excluded.metadata, "
				 "last_error = NULL, last_sqlstate = NULL, updated_at = pg_catalog.now()",
				 8, types, values, nulls, false, SPI_OK_INSERT);
	catalog_exec("DELETE FROM tenancy.pending_cleanup WHERE operation_id OPERATOR(pg_catalog.=) $1",
				 1, types + 6, values + 6, NULL, false, SPI_OK_DELETE);
	catalog_leave(&scope);
}

/* A new operation id (nextval: never rolled back, so never reused). */
int64
tenancy_catalog_next_operation(void)
{
	CatalogScope scope;
	int64		id;
	bool		isnull;

	catalog_enter(&scope);
	catalog_exec("SELECT pg_catalog.nextval('tenancy.operation_seq'::pg_catalog.regclass)",
				 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	catalog_leave(&scope);
	return id;
}

/*
 * Cleanup records, oldest first, as a List of CleanupRecord in the caller's
 * context; only those of "tenant" unless it is NULL.
 */
List *
tenancy_catalog_cleanup_records(const char *tenant)
{
	CatalogScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {tenant ? ' ' : 'n'};
	List	   *result = NIL;
	uint64		i;

	values[0] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
	catalog_enter(&scope);
	catalog_exec("SELECT operation_id, tenant_id, server, database_name, final_name "
				 "FROM tenancy.pending_cleanup WHERE $1 IS NULL OR tenant_id OPERATOR(pg_catalog.=) $1 "
				 "ORDER BY operation_id",
				 1, types, values, nulls, false, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);
		CleanupRecord *r = palloc0(sizeof(CleanupRecord));
		bool		isnull;

		r->operation_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		copy_name_column(tup, desc, 2, r->tenant);
		copy_name_column(tup, desc, 3, r->server);
		copy_name_column(tup, desc, 4, r->database_name);
		copy_name_column(tup, desc, 5, r->final_name);
		result = lappend(result, r);
		MemoryContextSwitchTo(old);
	}
	catalog_leave(&scope);
	return result;
}

/* Deletes a cleanup record, in the caller's transaction. */
void
tenancy_catalog_forget_cleanup(int64 operation_id)
{
	CatalogScope scope;
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	values[0] = Int64GetDatum(operation_id);
	catalog_enter(&scope);
	catalog_exec("DELETE FROM tenancy.pending_cleanup WHERE operation_id OPERATOR(pg_catalog.=) $1",
				 1, types, values, NULL, false, SPI_OK_DELETE);
	catalog_leave(&scope);
}

/* Every tenant row, ordered by id, as a List of TenantRecord. */
List *
tenancy_catalog_tenants(void)
{
	CatalogScope scope;
	List	   *result = NIL;
	uint64		i;

	catalog_enter(&scope);
	catalog_exec("SELECT " TENANT_COLUMNS " FROM tenancy.tenant ORDER BY id",
				 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		TenantRecord *rec = MemoryContextAlloc(scope.caller_context, sizeof(TenantRecord));
		MemoryContext old;

		record_from_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, rec);
		old = MemoryContextSwitchTo(scope.caller_context);
		result = lappend(result, rec);
		MemoryContextSwitchTo(old);
	}
	catalog_leave(&scope);
	return result;
}

/* Sets a tenant's state and last_error (NULL clears it). */
void
tenancy_catalog_set_state(const char *id, TenantState state, const char *last_error)
{
	CatalogScope scope;
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = "   ";

	values[0] = CStringGetTextDatum(id);
	values[1] = CStringGetTextDatum(tenancy_state_name(state));
	values[2] = last_error ? CStringGetTextDatum(last_error) : (Datum) 0;
	if (last_error == NULL)
		nulls[2] = 'n';
	catalog_enter(&scope);
	catalog_exec("UPDATE tenancy.tenant SET state = $2, last_error = $3, last_sqlstate = NULL, updated_at = pg_catalog.now() "
				 "WHERE id OPERATOR(pg_catalog.=) $1",
				 3, types, values, nulls, false, SPI_OK_UPDATE);
	catalog_leave(&scope);
}

/*
 * Records the version a tenant's ledger has reached; with clear_error, also
 * clears the last recorded error (a migration just succeeded), otherwise
 * leaves it (reconcile rebuilding a summary).
 */
void
tenancy_catalog_set_applied(const char *id, int64 version, bool clear_error)
{
	CatalogScope scope;
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];

	values[0] = CStringGetTextDatum(id);
	values[1] = Int64GetDatum(version);
	catalog_enter(&scope);
	catalog_exec(clear_error ?
				 "UPDATE tenancy.tenant SET applied_version = $2, last_error = NULL, last_sqlstate = NULL, "
				 "updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1" :
				 "UPDATE tenancy.tenant SET applied_version = $2, updated_at = pg_catalog.now() "
				 "WHERE id OPERATOR(pg_catalog.=) $1",
				 2, types, values, NULL, false, SPI_OK_UPDATE);
	catalog_leave(&scope);
}

/*
 * Records migration runs' outcomes in tenants' summaries, in the caller's
 * transaction: for each tenant, the version its ledger reached and the
 * error (text and SQLSTATE) if it failed, or none.  One statement for many
 * tenants, so the statement trigger (and the cache invalidation it sends)
 * fires once.  Arrays of ids, versions, SQLSTATEs and errors (NULL elements
 * for none), "n" long.
 */
void
tenancy_catalog_record_migrations(int n, Datum *ids, Datum *versions, Datum *sqlstates,
								  bool *sqlstate_nulls, Datum *errors, bool *error_nulls)
{
	CatalogScope scope;
	Oid			types[4] = {TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[4];
	int			dims[1] = {n};
	int			lbs[1] = {1};
	bool	   *no_nulls = palloc0(sizeof(bool) * n);

	if (n == 0)
		return;
	values[0] = PointerGetDatum(construct_md_array(ids, no_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_md_array(versions, no_nulls, 1, dims, lbs, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_md_array(sqlstates, sqlstate_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_md_array(errors, error_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	catalog_enter(&scope);
	catalog_exec("UPDATE tenancy.tenant t SET applied_version = v.version, last_sqlstate = v.sqlstate, "
				 "last_error = v.error, updated_at = pg_catalog.now() "
				 "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4)) "
				 "AS v(id, version, sqlstate, error) "
				 "WHERE t.id OPERATOR(pg_catalog.=) v.id",
				 4, types, values, NULL, false, SPI_OK_UPDATE);
	catalog_leave(&scope);
}

/*
 * Adds (grant) or removes a role's access to a tenant in tenancy.member, in
 * the caller's transaction.  Returns false if there was nothing to do.
 */
bool
tenancy_catalog_set_member(const char *id, Oid role, bool grant)
{
	CatalogScope scope;
	Oid			types[2] = {TEXTOID, OIDOID};
	Datum		values[2];
	uint64		n;

	values[0] = CStringGetTextDatum(id);
	values[1] = ObjectIdGetDatum(role);
	catalog_enter(&scope);
	n = grant ?
		catalog_exec("INSERT INTO tenancy.member (tenant_id, role) VALUES ($1, $2::pg_catalog.regrole) "
					 "ON CONFLICT DO NOTHING", 2, types, values, NULL, false, SPI_OK_INSERT) :
		catalog_exec("DELETE FROM tenancy.member WHERE tenant_id OPERATOR(pg_catalog.=) $1 "
					 "AND role OPERATOR(pg_catalog.=) $2::pg_catalog.regrole",
					 2, types, values, NULL, false, SPI_OK_DELETE);
	catalog_leave(&scope);
	return n > 0;
}

/* The roles granted a tenant (OIDs), in CurrentMemoryContext. */
List *
tenancy_catalog_members(const char *id)
{
	CatalogScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	List	   *roles = NIL;
	uint64		i;

	values[0] = CStringGetTextDatum(id);
	catalog_enter(&scope);
	catalog_exec("SELECT role::pg_catalog.oid FROM tenancy.member WHERE tenant_id OPERATOR(pg_catalog.=) $1",
				 1, types, values, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			role = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);

		roles = lappend_oid(roles, role);
		MemoryContextSwitchTo(old);
	}
	catalog_leave(&scope);
	return roles;
}

/*
 * Deletes a tenant row (and, through the foreign key, its members) and its
 * migrate_all() progress row.
 */
void
tenancy_catalog_delete(const char *id)
{
	CatalogScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(id);
	catalog_enter(&scope);
	catalog_exec("DELETE FROM tenancy.migration_progress WHERE tenant_id OPERATOR(pg_catalog.=) $1",
				 1, types, values, NULL, false, SPI_OK_DELETE);
	catalog_exec("DELETE FROM tenancy.tenant WHERE id OPERATOR(pg_catalog.=) $1",
				 1, types, values, NULL, false, SPI_OK_DELETE);
	catalog_leave(&scope);
}

/*
 * The tenant's row as a tenancy.tenant composite Datum, allocated in the
 * caller's memory context (for functions that RETURN tenancy.tenant).
 */
Datum
tenancy_catalog_row(const char *id)
{
	CatalogScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	Datum		result;
	bool		isnull;

	values[0] = CStringGetTextDatum(id);
	catalog_enter(&scope);
	catalog_exec("SELECT t FROM tenancy.tenant t WHERE t.id OPERATOR(pg_catalog.=) $1",
				 1, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "tenant \"%s\" vanished", id);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	catalog_leave(&scope);
	return result;
}

/*
 * Takes the per-tenant transaction-level lock that serialises provisioning,
 * migration and deprovisioning of one tenant.  It is a local advisory lock
 * (class TENANCY_LOCK_CLASS, key = hash of the id), taken before any remote
 * call, so waits show in pg_locks and isolation tests.  With nowait, raises
 * 55P03 instead of waiting.
 */
void
tenancy_catalog_lock_tenant(const char *id, bool nowait)
{
	LOCKTAG		tag;
	uint32		key = DatumGetUInt32(hash_any((const unsigned char *) id, strlen(id)));

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TENANCY_LOCK_CLASS, key, 2);
	if (LockAcquire(&tag, ExclusiveLock, false, nowait) == LOCKACQUIRE_NOT_AVAIL)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not obtain lock on tenant \"%s\"", id),
				 errdetail("Another tenancy operation on this tenant is in progress.")));
}

/*
 * Takes the tenant's lock (waiting) and reads its row; 42704 if there is
 * none.  The common opening of every operation on one existing tenant.
 */
void
tenancy_catalog_lock_existing(const char *id, TenantRecord *rec)
{
	tenancy_catalog_lock_tenant(id, false);
	if (!tenancy_catalog_fetch(id, rec))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" does not exist", id)));
}

/*
 * Takes the tenant's lock if it is free; returns false (without waiting)
 * if another operation holds it.
 */
bool
tenancy_catalog_try_lock_tenant(const char *id)
{
	LOCKTAG		tag;
	uint32		key = DatumGetUInt32(hash_any((const unsigned char *) id, strlen(id)));

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TENANCY_LOCK_CLASS, key, 2);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/* Releases a tenant's lock before the end of the transaction. */
void
tenancy_catalog_unlock_tenant(const char *id)
{
	LOCKTAG		tag;
	uint32		key = DatumGetUInt32(hash_any((const unsigned char *) id, strlen(id)));

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TENANCY_LOCK_CLASS, key, 2);
	(void) LockRelease(&tag, ExclusiveLock, false);
}

/*
 * Serialises reconcile() runs: the second waits for the first, then finds
 * nothing left to do.
 */
void
tenancy_catalog_lock_reconcile(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TENANCY_RECONCILE_LOCK_CLASS, 0, 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * All registered migrations in ascending version order, as a List of
 * TenancyMigration allocated in the caller's memory context.
 */
List *
tenancy_catalog_migrations(void)
{
	CatalogScope scope;
	List	   *result = NIL;
	uint64		i;

	catalog_enter(&scope);
	catalog_exec("SELECT version, sql, checksum FROM tenancy.migration ORDER BY version",
				 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);
		TenancyMigration *m = palloc(sizeof(TenancyMigration));
		bool		isnull;

		m->version = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		m->sql = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		m->checksum = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
		result = lappend(result, m);
		MemoryContextSwitchTo(old);
	}
	catalog_leave(&scope);
	return result;
}

/*
 * Registers a migration unless the version is taken or out of order; says
 * which.  *highest receives the highest registered version before the call.
 * Locks tenancy.migration so that concurrent registrations serialise.
 */
MigrationAddResult
tenancy_catalog_add_migration(int64 version, const char *sql, const char *checksum,
							  const char *description, int64 *highest)
{
	CatalogScope scope;
	Oid			types[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = "    ";
	MigrationAddResult result;
	bool		isnull;

	values[0] = Int64GetDatum(version);
	values[1] = CStringGetTextDatum(sql);
	values[2] = CStringGetTextDatum(checksum);
	values[3] = description ? CStringGetTextDatum(description) : (Datum) 0;
	if (description == NULL)
		nulls[3] = 'n';

	catalog_enter(&scope);
	catalog_exec("LOCK TABLE tenancy.migration IN SHARE ROW EXCLUSIVE MODE",
				 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	catalog_exec("SELECT checksum FROM tenancy.migration WHERE version OPERATOR(pg_catalog.=) $1",
				 1, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		char	   *existing = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		result = strcmp(existing, checksum) == 0 ?
			MIGRATION_ALREADY_REGISTERED : MIGRATION_CONFLICT;
	}
	else
	{
		catalog_exec("SELECT COALESCE(pg_catalog.max(version), 0) FROM tenancy.migration",
					 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
		*highest = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (version < *highest)
			result = MIGRATION_OUT_OF_ORDER;
		else
		{
			catalog_exec("INSERT INTO tenancy.migration (version, sql, checksum, description) "
						 "VALUES ($1, $2, $3, $4)",
						 4, types, values, nulls, false, SPI_OK_INSERT);
			result = MIGRATION_ADDED;
		}
	}
	catalog_leave(&scope);
	return result;
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

/*
 * A fingerprint of the registered migrations: MD5 of their versions and
 * checksums in order.  Equal fingerprints mean the same migrations.  Result
 * in the caller's context.
 */
char *
tenancy_catalog_migration_fingerprint(void)
{
	CatalogScope scope;
	char	   *result;

	catalog_enter(&scope);
	catalog_exec("SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(version::text OPERATOR(pg_catalog.||) ':' "
				 "OPERATOR(pg_catalog.||) checksum, ',' ORDER BY version), '')) FROM tenancy.migration",
				 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	result = MemoryContextStrdup(scope.caller_context,
								 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	catalog_leave(&scope);
	return result;
}

/*
 * The fingerprint of the migrations tenancy's template on "server" (NULL:
 * this cluster) was built from, and in *version the highest of them; NULL
 * if no template is recorded.
 */
char *
tenancy_catalog_template_fingerprint(const char *server, int64 *version)
{
	CatalogScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char	   *result = NULL;

	values[0] = CStringGetTextDatum(server ? server : "");
	catalog_enter(&scope);
	catalog_exec("SELECT fingerprint, applied_version FROM tenancy.template "
				 "WHERE COALESCE(server, ''::pg_catalog.name) OPERATOR(pg_catalog.=) $1::pg_catalog.name",
				 1, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bool		isnull;

		result = MemoryContextStrdup(scope.caller_context,
									 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		*version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	catalog_leave(&scope);
	return result;
}

/* Records the template of "server" and what it was built from. */
void
tenancy_catalog_set_template(const char *server, const char *dbname, int64 version,
							 const char *fingerprint)
{
	CatalogScope scope;
	Oid			types[4] = {TEXTOID, TEXTOID, INT8OID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = "    ";

	values[0] = server ? CStringGetTextDatum(server) : (Datum) 0;
	if (server == NULL)
		nulls[0] = 'n';
	values[1] = CStringGetTextDatum(dbname);
	values[2] = Int64GetDatum(version);
	values[3] = CStringGetTextDatum(fingerprint);
	catalog_enter(&scope);
	catalog_exec("INSERT INTO tenancy.template (server, database_name, applied_version, fingerprint) "
				 "VALUES ($1::pg_catalog.name, $2, $3, $4) "
				 "ON CONFLICT ((COALESCE(server, ''::pg_catalog.name))) DO UPDATE "
				 "SET database_name = excluded.database_name, applied_version = excluded.applied_version, "
				 "fingerprint = excluded.fingerprint, updated_at = pg_catalog.now()",
				 4, types, values, nulls, false, SPI_OK_INSERT);
	catalog_leave(&scope);
}

/* The advisory lock of the template on "server". */
static void
template_locktag(LOCKTAG *tag, const char *server)
{
	const char *key = server ? server : "";

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, TENANCY_TEMPLATE_LOCK_CLASS,
						 DatumGetUInt32(hash_any((const unsigned char *) key, strlen(key))), 2);
}

/*
 * Locks the template of "server": exclusive to create or migrate it, shared
 * to copy it (copies run side by side; a migration waits for them).
 */
void
tenancy_catalog_lock_template(const char *server, bool exclusive)
{
	LOCKTAG		tag;

	template_locktag(&tag, server);
	(void) LockAcquire(&tag, exclusive ? ExclusiveLock : ShareLock, false, false);
}

/* Releases a template lock before the end of the transaction. */
void
tenancy_catalog_unlock_template(const char *server, bool exclusive)
{
	LOCKTAG		tag;

	template_locktag(&tag, server);
	(void) LockRelease(&tag, exclusive ? ExclusiveLock : ShareLock, false);
}

/* A number that changes whenever the catalog may have changed. */
uint64
tenancy_catalog_generation(void)
{
	return catalog_generation;
}

/*
 * Is "nspname" the schema of a schema tenant (any state)?  Answered from a
 * per-backend memo; a miss reads the catalog (unique index on
 * schema_name).
 */
bool
tenancy_catalog_is_tenant_schema(const char *nspname)
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
		CatalogScope scope;
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		bool		pushed = push_lookup_snapshot();
		bool		is_tenant;

		values[0] = CStringGetTextDatum(nspname);
		catalog_enter(&scope);
		catalog_exec("SELECT 1 FROM tenancy.tenant WHERE schema_name OPERATOR(pg_catalog.=) $1",
					 1, types, values, NULL, true, SPI_OK_SELECT);
		is_tenant = SPI_processed > 0;
		catalog_leave(&scope);
		if (pushed)
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
 * Reads tenancy.config: the service role and the loopback server (the
 * dblink foreign server that reaches this cluster), or InvalidOid and NULL
 * when tenancy is not configured.  The server name is allocated in
 * CurrentMemoryContext.
 */
static void
read_config(Oid *role, char **server)
{
	CatalogScope scope;

	*role = InvalidOid;
	*server = NULL;
	catalog_enter(&scope);
	catalog_exec("SELECT service_role::pg_catalog.oid, loopback_server FROM tenancy.config",
				 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bool		isnull;
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		*role = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (v != NULL)
			*server = MemoryContextStrdup(scope.caller_context, v);
	}
	catalog_leave(&scope);
}

/* The configured loopback server, or NULL (routed queries to this cluster). */
char *
tenancy_catalog_loopback_server(void)
{
	Oid			role;
	char	   *server;

	read_config(&role, &server);
	return server;
}

/*
 * Tells transport who remote work runs as: the configured service role
 * through the loopback server, or (unconfigured) the calling superuser.
 * Called at the start of every operation that does remote work.
 */
void
tenancy_catalog_apply_config(void)
{
	Oid			role;
	char	   *server;

	read_config(&role, &server);
	tenancy_transport_set_identity(role, server);
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
	CacheInvalidateRelcacheByRelid(tenant_table_oid());
	return PointerGetDatum(NULL);
}
