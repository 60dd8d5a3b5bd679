/*-------------------------------------------------------------------------
 *
 * kept.h
 *	  Kept connections: the sessions routed SQL runs on, kept per (tenant,
 *	  role) across calls.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/kept.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_KEPT_H
#define TENANCY_KEPT_H

#include "remote.h"

extern void tenancy_kept_run(const TenantRecord *rec, const char *sql,
							 const StatementParams *params, bool want_rows, RemoteResult *r);
extern void tenancy_kept_sweep(void);
extern void tenancy_kept_forget(const char *tenant);

#endif							/* TENANCY_KEPT_H */
