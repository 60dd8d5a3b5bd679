/*-------------------------------------------------------------------------
 *
 * locks.c
 *	  tenancy's local locks: per tenant, per template, for reconcile().
 *
 * Every lock that serialises tenancy's operations is a heavyweight lock
 * in this backend's database, taken before any remote call, so waits show
 * in pg_locks and isolation tests, and concurrent callers wait locally.
 * They are advisory lock tags in classes of tenancy's own
 * (TENANCY_*_LOCK_CLASS), keyed by a hash of the tenant id or server name,
 * with a last field SQL cannot set (TENANCY_LOCK_FIELD4), so no role can
 * take them; held until the end of the transaction unless released early.
 * In pg_locks they are locktype 'advisory', classid the class, objid the
 * hash, objsubid 3.
 *
 * Copyright (c) 2026, the tenancy authors
 *
 * IDENTIFICATION
 *	  src/locks.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/guc.h"

#include "guc.h"
#include "locks.h"

/* The tag of "key"'s lock in "class". */
static void
lock_tag(LOCKTAG *tag, uint32 class, const char *key)
{
	uint32		hash = DatumGetUInt32(hash_any((const unsigned char *) key, strlen(key)));

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, class, hash, TENANCY_LOCK_FIELD4);
}

/* The refusal of a tenant lock held by another operation. */
static void
tenant_busy(const char *id, bool waited)
{
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("could not obtain lock on tenant \"%s\"", id),
			 errdetail("Another tenancy operation on this tenant is in progress%s.",
					   waited ? psprintf(" (waited tenancy.lock_wait_timeout, %d ms)", tenancy_lock_wait_timeout) : ""),
			 waited ? errhint("A migration that calls tenancy for its own tenant (through dblink) waits for itself: it is stopped this way.") : 0));
}

/*
 * Takes the per-tenant transaction-level lock that serialises
 * provisioning, migration and deprovisioning of one tenant.  With nowait,
 * raises 55P03 instead of waiting; otherwise waits at most
 * tenancy.lock_wait_timeout (lock_timeout, if shorter, stands), then
 * raises 55P03: a migration that calls back into tenancy for its own
 * tenant waits on the lock its own caller holds, across sessions where no
 * deadlock detector sees it.
 */
void
tenancy_lock_tenant(const char *id, bool nowait)
{
	LOCKTAG		tag;
	MemoryContext cxt = CurrentMemoryContext;
	int			nestlevel;

	lock_tag(&tag, TENANCY_LOCK_CLASS, id);
	if (LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
		return;
	if (nowait)
		tenant_busy(id, false);
	nestlevel = NewGUCNestLevel();
	if (tenancy_lock_wait_timeout > 0 && (LockTimeout == 0 || LockTimeout > tenancy_lock_wait_timeout))
		(void) set_config_option("lock_timeout", psprintf("%d", tenancy_lock_wait_timeout),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		tenant_busy(id, true);
	}
	PG_END_TRY();
	AtEOXact_GUC(true, nestlevel);
}

/*
 * Takes the tenant's lock if it is free; returns false (without waiting)
 * if another operation holds it.
 */
bool
tenancy_try_lock_tenant(const char *id)
{
	LOCKTAG		tag;

	lock_tag(&tag, TENANCY_LOCK_CLASS, id);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/* Releases a tenant's lock before the end of the transaction. */
void
tenancy_unlock_tenant(const char *id)
{
	LOCKTAG		tag;

	lock_tag(&tag, TENANCY_LOCK_CLASS, id);
	(void) LockRelease(&tag, ExclusiveLock, false);
}

/*
 * Locks the template of "server" (NULL: this cluster): exclusive to build
 * it, shared to copy it (copies run side by side; a build waits for them).
 */
void
tenancy_lock_template(const char *server, bool exclusive)
{
	LOCKTAG		tag;

	lock_tag(&tag, TENANCY_TEMPLATE_LOCK_CLASS, server ? server : "");
	(void) LockAcquire(&tag, exclusive ? ExclusiveLock : ShareLock, false, false);
}

/* Releases a template lock before the end of the transaction. */
void
tenancy_unlock_template(const char *server, bool exclusive)
{
	LOCKTAG		tag;

	lock_tag(&tag, TENANCY_TEMPLATE_LOCK_CLASS, server ? server : "");
	(void) LockRelease(&tag, exclusive ? ExclusiveLock : ShareLock, false);
}

/*
 * Serialises reconcile() runs: the second waits for the first, then finds
 * nothing left to do.
 */
void
tenancy_lock_reconcile(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, TENANCY_RECONCILE_LOCK_CLASS, 0, TENANCY_LOCK_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}
