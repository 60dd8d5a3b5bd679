/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  The checks a migration's transaction runs before the migration: no
 *	  foreign trigger, no schema on its search_path others can write.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_GUARD_H
#define TENANCY_GUARD_H

#include "remote.h"

/* The checks. */
typedef enum GuardCheck
{
	GUARD_TRIGGERS,
	GUARD_PATH,
	GUARD_CODE
} GuardCheck;

extern char *tenancy_guard_expr_suspect(const char *schema, const char *path);
extern char *tenancy_guard_expr_triggers(const char *schema);
extern char *tenancy_guard_expr_path(const char *path);
extern char *tenancy_guard_expr_code(void);
extern RemoteError *tenancy_guard_refusal(GuardCheck check, const char *message);

#endif							/* TENANCY_GUARD_H */
