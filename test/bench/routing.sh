#!/usr/bin/env bash
# test/bench/routing.sh: the per-transaction cost of selecting and resolving a
# tenant, with 10,000 tenants in the catalog, measured with pgbench in one run
# against two baselines:
#
#   floor     SET app.tenant = '<id>';     SELECT current_setting('app.tenant');
#   tenancy   SET tenancy.current = '<id>'; SELECT tenancy.current_tenant();
#   plpgsql   SET app.tenant = '<id>';     SELECT diy_current_tenant();
#             (a PL/pgSQL function reading a tenants table, checking state)
#
# All three run as an ordinary application role, which tenancy checks on
# every resolution (it is granted every tenant through a group role).
#
# Each transaction picks a random tenant.  The variants run in interleaved
# rounds and the median TPS of each is compared, so machine noise hits all
# of them alike.  Prints the ratios; exits non-zero only on errors.
#
#   bash test/bench/routing.sh                 # throwaway cluster, defaults
#   ROUNDS=5 SECONDS_PER_RUN=10 CLIENTS=2 bash test/bench/routing.sh
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

TENANTS=${TENANTS:-10000}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
CLIENTS=${CLIENTS:-2}

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
tenancy_start_cluster "shared_buffers = '256MB'"

psql -XqAt -v ON_ERROR_STOP=1 -v tenants="$TENANTS" <<'SQL'
CREATE EXTENSION tenancy CASCADE;
-- catalog rows only: resolution never touches the tenant databases
INSERT INTO tenancy.tenant (id, database_name, state)
SELECT 'bench-' || i, 'tenant_bench-' || i, 'ready' FROM generate_series(1, :tenants) i;
-- the do-it-yourself baseline
CREATE TABLE public.tenants (id text PRIMARY KEY, database_name text NOT NULL, state text NOT NULL);
INSERT INTO public.tenants SELECT id, database_name, state FROM tenancy.tenant;
CREATE FUNCTION public.diy_current_tenant() RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  t public.tenants;
BEGIN
  SELECT * INTO t FROM public.tenants WHERE id = current_setting('app.tenant');
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenant "%" does not exist', current_setting('app.tenant');
  END IF;
  IF t.state <> 'ready' THEN
    RAISE EXCEPTION 'tenant "%" is not ready', t.id;
  END IF;
  RETURN t.id;
END $$;
-- an application role, granted every tenant through a group role
CREATE ROLE bench_tenants;
CREATE ROLE bench_app LOGIN IN ROLE bench_tenants;
INSERT INTO tenancy.member (tenant_id, role) SELECT id, 'bench_tenants' FROM tenancy.tenant;
GRANT SELECT ON public.tenants TO bench_app;
VACUUM ANALYZE;
SQL

scripts="$TENANCY_WORK/scripts"
mkdir -p "$scripts"
printf '\\set n random(1, %d)\nSET app.tenant = '"'"'bench-:n'"'"';\nSELECT current_setting('"'"'app.tenant'"'"');\n' "$TENANTS" > "$scripts/floor.sql"
printf '\\set n random(1, %d)\nSET tenancy.current = '"'"'bench-:n'"'"';\nSELECT tenancy.current_tenant();\n' "$TENANTS" > "$scripts/tenancy.sql"
printf '\\set n random(1, %d)\nSET app.tenant = '"'"'bench-:n'"'"';\nSELECT public.diy_current_tenant();\n' "$TENANTS" > "$scripts/plpgsql.sql"

run() {
	pgbench -n -U bench_app -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -f "$scripts/$1.sql" postgres 2>&1 |
		sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

declare -A results
echo "== $TENANTS tenants, $ROUNDS rounds x ${SECONDS_PER_RUN}s per variant, $CLIENTS clients"
for round in $(seq 1 "$ROUNDS"); do
	for variant in floor tenancy plpgsql; do
		tps=$(run "$variant")
		[ -n "$tps" ] || { echo "pgbench failed for $variant" >&2; exit 1; }
		results[$variant]="${results[$variant]:-} $tps"
		printf '   round %d  %-8s %10.0f tps\n' "$round" "$variant" "$tps"
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
floor=$(echo "${results[floor]}" | median)
tenancy=$(echo "${results[tenancy]}" | median)
plpgsql=$(echo "${results[plpgsql]}" | median)

echo "== median TPS: floor $floor, tenancy $tenancy, plpgsql $plpgsql"
awk -v f="$floor" -v t="$tenancy" -v p="$plpgsql" 'BEGIN {
	printf "tenancy cost / floor cost:     %.2fx  (target <= 1.50x)\n", f / t;
	printf "plpgsql cost / tenancy cost:   %.2fx  (target > 1.00x: tenancy faster)\n", t / p;
	printf "per-transaction overhead vs floor: %.1f us per client\n", (1e6 / t - 1e6 / f) * '"$CLIENTS"';
}'
