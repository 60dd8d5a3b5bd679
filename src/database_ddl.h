/*-------------------------------------------------------------------------
 *
 * database_ddl.h
 *	  Database-level commands on this cluster or a tenant server.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/database_ddl.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_DATABASE_DDL_H
#define TENANCY_DATABASE_DDL_H

#include "tenancy.h"

extern char *tenancy_ddl_create_database(const char *dbname, const char *template_db, bool open);
extern char *tenancy_ddl_revoke_public(const char *dbname);
extern char *tenancy_ddl_drop_database(const char *dbname, bool force);
extern char *tenancy_ddl_allow_connections(const char *dbname, bool allow);
extern bool tenancy_ddl_database_exists(const char *server, const char *dbname);
extern bool tenancy_ddl_database_comment(const char *server, const char *dbname, char **comment);
extern List *tenancy_ddl_databases_existing(const char *server, List *dbnames);
extern void tenancy_ddl_transactional(const char *server, const char *sql);

#endif							/* TENANCY_DATABASE_DDL_H */
