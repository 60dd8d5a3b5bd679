#!/usr/bin/env bash
# test/bench/checks.sh: what tenancy's own statements cost a fresh tenant
# backend, beside the migration they carry, counted in instructions
# (valgrind's callgrind), so that the figure does not move with the noise of
# a shared machine the way deploy.sh's seconds do.
#
# It provisions a few identical database tenants, logs every statement the
# service role sends one of them while migrate_all() applies one migration
# (ADD COLUMN + CREATE INDEX on a 1,000-row table, as deploy.sh does), stops
# the cluster and replays, each in a fresh single-user backend of another
# tenant database:
#
#   startup    SELECT 1: what every replay pays to start and stop
#   floor      the migration's statements alone
#   tenancy    every query tenancy sent, in order (the transaction id literal
#              in the ledger row's condition replaced by pg_current_xact_id(),
#              since the replay runs in another transaction)
#
# Before that, with the cluster still up, it counts what whole sessions cost
# the kernel and the CPU (perf stat -e page-faults,task-clock over the
# postmaster's children; test/bench/floor.c as the client, 4 at once), per
# session, over SESSIONS tenant databases each (default 40):
#
#   connect    SELECT 1
#   floor      the migration's statements
#   tenancy    tenancy's queries, the same as above, in one round trip
#
# and the cumulative prefixes of the tenancy sequence, so that each query's
# share shows (the last one's can be negative: without COMMIT a replay ends
# in an open transaction, which the backend aborts at exit, and that costs
# more than committing).  Prints the instructions of each beyond startup and the ratio
# tenancy / floor.  The single-user backend runs as the bootstrap superuser
# rather than the service role, and no connection is made: this measures the
# statements, not the session (deploy.sh measures the whole).
#
#   bash test/bench/checks.sh
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

SESSIONS=${SESSIONS:-40}

tenancy_ensure_packages valgrind linux-perf libpq-dev
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
gcc -O2 -Wall -Wextra -Werror -o "$TENANCY_WORK/floor" "$TENANCY_ROOT/test/bench/floor.c" \
	-I"$(pg_config --includedir)" -lpq
tenancy_start_cluster "tenancy.database_prefix = 'chk_'" "log_line_prefix = '%d|'"

