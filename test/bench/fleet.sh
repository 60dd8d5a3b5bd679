#!/usr/bin/env bash
# test/bench/fleet.sh: fleet work over three clusters on this machine, in
# one run.  Cluster 1 holds the catalog and is a tenant server too (through
# its loopback dblink server); clusters 2 and 3 are tenant servers.  Each is
# registered with add_server(max_sessions => BUDGET).  N tenants are
# provisioned with provision_many (placed evenly), then one migration is
# deployed with migrate_all(parallel => 3 * BUDGET), twice: over the first
# N/4 tenants and over all N.  Meanwhile a sampler reads pg_stat_activity
# on each cluster every 20 ms (sessions connected to tenant databases) and
# the private memory (RssAnon) of the backend running migrate_all.
#
# Prints, per server, the peak of sessions seen against its budget, and
# the backend's peak memory at N/4 and N (target: never above the budget;
# memory flat in N).  Exits non-zero if a budget was exceeded.
#
#   bash test/bench/fleet.sh                  # N=600 BUDGET=4
#   N=150 bash test/bench/fleet.sh
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

N=${N:-600}
BUDGET=${BUDGET:-4}
PARALLEL=$((3 * BUDGET))

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir bench
ports=()
stop_all() {
	for i in 1 2 3; do
		[ -f "$TENANCY_WORK/n$i/postmaster.pid" ] && as_pg pg_ctl -D "$TENANCY_WORK/n$i" -m fast -w stop >/dev/null 2>&1
	done
	rm -rf "$TENANCY_WORK"
}
trap stop_all EXIT
for i in 1 2 3; do
	port=$(tenancy_free_port)
	as_pg initdb -D "$TENANCY_WORK/n$i" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
	{
		echo "port = $port"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$TENANCY_WORK'"
		echo "max_connections = 40"
		echo "shared_buffers = 64MB"
		echo "fsync = off"
		echo "shared_preload_libraries = 'tenancy'"
		echo "tenancy.database_prefix = 'bench_'"
	} | as_pg tee -a "$TENANCY_WORK/n$i/postgresql.conf" >/dev/null
	as_pg pg_ctl -D "$TENANCY_WORK/n$i" -l "$TENANCY_WORK/n$i.log" -w start >/dev/null
	ports+=("$port")
done
export PGHOST="$TENANCY_WORK" PGUSER=postgres PGDATABASE=postgres
q() { psql -XqAt -v ON_ERROR_STOP=1 -p "${ports[0]}" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.2f", e - s}'; }

q -c "CREATE EXTENSION tenancy CASCADE" 2>/dev/null
for i in 1 2 3; do
	q -c "CREATE SERVER node$i FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host '$TENANCY_WORK', port '${ports[$((i - 1))]}', dbname 'postgres')"
	q -c "CREATE USER MAPPING FOR CURRENT_USER SERVER node$i"
	q -c "SELECT tenancy.add_server('node$i', max_sessions => $BUDGET)" >/dev/null
done
q -c "SELECT tenancy.add_migration(1, 'CREATE TABLE public.account (id bigint PRIMARY KEY, name text)')" >/dev/null

echo "== provisioning $N tenants on three servers"
start=$(now)
failed=$(q -c "SELECT count(*) FILTER (WHERE status <> 'provisioned') FROM tenancy.provision_many(ARRAY(SELECT 'f' || i FROM generate_series(1, $N) i), parallel => $PARALLEL)")
[ "$failed" = 0 ] || { echo "provision_many: $failed tenants not provisioned" >&2; exit 1; }
echo "   provision_many: $(elapsed "$start") s; per server: $(q -c "SELECT string_agg(server || ' ' || n, ', ' ORDER BY server) FROM (SELECT server, count(*) n FROM tenancy.tenant GROUP BY server) s")"

# Runs migrate_all over the first $1 tenants while sampling; prints
# "<seconds> <peak node1> <peak node2> <peak node3> <peak RssAnon kB>".
run_sampled() {
	local n=$1 version=$2 out="$TENANCY_WORK/run.$1"
	q -c "SELECT tenancy.add_migration($version, 'CREATE TABLE public.t$version (id bigint PRIMARY KEY, ref text); CREATE INDEX ON public.t$version (ref)')" >/dev/null
	local start
	start=$(now)
	psql -XqAt -p "${ports[0]}" -v ON_ERROR_STOP=1 \
		-c "SET application_name = 'bench_migrate_all'" \
		-c "SET client_min_messages = warning" \
		-c "SELECT count(*) FILTER (WHERE status = 'migrated') FROM tenancy.migrate_all($PARALLEL, tenants => ARRAY(SELECT 'f' || i FROM generate_series(1, $n) i))" \
		> "$out" &
	local job=$! p1=0 p2=0 p3=0 mem=0 pid="" c
	while kill -0 "$job" 2>/dev/null; do
		for i in 1 2 3; do
			c=$(psql -XqAt -p "${ports[$((i - 1))]}" -c "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'bench\\_f%'" 2>/dev/null || echo 0)
			case $i in
				1) [ "$c" -gt "$p1" ] && p1=$c ;;
				2) [ "$c" -gt "$p2" ] && p2=$c ;;
				3) [ "$c" -gt "$p3" ] && p3=$c ;;
			esac
		done
		[ -n "$pid" ] || pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'bench_migrate_all'" 2>/dev/null || true)
		if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
			c=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
			[ -n "$c" ] && [ "$c" -gt "$mem" ] && mem=$c
		fi
		sleep 0.02
	done
	wait "$job"
	[ "$(cat "$out")" = "$n" ] || { echo "migrate_all over $n tenants migrated $(cat "$out")" >&2; exit 1; }
	echo "$(elapsed "$start") $p1 $p2 $p3 $mem"
}

quarter=$((N / 4))
echo "== migrate_all(parallel => $PARALLEL) over $quarter tenants, then over $N"
read -r t1 a1 b1 c1 m1 < <(run_sampled "$quarter" 2)
read -r t2 a2 b2 c2 m2 < <(run_sampled "$N" 3)
printf '   %5d tenants: %7.2f s; peak sessions node1 %d, node2 %d, node3 %d (budget %d); backend RssAnon peak %d kB\n' \
	"$quarter" "$t1" "$a1" "$b1" "$c1" "$BUDGET" "$m1"
printf '   %5d tenants: %7.2f s; peak sessions node1 %d, node2 %d, node3 %d (budget %d); backend RssAnon peak %d kB\n' \
	"$N" "$t2" "$a2" "$b2" "$c2" "$BUDGET" "$m2"
over=0
for c in $a1 $b1 $c1 $a2 $b2 $c2; do [ "$c" -gt "$BUDGET" ] && over=1; done
awk -v n="$N" -v q="$quarter" -v m1="$m1" -v m2="$m2" -v b="$BUDGET" -v a="$a2" -v bb="$b2" -v c="$c2" -v t1="$t1" -v t2="$t2" 'BEGIN {
	printf "RESULT %d tenants on 3 servers: peak sessions per server %d/%d/%d (budget %d); backend memory at %d vs %d tenants: %.2fx (flat: ~1x); time per tenant %.1f ms vs %.1f ms\n",
		n, a, bb, c, b, n, q, m2 / m1, 1000 * t2 / n, 1000 * t1 / q }'
[ "$over" = 0 ] || { echo "a server's budget was exceeded" >&2; exit 1; }
