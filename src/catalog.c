/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  All SQL on tenancy's catalog tables (tenancy.tenant, member,
 *	  migration, template, pending_cleanup, migration_progress, config).
 *
 * Catalog access runs in the privilege scope (scope.c) as the owner of
 * tenancy.tenant (the installing superuser) with search_path pinned to
 * pg_catalog, pg_temp, so that callers who may use a tenant but cannot
 * read the catalog (application roles) can still resolve it, and so that
 * nothing on the caller's search_path can change which objects the
 * queries reach.  Values always travel as parameters.
 *
 * Most writes happen in the caller's transaction.  Those that must commit
 * whatever the caller's transaction does ("autonomous": cleanup records
 * written before a remote step, state changes around one, a fleet run's
 * progress rows) run through a session of their own to the admin
 * database (remote.c), as the service role, with the same SQL and
 * parameters.
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
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "conninfo.h"
#include "locks.h"
#include "names.h"
#include "remote.h"
#include "scope.h"

/* tenancy.tenant, once looked up (forgotten when relcache says so). */
static Oid	tenant_relid = InvalidOid;

static void
forget_relid_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == tenant_relid)
		tenant_relid = InvalidOid;
}

/* Registers the relcache callback.  Called once from _PG_init. */
void
tenancy_catalog_init(void)
{
	CacheRegisterRelcacheCallback(forget_relid_callback, (Datum) 0);
}

/*
 * OID of tenancy.tenant; 55000 if the extension is not installed in this
 * database (the caller is then running a tenancy function out of place).
 */
Oid
tenancy_catalog_tenant_table(void)
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
	Oid			relid = tenancy_catalog_tenant_table();
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* Enters the privilege scope of catalog access. */
static void
catalog_enter(PrivilegeScope *scope)
{
	tenancy_scope_enter(scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
}

/*
 * Runs one catalog statement with text parameters (NULL elements for SQL
 * NULL) through a session of its own to the admin database, so that it
 * commits whatever the caller's transaction does.  A failure is raised.
 */
static void
autonomous(const char *sql, int nparams, const char *const *params)
{
	RemoteSession *session = tenancy_remote_open(CONNINFO_SERVICE, NULL, NULL, "tenancy/catalog");
	RemoteResult r;

	PG_TRY();
	{
		tenancy_remote_call(session, sql, nparams, params, false, &r);
		if (r.error != NULL)
			tenancy_remote_raise(r.error);
	}
	PG_FINALLY();
	{
		tenancy_remote_close(session);
	}
	PG_END_TRY();
}

/* Column text or "" if null, copied into "dst" (NAMEDATALEN bytes). */
static void
copy_name_column(HeapTuple tup, TupleDesc desc, int col, char *dst)
{
	char	   *v = SPI_getvalue(tup, desc, col);

	strlcpy(dst, v ? v : "", NAMEDATALEN);
}

/* Fills "rec" from a row of TENANCY_TENANT_COLUMNS. */
void
tenancy_catalog_record_from_tuple(HeapTuple tup, TupleDesc desc, TenantRecord *rec)
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
 * Reads one tenant row with a fresh snapshot, without the cache (admin
 * operations).  Returns false if there is none.  No row lock: the per-tenant
 * advisory lock serialises tenancy's operations, and a row lock would block
 * the autonomous catalog updates that some operations commit through a
 * loopback connection.
 */
bool
tenancy_catalog_fetch(const char *id, TenantRecord *rec)
{
	PrivilegeScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		found;

	values[0] = CStringGetTextDatum(id);
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT " TENANCY_TENANT_COLUMNS " FROM tenancy.tenant WHERE id OPERATOR(pg_catalog.=) $1",
					   1, types, values, NULL, false, SPI_OK_SELECT);
	found = SPI_processed > 0;
	if (found)
		tenancy_catalog_record_from_tuple(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, rec);
	tenancy_scope_leave(&scope);
	return found;
}

/*
 * Registers a provisioned tenant as ready at rec->applied_version, in the
 * caller's transaction: inserts the row (or, for a tenant whose earlier
 * attempt left a failed row, updates it) and deletes the cleanup record of
 * the operation, so that both happen or neither.
 */
void
tenancy_catalog_register_ready(const TenantRecord *rec, Jsonb *metadata, int64 operation_id,
							   const char *versions)
{
	PrivilegeScope scope;
	Oid			types[9] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT8OID, JSONBOID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[9];
	char		nulls[9] = "         ";

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
	values[8] = versions ? CStringGetTextDatum(versions) : (Datum) 0;
	if (versions == NULL)
		nulls[8] = 'n';

	catalog_enter(&scope);
	tenancy_scope_exec("INSERT INTO tenancy.tenant AS t (id, isolation, database_name, server, state, "
					   "applied_version, metadata, schema_name, applied_versions) "
					   "VALUES ($1, $2, $3, $4::pg_catalog.name, 'ready', $5, $6, $8, "
					   "COALESCE($9::pg_catalog.int8[], "
					   "ARRAY(SELECT m.version FROM tenancy.migration m ORDER BY m.version))) "
					   "ON CONFLICT (id) DO UPDATE SET isolation = excluded.isolation, "
					   "database_name = excluded.database_name, schema_name = excluded.schema_name, "
					   "server = excluded.server, state = 'ready', "
					   "applied_version = excluded.applied_version, applied_versions = excluded.applied_versions, "
					   "metadata = excluded.metadata, "
					   "last_error = NULL, last_sqlstate = NULL, updated_at = pg_catalog.now()",
					   9, types, values, nulls, false, SPI_OK_INSERT);
	tenancy_scope_exec("DELETE FROM tenancy.pending_cleanup WHERE operation_id OPERATOR(pg_catalog.=) $1",
					   1, types + 6, values + 6, NULL, false, SPI_OK_DELETE);
	tenancy_scope_leave(&scope);
}

