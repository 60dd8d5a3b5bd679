/*-------------------------------------------------------------------------
 *
 * locks.h
 *	  tenancy's local locks: per tenant, per template, for reconcile().
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/locks.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_LOCKS_H
#define TENANCY_LOCKS_H

#include "tenancy.h"

extern void tenancy_lock_tenant(const char *id, bool nowait);
extern bool tenancy_try_lock_tenant(const char *id);
extern void tenancy_unlock_tenant(const char *id);
extern void tenancy_lock_template(const char *server, bool exclusive);
extern void tenancy_unlock_template(const char *server, bool exclusive);
extern void tenancy_lock_reconcile(void);

#endif							/* TENANCY_LOCKS_H */
