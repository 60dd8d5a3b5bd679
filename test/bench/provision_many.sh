#!/usr/bin/env bash
# test/bench/provision_many.sh: provisioning N new tenants at once, in one
# run, three ways:
#
#   seed        the seed's way: per tenant, CREATE DATABASE (psql), then
#               each migration applied with its own psql call, one tenant
#               after another
#   provision   SELECT tenancy.provision(...) per tenant, in one session
#   many        SELECT * FROM tenancy.provision_many(<N ids>, parallel => P)
#
# for a schema of 20 tables with indexes (20 migrations).  Prints the times
# and the ratios (target: many at least 3x the seed's loop).  Each variant
# provisions tenants of its own; all are dropped at the end.
#
#   bash test/bench/provision_many.sh               # SIZES="200" P=4
#   SIZES="200 1000" P=4 bash test/bench/provision_many.sh
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

SIZES=${SIZES:-200}
P=${P:-4}
TABLES=20

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
tenancy_start_cluster "tenancy.database_prefix = 'bench_'" "max_connections = 60"

q() { psql -XqAt -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.2f", e - s}'; }

migrations="$TENANCY_WORK/migrations"
mkdir -p "$migrations"
for t in $(seq 1 $TABLES); do
	cat > "$migrations/$(printf %03d "$t").sql" <<SQL
CREATE TABLE public.t$t (id bigint PRIMARY KEY, tenant_ref text NOT NULL, payload jsonb, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX t${t}_ref_idx ON public.t$t (tenant_ref);
SQL
done
q -c "CREATE EXTENSION tenancy CASCADE" 2>/dev/null
for f in "$migrations"/*.sql; do
	v=$((10#$(basename "$f" .sql)))
	echo "SELECT tenancy.add_migration($v, :'sql')" | q -v sql="$(cat "$f")" >/dev/null
done
q -c "SELECT tenancy.provision('warmup'), tenancy.deprovision('warmup')" >/dev/null	# builds the template

for n in $SIZES; do
	echo "== $n tenants"
	start=$(now)
	for i in $(seq 1 "$n"); do
		q -c "CREATE DATABASE seed_$i"
		for f in "$migrations"/*.sql; do q -d "seed_$i" -f "$f"; done
	done
	seed=$(elapsed "$start")
	start=$(now)
	q -c "SELECT count(tenancy.provision('one-' || i)) FROM generate_series(1, $n) i" >/dev/null
	one=$(elapsed "$start")
	start=$(now)
	failed=$(q -c "SELECT count(*) FILTER (WHERE status <> 'provisioned') FROM tenancy.provision_many(ARRAY(SELECT 'many-' || i FROM generate_series(1, $n) i), parallel => $P)")
	many=$(elapsed "$start")
	[ "$failed" = 0 ] || { echo "provision_many: $failed tenants not provisioned" >&2; exit 1; }
	printf '   seed loop                 %8.2f s\n   provision() per tenant    %8.2f s\n   provision_many(P = %d)     %8.2f s\n' "$seed" "$one" "$P" "$many"
	awk -v n="$n" -v s="$seed" -v o="$one" -v m="$many" -v p="$P" 'BEGIN {
		printf "RESULT %d tenants: provision_many(parallel => %d) is %.1fx faster than the seed loop (target >= 3x), %.1fx provision() per tenant\n", n, p, s / m, o / m }'
	for i in $(seq 1 "$n"); do q -c "DROP DATABASE seed_$i"; done
	q -c "SELECT count(tenancy.deprovision(id)) FROM tenancy.tenant" >/dev/null
done