/* A new operation id (nextval: never rolled back, so never reused). */
int64
tenancy_catalog_next_operation(void)
{
	PrivilegeScope scope;
	int64		id;
	bool		isnull;

	catalog_enter(&scope);
	tenancy_scope_exec("SELECT pg_catalog.nextval('tenancy.operation_seq'::pg_catalog.regclass)",
					   0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	tenancy_scope_leave(&scope);
	return id;
}

/*
 * Cleanup records, oldest first, as a List of CleanupRecord in the caller's
 * context; only those of "tenant" unless it is NULL.
 */
List *
tenancy_catalog_cleanup_records(const char *tenant)
{
	PrivilegeScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[1] = {tenant ? ' ' : 'n'};
	List	   *result = NIL;
	uint64		i;

	values[0] = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT operation_id, tenant_id, server, database_name, final_name, isolation "
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
		copy_name_column(tup, desc, 4, r->temporary_name);
		copy_name_column(tup, desc, 5, r->final_name);
		r->isolation = strcmp(SPI_getvalue(tup, desc, 6), "schema") == 0 ?
			TENANT_ISOLATION_SCHEMA : TENANT_ISOLATION_DATABASE;
		result = lappend(result, r);
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return result;
}

/* Every tenant row, ordered by id, as a List of TenantRecord. */
List *
tenancy_catalog_tenants(void)
{
	PrivilegeScope scope;
	List	   *result = NIL;
	uint64		i;

	catalog_enter(&scope);
	tenancy_scope_exec("SELECT " TENANCY_TENANT_COLUMNS " FROM tenancy.tenant ORDER BY id",
					   0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		TenantRecord *rec = MemoryContextAlloc(scope.caller_context, sizeof(TenantRecord));
		MemoryContext old;

		tenancy_catalog_record_from_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, rec);
		old = MemoryContextSwitchTo(scope.caller_context);
		result = lappend(result, rec);
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return result;
}

/* The tenant whose database "dbname" on "server" is, or NULL. */
char *
tenancy_catalog_database_tenant(const char *server, const char *dbname)
{
	PrivilegeScope scope;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char	   *result = NULL;

	values[0] = CStringGetTextDatum(server ? server : "");
	values[1] = CStringGetTextDatum(dbname);
	catalog_enter(&scope);
	/* the loopback server is this cluster too */
	tenancy_scope_exec("SELECT id FROM tenancy.tenant "
					   "WHERE COALESCE(NULLIF(server, (SELECT loopback_server FROM tenancy.config)), ''::pg_catalog.name) "
					   "OPERATOR(pg_catalog.=) "
					   "COALESCE(NULLIF($1::pg_catalog.name, (SELECT loopback_server FROM tenancy.config)), ''::pg_catalog.name) "
					   "AND database_name OPERATOR(pg_catalog.=) $2",
					   2, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
		result = MemoryContextStrdup(scope.caller_context,
									 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	tenancy_scope_leave(&scope);
	return result;
}

/* A tenant's catalog summary of its ledger, as an array literal. */
char *
tenancy_catalog_applied_versions(const char *id)
{
	PrivilegeScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char	   *result = NULL;

	values[0] = CStringGetTextDatum(id);
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT applied_versions::pg_catalog.text FROM tenancy.tenant WHERE id OPERATOR(pg_catalog.=) $1",
					   1, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 1)
		result = MemoryContextStrdup(scope.caller_context,
									 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	tenancy_scope_leave(&scope);
	return result ? result : pstrdup("{}");
}

/*
 * Records what a tenant's ledger holds ("versions", an array literal) and
 * its highest version; with clear_error, also clears the last recorded
 * error (a migration just succeeded), otherwise leaves it (reconcile
 * rebuilding a summary).
 */
void
tenancy_catalog_set_applied(const char *id, const char *versions, int64 max, bool clear_error)
{
	PrivilegeScope scope;
	Oid			types[3] = {TEXTOID, INT8OID, TEXTOID};
	Datum		values[3];

	values[0] = CStringGetTextDatum(id);
	values[1] = Int64GetDatum(max);
	values[2] = CStringGetTextDatum(versions);
	catalog_enter(&scope);
	tenancy_scope_exec(clear_error ?
					   "UPDATE tenancy.tenant SET applied_version = $2, applied_versions = $3::pg_catalog.int8[], "
					   "last_error = NULL, last_sqlstate = NULL, "
					   "updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1" :
					   "UPDATE tenancy.tenant SET applied_version = $2, applied_versions = $3::pg_catalog.int8[], "
					   "updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
					   3, types, values, NULL, false, SPI_OK_UPDATE);
	tenancy_scope_leave(&scope);
}

/*
 * Records, committed on its own at once, what a tenant's ledger holds
 * after a migrate() that failed (the caller's transaction is about to
 * abort), with the error, so that the next migrate_all() connects to it.
 */
void
tenancy_catalog_record_failure(const char *id, const char *versions, int64 max,
							   const char *sqlstate, const char *error)
{
	char		maxtext[32];
	const char *params[5];

	snprintf(maxtext, sizeof(maxtext), INT64_FORMAT, max);
	params[0] = id;
	params[1] = maxtext;
	params[2] = versions;
	params[3] = sqlstate;
	params[4] = error;
	autonomous("UPDATE tenancy.tenant SET applied_version = $2::pg_catalog.int8, "
			   "applied_versions = $3::pg_catalog.int8[], last_sqlstate = $4, last_error = $5, "
			   "updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1",
			   5, params);
}

/*
 * Adds (grant) or removes a role's access to a tenant in tenancy.member, in
 * the caller's transaction.  Returns false if there was nothing to do.
 */
bool
tenancy_catalog_set_member(const char *id, Oid role, bool grant)
{
	PrivilegeScope scope;
	Oid			types[2] = {TEXTOID, OIDOID};
	Datum		values[2];
	uint64		n;

	values[0] = CStringGetTextDatum(id);
	values[1] = ObjectIdGetDatum(role);
	catalog_enter(&scope);
	n = grant ?
		tenancy_scope_exec("INSERT INTO tenancy.member (tenant_id, role) VALUES ($1, $2::pg_catalog.regrole) "
						   "ON CONFLICT DO NOTHING", 2, types, values, NULL, false, SPI_OK_INSERT) :
		tenancy_scope_exec("DELETE FROM tenancy.member WHERE tenant_id OPERATOR(pg_catalog.=) $1 "
						   "AND role OPERATOR(pg_catalog.=) $2::pg_catalog.regrole",
						   2, types, values, NULL, false, SPI_OK_DELETE);
	tenancy_scope_leave(&scope);
	return n > 0;
}

/* The roles granted a tenant (OIDs), in CurrentMemoryContext. */
List *
tenancy_catalog_members(const char *id)
{
	PrivilegeScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	List	   *roles = NIL;
	uint64		i;

	values[0] = CStringGetTextDatum(id);
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT role::pg_catalog.oid FROM tenancy.member WHERE tenant_id OPERATOR(pg_catalog.=) $1",
					   1, types, values, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			role = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);

		roles = lappend_oid(roles, role);
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return roles;
}

/*
 * The tenant's row as a tenancy.tenant composite Datum, allocated in the
 * caller's memory context (for functions that RETURN tenancy.tenant).
 */
Datum
tenancy_catalog_row(const char *id)
{
	PrivilegeScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	Datum		result;
	bool		isnull;

	values[0] = CStringGetTextDatum(id);
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT t FROM tenancy.tenant t WHERE t.id OPERATOR(pg_catalog.=) $1",
					   1, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed != 1)
		elog(ERROR, "tenant \"%s\" vanished", id);
	result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	result = SPI_datumTransfer(result, false, -1);
	tenancy_scope_leave(&scope);
	return result;
}

/*
 * Takes the tenant's lock (waiting) and reads its row; 42704 if there is
 * none.  The common opening of every operation on one existing tenant.
 */
void
tenancy_catalog_lock_existing(const char *id, TenantRecord *rec)
{
	tenancy_lock_tenant(id, false);
	if (!tenancy_catalog_fetch(id, rec))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" does not exist", id)));
}

