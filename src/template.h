/*-------------------------------------------------------------------------
 *
 * template.h
 *	  The template new tenant databases are copied from.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/template.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_TEMPLATE_H
#define TENANCY_TEMPLATE_H

#include "tenancy.h"

extern char *tenancy_template_prepare(const char *server, const char *appname, int64 *version,
									  char **versions);

#endif							/* TENANCY_TEMPLATE_H */
