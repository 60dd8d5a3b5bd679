# tenancy — PGXS build.  Warnings flags are not set here: CI passes PG_CFLAGS.
EXTENSION = tenancy
MODULE_big = tenancy
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/p" $(EXTENSION).control)
PGFILEDESC = "tenancy - tenant catalog, provisioning, migrations and routing"

OBJS = \
	src/tenancy.o \
	src/guc.o \
	src/names.o \
	src/fault.o \
	src/try.o \
	src/catalog.o \
	src/transport.o \
	src/provision.o \
	src/migrate.o \
	src/routing.o \
	src/routed.o \
	src/search_path.o \
	src/access.o \
	src/health.o \
	src/schema.o

DATA = $(wildcard sql/$(EXTENSION)--*.sql)

REGRESS = init guc names catalog provision reconcile migrate migrate_all health routing security schema rls routed load_order cleanup
REGRESS_OPTS = --inputdir=test --load-extension=dblink

ISOLATION = concurrent_provision concurrent_migrate current_per_session revoke_mid_session routed_suspend
ISOLATION_OPTS = --inputdir=test --outputdir=. --load-extension=dblink --load-extension=tenancy

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

# fleet-wide work talks libpq directly (src/transport.c), as dblink does
PG_CPPFLAGS = -I$(libpq_srcdir)
SHLIB_LINK_INTERNAL = $(libpq)

EXTRA_CLEAN = log/ src/*.gcno src/*.gcda

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
