/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  tenancy's settings (GUC variables).
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/guc.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_GUC_H
#define TENANCY_GUC_H

#include "storage/lock.h"

extern char *tenancy_current;
extern char *tenancy_database_prefix;
extern char *tenancy_template_database;
extern char *tenancy_loopback_host;
extern int	tenancy_connect_timeout;
extern int	tenancy_remote_lock_timeout;
extern int	tenancy_lock_wait_timeout;
extern int	tenancy_max_kept_connections;
extern int	tenancy_kept_idle_timeout;
extern int	tenancy_remote_statement_timeout;
extern char *tenancy_fault_injection;
extern char *tenancy_worker_database;
extern int	tenancy_worker_naptime;
extern bool tenancy_strict_local;
extern LocalTransactionId tenancy_current_stamp;
extern Oid	tenancy_current_selector;

extern void tenancy_guc_init(void);
extern bool tenancy_current_is_local(void);
extern bool tenancy_search_path_is_local(void);

#endif							/* TENANCY_GUC_H */
