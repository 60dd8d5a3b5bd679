#!/usr/bin/env bash
# test/bench/bootstrap.sh: an application's restart with nothing to do, at
# 200 and then 1,000 tenants (every tenant at the latest version), in one
# run:
#
#   bootstrap   SELECT * FROM tenancy.bootstrap(): the catalog says
#               everyone is up to date, so no tenant needs a session
#   verify      SELECT * FROM tenancy.bootstrap(verify => true): the full
#               audit, every tenant connected to (only if this bootstrap()
#               has the parameter; VERIFY=0 leaves it out)
#   loop        what an application does without tenancy: one psql per
#               tenant, SELECT max(version) FROM tenancy.applied_migration
#
# The variants run in interleaved rounds and the medians are compared.
# bootstrap's time is measured twice: wall clock of a whole psql run
# (connecting included, as for the loop: the ratio is stated on this one)
# and the call alone (psql's \timing).  The cluster logs connections
# (log_connections = on, for every variant alike), and the server log
# written during each bootstrap call is searched for "connection
# authorized" lines naming tenant databases: the sessions that call opened
# to tenants (0 expected by default; 0.1.0's bootstrap opened 2 a tenant).
# Prints the ratio (target >= 100x), bootstrap's time per size (flat in N)
# and a summary table; exits non-zero only on errors.
#
#   bash test/bench/bootstrap.sh                   # SIZES="200 1000"
#   SIZES="50" ROUNDS=1 bash test/bench/bootstrap.sh    # quicker
set -euo pipefail

. "$(dirname "$0")/../lib.sh"

SIZES=${SIZES:-"200 1000"}
ROUNDS=${ROUNDS:-3}
VERIFY=${VERIFY:-1}

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir bench
trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
tenancy_start_cluster "max_connections = 60" "tenancy.database_prefix = 'fleet_'" "shared_buffers = '256MB'" \
	"log_connections = on"
log="$TENANCY_WORK/server.log"

