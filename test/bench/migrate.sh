#!/usr/bin/env bash
# test/bench/migrate.sh: applying one migration (ADD COLUMN + CREATE INDEX on
# a small table) to every tenant database, at 200 and then 1,000 tenants, in
# one run:
#
#   sequential  the seed's way: one psql per tenant, one after another
#   xargs -P K  a shell's parallel loop, K = 2, 4, 8 psql at once
#   tenancy     SELECT * FROM tenancy.migrate_all(parallel => P), P = 4, 8
#
# and the no-op case (nothing pending): migrate_all() answered from the
# catalog against a loop that connects to each tenant to check its version.
# Prints the ratios and the peak memory (VmHWM) of the backend that ran
# migrate_all at each size.
#
#   bash test/bench/migrate.sh                   # SIZES="200 1000"
#   SIZES="50 100" bash test/bench/migrate.sh    # quicker
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

SIZES=${SIZES:-"200 1000"}

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
tenancy_start_cluster "max_connections = 60" "tenancy.database_prefix = 'fleet_'" "shared_buffers = '256MB'"

q() { psql -XqAt -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.2f", e - s}'; }

q -c "CREATE EXTENSION tenancy CASCADE" 2>/dev/null
q -c "SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int PRIMARY KEY, name text); INSERT INTO public.item SELECT g, md5(g::text) FROM generate_series(1, 1000) g')" >/dev/null

version=1
col=0
have=0
for size in $SIZES; do
	echo "== provisioning up to $size tenants"
	q -c "SELECT count(tenancy.provision('t' || i)) FROM generate_series($((have + 1)), $size) i" >/dev/null
	have=$size
	q -c "SELECT count(*) FROM tenancy.migrate_all(8)" >/dev/null 2>&1	# everyone at the latest version
	dbs=$(q -c "SELECT string_agg(quote_ident(database_name), ' ' ORDER BY id) FROM tenancy.tenant")

	# sets $stmt to a new migration (no subshell: the counter must persist)
	ddl() { col=$((col + 1)); stmt="ALTER TABLE public.item ADD COLUMN c$col int; CREATE INDEX item_c${col}_idx ON public.item (c$col)"; }

	echo "== $size tenants: one migration"
	ddl; start=$(now)
	for db in $dbs; do q -d "$db" -c "$stmt"; done
	sequential=$(elapsed "$start")
	printf '   %-28s %8.2f s\n' "sequential psql loop" "$sequential"

	best_xargs=""
	for k in 2 4 8; do
		ddl; start=$(now)
		echo "$dbs" | tr ' ' '\n' | xargs -P "$k" -I{} psql -XqAt -v ON_ERROR_STOP=1 -d {} -c "$stmt"
		t=$(elapsed "$start")
		printf '   %-28s %8.2f s\n' "xargs -P $k psql" "$t"
		if [ -z "$best_xargs" ] || awk -v a="$t" -v b="$best_xargs" 'BEGIN {exit !(a < b)}'; then best_xargs=$t; best_k=$k; fi
	done

	best_tenancy=""
	for p in 4 8; do
		version=$((version + 1))
		ddl
		echo "SELECT tenancy.add_migration($version, :'stmt')" | q -v stmt="$stmt" >/dev/null
		start=$(now)
		out=$(q -c "SET client_min_messages = warning" -c "SELECT pg_backend_pid()" \
			-c "SELECT count(*) FILTER (WHERE status = 'migrated') || '/' || count(*) FROM tenancy.migrate_all($p)" \
			-c "SELECT 'x'" | tr '\n' ' ')
		t=$(elapsed "$start")
		printf '   %-28s %8.2f s  (%s migrated)\n' "tenancy.migrate_all($p)" "$t" "$(echo "$out" | awk '{print $2}')"
		if [ -z "$best_tenancy" ] || awk -v a="$t" -v b="$best_tenancy" 'BEGIN {exit !(a < b)}'; then best_tenancy=$t; best_p=$p; fi
	done

	# peak memory of a backend that runs a whole migrate_all at this size
	version=$((version + 1))
	ddl
	echo "SELECT tenancy.add_migration($version, :'stmt')" | q -v stmt="$stmt" >/dev/null
	hwm=$( { echo "SET client_min_messages = warning;"; echo "SELECT pg_backend_pid() AS pid \\gset";
			 echo "\\setenv BACKEND_PID :pid";
			 echo "SELECT count(*) FROM tenancy.migrate_all(8) \\g /dev/null";
			 echo "\\! grep VmHWM /proc/\$BACKEND_PID/status"; } | q 2>/dev/null | awk '/VmHWM/ {print $2}')

	echo "== $size tenants: nothing pending"
	start=$(now)
	q -c "SET client_min_messages = warning" -c "SELECT count(*) FROM tenancy.migrate_all(8)" >/dev/null
	noop=$(elapsed "$start")
	start=$(now)
	for db in $dbs; do q -d "$db" -c "SELECT max(version) FROM tenancy.applied_migration" >/dev/null; done
	check_each=$(elapsed "$start")
	printf '   %-28s %8.3f s\n' "tenancy.migrate_all() no-op" "$noop" "connect to each and check" "$check_each"

	awk -v n="$size" -v s="$sequential" -v x="$best_xargs" -v k="$best_k" -v t="$best_tenancy" -v p="$best_p" \
		-v no="$noop" -v ce="$check_each" -v m="$hwm" 'BEGIN {
		printf "RESULT %d tenants: migrate_all(%d) is %.1fx the sequential loop (target >= 3x), %.2fx the best xargs (-P %d; target >= 1.3x)\n", n, p, s / t, x / t, k;
		printf "RESULT %d tenants: no-op migrate_all is %.0fx faster than connecting to each (target >= 100x at 1,000)\n", n, ce / no;
		printf "RESULT %d tenants: peak memory (VmHWM) of the migrate_all backend: %d kB\n", n, m;
	}'
done
