# test/lib.sh: shared set-up for test/run.sh, test/demo.sh and the benchmarks.
# Sourced, not run.  Everything PostgreSQL runs as the "postgres" OS user
# (PostgreSQL refuses root) in a throwaway directory, on a private port and
# socket directory, and is stopped by its own pid file.

PG_BINDIR=""
TENANCY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Installs what a fresh Debian 12 machine lacks (as root), then finds pg_config.
tenancy_ensure_packages() {
	local missing=()
	[ -f /usr/include/postgresql/15/server/postgres.h ] || missing+=(postgresql-server-dev-15)
	[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
	[ -f /usr/share/postgresql/15/extension/dblink.control ] || missing+=(postgresql-contrib-15)
	perl -MIPC::Run -e 1 2>/dev/null || missing+=(libipc-run-perl)
	command -v make >/dev/null || missing+=(make)
	command -v gcc >/dev/null || missing+=(gcc)
	command -v rsync >/dev/null || missing+=(rsync)
	command -v pg_bsd_indent >/dev/null || missing+=(pg-bsd-indent)	# test/pgindent.sh
	# node and npm (test/example) by command, not by package: nodesource's
	# nodejs carries its own npm, and Debian's npm package conflicts with it
	command -v node >/dev/null || missing+=(nodejs)
	command -v npm >/dev/null || missing+=(npm)
	for extra in "$@"; do
		dpkg -s "$extra" >/dev/null 2>&1 || missing+=("$extra")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		if [ "$(id -u)" -ne 0 ]; then
			echo "missing packages: ${missing[*]} (run as root to install them)" >&2
			return 1
		fi
		echo "== installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	PG_BINDIR=/usr/lib/postgresql/15/bin
	export PATH="$PG_BINDIR:$PATH"
}

# Builds with warnings as errors and installs the extension.
tenancy_build_install() {
	echo "== building and installing tenancy"
	make -C "$TENANCY_ROOT" -s clean >/dev/null
	make -C "$TENANCY_ROOT" -s PG_CONFIG="$PG_BINDIR/pg_config" \
		PG_CFLAGS="-DUSE_ASSERT_CHECKING -Wall -Wextra -Werror -Wno-unused-parameter"
	make -C "$TENANCY_ROOT" -s PG_CONFIG="$PG_BINDIR/pg_config" install >/dev/null
}

# Runs a command as the postgres OS user (or as ourselves if not root).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- env PATH="$PATH" "$@"
	else
		"$@"
	fi
}

# Makes a throwaway directory the postgres user owns; sets TENANCY_WORK.
tenancy_workdir() {
	TENANCY_WORK=$(mktemp -d "${TMPDIR:-/tmp}/tenancy-$1.XXXXXX")
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$TENANCY_WORK"
	chmod 755 "$TENANCY_WORK"
}

# Picks a free TCP port (the socket file name depends on it too).
tenancy_free_port() {
	local p
	for p in $(seq 54320 54420); do
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && [ ! -e "$TENANCY_WORK/.s.PGSQL.$p" ]; then
			echo "$p"
			return
		fi
	done
	echo 54399
}

# Starts a cluster in $TENANCY_WORK/data; sets PGHOST, PGPORT, PGUSER.
# Extra postgresql.conf lines may be passed as arguments.
tenancy_start_cluster() {
	local port
	port=$(tenancy_free_port)
	as_pg initdb -D "$TENANCY_WORK/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$TENANCY_WORK/initdb.log" 2>&1
	{
		echo "port = $port"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$TENANCY_WORK'"
		echo "max_connections = 100"
		echo "max_prepared_transactions = 4"
		echo "shared_preload_libraries = 'tenancy'"
		echo "fsync = off"
		for line in "$@"; do echo "$line"; done
	} | as_pg tee -a "$TENANCY_WORK/data/postgresql.conf" >/dev/null
	as_pg pg_ctl -D "$TENANCY_WORK/data" -l "$TENANCY_WORK/server.log" -w start >/dev/null
	export PGHOST="$TENANCY_WORK" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
}

# Puts a pg_hba.conf line first (first match wins) and reloads.
tenancy_hba_prepend() {
	local hba="$TENANCY_WORK/data/pg_hba.conf"
	{ echo "$1"; cat "$hba"; } > "$TENANCY_WORK/pg_hba.new"
	as_pg tee "$hba" < "$TENANCY_WORK/pg_hba.new" >/dev/null
	as_pg pg_ctl -D "$TENANCY_WORK/data" reload >/dev/null
}

# Stops the cluster started by tenancy_start_cluster, by its data directory.
tenancy_stop_cluster() {
	if [ -n "${TENANCY_WORK:-}" ] && [ -f "$TENANCY_WORK/data/postmaster.pid" ]; then
		as_pg pg_ctl -D "$TENANCY_WORK/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
}
