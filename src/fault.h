/*-------------------------------------------------------------------------
 *
 * fault.h
 *	  Test-only fault injection at named steps.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/fault.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_FAULT_H
#define TENANCY_FAULT_H

extern void tenancy_fault(const char *point);
extern bool tenancy_fault_skip(const char *point);
extern bool tenancy_fault_is(const char *point, const char *action);

#endif							/* TENANCY_FAULT_H */
