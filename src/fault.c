/*-------------------------------------------------------------------------
 *
 * fault.c
 *	  Test-only fault injection at named steps of provisioning.
 *
 * tenancy.fault_injection = '<point>:<action>' (superuser only, not in the
 * sample file) makes the step named <point> either fail ("error") or wait
 * ("wait") on the session advisory lock (TENANCY_FAULT_LOCK_CLASS,
 * hash of the point), which a test holds and releases (and "skip" switches
 * off a check that asks tenancy_fault_skip()): the waiting backend
 * shows in pg_locks, so TAP and isolation tests can stop, kill or race it at
 * exactly that step.  Empty (the default) costs one string test per point.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/fault.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"

#include "guc.h"
#include "fault.h"
#include "tenancy.h"

/* The action tenancy.fault_injection names for "point", or NULL. */
static const char *
fault_action(const char *point)
{
	size_t		len = strlen(point);

	if (tenancy_fault_injection == NULL || tenancy_fault_injection[0] == '\0')
		return NULL;
	if (strncmp(tenancy_fault_injection, point, len) != 0 ||
		tenancy_fault_injection[len] != ':')
		return NULL;
	return tenancy_fault_injection + len + 1;
}

/*
 * Does tenancy.fault_injection say '<point>:skip'?  For a check that tests
 * switch off, to show what stands behind it.
 */
bool
tenancy_fault_skip(const char *point)
{
	return tenancy_fault_is(point, "skip");
}

/* Does tenancy.fault_injection say '<point>:<action>'? */
bool
tenancy_fault_is(const char *point, const char *action)
{
	const char *set = fault_action(point);

	return set != NULL && strcmp(set, action) == 0;
}

/*
 * Called at each named step.  Does nothing unless tenancy.fault_injection
 * names this point.
 */
void
tenancy_fault(const char *point)
{
	size_t		len = strlen(point);
	const char *action = fault_action(point);

	if (action == NULL)
		return;

	if (strcmp(action, "error") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("fault injected at \"%s\"", point)));
	else if (strcmp(action, "wait") == 0)
	{
		LOCKTAG		tag;
		uint32		key = DatumGetUInt32(hash_any((const unsigned char *) point, len));

		ereport(NOTICE, (errmsg("fault injection: waiting at \"%s\"", point)));
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TENANCY_FAULT_LOCK_CLASS, key, 2);
		(void) LockAcquire(&tag, ShareLock, false, false);
	}
}
