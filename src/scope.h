/*-------------------------------------------------------------------------
 *
 * scope.h
 *	  The one privilege scope: run statements as another role, restricted,
 *	  with pinned settings, through SPI.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/scope.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_SCOPE_H
#define TENANCY_SCOPE_H

#include "tenancy.h"

/* Flags of tenancy_scope_enter(). */
#define SCOPE_PIN_PATH		0x01	/* search_path = pg_catalog, pg_temp */
#define SCOPE_DDL		0x02	/* bounded lock_timeout, no NOTICEs */

/* Saved state while running inside a scope. */
typedef struct PrivilegeScope
{
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;		/* GUC nest level, 0 if nothing was set */
	MemoryContext caller_context;	/* where results for the caller go */
} PrivilegeScope;

extern void tenancy_scope_enter(PrivilegeScope *scope, Oid role, int flags);
extern void tenancy_scope_leave(PrivilegeScope *scope);
extern uint64 tenancy_scope_exec(const char *sql, int nargs, Oid *types, Datum *values,
								 const char *nulls, bool read_only, int expect);
extern int	tenancy_scope_pin_path(void);

#endif							/* TENANCY_SCOPE_H */
