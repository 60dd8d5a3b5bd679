#!/usr/bin/env bash
# test/demo.sh: tenancy end to end on a throwaway local cluster.
#
# Installs what is missing (as root on Debian 12), builds and installs
# tenancy, starts PostgreSQL 15 as the "postgres" OS user in a temporary
# directory, provisions three tenants, registers and applies migrations,
# selects each tenant with SET tenancy.current, runs a routed query as an
# application role, shows schema tenants in a second catalog, and prints a
# short report.
# Everything is stopped and removed at the end unless KEEP=1 is set, in which
# case the cluster is left running and the script says how to connect.
set -euo pipefail

. "$(dirname "$0")/lib.sh"

tenancy_ensure_packages
tenancy_build_install >/dev/null
tenancy_workdir demo
if [ -z "${KEEP:-}" ]; then
	trap 'tenancy_stop_cluster; rm -rf "$TENANCY_WORK"' EXIT
fi
tenancy_start_cluster	# with shared_preload_libraries = 'tenancy' (test/lib.sh)

sql() { psql -X -v ON_ERROR_STOP=1 --pset=footer=off "$@"; }

echo
echo "== 1. Install the extension in the admin database"
sql -qc "CREATE EXTENSION tenancy CASCADE" 2>&1 | grep -v '^NOTICE' || true
sql -c "\dx tenancy"

echo "== 1b. Least privilege: a service role (CREATEDB, not superuser) whose password lives only in a"
echo "       dblink user mapping does the remote work; a non-superuser admin calls tenancy"
password="demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
tenancy_hba_prepend "local all tenancy_provisioner scram-sha-256"
sql -q <<SQL
SET log_statement = 'none';
CREATE ROLE tenancy_provisioner LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD '$password';
CREATE ROLE tenancy_admin NOLOGIN;
CREATE ROLE demo_admin LOGIN IN ROLE tenancy_admin;
CREATE SERVER tenancy_loopback FOREIGN DATA WRAPPER dblink_fdw
  OPTIONS (host '$PGHOST', port '$PGPORT', dbname 'postgres');
CREATE USER MAPPING FOR tenancy_provisioner SERVER tenancy_loopback
  OPTIONS (user 'tenancy_provisioner', password '$password');
SQL
sql -q -o /dev/null -c "SELECT tenancy.configure('tenancy_provisioner', 'tenancy_loopback', admin_role => 'tenancy_admin')"
sql -c "SELECT service_role, loopback_server FROM tenancy.config"
echo "   (pg_hba.conf: 'local all tenancy_provisioner scram-sha-256' comes first)"
echo
admin() { sql -U demo_admin "$@"; }

echo "== 2. Register two migrations (each is applied per tenant in one transaction with its ledger row)"
admin -q -o /dev/null <<'SQL'
SELECT tenancy.add_migration(1,
  $$CREATE TABLE public.customer (id int PRIMARY KEY, name text NOT NULL)$$, 'customers');
SELECT tenancy.add_migration(2,
  $$ALTER TABLE public.customer ADD COLUMN email text;
    CREATE INDEX customer_email_idx ON public.customer (email)$$, 'customer e-mail');
SQL

sql -c "SELECT version, description, left(checksum, 12) || '…' AS checksum FROM tenancy.migration ORDER BY version"

echo "== 3. Provision three tenants as demo_admin (copies of tenancy's template, owned by the service role)"
admin -c "SELECT id, database_name, state, applied_version, metadata
          FROM tenancy.provision('acme', metadata => '{\"plan\": \"gold\"}')
        UNION ALL SELECT id, database_name, state, applied_version, metadata FROM tenancy.provision('globex')
        UNION ALL SELECT id, database_name, state, applied_version, metadata FROM tenancy.provision('initech')"

echo "== 4. Give each tenant some data of its own (connecting to its database directly)"
for t in acme globex initech; do
	sql -qd "tenant_$t" -c "INSERT INTO public.customer VALUES (1, 'first customer of $t', 'hello@$t.example')"
