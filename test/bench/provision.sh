#!/usr/bin/env bash
# test/bench/provision.sh: provisioning speed, in one run, of
#
#   seed      the seed's way: CREATE DATABASE (psql), then each migration
#             applied with its own psql call, one after another
#   bare      CREATE DATABASE ... TEMPLATE <a database already at the latest
#             migration>, one statement per tenant in one psql session: the
#             floor for any template-based design
#   tenancy   SELECT tenancy.provision(...), one call per tenant in one psql
#             session (tenancy's own template, crash-safe temporary names)
#
# for a schema of 20 tables with indexes (20 migrations).  Prints provisions
# per second and the ratios.  The variants run in interleaved rounds, in a
# different order each round (CREATE DATABASE's cost depends on what the
# checkpointer and the WAL writer are doing, i.e. on what ran just before).
#
#   bash test/bench/provision.sh          # N=10 tenants per variant per round, 3 rounds
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

N=${N:-10}
ROUNDS=${ROUNDS:-3}
TABLES=20

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
tenancy_start_cluster "tenancy.database_prefix = 'bench_'"

migrations="$TENANCY_WORK/migrations"
mkdir -p "$migrations"
for t in $(seq 1 $TABLES); do
	cat > "$migrations/$(printf %03d "$t").sql" <<SQL
CREATE TABLE public.t$t (id bigint PRIMARY KEY, tenant_ref text NOT NULL, payload jsonb, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX t${t}_ref_idx ON public.t$t (tenant_ref);
CREATE INDEX t${t}_created_idx ON public.t$t (created_at);
SQL
done

# register the migrations with tenancy, and build the bare baseline's template
psql -XqAt -v ON_ERROR_STOP=1 -c "CREATE EXTENSION tenancy CASCADE" 2>/dev/null
for f in "$migrations"/*.sql; do
	v=$((10#$(basename "$f" .sql)))
	echo "SELECT tenancy.add_migration(:v, :'sql')" |
		psql -XqAt -v ON_ERROR_STOP=1 -v v="$v" -v sql="$(cat "$f")" >/dev/null
done
psql -XqAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE bare_template" 
for f in "$migrations"/*.sql; do psql -XqAt -v ON_ERROR_STOP=1 -d bare_template -f "$f"; done
# tenancy builds its template on first use: do that before timing
psql -XqAt -v ON_ERROR_STOP=1 -c "SELECT tenancy.provision('warmup')" >/dev/null
psql -XqAt -v ON_ERROR_STOP=1 -c "SELECT tenancy.deprovision('warmup')" >/dev/null

now() { date +%s.%N; }
seed_round() {
	local r=$1 i
	for i in $(seq 1 "$N"); do
		psql -XqAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE seed_${r}_$i"
		for f in "$migrations"/*.sql; do psql -XqAt -v ON_ERROR_STOP=1 -d "seed_${r}_$i" -f "$f"; done
	done
}
bare_round() {
	local r=$1
	for i in $(seq 1 "$N"); do echo "CREATE DATABASE bare_${r}_$i TEMPLATE bare_template;"; done |
		psql -XqAt -v ON_ERROR_STOP=1
}
tenancy_round() {
	local r=$1
	for i in $(seq 1 "$N"); do echo "SELECT tenancy.provision('t-${r}-$i');"; done |
		psql -XqAt -v ON_ERROR_STOP=1 >/dev/null
}
drop_all() {
	psql -XqAt -v ON_ERROR_STOP=1 -c "SELECT tenancy.deprovision(id) FROM tenancy.tenant" >/dev/null
	psql -XAt -c "SELECT datname FROM pg_database WHERE datname ~ '^(seed|bare)_[0-9]'" |
		while read -r db; do psql -XqAt -c "DROP DATABASE \"$db\""; done
}

declare -A rate
echo "== $N tenants per variant per round, $ROUNDS rounds, schema of $TABLES tables with 2 indexes each"
variants=(seed bare tenancy)
for r in $(seq 1 "$ROUNDS"); do
	# rotate the order each round, so that no variant always follows another
	for k in 0 1 2; do
		variant=${variants[$(((k + r) % 3))]}
		start=$(now)
		"${variant}_round" "$r"
		end=$(now)
		per_sec=$(awk -v n="$N" -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", n / (e - s)}')
		rate[$variant]="${rate[$variant]:-} $per_sec"
		printf '   round %d  %-8s %7.2f provisions/s\n' "$r" "$variant" "$per_sec"
	done
	drop_all
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
seed=$(echo "${rate[seed]}" | median)
bare=$(echo "${rate[bare]}" | median)
ten=$(echo "${rate[tenancy]}" | median)
echo "== median provisions/s: seed $seed, bare template copy $bare, tenancy $ten"
awk -v s="$seed" -v b="$bare" -v t="$ten" 'BEGIN {
	printf "tenancy speed / seed speed:          %.2fx  (target >= 3x)\n", t / s;
	printf "tenancy cost / bare copy cost:       %.2fx  (target <= 1.5x)\n", b / t;
}'