q() { psql -XqAt -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION tenancy CASCADE" 2>/dev/null
q -c "SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int PRIMARY KEY, name text); INSERT INTO public.item SELECT g, md5(g::text) FROM generate_series(1, 1000) g')" >/dev/null
q -c "SELECT count(tenancy.provision('t' || i)) FROM generate_series(1, 16 + 3 * $SESSIONS) i" >/dev/null
migration="ALTER TABLE public.item ADD COLUMN c1 int; CREATE INDEX item_c1_idx ON public.item (c1)"
q -c "SELECT tenancy.add_migration(2, '$migration')" >/dev/null

# every statement sent to chk_t1 while it is migrated, one query per line
q -c "ALTER DATABASE chk_t1 SET log_statement = 'all'"
q -c "SET client_min_messages = warning" \
	-c "SELECT count(*) FROM tenancy.migrate_all(tenants => ARRAY['t1'])" >/dev/null
grep -a '^chk_t1|LOG:  statement: ' "$TENANCY_WORK/server.log" |
	sed -e 's/^chk_t1|LOG:  statement: //' \
		-e "s/OPERATOR(pg_catalog.=) '[0-9]*'::pg_catalog.xid8/OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id()/" \
		> "$TENANCY_WORK/sent.sql"
[ -s "$TENANCY_WORK/sent.sql" ] || { echo "checks.sh: no statement of tenancy was logged" >&2; exit 1; }

# page faults and CPU milliseconds of SESSIONS whole sessions running the
# query "$2", over tenant databases from number $1 on: "faults ms"
sessions() {
	local pm out="$TENANCY_WORK/perf.out" perf_pid
	pm=$(head -1 "$TENANCY_WORK/data/postmaster.pid")
	seq "$1" $(($1 + SESSIONS - 1)) | sed 's/^/chk_t/' > "$TENANCY_WORK/dbs"
	perf stat -e page-faults,task-clock -x, -p "$pm" -o "$out" >/dev/null 2>&1 &
	perf_pid=$!
	sleep 0.5	# perf attached: sessions forked from now on are counted
	"$TENANCY_WORK/floor" 4 "$2" < "$TENANCY_WORK/dbs"
	sleep 0.5	# the last sessions have exited
	kill -INT "$perf_pid" 2>/dev/null || true
	wait "$perf_pid" 2>/dev/null || true
	awk -F, '$3 ~ /^page-faults/ {f = $1} $3 ~ /^task-clock/ {c = $1} END {print f, c}' "$out"
}
read -r f_connect c_connect < <(sessions 17 "SELECT 1")
read -r f_floor c_floor < <(sessions $((17 + SESSIONS)) "$migration")
read -r f_tenancy c_tenancy < <(sessions $((17 + 2 * SESSIONS)) "$(paste -sd ';' "$TENANCY_WORK/sent.sql")")
echo "== per session, $SESSIONS sessions each (perf stat over the postmaster's children)"
awk -v n="$SESSIONS" -v fs="$f_connect" -v cs="$c_connect" -v ff="$f_floor" -v cf="$c_floor" \
	-v ft="$f_tenancy" -v ct="$c_tenancy" 'BEGIN {
	printf "%-44s %8s %9s\n", "", "faults", "CPU ms"
	printf "%-44s %8.0f %9.2f\n", "connect: SELECT 1", fs / n, cs / n
	printf "%-44s %8.0f %9.2f\n", "floor: the migration", ff / n, cf / n
	printf "%-44s %8.0f %9.2f\n", "tenancy: its queries, in one round trip", ft / n, ct / n
	printf "RESULT a tenancy session costs %.2fx the floor'"'"'s CPU (%.2f ms and %.0f page faults more per tenant)\n",
		ct / cf, (ct - cf) / n, (ft - ff) / n }'
as_pg pg_ctl -D "$TENANCY_WORK/data" -m fast -w stop >/dev/null
chmod a+rx "$TENANCY_WORK"

# instructions of one fresh single-user backend running the queries on
# stdin, each run in a tenant database of its own (called in subshells: the
# next database's number is kept in a file)
echo 2 > "$TENANCY_WORK/next_db"
instructions() {
	local out="$TENANCY_WORK/callgrind.out" log="$TENANCY_WORK/single.log" db
	db=$(cat "$TENANCY_WORK/next_db")
	echo $((db + 1)) > "$TENANCY_WORK/next_db"
	rm -f "$TENANCY_WORK"/data/pg_stat/* "$out"	# the stats file it reads grows with every run
	as_pg valgrind --tool=callgrind --callgrind-out-file="$out" \
		postgres --single -D "$TENANCY_WORK/data" "chk_t$db" > "$log" 2>&1
	if grep -q 'ERROR' "$log"; then
		echo "checks.sh: a replayed statement failed:" >&2
		grep -m3 'ERROR' "$log" >&2
		exit 1
	fi
	awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

startup=$(echo "SELECT 1" | instructions)
floor=$(echo "$migration" | instructions)
floor=$((floor - startup))
echo "== instructions beyond a fresh backend's startup ($startup)"
printf '%12d  %s\n' "$floor" "floor: the migration alone"
n=$(wc -l < "$TENANCY_WORK/sent.sql")
previous=0
for k in $(seq 1 "$n"); do
	total=$(head -n "$k" "$TENANCY_WORK/sent.sql" | instructions)
	total=$((total - startup))
	printf '%12d  +%-10d %s\n' "$total" "$((total - previous))" "$(sed -n "${k}p" "$TENANCY_WORK/sent.sql" | cut -c1-90)"
	previous=$total
done
awk -v t="$previous" -v f="$floor" 'BEGIN {
	printf "RESULT tenancy'"'"'s %d queries for one migration cost a fresh backend %.2fx the migration alone (%d instructions beyond it)\n", '"$n"', t / f, t - f }'
