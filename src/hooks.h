/*-------------------------------------------------------------------------
 *
 * hooks.h
 *	  The session hooks.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/hooks.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_HOOKS_H
#define TENANCY_HOOKS_H

extern void tenancy_hooks_init(void);

#endif							/* TENANCY_HOOKS_H */
