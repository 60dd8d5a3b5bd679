#!/usr/bin/env bash
# test/run.sh: checks the C formatting (test/pgindent.sh --check) and the
# layering of src/ (test/layers.sh), builds
# tenancy and runs every test suite (pg_regress, isolation, TAP) against a
# throwaway PostgreSQL 15 cluster, then PostgreSQL's own regression suite
# with and without tenancy preloaded (test/core_regress.sh).  Run as root on a fresh
# Debian 12 machine: it installs what is missing, runs PostgreSQL as the
# "postgres" OS user in a temporary directory, prints regression.diffs and
# server logs on failure, stops the cluster and exits non-zero on any failure.
#
#   bash test/run.sh            # everything
#   KEEP=1 bash test/run.sh     # keep the temporary directory for inspection
set -uo pipefail

. "$(dirname "$0")/lib.sh"

tenancy_ensure_packages pgbouncer || exit 1

# Formatting drift (pgindent, see test/pgindent.sh) and a broken layering
# (test/layers.sh: includes go down the layers of README's code map) are one
# failed test each; the suites still run.
echo "== formatting (test/pgindent.sh --check)"
if bash "$TENANCY_ROOT/test/pgindent.sh" --check; then
	format_failed=0
else
	format_failed=1
fi
echo "== layering (test/layers.sh)"
if bash "$TENANCY_ROOT/test/layers.sh"; then
	layers_failed=0
else
	layers_failed=1
fi

tenancy_build_install || exit 1

tenancy_workdir test
trap 'tenancy_stop_cluster; [ -n "${KEEP:-}" ] || rm -rf "$TENANCY_WORK"' EXIT

# The suites write results/, output_iso/ and tmp_check/ next to their inputs,
# so they run in a copy of the tree that the postgres user owns.
rsync -a --exclude .git --exclude results --exclude tmp_check "$TENANCY_ROOT/" "$TENANCY_WORK/src/"
[ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$TENANCY_WORK/src"

tenancy_start_cluster
echo "== cluster on port $PGPORT ($(psql -XAtc 'SHOW server_version'))"

status=0
log="$TENANCY_WORK/check.log"
echo "== pg_regress and isolation suites, then TAP tests (make installcheck)"
as_pg make -C "$TENANCY_WORK/src" -s PG_CONFIG="$PG_BINDIR/pg_config" \
	PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres \
	PROVE_FLAGS="--timer" installcheck 2>&1 | tee "$log"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
	status=1
	for f in "$TENANCY_WORK/src/regression.diffs" "$TENANCY_WORK/src/output_iso/regression.diffs"; do
		if [ -s "$f" ]; then
			echo "======== $f"
			cat "$f"
		fi
	done
	for f in "$TENANCY_WORK"/src/tmp_check/log/*; do
		[ -f "$f" ] || continue
		echo "======== $f (last 80 lines)"
		tail -n 80 "$f"
	done
	echo "======== server log (last 200 lines)"
	tail -n 200 "$TENANCY_WORK/server.log"
fi

# One closing line for the three suites: pg_regress and isolation tests
# ("test x ... ok") and TAP test files ("t/x.pl .. ok").
passed=$(grep -cE '^(test |     )?[a-z_0-9]+ +\.\.\. ok|\.pl \.+ ok' "$log" || true)
failed=$(grep -cE '\.\.\. FAILED|\.pl \.+ (Dubious|Failed|not ok)' "$log" || true)
if [ $status -ne 0 ] && [ "$failed" -eq 0 ]; then
	failed=1	# make failed before a test could report (build, server, harness)
fi
# PostgreSQL's own regression suite, with and without tenancy preloaded
# (test/core_regress.sh, clusters of its own): one test
tenancy_stop_cluster
echo "== PostgreSQL's core regression suite with and without tenancy (test/core_regress.sh)"
if TENANCY_BUILT=1 bash "$TENANCY_ROOT/test/core_regress.sh"; then
	core_failed=0
else
	core_failed=1
fi
# ... and the formatting and layering checks count as one test each
for check_failed in $format_failed $layers_failed $core_failed; do
	if [ "$check_failed" -ne 0 ]; then
		status=1
		failed=$((failed + 1))
	else
		passed=$((passed + 1))
	fi
done
if [ $status -eq 0 ]; then
	echo "== all test suites passed"
else
	echo "== FAILED"
fi
echo "tests: $passed passed, $failed failed"
exit $status
