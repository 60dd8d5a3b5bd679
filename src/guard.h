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

extern char *tenancy_guard_sql_triggers(const char *schema);
extern char *tenancy_guard_sql_path(const char *path);

#endif							/* TENANCY_GUARD_H */
