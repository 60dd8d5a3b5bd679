/*-------------------------------------------------------------------------
 *
 * try.h
 *	  Running a step in a subtransaction and catching its error.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/try.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_TRY_H
#define TENANCY_TRY_H

#include "postgres.h"

extern ErrorData *tenancy_try(void (*step) (void *), void *arg);
extern void tenancy_try_or_undo(void (*step) (void *), void (*undo) (void *), void *arg);

#endif							/* TENANCY_TRY_H */
