#!/usr/bin/env bash
# test/bench/signup.sh: sign-up latency, in one run:
#
#   bare    CREATE DATABASE ... TEMPLATE <a database at the latest migration>,
#           the floor of any template-based design
#   pool    SELECT tenancy.provision(...) taking a spare of the warm pool
#           (fill_pools() runs, untimed, before each sign-up)
#
# N sign-ups each (default 200), for a schema of 20 tables with indexes, on
# this cluster registered as a server reached through dblink.  Prints p50
# and p99 of each (psql's \timing, the client's view, in one session) and
# the p50 ratio
# (target: the pool at least 5x faster than bare at p50).
#
#   bash test/bench/signup.sh          # N=200
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

N=${N:-200}
TABLES=20

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
tenancy_start_cluster "tenancy.database_prefix = 'bench_'"

q() { psql -XqAt -v ON_ERROR_STOP=1 "$@"; }
pct() { sort -g | awk -v p="$1" '{a[NR]=$1} END {i = int((NR - 1) * p / 100) + 1; print a[i]}'; }

q -c "CREATE EXTENSION tenancy CASCADE" 2>/dev/null
q -c "CREATE SERVER bench_here FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host '$PGHOST', port '$PGPORT', dbname 'postgres')"
q -c "CREATE USER MAPPING FOR CURRENT_USER SERVER bench_here"
for t in $(seq 1 $TABLES); do
	sql="CREATE TABLE public.t$t (id bigint PRIMARY KEY, ref text NOT NULL, payload jsonb); CREATE INDEX t${t}_ref_idx ON public.t$t (ref)"
	echo "SELECT tenancy.add_migration($t, :'sql')" | q -v sql="$sql" >/dev/null
done
q -c "SELECT tenancy.add_server('bench_here', warm_pool => 2)" >/dev/null
q -c "SELECT * FROM tenancy.fill_pools()" >/dev/null
# an up-to-date database to copy, for the floor
q -c "CREATE DATABASE bench_source TEMPLATE bench_template"

# One session, as an application's pooled connection: for each sign-up, a
# bare CREATE DATABASE (timed), the pool refilled (untimed), a sign-up from
# the pool (timed), so that both see the same load (each sign-up's refill
# copies the template, as the bare variant does).
for i in $(seq 1 "$N"); do
	echo '\timing on'
	echo "CREATE DATABASE bare_$i TEMPLATE bench_source;"
	echo '\timing off'
	echo "SELECT count(*) FROM tenancy.fill_pools() \\g /dev/null"
	echo '\timing on'
	echo "SELECT tenancy.provision('s$i') IS NOT NULL;"
	echo '\timing off'
done > "$TENANCY_WORK/signup.sql"
psql -XqAt -v ON_ERROR_STOP=1 -f "$TENANCY_WORK/signup.sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' > "$TENANCY_WORK/times"
awk 'NR % 2 == 1' "$TENANCY_WORK/times" > "$TENANCY_WORK/bare"
awk 'NR % 2 == 0' "$TENANCY_WORK/times" > "$TENANCY_WORK/pool"
[ "$(wc -l < "$TENANCY_WORK/bare")" = "$N" ] && [ "$(wc -l < "$TENANCY_WORK/pool")" = "$N" ] ||
	{ echo "missing timings" >&2; exit 1; }
[ "$(q -c 'SELECT count(*) FROM tenancy.tenant')" = "$N" ] || { echo "not every sign-up was provisioned" >&2; exit 1; }
b50=$(pct 50 < "$TENANCY_WORK/bare"); b99=$(pct 99 < "$TENANCY_WORK/bare")
p50=$(pct 50 < "$TENANCY_WORK/pool"); p99=$(pct 99 < "$TENANCY_WORK/pool")
printf '   bare CREATE DATABASE   p50 %8.2f ms   p99 %8.2f ms\n   provision() from pool  p50 %8.2f ms   p99 %8.2f ms\n' "$b50" "$b99" "$p50" "$p99"
awk -v b="$b50" -v p="$p50" -v n="$N" 'BEGIN {
	printf "RESULT %d sign-ups: provision() from the warm pool is %.1fx faster than a bare CREATE DATABASE at p50 (target >= 5x)\n", n, b / p }'
