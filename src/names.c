/*-------------------------------------------------------------------------
 *
 * names.c
 *	  Tenant ids and the names derived from them.
 *
 * Every tenant id is validated here before any SQL is built or any
 * connection is opened.  Ids are canonical lower-case ASCII
 * (TENANCY_ID_PATTERN): nothing is ever case-folded or truncated.  The
 * syntax check is usable from GUC check hooks (it does not ereport); the
 * full validation also checks the length of the derived database name and
 * reserved names.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/names.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "guc.h"
#include "names.h"
#include "tenant_id.h"

static const char *const state_names[] = {
	[TENANT_STATE_PROVISIONING] = "provisioning",
	[TENANT_STATE_READY] = "ready",
	[TENANT_STATE_SUSPENDED] = "suspended",
	[TENANT_STATE_FAILED] = "failed",
	[TENANT_STATE_DROPPING] = "dropping",
};

/* Ids that are refused even though their syntax is valid. */
static const char *const reserved_ids[] = {
	"postgres", "template0", "template1", "public", "tenancy",
	"information_schema", "template", NULL
};

/*
 * A user-supplied name for a message, cut after 63 bytes (on a character
 * boundary: a cut character would make the message fail to convert to
 * the client's encoding) so that a megabyte of input does not become a
 * megabyte of error text.
 */
static char *
name_for_message(const char *name)
{
	int			len = strlen(name);
	int			clip = pg_mbcliplen(name, len, NAMEDATALEN - 1);

	if (clip == len)
		return pstrdup(name);
	return psprintf("%s...", pnstrdup(name, clip));
}

/*
 * Validates a tenant id for use by an operation, raising:
 *	 42602 invalid_name for bad syntax (checked first, whatever the length),
 *	 42622 name_too_long when prefix + id exceeds 63 bytes,
 *	 42939 reserved_name for reserved ids and derived names.
 * The caller handles NULL (22004) before calling.
 */
void
tenancy_name_validate(const char *name)
{
	const char *why;
	size_t		len = strlen(name);
	size_t		prefix_len = strlen(tenancy_database_prefix);
	size_t		max_len = NAMEDATALEN - 1 - prefix_len;
	int			i;

	if (!tenancy_name_chars_ok(name, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid tenant name \"%s\"", name_for_message(name)),
				 errdetail("%s", why),
				 errhint("Tenant ids match %s, without two hyphens in a row.", TENANCY_ID_PATTERN)));
	if (len > max_len)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("tenant name \"%s\" is too long", name_for_message(name)),
				 errdetail("The name is %zu bytes; with tenancy.database_prefix \"%s\" the maximum is %zu bytes.",
						   len, tenancy_database_prefix, max_len)));

	for (i = 0; reserved_ids[i] != NULL; i++)
	{
		if (strcmp(name, reserved_ids[i]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_RESERVED_NAME),
					 errmsg("tenant name \"%s\" is reserved", name)));
	}
	if (strncmp(name, "pg_", 3) == 0 || strncmp(name, "tmp_", 4) == 0 ||
		strncmp(name, "pg-", 3) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("tenant name \"%s\" is reserved", name),
				 errdetail("Names starting with \"pg_\", \"pg-\" or \"tmp_\" are reserved.")));
}

/*
 * The database name of a database tenant: tenancy.database_prefix followed
 * by the id.  The caller has validated the id, so the result fits in
 * NAMEDATALEN.  Also refuses derived names that would collide with a
 * system database, the template, or the admin database (42939).  Result in
 * CurrentMemoryContext.
 */
char *
tenancy_name_database(const char *tenant)
{
	char	   *db = psprintf("%s%s", tenancy_database_prefix, tenant);
	const char *admin = get_database_name(MyDatabaseId);
	bool		managed;

	Assert(strlen(db) < NAMEDATALEN);
	if (strcmp(db, "postgres") == 0 || strcmp(db, "template0") == 0 ||
		strcmp(db, "template1") == 0 || strcmp(db, tenancy_name_template(&managed)) == 0 ||
		(admin != NULL && strcmp(db, admin) == 0) || strncmp(db, "pg_", 3) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("tenant name \"%s\" is reserved", tenant),
				 errdetail("Its database name \"%s\" is a system, template or admin database.", db)));
	return db;
}

/*
 * The schema name of a schema tenant: tenancy.database_prefix followed by
 * the id, like a database tenant's database name.  Refuses names that
 * would collide with a schema PostgreSQL or tenancy itself uses (42939).
 * Result in CurrentMemoryContext.
 */
char *
tenancy_name_schema(const char *tenant)
{
	char	   *nsp = psprintf("%s%s", tenancy_database_prefix, tenant);

	Assert(strlen(nsp) < NAMEDATALEN);
	if (strcmp(nsp, "public") == 0 || strcmp(nsp, "tenancy") == 0 ||
		strcmp(nsp, "information_schema") == 0 || strncmp(nsp, "pg_", 3) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_RESERVED_NAME),
				 errmsg("tenant name \"%s\" is reserved", tenant),
				 errdetail("Its schema name \"%s\" is a system or tenancy schema.", nsp)));
	return nsp;
}

/*
 * The template new tenant databases are copied from: the one named by
 * tenancy.template_database, or, when that is empty (the default),
 * tenancy's own, tenancy.database_prefix followed by "template", which
 * tenancy keeps at the latest migration.  Result in CurrentMemoryContext.
 */
char *
tenancy_name_template(bool *managed)
{
	*managed = (tenancy_template_database[0] == '\0');
	if (*managed)
		return psprintf("%stemplate", tenancy_database_prefix);
	return pstrdup(tenancy_template_database);
}

/* Name of a state, as stored in the catalog. */
const char *
tenancy_state_name(TenantState state)
{
	return state_names[state];
}

/* Parses a state name from the catalog; unknown names cannot happen. */
TenantState
tenancy_state_from_name(const char *name)
{
	size_t		i;

	for (i = 0; i < lengthof(state_names); i++)
		if (strcmp(state_names[i], name) == 0)
			return (TenantState) i;
	elog(ERROR, "unrecognized tenant state \"%s\"", name);
	return TENANT_STATE_FAILED; /* keep compiler quiet */
}

/*
 * The temporary name of what provisioning operation "operation_id" creates
 * (database or schema) before it is renamed into place:
 * tenancy.database_prefix, "tmp_", the id.  Tenant ids cannot start with
 * "tmp_", so it never collides with a tenant's name.
 */
char *
tenancy_name_temporary(int64 operation_id)
{
	return psprintf("%stmp_" INT64_FORMAT, tenancy_database_prefix, operation_id);
}

/*
 * Reads tenant name argument "argno" of a SQL-callable function: NULL is
 * 22004, then full validation (tenancy_name_validate).
 */
char *
tenancy_name_argument(FunctionCallInfo fcinfo, int argno)
{
	char	   *tenant;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant name must not be null")));
	tenant = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	tenancy_name_validate(tenant);
	return tenant;
}