q() { psql -XqAt -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.3f", e - s}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
logsize() { stat -c %s "$log"; }

q -c "CREATE EXTENSION tenancy CASCADE" 2>/dev/null
q -c "SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int PRIMARY KEY, name text); INSERT INTO public.item SELECT g, md5(g::text) FROM generate_series(1, 1000) g')" >/dev/null
q -c "SELECT tenancy.add_migration(2, 'ALTER TABLE public.item ADD COLUMN c1 int; CREATE INDEX item_c1_idx ON public.item (c1)')" >/dev/null

has_verify=$(q -c "SELECT count(*) FROM pg_proc WHERE oid = 'tenancy.bootstrap'::regproc AND 'verify' = ANY (proargnames)")
variants=(bootstrap loop)
if [ "$VERIFY" = 1 ] && [ "$has_verify" = 1 ]; then variants+=(verify); fi
[ "$has_verify" = 1 ] || echo "== this bootstrap() has no verify parameter: it always connects to every tenant"

# one bootstrap call in a psql run of its own; sets $wall and $call
# (seconds) and $sessions (tenant sessions the server log shows it opened)
run_bootstrap() {
	local args=$1 before out rows failed
	before=$(logsize)
	start=$(now)
	out=$(printf '%s\n' "SET client_min_messages = warning;" '\timing on' \
		"SELECT count(*) || ' ' || count(*) FILTER (WHERE status = 'failed') FROM tenancy.bootstrap($args);" | q)
	wall=$(elapsed "$start")
	sessions=$(tail -c +$((before + 1)) "$log" | grep -c 'connection authorized: .*database=fleet_' || true)
	read -r rows failed <<< "$(echo "$out" | head -n 1)"
	[ "$failed" = 0 ] || { echo "bootstrap($args): $failed of $rows rows failed" >&2; exit 1; }
	call=$(echo "$out" | awk '/^Time:/ {printf "%.3f", $2 / 1000}')
}
run_loop() {
	local db
	start=$(now)
	while read -r db; do q -d "$db" -c "SELECT max(version) FROM tenancy.applied_migration" >/dev/null; done < "$dblist"
	wall=$(elapsed "$start")
}

declare -A t
summary=()
calls=()	# "N seconds" of bootstrap's call, per size
have=0
for size in $SIZES; do
	echo "== provisioning up to $size tenants"
	q -c "SELECT count(tenancy.provision('t' || i)) FROM generate_series($((have + 1)), $size) i" >/dev/null
	have=$size
	q -c "SELECT count(*) FROM tenancy.migrate_all(8)" >/dev/null 2>&1	# everyone at the latest version
	dblist="$TENANCY_WORK/dbs.$size"
	q -c "SELECT database_name FROM tenancy.tenant ORDER BY id" > "$dblist"
	behind=$(q -c "SELECT count(*) FROM tenancy.tenant WHERE state <> 'ready' OR applied_version <> 2")
	[ "$behind" = 0 ] || { echo "$behind tenants are not ready at version 2" >&2; exit 1; }
	run_bootstrap ""	# warm-up: the first call after provisioning may still have work

	echo "== $size tenants, nothing to do: $ROUNDS rounds"
	for r in $(seq 1 "$ROUNDS"); do
		for k in $(seq 0 $((${#variants[@]} - 1))); do
			v=${variants[$(((k + r) % ${#variants[@]}))]}
			case $v in
				bootstrap) run_bootstrap "" ;;
				verify) run_bootstrap "verify => true" ;;
				loop) run_loop ;;
			esac
			t[$size,$v]="${t[$size,$v]:-} $wall"
			if [ "$v" = loop ]; then
				printf '   round %d  %-10s %8.3f s\n' "$r" "$v" "$wall"
			else
				t[$size,$v,call]="${t[$size,$v,call]:-} $call"
				t[$size,$v,sessions]="${t[$size,$v,sessions]:-} $sessions"
				printf '   round %d  %-10s %8.3f s  (call alone %.3f s; %d tenant sessions)\n' "$r" "$v" "$wall" "$call" "$sessions"
			fi
		done
	done

	bw=$(echo "${t[$size,bootstrap]}" | median)
	bc=$(echo "${t[$size,bootstrap,call]}" | median)
	bs=$(echo "${t[$size,bootstrap,sessions]}" | median)
	lw=$(echo "${t[$size,loop]}" | median)
	if [ -n "${t[$size,verify]:-}" ]; then
		vw=$(echo "${t[$size,verify]}" | median)
		vs=$(echo "${t[$size,verify,sessions]}" | median)
	else
		vw=0 vs=0
	fi
	line=$(awk -v n="$size" -v bw="$bw" -v bc="$bc" -v bs="$bs" -v lw="$lw" -v vw="$vw" -v vs="$vs" 'BEGIN {
		printf "%6d  %9.3f  %9.3f  %8d  %8.2f  %8.0fx", n, bw, bc, bs, lw, lw / bw;
		if (vw > 0) printf "  %8.2f  %8d", vw, vs; else printf "  %8s  %8s", "-", "-" }')
	summary+=("$line")
	calls+=("$size $bc")
	awk -v n="$size" -v bw="$bw" -v bc="$bc" -v bs="$bs" -v lw="$lw" -v vw="$vw" -v vs="$vs" 'BEGIN {
		printf "RESULT %d tenants: bootstrap() with nothing to do takes %.3f s (the call alone %.3f s), connecting to each tenant %.2f s: %.0fx faster (target >= 100x)\n", n, bw, bc, lw, lw / bw;
		printf "RESULT %d tenants: bootstrap() opened %d sessions to tenant databases (expected 0; 0.1.0 opened 2 per tenant)\n", n, bs;
		if (vw > 0)
			printf "RESULT %d tenants: bootstrap(verify => true) takes %.2f s and opens %d tenant sessions\n", n, vw, vs;
	}'
done

echo "== summary (medians of $ROUNDS rounds; bootstrap's wall clock includes connecting psql)"
printf '%6s  %9s  %9s  %8s  %8s  %9s  %8s  %8s\n' tenants "bootstrap" "call" sessions loop "loop/bs" verify sessions
for line in "${summary[@]}"; do echo "$line"; done
printf '%s\n' "${calls[@]}" | awk 'NR == 1 {n0 = $1; c0 = $2} {n = $1; c = $2} END {
	if (NR > 1)
		printf "RESULT bootstrap() call: %.3f s at %d tenants, %.3f s at %d (%.2fx for %.0fx the tenants; flat is 1x)\n", c0, n0, c, n, c / c0, n / n0 }'