/*
 * All registered migrations in ascending version order, as a List of
 * TenancyMigration allocated in the caller's memory context.
 */
List *
tenancy_catalog_migrations(void)
{
	PrivilegeScope scope;
	List	   *result = NIL;
	uint64		i;

	catalog_enter(&scope);
	tenancy_scope_exec("SELECT version, sql, checksum, search_path, down, transactional "
					   "FROM tenancy.migration ORDER BY version",
					   0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);
		TenancyMigration *m = palloc0(sizeof(TenancyMigration));
		bool		isnull;
		Datum		d;

		m->version = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		m->sql = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		m->checksum = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
		m->search_path = TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull));
		d = SPI_getbinval(tup, desc, 5, &isnull);
		m->down = isnull ? NULL : TextDatumGetCString(d);
		m->transactional = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		result = lappend(result, m);
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return result;
}

/*
 * Registers a migration unless its version is taken; says which.  Locks
 * tenancy.migration so that concurrent registrations serialise.
 */
MigrationAddResult
tenancy_catalog_add_migration(const TenancyMigration *m, const char *description)
{
	PrivilegeScope scope;
	Oid			types[7] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	MigrationAddResult result;

	values[0] = Int64GetDatum(m->version);
	values[1] = CStringGetTextDatum(m->sql);
	values[2] = CStringGetTextDatum(m->checksum);
	values[3] = description ? CStringGetTextDatum(description) : (Datum) 0;
	if (description == NULL)
		nulls[3] = 'n';
	values[4] = CStringGetTextDatum(m->search_path);
	values[5] = m->down ? CStringGetTextDatum(m->down) : (Datum) 0;
	if (m->down == NULL)
		nulls[5] = 'n';
	values[6] = BoolGetDatum(m->transactional);

	catalog_enter(&scope);
	tenancy_scope_exec("LOCK TABLE tenancy.migration IN SHARE ROW EXCLUSIVE MODE",
					   0, NULL, NULL, NULL, false, SPI_OK_UTILITY);

	/*
	 * A migration 0.1.0 registered (empty search_path, checksum of the SQL
	 * alone) registered again by a start-up loop written for 0.1.0, which
	 * passes no search_path, is the same migration.
	 */
	tenancy_scope_exec("SELECT (checksum OPERATOR(pg_catalog.=) $3 "
					   "OR (search_path OPERATOR(pg_catalog.=) '' AND $5 OPERATOR(pg_catalog.=) 'public' "
					   "AND sql OPERATOR(pg_catalog.=) $2)) "
					   "AND down IS NOT DISTINCT FROM $6 "
					   "AND transactional OPERATOR(pg_catalog.=) $7 "
					   "FROM tenancy.migration WHERE version OPERATOR(pg_catalog.=) $1",
					   7, types, values, nulls, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bool		isnull;

		result = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) ?
			MIGRATION_ALREADY_REGISTERED : MIGRATION_CONFLICT;
	}
	else
	{
		tenancy_scope_exec("INSERT INTO tenancy.migration "
						   "(version, sql, checksum, description, search_path, down, transactional) "
						   "VALUES ($1, $2, $3, $4, $5, $6, $7)",
						   7, types, values, nulls, false, SPI_OK_INSERT);
		result = MIGRATION_ADDED;
	}
	tenancy_scope_leave(&scope);
	return result;
}

/*
 * Locks tenancy.migration in ACCESS EXCLUSIVE mode until the end of the
 * transaction: migrators still in their transaction finish first, and none
 * starts.
 */
