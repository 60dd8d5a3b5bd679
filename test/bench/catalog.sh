#!/usr/bin/env bash
# test/bench/catalog.sh: tenant_stats() and server_status() with a large
# catalog, in one run.  Three registered dblink servers (all reaching this
# cluster); catalog rows only (resolution and statistics never need the
# tenant databases to exist), spread evenly over the servers.  Each function
# is timed (median of 5 calls, psql's \timing) at SMALL and at N tenants,
# and the statements it sends to the servers are counted in the server log
# (log_statement = all, by application_name).
#
# Prints the times, the per-tenant cost at both sizes and the statements
# per call (target: one query per server, whatever N).  Exits non-zero if a
# call sends more than one statement per server.  Selection cost at 10,000
# tenants is test/bench/routing.sh.
#
#   bash test/bench/catalog.sh             # N=10000 SMALL=100
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

N=${N:-10000}
SMALL=${SMALL:-100}

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
tenancy_start_cluster "log_statement = 'all'" "log_line_prefix = '%a|'"

q() { psql -XqAt -v ON_ERROR_STOP=1 "$@"; }
timed() { psql -XqAt -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

q -c "CREATE EXTENSION tenancy CASCADE" 2>/dev/null
for s in s1 s2 s3; do
	q -c "CREATE SERVER $s FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host '$PGHOST', port '$PGPORT', dbname 'postgres')"
	q -c "CREATE USER MAPPING FOR CURRENT_USER SERVER $s"
	q -c "SELECT tenancy.add_server('$s')" >/dev/null
done
add_tenants() {
	q -c "INSERT INTO tenancy.tenant (id, database_name, server, state)
	      SELECT 'bench-' || i, 'tenant_bench-' || i, 's' || (1 + i % 3), 'ready' FROM generate_series($1, $2) i" >/dev/null
	q -c "VACUUM ANALYZE tenancy.tenant" >/dev/null
}

# "<median ms> <statements sent per call>" for a function at the current size
measure() {
	local fn=$1 before after i
	before=$(grep -c "^tenancy/[a-z]*|.*LOG:  \(statement\|execute\)" "$TENANCY_WORK/server.log" || true)
	for i in 1 2 3 4 5; do timed "SELECT count(*) FROM tenancy.$fn()"; done > "$TENANCY_WORK/times"
	after=$(grep -c "^tenancy/[a-z]*|.*LOG:  \(statement\|execute\)" "$TENANCY_WORK/server.log" || true)
	echo "$(median < "$TENANCY_WORK/times") $(((after - before) / 5))"
}

add_tenants 1 "$SMALL"
read -r s_small s_small_q < <(measure tenant_stats)
read -r v_small v_small_q < <(measure server_status)
add_tenants $((SMALL + 1)) "$N"
read -r s_big s_big_q < <(measure tenant_stats)
read -r v_big v_big_q < <(measure server_status)

printf '   %6d tenants: tenant_stats %8.2f ms (%d statements), server_status %8.2f ms (%d statements)\n' \
	"$SMALL" "$s_small" "$s_small_q" "$v_small" "$v_small_q"
printf '   %6d tenants: tenant_stats %8.2f ms (%d statements), server_status %8.2f ms (%d statements)\n' \
	"$N" "$s_big" "$s_big_q" "$v_big" "$v_big_q"
awk -v n="$N" -v m="$SMALL" -v a="$s_small" -v b="$s_big" -v c="$v_small" -v d="$v_big" -v qs="$s_big_q" -v qv="$v_big_q" 'BEGIN {
	printf "RESULT %d tenants on 3 servers: tenant_stats %.1f ms (%.1f us per tenant; %.1f us at %d), server_status %.1f ms (%.1fx its time at %d); statements per call: %d and %d (target: 3, one per server)\n",
		n, b, 1000 * b / n, 1000 * a / m, m, d, d / c, m, qs, qv }'
[ "$s_big_q" -le 3 ] && [ "$v_big_q" -le 3 ] && [ "$s_small_q" -le 3 ] && [ "$v_small_q" -le 3 ] ||
	{ echo "more than one statement per server" >&2; exit 1; }
