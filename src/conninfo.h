/*-------------------------------------------------------------------------
 *
 * conninfo.h
 *	  Who remote work runs as, and the libpq connection strings that reach
 *	  tenant servers.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/conninfo.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_CONNINFO_H
#define TENANCY_CONNINFO_H

#include "tenancy.h"

/* How a connection string is meant to be used. */
typedef enum ConninfoKind
{
	CONNINFO_SERVICE,			/* tenancy's own work, as the service role */
	CONNINFO_ROUTED				/* an application's SQL, as the calling role */
} ConninfoKind;

extern void tenancy_conninfo_set_identity(Oid role, const char *loopback_server);
extern Oid	tenancy_conninfo_service_role(void);
extern const char *tenancy_conninfo_loopback(void);
extern void tenancy_conninfo_check_server(const char *server);
extern void tenancy_conninfo_check_caller(const char *server);
extern void tenancy_conninfo_check_usage(const char *server);
extern char *tenancy_conninfo_uri(const char *conninfo);
extern char *tenancy_conninfo_build(ConninfoKind kind, const char *server,
									const char *dbname, const char *appname);
extern char *tenancy_conninfo_public(const char *server, const char *dbname,
									 const char *search_path);
extern char *tenancy_conninfo_appname(const char *tenant);

#endif							/* TENANCY_CONNINFO_H */