void
tenancy_catalog_lock_migrations(void)
{
	PrivilegeScope scope;

	catalog_enter(&scope);
	tenancy_scope_exec("LOCK TABLE tenancy.migration IN ACCESS EXCLUSIVE MODE",
					   0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	tenancy_scope_leave(&scope);
}

/*
 * Removes a registered migration unless a tenant's summary holds it; says
 * which, and sets *tenant to one such tenant (and *count to how many).
 * Locks tenancy.migration in ACCESS EXCLUSIVE mode: a migrate() or
 * migrate_all() still running (it read the table in its transaction)
 * finishes first, and records what it applied before this looks.
 */
MigrationRemoveResult
tenancy_catalog_remove_migration(int64 version, char **tenant, int64 *count)
{
	PrivilegeScope scope;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	MigrationRemoveResult result;
	bool		isnull;

	values[0] = Int64GetDatum(version);
	catalog_enter(&scope);
	tenancy_scope_exec("LOCK TABLE tenancy.migration IN ACCESS EXCLUSIVE MODE",
					   0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
	tenancy_scope_exec("SELECT pg_catalog.min(id), pg_catalog.count(*) FROM tenancy.tenant "
					   "WHERE $1 OPERATOR(pg_catalog.=) ANY (applied_versions)",
					   1, types, values, NULL, false, SPI_OK_SELECT);
	*count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (*count > 0)
	{
		*tenant = MemoryContextStrdup(scope.caller_context,
									  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		result = MIGRATION_APPLIED;
	}
	else
	{
		tenancy_scope_exec("DELETE FROM tenancy.migration WHERE version OPERATOR(pg_catalog.=) $1",
						   1, types, values, NULL, false, SPI_OK_DELETE);
		result = SPI_processed > 0 ? MIGRATION_REMOVED : MIGRATION_NOT_FOUND;
	}
	tenancy_scope_leave(&scope);
	return result;
}

/*
 * The versions above "goal" that the catalog summary of any tenant of
 * "ids" (a List of ids; NULL: every tenant) holds, as a palloc'd array of
 * *n versions.
 */
int64 *
tenancy_catalog_held_above(int64 goal, List *ids, int *n)
{
	PrivilegeScope scope;
	Oid			types[2] = {INT8OID, TEXTARRAYOID};
	Datum		values[2];
	char		nulls[2] = "  ";
	int64	   *result;
	uint64		i;

	values[0] = Int64GetDatum(goal);
	if (ids == NIL)
	{
		values[1] = (Datum) 0;
		nulls[1] = 'n';
	}
	else
	{
		Datum	   *elems = palloc(sizeof(Datum) * list_length(ids));
		ListCell   *lc;

		foreach(lc, ids)
			elems[foreach_current_index(lc)] = CStringGetTextDatum((char *) lfirst(lc));
		values[1] = PointerGetDatum(construct_array(elems, list_length(ids), TEXTOID, -1, false, TYPALIGN_INT));
	}
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT DISTINCT v FROM tenancy.tenant t, pg_catalog.unnest(t.applied_versions) v "
					   "WHERE v OPERATOR(pg_catalog.>) $1 AND ($2 IS NULL OR t.id OPERATOR(pg_catalog.=) ANY ($2)) "
					   "ORDER BY v",
					   2, types, values, nulls, false, SPI_OK_SELECT);
	*n = (int) SPI_processed;
	result = MemoryContextAlloc(scope.caller_context, sizeof(int64) * Max(*n, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		result[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	tenancy_scope_leave(&scope);
	return result;
}

/*
 * Tenant rows ordered by id, with what its catalog summary says each lacks
 * to be at "goal" (-1: every registered migration): the registered
 * versions up to the goal it does not hold, and the versions it holds
 * above the goal.  At most "limit" rows (0: all) after the id "after"
 * (NULL: from the first), so that a fleet run can take the catalog a
 * window at a time; only the tenants "ids" names (a text[], NULL: all).
 * A List of TenantPlan; no tenant is connected to.
 */
List *
tenancy_catalog_plan(int64 goal, const char *after, int limit, ArrayType *ids)
{
	PrivilegeScope scope;
	Oid			types[4] = {INT8OID, TEXTOID, INT4OID, TEXTARRAYOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	List	   *result = NIL;
	TenantPlan *plans;
	uint64		i;

	values[0] = Int64GetDatum(goal);
	values[1] = after ? CStringGetTextDatum(after) : (Datum) 0;
	if (after == NULL)
		nulls[1] = 'n';
	values[2] = Int32GetDatum(limit);
	if (limit <= 0)
		nulls[2] = 'n';
	values[3] = PointerGetDatum(ids);
	if (ids == NULL)
		nulls[3] = 'n';
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT " TENANCY_TENANT_COLUMNS ", "
					   "(SELECT pg_catalog.count(*) FROM tenancy.migration m "
					   " WHERE ($1 OPERATOR(pg_catalog.<) 0 OR m.version OPERATOR(pg_catalog.<=) $1) "
					   " AND m.version OPERATOR(pg_catalog.<>) ALL (t.applied_versions)), "
					   "(SELECT pg_catalog.count(*) FROM pg_catalog.unnest(t.applied_versions) v "
					   " WHERE $1 OPERATOR(pg_catalog.>=) 0 AND v OPERATOR(pg_catalog.>) $1) "
					   "FROM tenancy.tenant t WHERE ($2 IS NULL OR t.id OPERATOR(pg_catalog.>) $2) "
					   "AND ($4 IS NULL OR t.id OPERATOR(pg_catalog.=) ANY ($4)) "
					   "ORDER BY id LIMIT $3",
					   4, types, values, nulls, false, SPI_OK_SELECT);
	/* one array: no per-row allocation overhead */
	plans = MemoryContextAllocZero(scope.caller_context, sizeof(TenantPlan) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		TenantPlan *p = &plans[i];
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old;
		bool		isnull;

		tenancy_catalog_record_from_tuple(tup, desc, &p->rec);
		p->missing = DatumGetInt64(SPI_getbinval(tup, desc, 9, &isnull));
		p->excess = DatumGetInt64(SPI_getbinval(tup, desc, 10, &isnull));
		old = MemoryContextSwitchTo(scope.caller_context);
		result = lappend(result, p);
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return result;
}

/* How many tenants the catalog holds (only the ready ones if "ready"). */
int
tenancy_catalog_count_tenants(bool ready)
{
	PrivilegeScope scope;
	bool		isnull;
	int			n;

	catalog_enter(&scope);
	tenancy_scope_exec(ready ?
					   "SELECT pg_catalog.count(*)::pg_catalog.int4 FROM tenancy.tenant WHERE state OPERATOR(pg_catalog.=) 'ready'" :
					   "SELECT pg_catalog.count(*)::pg_catalog.int4 FROM tenancy.tenant",
					   0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	tenancy_scope_leave(&scope);
	return n;
}

/*
 * A fingerprint of the registered migrations: MD5 of their versions and
 * checksums in order.  Equal fingerprints mean the same migrations.  Sets
 * *versions to those versions (an array literal), read with it.  Results
 * in the caller's context.
 */
char *
tenancy_catalog_migration_fingerprint(char **versions)
{
	PrivilegeScope scope;
	char	   *result;

	catalog_enter(&scope);
	tenancy_scope_exec("SELECT pg_catalog.md5(COALESCE(pg_catalog.string_agg(version::text OPERATOR(pg_catalog.||) ':' "
					   "OPERATOR(pg_catalog.||) checksum, ',' ORDER BY version), '')), "
					   "COALESCE(pg_catalog.array_agg(version ORDER BY version), '{}')::pg_catalog.text "
					   "FROM tenancy.migration",
					   0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	result = MemoryContextStrdup(scope.caller_context,
								 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	*versions = MemoryContextStrdup(scope.caller_context,
									SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
	tenancy_scope_leave(&scope);
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
	PrivilegeScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char	   *result = NULL;

	values[0] = CStringGetTextDatum(server ? server : "");
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT fingerprint, applied_version FROM tenancy.template "
					   "WHERE COALESCE(server, ''::pg_catalog.name) OPERATOR(pg_catalog.=) $1::pg_catalog.name",
					   1, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bool		isnull;

		result = MemoryContextStrdup(scope.caller_context,
									 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		*version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	tenancy_scope_leave(&scope);
	return result;
}

/* Records the template of "server" and what it was built from. */
void
tenancy_catalog_set_template(const char *server, const char *dbname, int64 version,
							 const char *fingerprint)
{
	PrivilegeScope scope;
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
	tenancy_scope_exec("INSERT INTO tenancy.template (server, database_name, applied_version, fingerprint) "
					   "VALUES ($1::pg_catalog.name, $2, $3, $4) "
					   "ON CONFLICT ((COALESCE(server, ''::pg_catalog.name))) DO UPDATE "
					   "SET database_name = excluded.database_name, applied_version = excluded.applied_version, "
					   "fingerprint = excluded.fingerprint, updated_at = pg_catalog.now()",
					   4, types, values, nulls, false, SPI_OK_INSERT);
	tenancy_scope_leave(&scope);
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
	PrivilegeScope scope;

	*role = InvalidOid;
	*server = NULL;
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT service_role::pg_catalog.oid, loopback_server FROM tenancy.config",
					   0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		bool		isnull;
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		*role = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (v != NULL)
			*server = MemoryContextStrdup(scope.caller_context, v);
	}
	tenancy_scope_leave(&scope);
}

/*
 * 55000 when the installed catalog is older than this library (the new
 * library was installed, ALTER EXTENSION tenancy UPDATE not yet run): its
 * tables lack the columns the library reads and writes.
 */
void
tenancy_catalog_check_version(void)
{
	PrivilegeScope scope;
	char	   *version = NULL;

	catalog_enter(&scope);
	tenancy_scope_exec("SELECT extversion FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'tenancy'",
					   0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	if (SPI_processed > 0)
		version = MemoryContextStrdup(scope.caller_context,
									  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	tenancy_scope_leave(&scope);
	if (version != NULL && strcmp(version, "0.1.0") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tenancy's catalog is at version %s, older than its library", version),
				 errhint("Run ALTER EXTENSION tenancy UPDATE in this database.")));
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
 * The session budgets of the registered servers, for a fleet run: a List
 * of ServerBudget, the loopback server's under NULL (this cluster).
 */
List *
tenancy_catalog_budgets(void)
{
	PrivilegeScope scope;
	char	   *loopback = tenancy_catalog_loopback_server();
	List	   *budgets = NIL;
	uint64		i;

	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	tenancy_scope_exec("SELECT server::pg_catalog.text, max_sessions FROM tenancy.server", 0, NULL, NULL,
					   NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);
		ServerBudget *b = palloc0(sizeof(ServerBudget));
		bool		isnull;
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		b->server = (loopback != NULL && strcmp(name, loopback) == 0) ? NULL : name;
		b->budget.max = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		budgets = lappend(budgets, b);
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return budgets;
}

/* The budget of "server" (NULL: this cluster) in "budgets", or NULL. */
FleetBudget *
tenancy_catalog_budget(List *budgets, const char *server)
{
	ListCell   *lc;

	if (server != NULL && server[0] == '\0')
		server = NULL;
	foreach(lc, budgets)
	{
		ServerBudget *b = (ServerBudget *) lfirst(lc);

		if (b->server == NULL ? server == NULL : (server != NULL && strcmp(b->server, server) == 0))
			return &b->budget;
	}
	return NULL;
}

/*
 * Parameters $1 (server, NULL for this cluster) and $2 (fingerprint) of the
 * spare queries.
 */
static void
spare_args(const char *server, const char *fingerprint, Datum *values, char *nulls)
{
	values[0] = server ? CStringGetTextDatum(server) : (Datum) 0;
	nulls[0] = server ? ' ' : 'n';
	values[1] = CStringGetTextDatum(fingerprint);
	nulls[1] = ' ';
}

/*
 * Takes a ready spare of "server" (NULL: this cluster) with "fingerprint":
 * deletes its row in the caller's transaction (skipping rows another
 * transaction holds) and returns its database and versions.
 */
bool
tenancy_catalog_take_spare(const char *server, const char *fingerprint, char **dbname,
						   int64 *version, char **versions)
{
	PrivilegeScope scope;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2];
	bool		found;

	spare_args(server, fingerprint, values, nulls);
	catalog_enter(&scope);
	found = tenancy_scope_exec("DELETE FROM tenancy.spare WHERE database_name OPERATOR(pg_catalog.=) ("
							   "SELECT database_name FROM tenancy.spare WHERE ready "
							   "AND server IS NOT DISTINCT FROM $1::pg_catalog.name "
							   "AND fingerprint OPERATOR(pg_catalog.=) $2 "
							   "ORDER BY created_at, database_name LIMIT 1 FOR UPDATE SKIP LOCKED) "
							   "RETURNING database_name::pg_catalog.text, applied_version, applied_versions::pg_catalog.text",
							   2, types, values, nulls, false, SPI_OK_DELETE_RETURNING) > 0;
	if (found)
	{
		bool		isnull;

		*dbname = MemoryContextStrdup(scope.caller_context,
									  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
		*version = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		*versions = MemoryContextStrdup(scope.caller_context,
										SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3));
	}
	tenancy_scope_leave(&scope);
	return found;
}

/* Spares of "server" that hold other migrations than "fingerprint" (locked). */
List *
tenancy_catalog_stale_spares(const char *server, const char *fingerprint)
{
	PrivilegeScope scope;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2];
	List	   *names = NIL;
	uint64		i;

	spare_args(server, fingerprint, values, nulls);
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT database_name::pg_catalog.text FROM tenancy.spare "
					   "WHERE server IS NOT DISTINCT FROM $1::pg_catalog.name AND ready "
					   "AND fingerprint OPERATOR(pg_catalog.<>) $2 ORDER BY 1 FOR UPDATE SKIP LOCKED",
					   2, types, values, nulls, false, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(scope.caller_context);

		names = lappend(names, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return names;
}

/* How many spares of "server" hold "fingerprint" (ready or being made). */
int
tenancy_catalog_count_spares(const char *server, const char *fingerprint)
{
	PrivilegeScope scope;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2];
	bool		isnull;
	int			n;

	spare_args(server, fingerprint, values, nulls);
	catalog_enter(&scope);
	tenancy_scope_exec("SELECT pg_catalog.count(*)::pg_catalog.int4 FROM tenancy.spare "
					   "WHERE server IS NOT DISTINCT FROM $1::pg_catalog.name "
					   "AND fingerprint OPERATOR(pg_catalog.=) $2",
					   2, types, values, nulls, false, SPI_OK_SELECT);
	n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	tenancy_scope_leave(&scope);
	return n;
}

/* Records a spare about to be created (not ready), on its own. */
void
tenancy_catalog_record_spare(const char *server, const char *dbname, const char *fingerprint,
							 int64 version, const char *versions)
{
	char		v[32];
	const char *params[5];

	snprintf(v, sizeof(v), INT64_FORMAT, version);
	params[0] = dbname;
	params[1] = server;
	params[2] = fingerprint;
	params[3] = v;
	params[4] = versions ? versions : "{}";
	autonomous("INSERT INTO tenancy.spare (database_name, server, fingerprint, applied_version, applied_versions) "
			   "VALUES ($1::pg_catalog.name, $2::pg_catalog.name, $3, $4::pg_catalog.int8, $5::pg_catalog.int8[])",
			   5, params);
}

/* Marks a spare ready, on its own. */
void
tenancy_catalog_spare_ready(const char *dbname)
{
	const char *params[1] = {dbname};

	autonomous("UPDATE tenancy.spare SET ready = true WHERE database_name OPERATOR(pg_catalog.=) $1::pg_catalog.name",
			   1, params);
}

#define FORGET_SPARE_SQL \
	"DELETE FROM tenancy.spare WHERE database_name OPERATOR(pg_catalog.=) $1::pg_catalog.name"

/*
 * Forgets a spare: on its own, or in the caller's transaction (which holds its
 * row).
 */
void
tenancy_catalog_forget_spare(const char *dbname, bool autonomous_write)
{
	const char *params[1] = {dbname};
	PrivilegeScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (autonomous_write)
	{
		autonomous(FORGET_SPARE_SQL, 1, params);
		return;
	}
	values[0] = CStringGetTextDatum(dbname);
	catalog_enter(&scope);
	tenancy_scope_exec(FORGET_SPARE_SQL, 1, types, values, NULL, false, SPI_OK_DELETE);
	tenancy_scope_leave(&scope);
}

/* Every spare (SpareRecord *), for reconcile(). */
List *
tenancy_catalog_spares(void)
{
	PrivilegeScope scope;
	List	   *spares = NIL;
	uint64		i;

	catalog_enter(&scope);
	tenancy_scope_exec("SELECT database_name::pg_catalog.text, COALESCE(server::pg_catalog.text, ''), ready "
					   "FROM tenancy.spare ORDER BY 1", 0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		SpareRecord *s = MemoryContextAllocZero(scope.caller_context, sizeof(SpareRecord));
		bool		isnull;
		MemoryContext old;

		strlcpy(s->dbname, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1), NAMEDATALEN);
		strlcpy(s->server, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2), NAMEDATALEN);
		s->ready = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull));
		old = MemoryContextSwitchTo(scope.caller_context);
		spares = lappend(spares, s);
		MemoryContextSwitchTo(old);
	}
	tenancy_scope_leave(&scope);
	return spares;
}

/*
 * Where provision() without a server puts a new database tenant: NULL (this
 * cluster) when no server is registered; else the accepting registered
 * server with the fewest database tenants per unit of weight (tenants
 * being provisioned, which have a cleanup record, count; ties: by name),
 * NULL if that is the loopback server.  55000 when servers are
 * registered but none accepts tenants.
 */
char *
tenancy_catalog_place_tenant(List *exclude)
{
	PrivilegeScope scope;
	char	   *loopback = tenancy_catalog_loopback_server();
	Oid			types[2] = {TEXTOID, TEXTARRAYOID};
	Datum		values[2];
	bool		registered;
	ListCell   *lc;
	char	   *server = NULL;

	/* the servers to pass over, as a text[] */
	{
		Datum	   *names = palloc(sizeof(Datum) * Max(list_length(exclude), 1));

		foreach(lc, exclude)
			names[foreach_current_index(lc)] = CStringGetTextDatum((const char *) lfirst(lc));
		values[1] = PointerGetDatum(exclude == NIL ? construct_empty_array(TEXTOID) :
									construct_array(names, list_length(exclude), TEXTOID, -1, false,
													TYPALIGN_INT));
	}
	values[0] = CStringGetTextDatum(loopback ? loopback : "");
	tenancy_scope_enter(&scope, tenancy_catalog_owner(), SCOPE_PIN_PATH);
	registered = tenancy_scope_exec("SELECT FROM tenancy.server LIMIT 1", 0, NULL, NULL, NULL, true,
									SPI_OK_SELECT) > 0;
	if (registered &&
		tenancy_scope_exec("SELECT s.server::pg_catalog.text FROM tenancy.server s "
						   "WHERE s.accepting AND s.server::pg_catalog.text OPERATOR(pg_catalog.<>) ALL ($2) ORDER BY "
						   "((SELECT pg_catalog.count(*) FROM tenancy.tenant t "
						   "WHERE t.isolation OPERATOR(pg_catalog.=) 'database' "
						   "AND COALESCE(t.server, $1::pg_catalog.name) OPERATOR(pg_catalog.=) s.server) "
						   "OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM tenancy.pending_cleanup c "
						   "WHERE c.isolation OPERATOR(pg_catalog.=) 'database' "
						   "AND COALESCE(c.server, $1::pg_catalog.name) OPERATOR(pg_catalog.=) s.server))::pg_catalog.float8 "
						   "OPERATOR(pg_catalog./) s.weight, s.server LIMIT 1",
						   2, types, values, NULL, false, SPI_OK_SELECT) > 0)	/* a new snapshot:
																				 * cleanup rows just
																				 * committed count */
		server = MemoryContextStrdup(scope.caller_context,
									 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	tenancy_scope_leave(&scope);
	if (registered && server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no registered server accepts new tenants"),
				 errdetail("Every server in tenancy.server has been drained%s.",
						   exclude != NIL ? ", or did not answer in this run" : ""),
				 errhint("Register one with tenancy.add_server(), or pass server => ... to provision().")));
	if (server != NULL && loopback != NULL && strcmp(server, loopback) == 0)
		return NULL;
	return server;
}

/*
 * Tells the remote layer who remote work runs as: the configured service role
 * through the loopback server, or (unconfigured) the calling superuser.
 * Called at the start of every operation that does remote work.
 */
void
tenancy_catalog_apply_config(void)
{
	Oid			role;
	char	   *server;

	tenancy_catalog_check_version();
	read_config(&role, &server);
	tenancy_conninfo_set_identity(role, server);
}


#define SET_STATE_SQL \
	"UPDATE tenancy.tenant SET state = $2, last_error = $3, last_sqlstate = NULL, updated_at = pg_catalog.now() " \
	"WHERE id OPERATOR(pg_catalog.=) $1"

/*
 * Sets a tenant's state and last_error (NULL clears it): in the caller's
 * transaction, or, with autonomous, committed on its own at once.
 */
void
tenancy_catalog_set_state(const char *id, TenantState state, const char *last_error,
						  bool autonomous_write)
{
	PrivilegeScope scope;
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = "   ";

	if (autonomous_write)
	{
		const char *params[3] = {id, tenancy_state_name(state), last_error};

		autonomous(SET_STATE_SQL, 3, params);
		return;
	}
	values[0] = CStringGetTextDatum(id);
	values[1] = CStringGetTextDatum(tenancy_state_name(state));
	values[2] = last_error ? CStringGetTextDatum(last_error) : (Datum) 0;
	if (last_error == NULL)
		nulls[2] = 'n';
	catalog_enter(&scope);
	tenancy_scope_exec(SET_STATE_SQL, 3, types, values, nulls, false, SPI_OK_UPDATE);
	tenancy_scope_leave(&scope);
}

#define DELETE_TENANT_SQL \
	"WITH p AS (DELETE FROM tenancy.migration_progress WHERE tenant_id OPERATOR(pg_catalog.=) $1) " \
	"DELETE FROM tenancy.tenant WHERE id OPERATOR(pg_catalog.=) $1"

/*
 * Deletes a tenant row (and, through the foreign key, its members) and its
 * migrate_all() progress row: in the caller's transaction, or committed
 * on its own.
 */
void
tenancy_catalog_delete(const char *id, bool autonomous_write)
{
	PrivilegeScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (autonomous_write)
	{
		const char *params[1] = {id};

		autonomous(DELETE_TENANT_SQL, 1, params);
		return;
	}
	values[0] = CStringGetTextDatum(id);
	catalog_enter(&scope);
	tenancy_scope_exec(DELETE_TENANT_SQL, 1, types, values, NULL, false, SPI_OK_DELETE);
	tenancy_scope_leave(&scope);
}

/*
 * Records a provisioning operation's cleanup row, committed on its own
 * before anything is created, so that whatever happens next (a crash, a
 * kill, a rollback of the caller) leaves a record of what may exist.
 */
void
tenancy_catalog_record_cleanup(const CleanupRecord *c)
{
	char		opid[32];
	const char *params[6];

	snprintf(opid, sizeof(opid), INT64_FORMAT, c->operation_id);
	params[0] = opid;
	params[1] = c->tenant;
	params[2] = c->server[0] ? c->server : NULL;
	params[3] = c->temporary_name;
	params[4] = c->final_name;
	params[5] = c->isolation == TENANT_ISOLATION_SCHEMA ? "schema" : "database";
	autonomous("INSERT INTO tenancy.pending_cleanup "
			   "(operation_id, tenant_id, server, database_name, final_name, isolation) "
			   "VALUES ($1::pg_catalog.int8, $2, $3::pg_catalog.name, $4, $5, $6)",
			   6, params);
}

#define FORGET_CLEANUP_SQL \
	"DELETE FROM tenancy.pending_cleanup WHERE operation_id OPERATOR(pg_catalog.=) $1::pg_catalog.int8"

/* Deletes a cleanup record: in the caller's transaction, or on its own. */
void
tenancy_catalog_forget_cleanup(int64 operation_id, bool autonomous_write)
{
	PrivilegeScope scope;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		opid[32];

	snprintf(opid, sizeof(opid), INT64_FORMAT, operation_id);
	if (autonomous_write)
	{
		const char *params[1] = {opid};

		autonomous(FORGET_CLEANUP_SQL, 1, params);
		return;
	}
	values[0] = CStringGetTextDatum(opid);
	catalog_enter(&scope);
	tenancy_scope_exec(FORGET_CLEANUP_SQL, 1, types, values, NULL, false, SPI_OK_DELETE);
	tenancy_scope_leave(&scope);
}

/*
 * Opens the session a fleet run writes its progress rows through (each
 * commits at once, so other sessions watch the run).  Closed with
 * tenancy_remote_close(), or at the end of the transaction.
 */
RemoteSession *
tenancy_catalog_writer_open(void)
{
	return tenancy_remote_open(CONNINFO_SERVICE, NULL, NULL, "tenancy/migrate_all");
}

/*
 * Writes "n" tenants' rows of tenancy.migration_progress (status "running"
 * as a tenant starts, its outcome when it ends) in one statement on the
 * writer session.  A failure is raised.
 */
void
tenancy_catalog_write_progress(RemoteSession *writer, int n, const ProgressRow *rows)
{
	StringInfoData sql;
	const char **params = palloc(sizeof(char *) * n * 7);
	char		pid[16];
	RemoteResult r;
	int			i;

	if (n == 0)
		return;
	snprintf(pid, sizeof(pid), "%d", MyProcPid);
	initStringInfo(&sql);
	appendStringInfoString(&sql, "INSERT INTO tenancy.migration_progress AS p "
						   "(tenant_id, status, from_version, to_version, error, sqlstate, backend_pid) VALUES ");
	for (i = 0; i < n; i++)
	{
		int			k = i * 7;

		appendStringInfo(&sql, "%s($%d, $%d, $%d::pg_catalog.int8, $%d::pg_catalog.int8, $%d, $%d, $%d::pg_catalog.int4)",
						 i > 0 ? ", " : "", k + 1, k + 2, k + 3, k + 4, k + 5, k + 6, k + 7);
		params[k] = rows[i].tenant;
		params[k + 1] = rows[i].status;
		params[k + 2] = psprintf(INT64_FORMAT, rows[i].from_version);
		params[k + 3] = psprintf(INT64_FORMAT, rows[i].to_version);
		params[k + 4] = rows[i].error;
		params[k + 5] = rows[i].sqlstate;
		params[k + 6] = pid;
	}
	appendStringInfoString(&sql, " ON CONFLICT (tenant_id) DO UPDATE SET status = excluded.status, "
						   "from_version = excluded.from_version, to_version = excluded.to_version, "
						   "error = excluded.error, sqlstate = excluded.sqlstate, "
						   "backend_pid = excluded.backend_pid, updated_at = pg_catalog.now()");
	tenancy_remote_call(writer, sql.data, n * 7, params, false, &r);
	if (r.error != NULL)
		tenancy_remote_raise(r.error);
}

/*
 * Records fleet runs' outcomes in tenants' summaries, in the caller's
 * transaction: for each tenant, the version its ledger reached and the
 * error (text and SQLSTATE) if it failed, or none.  One statement for
 * many tenants, so the statement trigger (and the cache invalidation it
 * sends) fires once.
 */
void
tenancy_catalog_record_outcomes(int n, const ProgressRow *rows)
{
	PrivilegeScope scope;
	Oid			types[5] = {TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum		values[5];
	Datum	   *applied = palloc(sizeof(Datum) * n);
	bool	   *applied_nulls = palloc0(sizeof(bool) * n);
	Datum	   *ids = palloc(sizeof(Datum) * n);
	Datum	   *versions = palloc(sizeof(Datum) * n);
	Datum	   *sqlstates = palloc(sizeof(Datum) * n);
	Datum	   *errors = palloc(sizeof(Datum) * n);
	bool	   *no_nulls = palloc0(sizeof(bool) * n);
	bool	   *sqlstate_nulls = palloc0(sizeof(bool) * n);
	bool	   *error_nulls = palloc0(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

	if (n == 0)
		return;
	for (i = 0; i < n; i++)
	{
		ids[i] = CStringGetTextDatum(rows[i].tenant);
		versions[i] = Int64GetDatum(rows[i].to_version);
		sqlstate_nulls[i] = rows[i].sqlstate == NULL;
		sqlstates[i] = rows[i].sqlstate ? CStringGetTextDatum(rows[i].sqlstate) : (Datum) 0;
		error_nulls[i] = rows[i].error == NULL;
		errors[i] = rows[i].error ? CStringGetTextDatum(rows[i].error) : (Datum) 0;
		applied_nulls[i] = rows[i].applied == NULL;
		applied[i] = rows[i].applied ? CStringGetTextDatum(rows[i].applied) : (Datum) 0;
	}
	values[0] = PointerGetDatum(construct_md_array(ids, no_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_md_array(versions, no_nulls, 1, dims, lbs, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = PointerGetDatum(construct_md_array(sqlstates, sqlstate_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_md_array(errors, error_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	values[4] = PointerGetDatum(construct_md_array(applied, applied_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
	catalog_enter(&scope);
	tenancy_scope_exec("UPDATE tenancy.tenant t SET applied_version = v.version, "
					   "applied_versions = COALESCE(v.applied::pg_catalog.int8[], t.applied_versions), "
					   "last_sqlstate = v.sqlstate, last_error = v.error, updated_at = pg_catalog.now() "
					   "FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
					   "pg_catalog.unnest($4), pg_catalog.unnest($5)) "
					   "AS v(id, version, sqlstate, error, applied) "
					   "WHERE t.id OPERATOR(pg_catalog.=) v.id",
					   5, types, values, NULL, false, SPI_OK_UPDATE);
	tenancy_scope_leave(&scope);
}

/*
 * Creates the temporary schema of provisioning operation "operation_id"
 * (a schema tenant), committed on its own, through
 * tenancy.create_tenant_schema() on a session of its own: the service
 * role may call it, though it may not create schemas in the admin
 * database itself.
 */
void
tenancy_catalog_create_schema(int64 operation_id)
{
	char		opid[32];
	const char *params[1] = {opid};

	snprintf(opid, sizeof(opid), INT64_FORMAT, operation_id);
	autonomous("SELECT tenancy.create_tenant_schema($1::pg_catalog.int8)", 1, params);
}

/* The configured service role, or InvalidOid when tenancy is not configured. */
Oid
tenancy_catalog_service_role(void)
{
	Oid			role;
	char	   *server;

	read_config(&role, &server);
	return role;
}

/* Reads the cleanup record of "operation_id"; false if there is none. */
bool
tenancy_catalog_cleanup_record(int64 operation_id, CleanupRecord *out)
{
	ListCell   *lc;

	foreach(lc, tenancy_catalog_cleanup_records(NULL))
	{
		CleanupRecord *c = (CleanupRecord *) lfirst(lc);

		if (c->operation_id == operation_id)
		{
			*out = *c;
			return true;
		}
	}
	return false;
}

/* Does any server ask for a warm pool? */
bool
tenancy_catalog_pools_wanted(void)
{
	PrivilegeScope scope;
	bool		wanted;

	catalog_enter(&scope);
	tenancy_scope_exec("SELECT FROM tenancy.server WHERE warm_pool > 0 LIMIT 1",
					   0, NULL, NULL, NULL, true, SPI_OK_SELECT);
	wanted = SPI_processed > 0;
	tenancy_scope_leave(&scope);
	return wanted;
}
