/*-------------------------------------------------------------------------
 *
 * selection.h
 *	  The selected tenant: resolving tenancy.current, and the search_path
 *	  a selection calls for.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/selection.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TENANCY_SELECTION_H
#define TENANCY_SELECTION_H

#include "tenancy.h"

#define TENANCY_SELECT_HINT \
	"Select one with SET LOCAL tenancy.current = '<tenant>' or SELECT tenancy.use('<tenant>')."

extern void tenancy_selection_resolve(const char *tenant, TenantRecord *rec);
extern void tenancy_selection_resolve_current(const char *none_hint, TenantRecord *rec);
extern const char *tenancy_selection_current(const char *none_hint);
extern char *tenancy_selection_wanted_path(const char **schema, bool *foreign);
extern void tenancy_selection_sync(bool is_local);
extern bool tenancy_selection_unchanged(void);
extern void tenancy_selection_remember(void);

#endif							/* TENANCY_SELECTION_H */
