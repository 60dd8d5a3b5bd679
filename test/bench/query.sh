#!/usr/bin/env bash
# test/bench/query.sh: the per-call cost of a routed query, tenancy.query(),
# which runs SQL in the selected tenant's database through a connection the
# session keeps per tenant, measured with pgbench in one run against two
# baselines.  Every variant reads one row of public.note in a tenant database:
#
#   direct     pgbench connected straight to the tenant database:
#              SELECT id, body FROM public.note WHERE id = 1    (the floor)
#   tenancy    SET tenancy.current = 'q-1' \;
#              SELECT * FROM tenancy.query('SELECT ...') AS t(id int, body text)
#   tenancy-N  the same, each transaction picking one of the TENANTS tenants
#              at random, so each session keeps TENANTS connections
#   dblink     SELECT * FROM dblink('dbname=... host=... port=... user=postgres',
#              'SELECT ...') AS t(id int, body text), a new connection per
#              call, to a random tenant: what people do without tenancy
#
# pgbench runs in simple protocol (-M simple), one round trip per
# transaction in every variant (the SET and the routed query are sent
# together).  It runs as the superuser postgres over the local socket:
# routed queries as an ordinary role need a loopback server and a user
# mapping with a password, which this benchmark leaves out.
#
# The variants run in interleaved rounds and the median TPS of each is
# compared, so machine noise hits all of them alike.  Exits non-zero only on
# errors, never on the figures.
#
#   bash test/bench/query.sh        # as root on Debian 12: throwaway cluster,
#                                   # 3 rounds x 5 s x 4 variants (~1.5 min)
#   ROUNDS=1 SECONDS_PER_RUN=3 CLIENTS=2 TENANTS=4 bash test/bench/query.sh
#
# Reading the output: "tenancy speed-up over dblink" is how many routed calls
# tenancy makes in the time dblink makes one (connection set-up dominates
# dblink); "tenancy cost / direct cost" is what the hop through the kept
# connection costs relative to running the query in the tenant database
# itself; the "us per call" figures are the same in absolute terms.
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

TENANTS=${TENANTS:-4}
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
CLIENTS=${CLIENTS:-2}

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
# each tenancy-N session keeps TENANTS connections, and dblink opens its own
tenancy_start_cluster "shared_buffers = '256MB'" "max_connections = $((CLIENTS * (TENANTS + 2) + 20))"

psql -XqAt -v ON_ERROR_STOP=1 -c "SET client_min_messages = warning" -c "CREATE EXTENSION tenancy CASCADE"
for i in $(seq 1 "$TENANTS"); do
	psql -XqAt -v ON_ERROR_STOP=1 -v id="q-$i" >/dev/null <<'SQL'
SELECT tenancy.provision(:'id');
SET tenancy.current = :'id';
SELECT tenancy.exec('CREATE TABLE public.note (id int PRIMARY KEY, body text); INSERT INTO public.note VALUES (1, ''x''); ANALYZE public.note');
SQL
done
db=$(psql -XqAt -v ON_ERROR_STOP=1 -c "SELECT database_name FROM tenancy.tenant WHERE id = 'q-1'")

# the pgbench scripts; each variant is checked once before timing
scripts="$TENANCY_WORK/scripts"
mkdir -p "$scripts"
q='SELECT id, body FROM public.note WHERE id = 1'
connstr="dbname=${db%q-1}q-:n host=$PGHOST port=$PGPORT user=postgres"
echo "$q;" > "$scripts/direct.sql"
echo "SET tenancy.current = 'q-1' \\; SELECT * FROM tenancy.query('$q') AS t(id int, body text);" > "$scripts/tenancy.sql"
printf '\\set n random(1, %d)\n%s\n' "$TENANTS" \
	"SET tenancy.current = 'q-:n' \\; SELECT * FROM tenancy.query('$q') AS t(id int, body text);" > "$scripts/tenancy-N.sql"
printf '\\set n random(1, %d)\n%s\n' "$TENANTS" \
	"SELECT * FROM dblink('$connstr', '$q') AS t(id int, body text);" > "$scripts/dblink.sql"
for variant in direct tenancy dblink; do
	[ "$variant" = direct ] && d=$db || d=postgres
	got=$(sed -e '/^\\set/d' -e 's/:n/1/g' -e 's/\\;/;/' "$scripts/$variant.sql" | psql -XqAt -v ON_ERROR_STOP=1 -d "$d")
	[ "$got" = "1|x" ] || { echo "$variant returned '$got', not '1|x'" >&2; exit 1; }
done

run() {
	local d=postgres out
	[ "$1" = direct ] && d=$db
	out=$(pgbench -n -M simple -c "$CLIENTS" -j "$CLIENTS" -T "$SECONDS_PER_RUN" -f "$scripts/$1.sql" "$d" 2>&1) ||
		{ echo "$out" >&2; return 1; }
	sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out"
}

variants="direct tenancy tenancy-N dblink"
declare -A results
echo "== $TENANTS tenants (tenancy-N keeps $TENANTS connections per session), $ROUNDS rounds x ${SECONDS_PER_RUN}s per variant, $CLIENTS clients, pgbench -M simple"
for round in $(seq 1 "$ROUNDS"); do
	for variant in $variants; do
		if ! tps=$(run "$variant") || [ -z "$tps" ]; then echo "pgbench failed for $variant" >&2; exit 1; fi
		results[$variant]="${results[$variant]:-} $tps"
		printf '   round %d  %-10s %10.0f tps\n' "$round" "$variant" "$tps"
	done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
direct=$(echo "${results[direct]}" | median)
tenancy=$(echo "${results[tenancy]}" | median)
tenancyN=$(echo "${results[tenancy-N]}" | median)
dblink=$(echo "${results[dblink]}" | median)

awk -v d="$direct" -v t="$tenancy" -v n="$tenancyN" -v b="$dblink" -v c="$CLIENTS" 'BEGIN {
	printf "== median TPS: direct %.0f, tenancy %.0f, tenancy-N %.0f, dblink %.0f\n", d, t, n, b;
	printf "tenancy speed-up over dblink:     %.1fx\n", t / b;
	printf "tenancy-N speed-up over dblink:   %.1fx\n", n / b;
	printf "tenancy cost / direct cost:       %.2fx\n", d / t;
	printf "tenancy-N cost / direct cost:     %.2fx\n", d / n;
	printf "per call, per client: direct %.0f us, tenancy %.0f us, tenancy-N %.0f us, dblink %.0f us\n",
		1e6 * c / d, 1e6 * c / t, 1e6 * c / n, 1e6 * c / b;
}'