done

echo "== 5. A third migration arrives later: migrate the fleet, two tenants at a time"
admin -q -o /dev/null -c "SELECT tenancy.add_migration(3, \$\$ALTER TABLE public.customer ADD COLUMN created_at timestamptz NOT NULL DEFAULT now()\$\$, 'timestamps')"
admin -c "SELECT tenant, applied_version, latest_version, pending FROM tenancy.migration_status ORDER BY tenant"
admin -q -c "SET client_min_messages = warning" -c "SELECT tenant, from_version, to_version, status, error FROM tenancy.migrate_all(parallel => 2) ORDER BY tenant"
echo "   and again: nothing pending, answered from the catalog without connecting"
admin -q -c "SET client_min_messages = warning" -c "SELECT tenant, status FROM tenancy.migrate_all() ORDER BY tenant"

echo "== 6. Select each tenant with SET tenancy.current and see what resolves"
for t in acme globex initech; do
	sql -qAt <<SQL
SET tenancy.current = '$t';
SELECT format('tenancy.current = %-8s -> current_tenant() = %-8s database = %s',
              current_setting('tenancy.current'), tenancy.current_tenant(), database_name)
  FROM tenancy.tenant WHERE id = tenancy.current_tenant();
SQL
	sql -Atd "tenant_$t" -c "SELECT '                                       data: ' || string_agg(name, ', ') FROM public.customer"
done

echo
echo "== 6b. The setting is a selector, not a credential: app_web may use only what it was granted"
sql -q -c "CREATE ROLE app_web LOGIN"
admin -q -o /dev/null -c "SELECT tenancy.grant_access('acme', 'app_web')"
psql -X -U app_web -At -c "BEGIN" -c "SET LOCAL tenancy.current = 'acme'" -c "SELECT '   app_web, acme   -> ' || tenancy.current_tenant()" -c "COMMIT" | grep -- '->'
psql -X -U app_web -v VERBOSITY=terse -c "SET tenancy.current = 'globex'" -c "SELECT tenancy.current_tenant()" 2>&1 | sed -n 's/^ERROR: */   app_web, globex -> ERROR: /p' || true

echo
echo "== 6c. Routed queries: app_web runs SQL in its tenant's database from the admin database, as"
echo "       itself (its own user mapping, SCRAM), through a connection its session keeps"
web_password="web-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
tenancy_hba_prepend "local all app_web scram-sha-256"
sql -q <<SQL
SET log_statement = 'none';
ALTER ROLE app_web PASSWORD '$web_password';
CREATE USER MAPPING FOR app_web SERVER tenancy_loopback OPTIONS (user 'app_web', password '$web_password');
SQL
PGPASSWORD="$web_password" psql -X -U app_web -At <<'SQL' | sed 's/^/   /'
SELECT tenancy.use('acme', is_local => false) IS NOT NULL AS selected \gset
SELECT format('as %s in %s', u, db) FROM tenancy.query('SELECT current_user, current_database()') AS t(u name, db name);
SELECT format('first call served by backend %s, second by %s: kept', a.pid, b.pid)
  FROM tenancy.query('SELECT pg_backend_pid()') AS a(pid int), tenancy.query('SELECT pg_backend_pid()') AS b(pid int);
SQL

echo
echo "== 7. Bad input is refused before any SQL is built"
for stmt in "SET tenancy.current = 'ACME'" \
	"SET tenancy.current = 'ghost'; SELECT tenancy.current_tenant()" \
	"SELECT tenancy.provision('acme\"; DROP DATABASE postgres; --')" \
	"SELECT tenancy.current_tenant()" \
	"SET tenancy.curent = 'acme'"; do
	echo "   $stmt"
	psql -X -v VERBOSITY=terse -c "$stmt" 2>&1 | sed -n 's/^ERROR: */      -> ERROR: /p' || true
done

