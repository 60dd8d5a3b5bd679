# tenancy — PGXS build.  Warnings flags are not set here: CI passes PG_CFLAGS.
EXTENSION = tenancy
MODULE_big = tenancy
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/p" $(EXTENSION).control)
PGFILEDESC = "tenancy - tenant catalog, provisioning, migrations and routing"

OBJS = \
	src/tenancy.o \
	src/guc.o \
	src/tenant_id.o \
	src/names.o \
	src/fault.o \
	src/jobs.o \
	src/try.o \
	src/conninfo.o \
	src/remote.o \
	src/fleet.o \
	src/scope.o \
	src/locks.o \
	src/catalog.o \
	src/cache.o \
	src/ledger.o \
	src/guard.o \
	src/engine.o \
	src/database_ddl.o \
	src/template.o \
	src/pool.o \
	src/isolation.o \
	src/isolation_database.o \
	src/isolation_schema.o \
	src/kept.o \
	src/selection.o \
	src/repair.o \
	src/provision.o \
	src/adopt.o \
	src/reconcile.o \
	src/migrate.o \
	src/health.o \
	src/access.o \
	src/select.o \
	src/routed.o \
	src/servers.o \
	src/hooks.o \
	src/worker.o

DATA = $(wildcard sql/$(EXTENSION)--*.sql)

REGRESS = init guc names catalog provision reconcile migrate guard migrate_all migrations health fuzz routing security schema rls routed servers jobs preload cleanup
REGRESS_OPTS = --inputdir=test --load-extension=dblink

ISOLATION = concurrent_provision concurrent_migrate concurrent_remove current_per_session revoke_mid_session routed_suspend revoke_snapshot
ISOLATION_OPTS = --inputdir=test --outputdir=. --load-extension=dblink --load-extension=tenancy

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

# remote work talks libpq directly (src/remote.c), as dblink does
PG_CPPFLAGS = -I$(libpq_srcdir)
SHLIB_LINK_INTERNAL = $(libpq)

EXTRA_CLEAN = log/ src/*.gcno src/*.gcda

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
