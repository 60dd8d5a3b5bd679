/*-------------------------------------------------------------------------
 *
 * migrate.h
 *	  Applying registered migrations to one tenant.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/migrate.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_MIGRATE_H
#define TENANCY_MIGRATE_H

#include "nodes/pg_list.h"

#include "transport.h"

extern int64 tenancy_migrate_connection(TransportConn *conn, const char *target,
										List *migrations, int64 *from);

extern bool tenancy_migrate_check_ledger(List *ledger, List *migrations, const char *target,
										 int64 *applied, char **message, char **detail);

#endif							/* TENANCY_MIGRATE_H */
