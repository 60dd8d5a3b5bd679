#!/usr/bin/env bash
# test/pgindent.sh: formats tenancy's C code the way PostgreSQL's pgindent
# does: the same pg_bsd_indent options and the same pre- and post-processing,
# with core's typedefs (extracted from the installed PostgreSQL 15 headers)
# plus tenancy's own (src/typedefs.list).
#
#   bash test/pgindent.sh              # rewrite src/*.c src/*.h in place
#   bash test/pgindent.sh --check      # change nothing: print a diff, exit 1 on drift
#   bash test/pgindent.sh --typedefs   # print tenancy's typedefs as found in src/
#   bash test/pgindent.sh [--check] FILE...   # only these files
#
# Regenerate the project list with
#   bash test/pgindent.sh --typedefs > src/typedefs.list
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVER_INC=/usr/include/postgresql/15/server
LIBPQ_INC=/usr/include/postgresql
LIST="$ROOT/src/typedefs.list"

# pgindent's standard options (PostgreSQL 15, pg_bsd_indent 2.1.1); -U is added below.
INDENT_OPTS=(-bad -bap -bbb -bc -bl -cli1 -cp33 -cdb -nce -d0 -di12 -nfc1 -i4 -l79 -lp -lpl -nip -npro -sac -tpg -ts4)
# Names pgindent never treats as typedefs, whatever the headers say.
EXCLUDED=(ANY FD_SET U abs allocfunc boolean date digit ilist interval iterator other
	pointer printfunc reference string timestamp type wrap)

die() { echo "pgindent.sh: $*" >&2; exit 2; }

# Prints, sorted, the names the given C files declare with typedef:
#   typedef struct X X;  typedef int Foo;  typedef char *Pointer;
#   typedef struct X { ... } Name, *NamePtr;   (also enum, union, core's CATALOG())
#   typedef void (*Hook) (int arg);
typedef_names() {
	awk '
	# Takes the declared names out of "...} A, *B;" or "unsigned int Oid;".
	function emit(s,    n, part, i) {
		sub(/;.*/, "", s)
		gsub(/[A-Za-z_][A-Za-z_0-9]*[ \t]*\([^()]*(\([^()]*\))?[^()]*\)/, "", s)	# attribute macros
		gsub(/\[[^]]*\]/, "", s)	# array bounds
		n = split(s, part, ",")
		for (i = 1; i <= n; i++)
			if (match(part[i], /[A-Za-z_][A-Za-z_0-9]*[ \t]*$/)) {
				s = substr(part[i], RSTART, RLENGTH)
				sub(/[ \t]+$/, "", s)
				print s
			}
	}
	FNR == 1 { body = 0; incomment = 0 }
	# Drop comments, so that braces and words in them do not count.
	incomment { if (!sub(/.*\*\//, "")) next; incomment = 0 }
	{
		gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, "")
		if (sub(/\/\*.*/, "")) incomment = 1
		sub(/\/\/.*/, "")
	}
	!body && /^[ \t]*(typedef[ \t]|CATALOG\()/ {
		if (/^[ \t]*typedef/ && match($0, /\([ \t]*\*[ \t]*[A-Za-z_][A-Za-z_0-9]*[ \t]*\)/)) {
			s = substr($0, RSTART, RLENGTH)
			gsub(/[()* \t]/, "", s)
			print s		# function pointer
			next
		}
		sub(/^[ \t]*typedef[ \t]+/, "")
		body = 1; depth = 0; text = ""
	}
	# Collect the typedef up to the ";" outside braces; the names follow the last "}".
	body && !/^[ \t]*#/ {
		depth += gsub(/\{/, "{") - gsub(/\}/, "}")
		text = text " " $0
		if (depth > 0 || !/;/) next
		sub(/.*\}/, "", text)
		emit(text)
		body = 0
	}
	' "$@" | LC_ALL=C sort -u
}

mode=fix
case "${1:-}" in
	--check | --typedefs) mode=${1#--}; shift ;;
	-h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) die "unknown option $1 (try --help)" ;;
esac

