/*-------------------------------------------------------------------------
 *
 * pool.h
 *	  Warm pools of spare databases.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/pool.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_POOL_H
#define TENANCY_POOL_H

#include "catalog.h"
#include "repair.h"

extern bool tenancy_pool_take(const char *server, char **dbname, int64 *version, char **versions);
extern void tenancy_pool_fill(const char *server, int want, int *created, int *dropped);
extern void tenancy_pool_repair(const RepairReport *out);

#endif							/* TENANCY_POOL_H */
