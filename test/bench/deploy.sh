#!/usr/bin/env bash
# test/bench/deploy.sh: deploying one migration (ADD COLUMN + CREATE INDEX on
# a 1,000-row table) to every tenant database, at 200 and then 1,000 tenants,
# in one run:
#
#   sequential  one psql per tenant, one after another
#   floor P     test/bench/floor.c: a bare asynchronous libpq loop in C,
#               P connections at once (PQconnectStartParams/PQconnectPoll,
#               PQsendQuery, one poll() over the P sockets), the same SQL,
#               no ledger and no checks: what any tool must at least spend
#   tenancy P   tenancy.add_migration(), then
#               SELECT ... FROM tenancy.migrate_all(parallel => P)
#
# for P = 4 and 8.  Each variant applies a migration of its own (a new
# column and its index), so every run does the same work.  The variants run
# in interleaved rounds, in a different order each round, and the medians
# are compared, so machine noise hits all of them alike.  Prints the ratios
# (tenancy vs sequential, target >= 3x; tenancy / floor, target <= 1.5x)
# and a summary table; exits non-zero only on errors.
#
#   bash test/bench/deploy.sh                           # SIZES="200 1000"
#   SIZES="50" ROUNDS=1 PARALLEL=4 bash test/bench/deploy.sh   # quicker
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

SIZES=${SIZES:-"200 1000"}
ROUNDS=${ROUNDS:-3}
PARALLEL=${PARALLEL:-"4 8"}

tenancy_ensure_packages libpq-dev
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
gcc -O2 -Wall -Wextra -Werror -o "$TENANCY_WORK/floor" "$TENANCY_ROOT/test/bench/floor.c" \
	-I"$(pg_config --includedir)" -lpq
tenancy_start_cluster "max_connections = 60" "tenancy.database_prefix = 'fleet_'" "shared_buffers = '256MB'"

q() { psql -XqAt -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.2f", e - s}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

q -c "CREATE EXTENSION tenancy CASCADE" 2>/dev/null
q -c "SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int PRIMARY KEY, name text); INSERT INTO public.item SELECT g, md5(g::text) FROM generate_series(1, 1000) g')" >/dev/null

version=1
col=0
# sets $stmt to a new migration (no subshell: the counter must persist)
ddl() { col=$((col + 1)); stmt="ALTER TABLE public.item ADD COLUMN c$col int; CREATE INDEX item_c${col}_idx ON public.item (c$col)"; }

# one run of a variant over every tenant in $dblist; prints its seconds
run_sequential() {
	local db
	while read -r db; do q -d "$db" -c "$stmt"; done < "$dblist"
}
run_floor() {
	"$TENANCY_WORK/floor" "$1" "$stmt" < "$dblist"
}
run_tenancy() {
	local migrated
	version=$((version + 1))
	echo "SELECT tenancy.add_migration($version, :'stmt')" | q -v stmt="$stmt" >/dev/null
	start=$(now)	# the caller's clock starts after the registration
	migrated=$(q -c "SET client_min_messages = warning" \
		-c "SELECT count(*) FILTER (WHERE status = 'migrated') FROM tenancy.migrate_all(parallel => $1)")
	[ "$migrated" = "$size" ] || { echo "migrate_all($1) migrated $migrated of $size tenants" >&2; exit 1; }
}

variants=(sequential)
for p in $PARALLEL; do variants+=("floor:$p" "tenancy:$p"); done
declare -A t
summary=()
have=0
for size in $SIZES; do
	echo "== provisioning up to $size tenants"
	q -c "SELECT count(tenancy.provision('t' || i)) FROM generate_series($((have + 1)), $size) i" >/dev/null
	have=$size
	q -c "SELECT count(*) FROM tenancy.migrate_all(8)" >/dev/null 2>&1	# everyone at the latest version
	dblist="$TENANCY_WORK/dbs.$size"
	q -c "SELECT database_name FROM tenancy.tenant ORDER BY id" > "$dblist"
	"$TENANCY_WORK/floor" 4 "SELECT 1" < "$dblist"	# warm-up: every database connected to once

	echo "== $size tenants: one migration, $ROUNDS rounds"
	for r in $(seq 1 "$ROUNDS"); do
		# rotate the order each round, so that no variant always follows another
		for k in $(seq 0 $((${#variants[@]} - 1))); do
			v=${variants[$(((k + r) % ${#variants[@]}))]}
			name=${v%%:*}
			p=${v#*:}
			[ "$name" = sequential ] && p=""
			ddl
			start=$(now)
			"run_$name" $p
			s=$(elapsed "$start")
			t[$size,$v]="${t[$size,$v]:-} $s"
			printf '   round %d  %-14s %8.2f s\n' "$r" "$name${p:+($p)}" "$s"
		done
	done

	seq_m=$(echo "${t[$size,sequential]}" | median)
	printf '   median  %-14s %8.2f s\n' "sequential" "$seq_m"
	for p in $PARALLEL; do
		fl=$(echo "${t[$size,floor:$p]}" | median)
		tn=$(echo "${t[$size,tenancy:$p]}" | median)
		printf '   median  %-14s %8.2f s\n   median  %-14s %8.2f s\n' "floor($p)" "$fl" "tenancy($p)" "$tn"
		line=$(awk -v n="$size" -v p="$p" -v s="$seq_m" -v f="$fl" -v t="$tn" 'BEGIN {
			printf "%6d  %3d  %10.2f  %8.2f  %10.2f  %9.1fx  %9.2fx", n, p, s, f, t, s / t, t / f }')
		summary+=("$line")
		awk -v n="$size" -v p="$p" -v s="$seq_m" -v f="$fl" -v t="$tn" 'BEGIN {
			printf "RESULT %d tenants: migrate_all(parallel => %d) is %.1fx faster than the sequential loop (target >= 3x)\n", n, p, s / t;
			printf "RESULT %d tenants: migrate_all(parallel => %d) takes %.2fx the floor at the same parallelism (target <= 1.5x)\n", n, p, t / f;
		}'
	done
done

echo "== summary (median seconds of $ROUNDS rounds)"
printf '%6s  %3s  %10s  %8s  %10s  %10s  %10s\n' tenants P sequential floor tenancy "seq/ten" "ten/floor"
for line in "${summary[@]}"; do echo "$line"; done