echo
echo "== 8. Suspend one tenant: it can no longer be selected or connected to"
admin -q -o /dev/null -c "SELECT tenancy.suspend('globex')"
psql -X -v VERBOSITY=terse -c "SET tenancy.current = 'globex'; SELECT tenancy.current_tenant()" 2>&1 | sed -n 's/^ERROR: */   -> ERROR: /p' || true
psql -X -d tenant_globex -c 'SELECT 1' 2>&1 | sed -n 's/.*FATAL: */   -> FATAL: /p' || true
admin -q -o /dev/null -c "SELECT tenancy.resume('globex')"

echo
echo "== 9. A provisioning the caller rolls back leaves no tenant database behind: reconcile() drops its"
echo "      recorded temporary copy"
admin -q -o /dev/null <<'SQL'
BEGIN;
SELECT tenancy.provision('rolled-back');
ROLLBACK;
SQL
admin -c "SELECT tenant, regexp_replace(object, '[0-9]+', 'N') AS object, problem, action FROM tenancy.reconcile() ORDER BY 1, 2"

echo
echo "== 10. Application start-up in one call: bootstrap() (every tenant exists, is reachable, is migrated)"
admin -q -c "SET client_min_messages = warning" -c "SELECT * FROM tenancy.bootstrap() ORDER BY tenant, action"

echo
echo "== 11. Schema tenants: a second catalog (database demo_schemas), each tenant a schema in it;"
echo "       selecting a tenant puts its schema first on search_path, for the transaction"
sql -qc "CREATE DATABASE demo_schemas"
sql -q -o /dev/null -d demo_schemas <<'SQL' 2>&1 | grep -v '^NOTICE' || true
CREATE EXTENSION tenancy CASCADE;
SELECT tenancy.add_migration(1, 'CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)');
SELECT tenancy.provision(t, isolation => 'schema') FROM unnest(ARRAY['hooli', 'pied-piper']) t;
INSERT INTO tenant_hooli.note VALUES (1, 'a note of hooli');
INSERT INTO "tenant_pied-piper".note VALUES (1, 'a note of pied-piper');
SQL
for t in hooli pied-piper; do
	sql -qAtd demo_schemas <<SQL | sed 's/^/   /'
BEGIN;
SET LOCAL tenancy.current = '$t';
SELECT format('%-10s search_path = %-32s note: %s', '$t', current_setting('search_path'), body) FROM note;
COMMIT;
SQL
done
sql -qAtd demo_schemas -c "SELECT '   after COMMIT: search_path = ' || current_setting('search_path')"

echo
echo "== Report"
sql -c "SELECT t.id AS tenant, t.state, t.applied_version AS version, s.latest_version AS latest,
               pg_size_pretty(pg_database_size(t.database_name)) AS size,
               pg_get_userbyid(d.datdba) AS owner,
               has_database_privilege('public', t.database_name, 'CONNECT') AS public_can_connect
          FROM tenancy.tenant t JOIN tenancy.migration_status s ON s.tenant = t.id
          JOIN pg_database d ON d.datname = t.database_name ORDER BY t.id"
sql -Atc "SELECT 'open dblink connections left: ' || coalesce(array_length(dblink_get_connections(), 1), 0)"
sql -Atc "SELECT 'databases without a tenant row (besides the template): ' || count(*) FROM pg_database
          WHERE datname LIKE 'tenant_%' AND datname <> 'tenant_template'
            AND datname NOT IN (SELECT database_name FROM tenancy.tenant)"
if grep -q -e "$password" -e "$web_password" "$TENANCY_WORK/server.log"; then echo "a password is in the server log!"; exit 1; fi
echo "passwords in the server log: none"

if [ -n "${KEEP:-}" ]; then
	echo
	echo "The cluster is still running.  Connect with:"
	echo "   psql -h $PGHOST -p $PGPORT -U postgres postgres"
	echo "Stop it with:"
	echo "   runuser -u postgres -- $PG_BINDIR/pg_ctl -D $TENANCY_WORK/data stop"
fi
