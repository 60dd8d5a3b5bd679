/*-------------------------------------------------------------------------
 *
 * tenant_id.c
 *	  The syntax of a tenant id: canonical lower-case ASCII
 *	  (TENANCY_ID_PATTERN), without "--", at most NAMEDATALEN - 1 bytes.
 *
 * The rule lives on its own because both the tenancy.current check hook
 * (guc.c) and every validation of a tenant argument (names.c) apply it.
 * It never throws and never allocates, so check hooks can call it.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/tenant_id.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "tenant_id.h"

/*
 * Returns true if "name" is a syntactically valid tenant id.  Otherwise
 * sets *why to a complete sentence saying what is wrong.  The characters
 * are checked before the length, so that a name that could never be an id
 * (non-ASCII, say) is reported as such however long it is.  Never throws,
 * so GUC check hooks can use it.
 */
bool
tenancy_name_syntax_ok(const char *name, const char **why)
{
	if (!tenancy_name_chars_ok(name, why))
		return false;
	if (strlen(name) > NAMEDATALEN - 1)
	{
		*why = "A tenant id must be at most 63 bytes long.";
		return false;
	}
	return true;
}

/* The same, but for the length. */
bool
tenancy_name_chars_ok(const char *name, const char **why)
{
	const char *p;

	if (name[0] == '\0')
	{
		*why = "A tenant id must not be empty.";
		return false;
	}
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
	{
		*why = "A tenant id must start with a lower-case ASCII letter or a digit.";
		return false;
	}
	for (p = name; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			  *p == '_' || *p == '-'))
		{
			*why = "A tenant id may contain only lower-case ASCII letters, digits, underscores and hyphens.";
			return false;
		}
	}
	/* "--" starts an SQL comment: refused as defence in depth */
	if (strstr(name, "--") != NULL)
	{
		*why = "A tenant id must not contain two hyphens in a row.";
		return false;
	}
	return true;
}