if [ "$mode" = typedefs ]; then
	typedef_names "$ROOT"/src/*.c "$ROOT"/src/*.h
	exit 0
fi

# pg_bsd_indent: install it when root, as test/lib.sh installs everything else.
if ! command -v pg_bsd_indent >/dev/null; then
	[ "$(id -u)" -eq 0 ] ||
		die "pg_bsd_indent not found: install the Debian package pg-bsd-indent (apt-get install pg-bsd-indent, as root)"
	echo "== installing pg-bsd-indent" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq pg-bsd-indent >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq pg-bsd-indent >/dev/null; } ||
		die "could not install pg-bsd-indent"
fi
case "$(pg_bsd_indent --version 2>&1)" in
	*" 2.1.1 "*) ;;
	*) echo "pgindent.sh: warning: PostgreSQL 15's pgindent uses pg_bsd_indent 2.1.1, not $(pg_bsd_indent --version 2>&1)" >&2 ;;
esac
[ -f "$SERVER_INC/postgres.h" ] ||
	die "no PostgreSQL 15 server headers in $SERVER_INC (install postgresql-server-dev-15)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tenancy-pgindent.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Core's typedefs from the server and libpq headers (not other versions' server
# headers under $LIBPQ_INC/NN), tenancy's, and "bool"; less the excluded names.
mapfile -t headers < <(find "$SERVER_INC" -name '*.h'
	find "$LIBPQ_INC" -path "$LIBPQ_INC/[0-9]*" -prune -o -name '*.h' -print)
typedef_names "${headers[@]}" >"$tmp/core"
typedef_names "$ROOT"/src/*.c "$ROOT"/src/*.h >"$tmp/own"
touch "$tmp/listed"
[ ! -f "$LIST" ] || grep -v '^[[:space:]]*$' "$LIST" | LC_ALL=C sort -u >"$tmp/listed" || true
printf '%s\n' "${EXCLUDED[@]}" >"$tmp/excluded"
{ cat "$tmp/core" "$tmp/listed" "$tmp/own"; echo bool; } |
	grep -vxF -f "$tmp/excluded" | LC_ALL=C sort -u >"$tmp/typedefs"

status=0
# src/typedefs.list is the project's list, used with core's (pg_hint_plan's
# way, also by anyone running core's pgindent): it must name every typedef in
# src/, or code using a missing one is formatted as a product ("Foo * bar").
missing=$(LC_ALL=C comm -23 "$tmp/own" "$tmp/listed" | tr '\n' ' ')
if [ -n "$missing" ]; then
	echo "pgindent.sh: src/typedefs.list lacks typedefs defined in src/: $missing" >&2
	echo "pgindent.sh: regenerate it: bash test/pgindent.sh --typedefs > src/typedefs.list" >&2
	if [ "$mode" = check ]; then status=1; fi
fi
stale=$(LC_ALL=C comm -13 "$tmp/own" "$tmp/listed" | tr '\n' ' ')
[ -z "$stale" ] || echo "pgindent.sh: note: src/typedefs.list names typedefs not found in src/: $stale" >&2

[ $# -gt 0 ] || set -- "$ROOT"/src/*.c "$ROOT"/src/*.h
changed=0
for f in "$@"; do
	[ -f "$f" ] || die "no such file: $f"
	abs=$(cd "$(dirname "$f")" && pwd)/$(basename "$f")
	name=${abs#"$ROOT"/}	# for messages and diff labels: src/x.c

	# pgindent's pre-processing: // comments become /* */, and "/* ---"
	# comments (whose layout is kept as written) are hidden from indent.
	sed -E -e 's!^([ \t]*)//(.*)$!\1/* \2 */!' \
		-e 's!/\* +---!/*---X_X!g' "$f" >"$tmp/in.c"

	# Any message from indent (unbalanced braces, ...) is a failure, as in pgindent.
	if ! err=$(pg_bsd_indent "${INDENT_OPTS[@]}" -U"$tmp/typedefs" "$tmp/in.c" "$tmp/out.c" 2>&1) || [ -n "$err" ]; then
		echo "pgindent.sh: pg_bsd_indent failed on $name: ${err//$tmp\/in.c/$name}" >&2
		status=1
		continue
	fi

	# pgindent's post-processing: restore the dash comments, a tab between
	# run-together comments, and "Type *" not "Type\t*" before a function name.
	sed -E -e 's!/\*---X_X!/* ---!g' \
		-e 's!\*/(/\*.*\*/)$!*/\t\1!' \
		-e 's!^([A-Za-z_][^[:space:]]*)[ \t]+\*$!\1 *!' "$tmp/out.c" >"$tmp/new.c"

	cmp -s "$f" "$tmp/new.c" && continue
	changed=$((changed + 1))
	if [ "$mode" = check ]; then
		case $name in /*) a=$name b=$name ;; *) a=a/$name b=b/$name ;; esac
		diff -u --label "$a" --label "$b" "$f" "$tmp/new.c" || true
		status=1
	else
		cat "$tmp/new.c" >"$f"	# keeps the file's owner and mode
		echo "formatted $name"
	fi
done

if [ "$mode" = check ] && [ $changed -gt 0 ]; then
	echo "pgindent.sh: $changed file(s) not formatted; run: bash test/pgindent.sh" >&2
fi
exit $status
