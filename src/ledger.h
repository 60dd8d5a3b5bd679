/*-------------------------------------------------------------------------
 *
 * ledger.h
 *	  A tenant's migration ledger: its SQL, and reading it safely.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/ledger.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_LEDGER_H
#define TENANCY_LEDGER_H

#include "nodes/pg_list.h"

#include "remote.h"

extern char *tenancy_ledger_sql_setup(const char *schema);
extern char *tenancy_ledger_expr_guard(const char *schema);
extern char *tenancy_ledger_expr_suspect(const char *schema);
extern RemoteError *tenancy_ledger_refusal(const char *message);
extern char *tenancy_ledger_sql_guard(const char *schema);
extern char *tenancy_ledger_sql_select(const char *schema);
extern char *tenancy_ledger_sql_read(const char *schema);
extern char *tenancy_ledger_sql_holds(int64 version, const char *schema);
extern char *tenancy_ledger_sql_lock(const char *schema);
extern char *tenancy_ledger_sql_insert(int64 version, const char *checksum, const char *schema,
									   const char *xid);
extern char *tenancy_ledger_sql_delete(int64 version, const char *schema, const char *xid);
extern RemoteError *tenancy_ledger_max(const RemoteResult *read, const char *label, int64 *max);
extern RemoteError *tenancy_ledger_versions(const RemoteResult *read, const char *label,
											int64 *max, char **versions);
extern RemoteError *tenancy_ledger_check(const RemoteResult *read, List *migrations,
										 const char *label, int64 *max, List **applied);

#endif							/* TENANCY_LEDGER_H */
