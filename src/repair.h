/*-------------------------------------------------------------------------
 *
 * repair.h
 *	  Repairing what an interrupted operation left, from its records.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/repair.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_REPAIR_H
#define TENANCY_REPAIR_H

#include "catalog.h"

/* Where repairs are reported (reconcile's rows), and whether to act. */
typedef struct RepairReport
{
	bool		dry_run;
	void		(*report) (void *arg, const char *tenant, const char *object,
						   const char *problem, const char *action);
	void	   *arg;
} RepairReport;

extern void tenancy_repair_cleanup(const CleanupRecord *c, const RepairReport *out);
extern bool tenancy_repair_object_exists(const TenantRecord *rec);

#endif							/* TENANCY_REPAIR_H */
