#!/usr/bin/env bash
# test/core_regress.sh: PostgreSQL's own regression suite (the core
# parallel schedule, from Debian's source package of PostgreSQL 15) behaves
# the same with tenancy preloaded as without it.  Runs the suite on a
# throwaway cluster without tenancy, then on one with
# shared_preload_libraries = 'tenancy', and compares the two outcomes: the
# same tests fail (if any: the source package may be a minor release behind
# the server) with the same differences.  Exits non-zero if they differ.
#
#   bash test/core_regress.sh          # as root on a fresh Debian 12 machine
set -uo pipefail

. "$(dirname "$0")/lib.sh"

tenancy_ensure_packages dpkg-dev || exit 1
[ -n "${TENANCY_BUILT:-}" ] || tenancy_build_install >/dev/null || exit 1
tenancy_workdir core
trap 'tenancy_stop_cluster; [ -n "${KEEP:-}" ] || rm -rf "$TENANCY_WORK"' EXIT

# Debian's source of PostgreSQL 15: only src/test/regress is needed
if [ "$(id -u)" -eq 0 ] && ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && \
	! grep -qs '^deb-src' /etc/apt/sources.list; then
	printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
		> /etc/apt/sources.list.d/tenancy-deb-src.sources
	apt-get update -qq
fi
(cd "$TENANCY_WORK" && apt-get source -qq --download-only postgresql-15 >/dev/null 2>&1) || {
	echo "could not download Debian's source package postgresql-15" >&2; exit 1; }
orig=$(ls "$TENANCY_WORK"/postgresql-15_*.orig.tar.bz2)
top=$(tar tjf "$orig" | head -1 | cut -d/ -f1)
tar xjf "$orig" -C "$TENANCY_WORK" "$top/src/test/regress"
src="$TENANCY_WORK/$top/src/test/regress"
echo "== core regression suite of $top"

# the suite's C module, and contrib/spi's two that its trigger tests load
dl="$TENANCY_WORK/dl"
mkdir -p "$dl"
gcc -O2 -fPIC -shared -I"$(pg_config --includedir-server)" -o "$dl/regress.so" "$src/regress.c" || exit 1
for m in autoinc refint; do ln -s "$(pg_config --pkglibdir)/$m.so" "$dl/$m.so"; done
chown -R postgres:postgres "$TENANCY_WORK"

# one run: its outcome as "test: ok|FAILED" lines and the normalised diffs
run_suite() {
	local name=$1
	shift
	tenancy_start_cluster "$@" "max_stack_depth = '2MB'" >/dev/null
	mkdir -p "$TENANCY_WORK/out-$name"
	chown postgres:postgres "$TENANCY_WORK/out-$name"
	as_pg "$(pg_config --pgxs | xargs dirname)/../test/regress/pg_regress" \
		--inputdir="$src" --outputdir="$TENANCY_WORK/out-$name" --dlpath="$dl" \
		--bindir="$PG_BINDIR" --host="$PGHOST" --port="$PGPORT" --max-connections=4 \
		--schedule="$src/parallel_schedule" >"$TENANCY_WORK/$name.log" 2>&1
	tenancy_stop_cluster
	rm -rf "$TENANCY_WORK/data"
	sed -nE 's/^ *(test )?([A-Za-z0-9_]+) +\.\.\. +([a-zA-Z ()]*[a-zA-Z)]) +[0-9]+ ms$/\2 \3/p' \
		"$TENANCY_WORK/out-$name/regression.out" 2>/dev/null | sort >"$TENANCY_WORK/$name.outcome"
	if [ -f "$TENANCY_WORK/out-$name/regression.diffs" ]; then
		grep -vE '^(diff |--- |\+\+\+ )' "$TENANCY_WORK/out-$name/regression.diffs" >"$TENANCY_WORK/$name.diffs"
	else
		: >"$TENANCY_WORK/$name.diffs"
	fi
	echo "   $name: $(grep -c '' "$TENANCY_WORK/$name.outcome") tests, $(grep -vc ' ok$' "$TENANCY_WORK/$name.outcome") failed"
}

run_suite without "shared_preload_libraries = ''"
run_suite with "shared_preload_libraries = 'tenancy'"

status=0
if ! diff -u "$TENANCY_WORK/without.outcome" "$TENANCY_WORK/with.outcome"; then
	echo "core regression: different tests fail with tenancy preloaded" >&2
	status=1
fi
if ! diff -u "$TENANCY_WORK/without.diffs" "$TENANCY_WORK/with.diffs" >"$TENANCY_WORK/diffdiff"; then
	echo "core regression: the failures differ with tenancy preloaded" >&2
	head -100 "$TENANCY_WORK/diffdiff" >&2
	status=1
fi
[ $status -eq 0 ] && echo "== core regression suite: the same with tenancy preloaded as without"
exit $status
