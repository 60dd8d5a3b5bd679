/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  The checks a migration's transaction runs, in the tenant, before the
 *	  migration's own SQL: statements that raise 42501 when the migration
 *	  could run code another role planted.
 *
 * Migrations run as the service role, the owner of every tenant object.
 * Two ways another role could make a migration run its code with the
 * service role's privileges:
 *
 *	  triggers     a trigger fires with the privileges of whoever runs the
 *	               statement: a member granted TRIGGER on a table could
 *	               attach its own function to it;
 *	  search_path  unqualified names resolve along the migration's path: a
 *	               role that can create objects in a schema on it could
 *	               plant a function or an operator that shadows the one
 *	               the migration means.
 *
 * The checks come in two stages, because a fresh tenant session pays for
 * parsing and planning every catalog join it is sent, executed or not:
 *
 *	  suspect  one boolean expression, cheap to plan (no view, no
 *	           formatting): could either check find anything?  True for
 *	           any enabled trigger in the tenant, and for a schema on the
 *	           path that is missing or that a role other than the one
 *	           migrations run as (or pg_database_owner) owns or may
 *	           CREATE in.
 *	  detail   only when the suspect expression is true: the checks
 *	           themselves, SQL expressions that yield the refusal's
 *	           message, or NULL (a superuser's schema, a SECURITY DEFINER
 *	           trigger function, a trigger of the service role's own).
 *
 * The engine selects them in the migration's transaction after the ledger
 * is locked, and refuses (42501) with tenancy_guard_refusal().  No
 * PL/pgSQL: loading it would cost every fresh tenant session more than
 * the migration itself.  Superusers are not counted (they can do anything
 * anyway), nor SECURITY DEFINER trigger functions (they run as their
 * owner).
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/varlena.h"

#include "guard.h"
#include "tenancy.h"

/* The schemas of a search_path value, as names. */
static List *
path_names(const char *path)
{
	char	   *copy = pstrdup(path);
	List	   *names;

	if (!SplitIdentifierString(copy, ',', &names))
		elog(ERROR, "invalid search_path \"%s\"", path);
	return names;
}

/* The path's schemas as a text[] literal's elements, or NULL for none. */
static char *
path_array(const char *path)
{
	List	   *names = path_names(path);
	ListCell   *lc;
	StringInfoData array;

	if (names == NIL)
		return NULL;
	initStringInfo(&array);
	foreach(lc, names)
		appendStringInfo(&array, "%s%s", foreach_current_index(lc) > 0 ? ", " : "",
						 quote_literal_cstr((char *) lfirst(lc)));
	return array.data;
}

/*
 * Whether the detailed checks could find anything, for a migration of
 * "schema" (a schema tenant's, or NULL) under "path": a boolean SQL
 * expression, cheap to plan.  Errs on the side of true.
 *
 * Each schema of the path is one scalar subquery looked up by name, not a
 * join over the path's array: a fresh tenant session pays for planning
 * the join's array, lateral and outer-join machinery, about four times
 * what a migration's ALTER TABLE ... ADD COLUMN costs it
 * (test/bench/checks.sh counts both).  A missing schema is suspect (the
 * NULL COALESCE turns into true), and so is any owner or CREATE grantee
 * other than the role migrations run as and pg_database_owner.
 */
char *
tenancy_guard_expr_suspect(const char *schema, const char *path)
{
	const char *who = "ARRAY[" TENANCY_SQL_CURRENT_ROLE_OID ", "
	"pg_catalog.to_regrole('pg_database_owner')::pg_catalog.oid]";
	StringInfoData expr;
	ListCell   *lc;

	initStringInfo(&expr);
	appendStringInfo(&expr, "EXISTS (SELECT FROM pg_catalog.pg_trigger g%s WHERE NOT g.tgisinternal "
					 "AND g.tgenabled OPERATOR(pg_catalog.<>) 'D'%s)",
					 schema ? " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid "
					 "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace" : "",
					 schema ? psprintf(" AND n.nspname OPERATOR(pg_catalog.=) %s",
									   quote_literal_cstr(schema)) : "");
	foreach(lc, path_names(path))
	{
		const char *name = (const char *) lfirst(lc);

		if (strcmp(name, "pg_catalog") == 0 || strcmp(name, "pg_temp") == 0)
			continue;
		appendStringInfo(&expr, " OR COALESCE((SELECT n.nspowner OPERATOR(pg_catalog.<>) ALL (%s) "
						 "OR EXISTS (SELECT FROM pg_catalog.aclexplode(n.nspacl) a "
						 "WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE' "
						 "AND a.grantee OPERATOR(pg_catalog.<>) ALL (%s)) "
						 "FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) %s), true)",
						 who, who, quote_literal_cstr(name));
	}
	return expr.data;
}

/*
 * Whether an enabled trigger in the tenant (its schema, or its whole
 * database) would run a function owned by another role that is not a
 * superuser: an SQL expression, the refusal's message or NULL.  The join
 * runs only when the tenant has a trigger at all.
 */
char *
tenancy_guard_expr_triggers(const char *schema)
{
	return psprintf("CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_trigger WHERE NOT tgisinternal) THEN "
					"(SELECT pg_catalog.format('trigger %%I on %%s would run a function of role %%s as role %%s', "
					"g.tgname, pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' "
					"OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname), "
					"p.proowner::pg_catalog.regrole, CURRENT_USER) "
					"FROM pg_catalog.pg_trigger g "
					"JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid "
					"JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
					"JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) g.tgfoid "
					"JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) p.proowner "
					"WHERE NOT g.tgisinternal AND g.tgenabled OPERATOR(pg_catalog.<>) 'D' "
					"AND NOT p.prosecdef AND NOT r.rolsuper "
					"AND r.rolname OPERATOR(pg_catalog.<>) CURRENT_USER "
					"AND n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema']) %s "
					"LIMIT 1) END",
					schema ? psprintf("AND n.nspname OPERATOR(pg_catalog.=) %s", quote_literal_cstr(schema)) : "");
}

/*
 * Whether a role other than the one migrations run as can create objects
 * in a schema of "path" (a search_path value, as add_migration
 * canonicalises it), or, for a schema of it that does not exist, could
 * create that schema: an SQL expression, the refusal's message or NULL.
 * Read from the ACLs alone (no join over every role, which a fresh tenant
 * session would pay for in full): the schema's owner and every grantee of
 * CREATE on it (PUBLIC included), or for a missing schema the database's,
 * must be the role migrations run as.  A schema owned by
 * pg_database_owner counts as the database owner's.  Any other role found
 * there is refused, whoever its members are.
 */
char *
tenancy_guard_expr_path(const char *path)
{
	char	   *array = path_array(path);

	if (array == NULL)
		return "NULL::pg_catalog.text";
	return psprintf("(SELECT pg_catalog.format(CASE WHEN w.missing "
					"THEN 'role %%s could create schema %%I on the migration''s search_path' "
					"ELSE 'role %%s can create objects in schema %%I on the migration''s search_path' END, "
					"CASE WHEN w.who OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(w.who)) END, "
					"w.name) FROM ("
					"SELECT s.name, n.oid IS NULL AS missing, x.who "
					"FROM pg_catalog.unnest(ARRAY[%s]::pg_catalog.text[]) s(name) "
					"LEFT JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) s.name "
					"CROSS JOIN pg_catalog.pg_database d "
					"CROSS JOIN LATERAL (SELECT COALESCE(n.nspowner, d.datdba) AS who "
					"UNION ALL SELECT a.grantee FROM pg_catalog.aclexplode(CASE WHEN n.oid IS NULL "
					"THEN d.datacl ELSE n.nspacl END) a WHERE a.privilege_type OPERATOR(pg_catalog.=) 'CREATE') x "
					"WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() "
					"AND s.name OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'pg_temp'])) w "
					"WHERE w.who OPERATOR(pg_catalog.<>) ALL (ARRAY[(SELECT oid FROM pg_catalog.pg_roles "
					"WHERE rolname OPERATOR(pg_catalog.=) CURRENT_USER), "
					"'pg_database_owner'::pg_catalog.regrole::pg_catalog.oid]) "
					"AND NOT COALESCE((SELECT rolsuper FROM pg_catalog.pg_roles WHERE oid OPERATOR(pg_catalog.=) w.who), false) "
					"LIMIT 1)",
					array);
}

/*
 * After a schema tenant's migration (or down), before its ledger row:
 * whether the admin database now holds code that a role selecting a
 * schema tenant (a superuser, say) would resolve through search_path and
 * run with its own privileges: a function or procedure in a language other
 * than internal or C (the service role can create neither), an aggregate
 * or window function whatever its language (its support functions are
 * built-ins, but ts_rewrite(), say, runs a query its state holds), or an
 * operator
 * (it can shadow one of pg_catalog's by an exact type match), in any schema
 * the role migrations run as owns (every schema tenant's, not only the one
 * migrated: a migration can write into another tenant's schema) or owned
 * by that role wherever it is; not counting the system's schemas (which a
 * superuser acting as the service role owns), temporary schemas (gone with
 * their session) and extensions' members.  An SQL expression, the rest of
 * the refusal's message or NULL.
 */
char *
tenancy_guard_expr_code(void)
{
	const char *me = TENANCY_SQL_CURRENT_ROLE_OID;

	/*
	 * not the system's schemas (a superuser service role owns them), nor
	 * temporary ones
	 */
	const char *ours = "n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog', 'information_schema']) "
	"AND NOT n.nspname OPERATOR(pg_catalog.~) '^pg_(toast_)?temp_'";

	return psprintf("(SELECT pg_catalog.format('created %%s %%s in the schema of a schema tenant', x.kind, x.name) FROM ("
					"SELECT 'function' AS kind, p.oid::pg_catalog.regprocedure::pg_catalog.text AS name "
					"FROM pg_catalog.pg_proc p "
					"JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace "
					"JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang "
					"WHERE (n.nspowner OPERATOR(pg_catalog.=) %s OR p.proowner OPERATOR(pg_catalog.=) %s) "
					"AND (l.lanname OPERATOR(pg_catalog.<>) ALL (ARRAY['internal', 'c']) "
					"OR p.prokind OPERATOR(pg_catalog.=) ANY (ARRAY['a', 'w']::pg_catalog.\"char\"[])) AND %s "
					"AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass "
					"AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e') "
					"UNION ALL SELECT 'operator', o.oid::pg_catalog.regoperator::pg_catalog.text "
					"FROM pg_catalog.pg_operator o "
					"JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.oprnamespace "
					"WHERE (n.nspowner OPERATOR(pg_catalog.=) %s OR o.oprowner OPERATOR(pg_catalog.=) %s) AND %s "
					"AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass "
					"AND d.objid OPERATOR(pg_catalog.=) o.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')) x LIMIT 1)",
					me, me, ours, me, me, ours);
}

/* The refusal (42501) of a check that found "message". */
RemoteError *
tenancy_guard_refusal(GuardCheck check, const char *message)
{
	if (check == GUARD_CODE)
		return tenancy_remote_error("42501", message,
									"Code in a tenant's schema runs with the privileges of whoever selects the tenant and resolves it, a superuser included.",
									"Schema tenants hold tables, views, sequences, indexes and types; keep functions and operators in a schema only the service role's admins control, or use database tenants.");
	if (check == GUARD_TRIGGERS)
		return tenancy_remote_error("42501", message, NULL,
									"Migrations refuse to run other roles' trigger functions: drop the trigger, or create it in a migration; never grant TRIGGER on tenant tables.");
	return tenancy_remote_error("42501", message,
								"Unqualified names in the migration would resolve through it, to objects that role may plant.",
								"REVOKE CREATE from that role, or register the migration with a search_path of schemas only the service role can write.");
}
