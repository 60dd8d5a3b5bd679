\echo Use "ALTER EXTENSION tenancy UPDATE TO '0.2.0'" to load this file. \quit

/*
 * tenancy--0.1.0--0.2.0.sql: upgrade script from 0.1.0 to 0.2.0
 *
 * ALTER EXTENSION tenancy UPDATE runs this file on a 0.1.0 installation, and a
 * fresh CREATE EXTENSION tenancy runs tenancy--0.1.0.sql and then this file:
 * there is no 0.2.0 base script.  The released tenancy--0.1.0.sql is never
 * edited; every SQL change of 0.2.0 goes here, in the order it should run.
 *
 * The upgrade runs on catalogs that hold rows, so:
 *   - a new NOT NULL column on an existing table needs a DEFAULT;
 *   - every new object gets a COMMENT ON (test/sql/init.sql checks), and a new
 *     function that provisions, migrates or drops a REVOKE ALL ... FROM PUBLIC;
 *   - a new catalog table or sequence gets pg_catalog.pg_extension_config_dump,
 *     so that pg_dump keeps its rows;
 *   - create new objects with plain CREATE (test/sql/security.sql checks that
 *     no script adopts an object planted beforehand); an upgrade may change
 *     a function with CREATE OR REPLACE FUNCTION (PostgreSQL refuses to
 *     replace one the extension does not own);
 *   - a changed C signature gets a new C symbol (tenancy_<name>_v2): the
 *     library keeps serving the 0.1.0 declarations (STYLE 2.4);
 *   - a GRANT or REVOKE that carries an installation's own privileges over
 *     is also recorded in pg_init_privs, where pg_dump would take it for the
 *     extension's: the block at the end of this file sets pg_init_privs back
 *     to a fresh install's (an object granted or revoked on only when there
 *     is something to carry must get an unconditional GRANT or REVOKE of
 *     its own, or be named in that block, as tenancy.connstr is).
 * test/t/100_upgrade.pl installs 0.1.0 with a row in every table, updates it
 * and checks that it matches a fresh install and that no row was lost.
 */

-------------------------------------------------------------------------------
-- 0.2.0 changes: append below
-------------------------------------------------------------------------------

-- 0.1.0 left the schema without a comment (the extension does not own it:
-- CREATE EXTENSION made it for the control file's schema = tenancy)
COMMENT ON SCHEMA tenancy IS 'tenancy: the tenant catalog (tenants, migrations, servers, jobs) and the functions that provision, migrate and route to tenants';

-- Provisioning records whether its temporary object is a database or a
-- schema: schema tenants are created under a temporary name too, so that
-- their migrations run in a session of their own (the migration engine).
ALTER TABLE tenancy.pending_cleanup
    ADD COLUMN isolation text NOT NULL DEFAULT 'database'
        CONSTRAINT pending_cleanup_isolation_check CHECK (isolation OPERATOR(pg_catalog.=) ANY (ARRAY['database', 'schema']));
COMMENT ON COLUMN tenancy.pending_cleanup.isolation IS 'database or schema: what the temporary name names';
COMMENT ON COLUMN tenancy.pending_cleanup.database_name IS 'temporary name (<prefix>tmp_<operation_id>) of the database or schema';
COMMENT ON TABLE tenancy.pending_cleanup IS 'tenancy: databases and schemas a provisioning operation created under a temporary name, recorded (committed on its own) before they are created; deleted in the same transaction that registers the tenant';

-- The one way the service role creates a schema tenant's schema: it may not
-- create schemas in the admin database itself.
CREATE FUNCTION tenancy.create_tenant_schema(operation_id bigint)
RETURNS void
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'tenancy_create_tenant_schema';

COMMENT ON FUNCTION tenancy.create_tenant_schema(bigint) IS 'tenancy: provisioning''s helper, for the service role only: creates the temporary schema of a schema tenant''s provisioning operation';
REVOKE ALL ON FUNCTION tenancy.create_tenant_schema(bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION tenancy.configure(service_role regrole, loopback_server name, admin_role regrole DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $configure$
DECLARE
  r pg_catalog.pg_roles;
  orphans bigint;
  orphan_list text;
  stale_template pg_catalog.name;
BEGIN
  IF service_role IS NULL OR loopback_server IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'service_role and loopback_server must not be null';
  END IF;
  SELECT * INTO r FROM pg_catalog.pg_roles WHERE oid OPERATOR(pg_catalog.=) service_role;
  IF r.rolsuper THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('service role "%s" must not be a superuser', r.rolname),
      DETAIL = 'Remote work runs as the service role, and dblink enforces password authentication only for non-superusers.';
  END IF;
  IF r.rolcreaterole THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('service role "%s" must not have CREATEROLE', r.rolname),
      DETAIL = 'Roles with CREATEROLE are almost superusers.';
  END IF;
  IF NOT r.rolcreatedb OR NOT r.rolcanlogin THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('service role "%s" must have LOGIN and CREATEDB', r.rolname);
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_foreign_server s
                   JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid OPERATOR(pg_catalog.=) s.srvfdw
                  WHERE s.srvname OPERATOR(pg_catalog.=) loopback_server
                    AND w.fdwname OPERATOR(pg_catalog.=) 'dblink_fdw') THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('dblink_fdw server "%s" does not exist', loopback_server),
      HINT = 'Create it with CREATE SERVER ... FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host ..., port ..., dbname ...).';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_user_mappings m
                  WHERE m.srvname OPERATOR(pg_catalog.=) loopback_server
                    AND m.usename OPERATOR(pg_catalog.=) r.rolname) THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('user mapping for "%s" on server "%s" does not exist', r.rolname, loopback_server),
      HINT = 'Create it with CREATE USER MAPPING FOR ... SERVER ... OPTIONS (user ..., password ...).';
  END IF;

  -- an existing fleet must already be the service role's: tenants made
  -- before (as a superuser, or by another service role) would be
  -- unreachable or unmigratable by it; refused up front, saying what to do
  SELECT pg_catalog.count(*), pg_catalog.string_agg(x.id, ', ' ORDER BY x.id)
    INTO orphans, orphan_list
    FROM (SELECT t.id FROM tenancy.tenant t
            JOIN pg_catalog.pg_database d ON d.datname OPERATOR(pg_catalog.=) t.database_name
           WHERE t.isolation OPERATOR(pg_catalog.=) 'database' AND t.server IS NULL
             AND d.datdba OPERATOR(pg_catalog.<>) service_role
          UNION ALL
          SELECT t.id FROM tenancy.tenant t
            JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) t.schema_name
           WHERE t.isolation OPERATOR(pg_catalog.=) 'schema'
             AND n.nspowner OPERATOR(pg_catalog.<>) service_role
          UNION ALL
          SELECT t.id FROM tenancy.tenant t
           WHERE t.server IS NOT NULL
             AND NOT EXISTS (SELECT FROM tenancy.config c
                              WHERE c.service_role OPERATOR(pg_catalog.=) configure.service_role)) x;
  IF orphans > 0 THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('%s tenant(s) do not belong to service role "%s"', orphans, r.rolname),
      DETAIL = format('Tenants provisioned before it was configured (or under another service role): %s. Tenants on other servers cannot be checked from here.', orphan_list),
      HINT = format('Hand each over first (ALTER DATABASE ... OWNER TO %1$I and REASSIGN OWNED in it, or ALTER SCHEMA ... OWNER TO %1$I and its tables), drop the template database (it is rebuilt), or deprovision them; then run configure() again.', r.rolname);
  END IF;
  SELECT d.datname INTO stale_template FROM pg_catalog.pg_database d
   WHERE d.datname OPERATOR(pg_catalog.=) (pg_catalog.current_setting('tenancy.database_prefix') OPERATOR(pg_catalog.||) 'template')
     AND d.datdba OPERATOR(pg_catalog.<>) service_role;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '55000',
      MESSAGE = format('template database "%s" does not belong to service role "%s"', stale_template, r.rolname),
      HINT = format('DROP DATABASE %I (tenancy rebuilds it on the next provisioning), then run configure() again.', stale_template);
  END IF;

  -- the service role must not read its own password: pg_user_mappings shows
  -- a mapping's options to a mapped role that owns the server or holds USAGE
  -- on it, and a schema tenant's migration runs as the service role here.
  -- tenancy reads the mapping itself (0.2.0: no USAGE is granted)
  EXECUTE format('REVOKE USAGE ON FOREIGN SERVER %I FROM %I', loopback_server, r.rolname);
  IF pg_catalog.pg_has_role(r.oid, (SELECT srvowner FROM pg_catalog.pg_foreign_server
                                     WHERE srvname OPERATOR(pg_catalog.=) loopback_server), 'USAGE')
     OR pg_catalog.has_server_privilege(r.oid, loopback_server, 'USAGE') THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('service role "%s" can read its own user mapping for server "%s"', r.rolname, loopback_server),
      DETAIL = 'It owns the server or holds USAGE on it (through PUBLIC or a role it is a member of), so pg_user_mappings shows it the password.',
      HINT = 'Give the server another owner and revoke USAGE from PUBLIC and from the roles the service role is a member of.';
  END IF;
  -- what the service role needs: the catalog rows it writes on its own
  -- (cleanup records, state changes)
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON tenancy.tenant, tenancy.pending_cleanup, '
                 'tenancy.migration_progress, tenancy.spare TO %I', r.rolname);
  -- and the one way it creates schema tenants' schemas (0.2.0)
  EXECUTE format('GRANT EXECUTE ON FUNCTION tenancy.create_tenant_schema(bigint) TO %I', r.rolname);
  IF admin_role IS NOT NULL THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION tenancy.provision(text, text, name, jsonb), '
                   'tenancy.deprovision(text, boolean), tenancy.suspend(text), tenancy.resume(text), '
                   'tenancy.reconcile(boolean, boolean), '
                   'tenancy.add_migration(bigint, text, text, text, text, boolean), '
                   'tenancy.remove_migration(bigint), tenancy.adopt(text, name, name, bigint), '
                   'tenancy.migrate(text, bigint), '
                   'tenancy.migrate_all(integer, boolean, text[], integer, boolean, bigint), '
                   'tenancy.bootstrap(integer, boolean), '
                   'tenancy.grant_access(text, regrole), tenancy.revoke_access(text, regrole), '
                   'tenancy.health(text), tenancy.provision_many(text[], integer, text, name), '
                   'tenancy.add_server(name, integer, integer, integer), '
                   'tenancy.drain_server(name), tenancy.server_status(), tenancy.tenant_stats(), '
                   'tenancy.fill_pools(), '
                   'tenancy.start_migrate_all(integer, boolean, text[], integer, bigint), '
                   'tenancy.start_provision_many(text[], integer, text, name), '
                   'tenancy.cancel_job(bigint) TO %s',
                   admin_role);
    EXECUTE format('GRANT SELECT ON tenancy.tenant, tenancy.migration, tenancy.migration_status, '
                   'tenancy.member, tenancy.pending_cleanup, tenancy.template, tenancy.migration_progress, '
                   'tenancy.server, tenancy.spare, tenancy.job, tenancy.job_tenant TO %s',
                   admin_role);
  END IF;

  INSERT INTO tenancy.config AS c (service_role, loopback_server)
  VALUES (configure.service_role, configure.loopback_server)
  ON CONFLICT (singleton) DO UPDATE
     SET service_role = excluded.service_role, loopback_server = excluded.loopback_server,
         configured_at = pg_catalog.now();
END
$configure$;

-- an installation configured before 0.2.0: its service role gets the helper
-- too, and loses USAGE on every dblink server (0.1.0 granted it on the
-- loopback server and documented it for tenant servers), through which it
-- could read its passwords in pg_user_mappings
DO $grant$
DECLARE
  r pg_catalog.name;
  srv pg_catalog.name;
BEGIN
  SELECT a.rolname INTO r FROM tenancy.config c
    JOIN pg_catalog.pg_roles a ON a.oid OPERATOR(pg_catalog.=) c.service_role;
  IF FOUND THEN
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION tenancy.create_tenant_schema(bigint) TO %I', r);
    FOR srv IN SELECT s.srvname FROM pg_catalog.pg_foreign_server s
                 JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid OPERATOR(pg_catalog.=) s.srvfdw
                WHERE w.fdwname OPERATOR(pg_catalog.=) 'dblink_fdw' ORDER BY 1
    LOOP
      EXECUTE pg_catalog.format('REVOKE USAGE ON FOREIGN SERVER %I FROM %I', srv, r);
    END LOOP;
  END IF;
END
$grant$;

-------------------------------------------------------------------------------
-- Migrations as teams write them (0.2.0)
-------------------------------------------------------------------------------

-- What a migration runs under, how it is undone, whether it runs in a
-- transaction.  Migrations registered by 0.1.0 ran with an empty
-- search_path, in one transaction, and have no down.
ALTER TABLE tenancy.migration
    ADD COLUMN search_path text NOT NULL DEFAULT '',
    ADD COLUMN down text
        CONSTRAINT migration_down_check CHECK (pg_catalog.btrim(down) OPERATOR(pg_catalog.<>) ''),
    ADD COLUMN transactional boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN tenancy.migration.search_path IS 'search_path the migration runs under in database tenants (schema tenants: their schema); part of its checksum unless empty';
COMMENT ON COLUMN tenancy.migration.down IS 'SQL that undoes the migration (migrate(..., to_version => N)), or NULL';
COMMENT ON COLUMN tenancy.migration.transactional IS 'false: its statements run one by one outside a transaction (CREATE INDEX CONCURRENTLY), the ledger row written after the last';
COMMENT ON COLUMN tenancy.migration.checksum IS 'hex SHA-256 of the search_path line and sql: the identity of the migration';
COMMENT ON TABLE tenancy.migration IS 'tenancy: registered migrations; every tenant gets each one it lacks, in ascending version order';
COMMENT ON COLUMN tenancy.migration.version IS 'positive version; a tenant applies the ones it lacks in ascending order';

-- The catalog's summary of each ledger is the set of versions it holds
-- (0.1.0 ledgers hold every registered version up to applied_version).
ALTER TABLE tenancy.tenant ADD COLUMN applied_versions bigint[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN tenancy.tenant.applied_versions IS 'the versions in the tenant''s own ledger (a summary of it), ascending';
COMMENT ON COLUMN tenancy.tenant.applied_version IS 'highest migration version in the tenant''s own ledger (a summary of it)';
UPDATE tenancy.tenant t
   SET applied_versions = ARRAY(SELECT m.version FROM tenancy.migration m
                                 WHERE m.version OPERATOR(pg_catalog.<=) t.applied_version
                                 ORDER BY m.version);

ALTER TABLE tenancy.migration_progress DROP CONSTRAINT migration_progress_status_check;
ALTER TABLE tenancy.migration_progress ADD CONSTRAINT migration_progress_status_check
    CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['running', 'migrated', 'rolled_back', 'up_to_date', 'failed', 'skipped']));
COMMENT ON COLUMN tenancy.migration_progress.status IS 'running, migrated, rolled_back, up_to_date, failed or skipped';

CREATE OR REPLACE VIEW tenancy.migration_status AS
SELECT t.id AS tenant,
       t.state,
       t.applied_version,
       l.latest_version,
       (SELECT pg_catalog.count(*) FROM tenancy.migration m
         WHERE m.version OPERATOR(pg_catalog.<>) ALL (t.applied_versions)) AS pending,
       t.last_error,
       t.last_sqlstate,
       t.updated_at,
       ARRAY(SELECT m.version FROM tenancy.migration m
              WHERE m.version OPERATOR(pg_catalog.<>) ALL (t.applied_versions)
              ORDER BY m.version) AS missing
  FROM tenancy.tenant t
 CROSS JOIN (SELECT COALESCE(pg_catalog.max(version), 0) AS latest_version
               FROM tenancy.migration) l;
COMMENT ON VIEW tenancy.migration_status IS 'tenancy: per tenant, applied and latest migration version, the registered versions it lacks (missing, and their count: pending), state and last error, from the catalog alone';
COMMENT ON COLUMN tenancy.migration_status.tenant IS 'the tenant (tenancy.tenant.id)';
COMMENT ON COLUMN tenancy.migration_status.state IS 'its state: provisioning, ready, suspended, failed or dropping';
COMMENT ON COLUMN tenancy.migration_status.applied_version IS 'highest migration version in its ledger (the catalog''s summary of it)';
COMMENT ON COLUMN tenancy.migration_status.latest_version IS 'highest registered migration version (0: none registered)';
COMMENT ON COLUMN tenancy.migration_status.pending IS 'how many registered versions its ledger lacks (the length of missing)';
COMMENT ON COLUMN tenancy.migration_status.last_error IS 'text of the last error recorded for it (cleared by the next success)';
COMMENT ON COLUMN tenancy.migration_status.last_sqlstate IS 'SQLSTATE of that error';
COMMENT ON COLUMN tenancy.migration_status.updated_at IS 'when its catalog row last changed state or version';
COMMENT ON COLUMN tenancy.migration_status.missing IS 'the registered versions its ledger lacks, ascending';

-- New signatures: each is created beside the 0.1.0 one, given its grants,
-- and the old one dropped (both cannot stay: calls would be ambiguous).
CREATE FUNCTION tenancy.add_migration(version bigint, sql text, description text DEFAULT NULL,
                                      search_path text DEFAULT 'public', down text DEFAULT NULL,
                                      transactional boolean DEFAULT true)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_add_migration_v2';
COMMENT ON FUNCTION tenancy.add_migration(bigint, text, text, text, text, boolean) IS 'tenancy: registers a migration (any version not yet registered); its checksum (search_path and SQL) is its identity; down undoes it; transactional => false runs it statement by statement outside a transaction';

CREATE FUNCTION tenancy.migrate(tenant text, to_version bigint DEFAULT NULL)
RETURNS TABLE (tenant text, from_version bigint, to_version bigint, status text, duration interval, error text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_migrate_v2';
COMMENT ON FUNCTION tenancy.migrate(text, bigint) IS 'tenancy: applies the migrations one tenant lacks, each in one remote transaction with its ledger row; with to_version, first rolls back (down) the applied versions above it, newest first';

CREATE FUNCTION tenancy.migrate_all(parallel integer DEFAULT 4, verify boolean DEFAULT false,
                                    tenants text[] DEFAULT NULL, max_failures integer DEFAULT NULL,
                                    dry_run boolean DEFAULT false, to_version bigint DEFAULT NULL)
RETURNS TABLE (tenant text, from_version bigint, to_version bigint, status text, duration interval,
               error text, sqlstate text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_migrate_all_v2';
COMMENT ON FUNCTION tenancy.migrate_all(integer, boolean, text[], integer, boolean, bigint) IS 'tenancy: migrates every ready tenant (or those named), at most parallel at once; failures are recorded and the others go on until max_failures; up-to-date tenants are answered from the catalog unless verify; dry_run returns the plan without connecting';

CREATE FUNCTION tenancy.bootstrap(parallel integer DEFAULT 4, verify boolean DEFAULT false)
RETURNS TABLE (tenant text, action text, status text, error text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $bootstrap$
DECLARE
  r record;
BEGIN
  -- what interrupted operations left; rows whose object is gone become
  -- failed (existence: one query per server); with verify, every ready
  -- tenant's ledger is read too
  FOR r IN SELECT * FROM tenancy.reconcile(check_ledgers => bootstrap.verify) LOOP
    tenant := r.tenant; action := 'reconcile'; status := r.action; error := r.problem;
    RETURN NEXT;
  END LOOP;
  -- tenants behind (from the catalog), or with verify every ready tenant,
  -- migrated
  RETURN QUERY
    SELECT m.tenant, 'migrate'::text, m.status,
           CASE WHEN m.sqlstate IS NULL THEN m.error ELSE m.sqlstate OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) m.error END
      FROM tenancy.migrate_all(bootstrap.parallel, verify => bootstrap.verify) m;
  -- every registered tenant exists: recreate those whose object is missing
  -- (last: a database created in this transaction is not visible to the
  -- sessions migrate_all opens, and it starts at the latest version anyway)
  FOR r IN SELECT t.id FROM tenancy.tenant t WHERE t.state OPERATOR(pg_catalog.=) 'failed' ORDER BY t.id LOOP
    tenant := r.id; action := 'provision';
    BEGIN
      PERFORM tenancy.provision(r.id);
      status := 'provisioned'; error := NULL;
    EXCEPTION WHEN OTHERS THEN
      status := 'failed'; error := SQLSTATE OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) SQLERRM;
    END;
    RETURN NEXT;
  END LOOP;
END
$bootstrap$;
COMMENT ON FUNCTION tenancy.bootstrap(integer, boolean) IS 'tenancy: an application''s start-up routine in one call: reconcile, recreate tenants whose object is missing, migrate those the catalog says are behind, without a session on any up-to-date tenant; verify connects to every tenant and checks its ledger';

CREATE FUNCTION tenancy.remove_migration(version bigint)
RETURNS void
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_remove_migration';
COMMENT ON FUNCTION tenancy.remove_migration(bigint) IS 'tenancy: removes a registered migration that no tenant has applied (the template is rebuilt on the next provisioning)';

CREATE FUNCTION tenancy.adopt(tenant text, database name, server name DEFAULT NULL, baseline bigint DEFAULT NULL)
RETURNS tenancy.tenant
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_adopt';
COMMENT ON FUNCTION tenancy.adopt(text, name, name, bigint) IS 'tenancy: registers an existing database (owned by the service role) as a database tenant; the migrations up to baseline are recorded in its ledger as applied without running';

REVOKE ALL ON FUNCTION tenancy.add_migration(bigint, text, text, text, text, boolean),
                       tenancy.migrate(text, bigint),
                       tenancy.migrate_all(integer, boolean, text[], integer, boolean, bigint),
                       tenancy.bootstrap(integer, boolean),
                       tenancy.remove_migration(bigint),
                       tenancy.adopt(text, name, name, bigint)
  FROM PUBLIC;

-- grants on the 0.1.0 functions (tenancy.configure's admin_role) carry over
DO $carry$
DECLARE
  f record;
  g record;
BEGIN
  FOR f IN SELECT * FROM (VALUES
      ('tenancy.add_migration(bigint, text, text)', 'tenancy.add_migration(bigint, text, text, text, text, boolean)'),
      ('tenancy.migrate(text)', 'tenancy.migrate(text, bigint)'),
      ('tenancy.migrate_all(integer, boolean)', 'tenancy.migrate_all(integer, boolean, text[], integer, boolean, bigint)'),
      ('tenancy.bootstrap(integer)', 'tenancy.bootstrap(integer, boolean)'),
      ('tenancy.migrate(text)', 'tenancy.remove_migration(bigint)'),
      ('tenancy.migrate(text)', 'tenancy.adopt(text, name, name, bigint)')) v(old, new) LOOP
    FOR g IN SELECT a.grantee FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
              WHERE p.oid OPERATOR(pg_catalog.=) f.old::pg_catalog.regprocedure
                AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
                AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
                AND a.grantee OPERATOR(pg_catalog.<>) 0 LOOP
      EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s', f.new, g.grantee::pg_catalog.regrole);
    END LOOP;
  END LOOP;
END
$carry$;

DROP FUNCTION tenancy.add_migration(bigint, text, text);
DROP FUNCTION tenancy.migrate(text);
DROP FUNCTION tenancy.migrate_all(integer, boolean);
DROP FUNCTION tenancy.bootstrap(integer);

-------------------------------------------------------------------------------
-- dblink is not a tool for members (0.2.0)
-------------------------------------------------------------------------------

-- CREATE EXTENSION tenancy CASCADE installs dblink in the admin database,
-- where every application role connects; its functions are executable by
-- PUBLIC by default: an in-server client for guessing the service role's
-- password or probing ports.  tenancy calls no dblink function (it speaks
-- libpq itself), so EXECUTE on dblink's functions is revoked from PUBLIC
-- here; grant it back to the roles that need it.
DO $dblink$
DECLARE
  f pg_catalog.regprocedure;
BEGIN
  FOR f IN SELECT d.objid::pg_catalog.regprocedure
             FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
              AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
              AND d.deptype OPERATOR(pg_catalog.=) 'e'
              AND e.extname OPERATOR(pg_catalog.=) 'dblink' LOOP
    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END
$dblink$;

-------------------------------------------------------------------------------
-- Routed SQL without string building (0.2.0)
-------------------------------------------------------------------------------

-- exec() and query() with bind parameters: values after the SQL are sent as
-- $1, $2, ... (each with its type), never spliced into the SQL.  Executable
-- by PUBLIC like the one-argument forms: the selected tenant is checked.
CREATE FUNCTION tenancy.exec(sql text, VARIADIC params "any")
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_exec';
COMMENT ON FUNCTION tenancy.exec(text, "any") IS 'tenancy: runs one statement in the selected tenant''s database (kept connection, as the calling role) or schema, with the arguments after the SQL bound to $1, $2, ...; returns its command status';

CREATE FUNCTION tenancy.query(sql text, VARIADIC params "any")
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_query';
COMMENT ON FUNCTION tenancy.query(text, "any") IS 'tenancy: runs a query in the selected tenant''s database (kept connection, as the calling role) or schema, with the arguments after the SQL bound to $1, $2, ...; rows typed by the column definition list';

-- connstr() gains format => 'keyword' (libpq's key=value form, the default)
-- or 'uri' (postgresql://host:port/database?options=..., which node-postgres
-- and TypeORM accept).  The new signature replaces the 0.1.0 one (both
-- would make connstr() ambiguous); its grants carry over.
CREATE FUNCTION tenancy.connstr_v2_tmp(tenant text DEFAULT NULL, format text DEFAULT 'keyword')
RETURNS text
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'tenancy_connstr';
DO $carry$
DECLARE
  g record;
BEGIN
  IF NOT pg_catalog.has_function_privilege('public', 'tenancy.connstr(text)', 'EXECUTE') THEN
    REVOKE ALL ON FUNCTION tenancy.connstr_v2_tmp(text, text) FROM PUBLIC;
  END IF;
  FOR g IN SELECT a.grantee FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
            WHERE p.oid OPERATOR(pg_catalog.=) 'tenancy.connstr(text)'::pg_catalog.regprocedure
              AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
              AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
              AND a.grantee OPERATOR(pg_catalog.<>) 0 LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION tenancy.connstr_v2_tmp(text, text) TO %s',
                              g.grantee::pg_catalog.regrole);
  END LOOP;
END
$carry$;
DROP FUNCTION tenancy.connstr(text);
ALTER FUNCTION tenancy.connstr_v2_tmp(text, text) RENAME TO connstr;
COMMENT ON FUNCTION tenancy.connstr(text, text) IS 'tenancy: how an application connects to a tenant directly (host, port, database; no user, no password), default the selected tenant; format ''keyword'' (libpq key=value) or ''uri'' (postgresql://)';

-------------------------------------------------------------------------------
-- Servers and placement (0.2.0)
-------------------------------------------------------------------------------

-- The servers tenancy places new database tenants on: dblink foreign
-- servers (this cluster by its loopback server's name), each with a weight
-- and a budget of sessions for fleet work.
CREATE TABLE tenancy.server (
    server       name PRIMARY KEY,
    weight       integer NOT NULL DEFAULT 1
                 CONSTRAINT server_weight_check CHECK (weight OPERATOR(pg_catalog.>) 0),
    max_sessions integer NOT NULL DEFAULT 4
                 CONSTRAINT server_max_sessions_check CHECK (max_sessions OPERATOR(pg_catalog.>) 0),
    accepting    boolean NOT NULL DEFAULT true,
    added_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    warm_pool    integer NOT NULL DEFAULT 0
                 CONSTRAINT server_warm_pool_check CHECK (warm_pool OPERATOR(pg_catalog.>=) 0)
);
COMMENT ON TABLE tenancy.server IS 'tenancy: dblink foreign servers that are homes for new database tenants (provision() without a server places tenants among the accepting ones)';
COMMENT ON COLUMN tenancy.server.server IS 'a dblink_fdw foreign server; this cluster by its loopback server''s name';
COMMENT ON COLUMN tenancy.server.weight IS 'share of new tenants: placement picks the fewest tenants per unit of weight';
COMMENT ON COLUMN tenancy.server.max_sessions IS 'sessions fleet work may open on the server at once';
COMMENT ON COLUMN tenancy.server.accepting IS 'false once drained: no new tenant is placed there';
COMMENT ON COLUMN tenancy.server.added_at IS 'when add_server() registered it';
COMMENT ON COLUMN tenancy.server.warm_pool IS 'spare databases fill_pools() keeps ready there for instant provisioning';
SELECT pg_catalog.pg_extension_config_dump('tenancy.server', '');
REVOKE ALL ON tenancy.server FROM PUBLIC;

CREATE FUNCTION tenancy.add_server(server name, weight integer DEFAULT 1, max_sessions integer DEFAULT 4,
                                   warm_pool integer DEFAULT 0)
RETURNS tenancy.server
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_add_server';
COMMENT ON FUNCTION tenancy.add_server(name, integer, integer, integer) IS 'tenancy: registers a dblink foreign server as a home for new database tenants (again: changes its weight and budget and accepts tenants again)';

CREATE FUNCTION tenancy.drain_server(server name)
RETURNS tenancy.server
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_drain_server';
COMMENT ON FUNCTION tenancy.drain_server(name) IS 'tenancy: stops placing new tenants on a registered server (its tenants stay)';

CREATE FUNCTION tenancy.server_status()
RETURNS TABLE (server name, weight integer, max_sessions integer, accepting boolean, tenants bigint,
               total_size bigint, sessions integer, reachable boolean, error text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_server_status';
COMMENT ON FUNCTION tenancy.server_status() IS 'tenancy: per registered server, its tenants, their total size and sessions, whether it answers and accepts tenants; one query per server';

CREATE FUNCTION tenancy.tenant_stats()
RETURNS TABLE (tenant text, server name, transactions bigint, rows_read bigint, rows_written bigint,
               blocks_read bigint, blocks_hit bigint, size bigint, sessions integer,
               last_activity timestamptz, error text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_tenant_stats';
COMMENT ON FUNCTION tenancy.tenant_stats() IS 'tenancy: per tenant, transactions, rows read and written, blocks read and hit, size, sessions and last activity from the statistics of its server (one query per server), for finding the hot tenant';

-- Warm pools: spare databases at the latest migration, taken by provision()
CREATE TABLE tenancy.spare (
    database_name    name PRIMARY KEY,
    server           name,
    fingerprint      text NOT NULL,
    applied_version  bigint NOT NULL,
    applied_versions bigint[] NOT NULL DEFAULT '{}',
    ready            boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenancy.spare IS 'tenancy: spare databases of the warm pools, copies of the template that provision() takes by renaming; recorded (not ready) before they are created, so reconcile() explains each';
COMMENT ON COLUMN tenancy.spare.database_name IS 'its name (<prefix>tmp_<operation id>) until a provisioning takes it';
COMMENT ON COLUMN tenancy.spare.server IS 'the server it is on; NULL: this cluster';
COMMENT ON COLUMN tenancy.spare.fingerprint IS 'the registered migrations it holds; a spare of others is never taken and fill_pools() drops it';
COMMENT ON COLUMN tenancy.spare.applied_version IS 'the highest migration version it holds';
COMMENT ON COLUMN tenancy.spare.applied_versions IS 'the versions it holds';
COMMENT ON COLUMN tenancy.spare.ready IS 'false while it is being created (an interrupted creation: reconcile() drops it)';
COMMENT ON COLUMN tenancy.spare.created_at IS 'when it was recorded; the oldest is taken first';
SELECT pg_catalog.pg_extension_config_dump('tenancy.spare', '');
REVOKE ALL ON tenancy.spare FROM PUBLIC;
-- the service role records spares on its own, as it does cleanup records
-- (configure() grants this; a service role configured before this update
-- gets it here)
DO $carry$
BEGIN
  IF EXISTS (SELECT FROM tenancy.config) THEN
    EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE ON tenancy.spare TO %s',
                              (SELECT service_role FROM tenancy.config));
  END IF;
END
$carry$;

CREATE FUNCTION tenancy.fill_pools()
RETURNS TABLE (server name, spares integer, created integer, dropped integer)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_fill_pools';
COMMENT ON FUNCTION tenancy.fill_pools() IS 'tenancy: brings each accepting server''s warm pool to its warm_pool spares at the latest migration, dropping spares of older migrations; run it after add_migration() and from a scheduler';

REVOKE ALL ON FUNCTION tenancy.add_server(name, integer, integer, integer), tenancy.drain_server(name),
                       tenancy.server_status(), tenancy.tenant_stats(), tenancy.fill_pools()
  FROM PUBLIC;

-- (grants for the roles that may provision: at the end of this script)

-- Many tenants at once: each atomic on its own, CREATE DATABASE on up to
-- "parallel" sessions within each server's budget, one row per tenant.
CREATE FUNCTION tenancy.provision_many(tenants text[], parallel integer DEFAULT 4,
                                       isolation text DEFAULT 'database', server name DEFAULT NULL)
RETURNS TABLE (tenant text, status text, server name, error text, sqlstate text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_provision_many';
COMMENT ON FUNCTION tenancy.provision_many(text[], integer, text, name) IS 'tenancy: provisions many tenants, each atomic on its own, their databases created on up to parallel sessions at once within each server''s budget; one row per tenant (provisioned, exists or failed with its error), one failure does not stop the others';
REVOKE ALL ON FUNCTION tenancy.provision_many(text[], integer, text, name) FROM PUBLIC;


-------------------------------------------------------------------------------
-- Background jobs (0.2.0)
-------------------------------------------------------------------------------

-- Fleet work the background worker runs while the caller goes on: one row
-- per job, and one per tenant it has finished (its outcomes commit batch by
-- batch, so a job resumes after a restart with the tenants it lacks).
CREATE SEQUENCE tenancy.job_seq;
COMMENT ON SEQUENCE tenancy.job_seq IS 'tenancy: ids of background jobs';
REVOKE ALL ON SEQUENCE tenancy.job_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('tenancy.job_seq', '');

CREATE TABLE tenancy.job (
    id               bigint      PRIMARY KEY DEFAULT pg_catalog.nextval('tenancy.job_seq'::pg_catalog.regclass),
    kind             text        NOT NULL
                     CONSTRAINT job_kind_check CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['migrate_all', 'provision_many'])),
    owner            regrole     NOT NULL,
    state            text        NOT NULL DEFAULT 'queued'
                     CONSTRAINT job_state_check CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['queued', 'running', 'done', 'failed', 'cancelled'])),
    parallel         integer     NOT NULL
                     CONSTRAINT job_parallel_check CHECK (parallel OPERATOR(pg_catalog.>=) 1 AND parallel OPERATOR(pg_catalog.<=) 64),
    tenants          text[],
    verify           boolean     NOT NULL DEFAULT false,
    max_failures     integer     CONSTRAINT job_max_failures_check CHECK (max_failures OPERATOR(pg_catalog.>) 0),
    to_version       bigint      CONSTRAINT job_to_version_check CHECK (to_version OPERATOR(pg_catalog.>=) 0),
    isolation        text,
    server           name,
    tenants_total    integer     NOT NULL DEFAULT 0,
    tenants_done     integer     NOT NULL DEFAULT 0,
    tenants_failed   integer     NOT NULL DEFAULT 0,
    tenants_skipped  integer     NOT NULL DEFAULT 0,
    last_error       text,
    last_sqlstate    text        CONSTRAINT job_last_sqlstate_check CHECK (last_sqlstate OPERATOR(pg_catalog.~) '^[0-9A-Z]{5}$'),
    cancel_requested boolean     NOT NULL DEFAULT false,
    runs             integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
COMMENT ON TABLE tenancy.job IS 'tenancy: background jobs (start_migrate_all, start_provision_many), run by the worker one after another as the role that started them';
COMMENT ON COLUMN tenancy.job.id IS 'the job id, from tenancy.job_seq, that start_migrate_all() and start_provision_many() return';
COMMENT ON COLUMN tenancy.job.kind IS 'the fleet function the job runs: migrate_all or provision_many';
COMMENT ON COLUMN tenancy.job.owner IS 'the role that started it (by OID: renamed, it keeps the job; dropped, the job fails); the worker runs it as that role';
COMMENT ON COLUMN tenancy.job.state IS 'queued, running, done (every tenant has an outcome), failed (the job itself failed, or max_failures was reached) or cancelled';
COMMENT ON COLUMN tenancy.job.parallel IS 'the parallel argument of the fleet function';
COMMENT ON COLUMN tenancy.job.tenants IS 'provision_many: the tenants to provision; migrate_all: the tenants named, NULL for every ready tenant';
COMMENT ON COLUMN tenancy.job.verify IS 'migrate_all''s verify argument';
COMMENT ON COLUMN tenancy.job.max_failures IS 'migrate_all: no tenant is started once this many have failed';
COMMENT ON COLUMN tenancy.job.to_version IS 'migrate_all''s to_version argument (NULL: the latest)';
COMMENT ON COLUMN tenancy.job.isolation IS 'provision_many''s isolation argument';
COMMENT ON COLUMN tenancy.job.server IS 'provision_many''s server argument (NULL: placed)';
COMMENT ON COLUMN tenancy.job.tenants_total IS 'tenants the job had to do when it was started';
COMMENT ON COLUMN tenancy.job.tenants_done IS 'tenants finished without failing (migrated, up to date, provisioned, existing)';
COMMENT ON COLUMN tenancy.job.tenants_failed IS 'tenants that failed (see tenancy.job_tenant)';
COMMENT ON COLUMN tenancy.job.tenants_skipped IS 'tenants not started (cancelled, max_failures, not ready, locked)';
COMMENT ON COLUMN tenancy.job.last_error IS 'the last failure (a tenant''s, or the job''s own)';
COMMENT ON COLUMN tenancy.job.last_sqlstate IS 'its SQLSTATE';
COMMENT ON COLUMN tenancy.job.cancel_requested IS 'cancel_job() was called: no new tenant is started';
COMMENT ON COLUMN tenancy.job.runs IS 'how many times a worker took it up (more than 1: resumed after a restart or a killed worker)';
COMMENT ON COLUMN tenancy.job.created_at IS 'when it was started';
COMMENT ON COLUMN tenancy.job.started_at IS 'when the worker first took it up';
COMMENT ON COLUMN tenancy.job.finished_at IS 'when it ended';
-- a dump carries finished jobs only: an unfinished one stays with the
-- cluster that runs it (restored elsewhere, its worker would resume it
-- against the same servers)
SELECT pg_catalog.pg_extension_config_dump('tenancy.job',
  $$WHERE state OPERATOR(pg_catalog.=) ANY (ARRAY['done', 'failed', 'cancelled'])$$);
REVOKE ALL ON tenancy.job FROM PUBLIC;

CREATE TABLE tenancy.job_tenant (
    job         bigint      NOT NULL REFERENCES tenancy.job (id) ON DELETE CASCADE,
    tenant      text        NOT NULL,
    status      text        NOT NULL,
    sqlstate    text,
    error       text,
    finished_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (job, tenant)
);
COMMENT ON TABLE tenancy.job_tenant IS 'tenancy: each tenant a background job has finished, with the fleet function''s status and error';
COMMENT ON COLUMN tenancy.job_tenant.job IS 'the job';
COMMENT ON COLUMN tenancy.job_tenant.tenant IS 'the tenant';
COMMENT ON COLUMN tenancy.job_tenant.status IS 'migrate_all''s or provision_many''s status for it';
COMMENT ON COLUMN tenancy.job_tenant.sqlstate IS 'the SQLSTATE of its failure';
COMMENT ON COLUMN tenancy.job_tenant.error IS 'its error, or why it was skipped';
COMMENT ON COLUMN tenancy.job_tenant.finished_at IS 'when its batch committed';
SELECT pg_catalog.pg_extension_config_dump('tenancy.job_tenant',
  $$WHERE job OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT id FROM tenancy.job WHERE state OPERATOR(pg_catalog.=) ANY (ARRAY['done', 'failed', 'cancelled'])))$$);
REVOKE ALL ON tenancy.job_tenant FROM PUBLIC;

CREATE FUNCTION tenancy.start_migrate_all(parallel integer DEFAULT 4, verify boolean DEFAULT false,
                                          tenants text[] DEFAULT NULL, max_failures integer DEFAULT NULL,
                                          to_version bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_start_migrate_all';
COMMENT ON FUNCTION tenancy.start_migrate_all(integer, boolean, text[], integer, bigint) IS 'tenancy: migrate_all() as a background job: checks its arguments as migrate_all() does and returns the job id at once; the worker runs it as the calling role after commit';

CREATE FUNCTION tenancy.start_provision_many(tenants text[], parallel integer DEFAULT 4,
                                             isolation text DEFAULT 'database', server name DEFAULT NULL)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_start_provision_many';
COMMENT ON FUNCTION tenancy.start_provision_many(text[], integer, text, name) IS 'tenancy: provision_many() as a background job: checks its arguments as provision_many() does and returns the job id at once; the worker runs it as the calling role after commit';

CREATE FUNCTION tenancy.cancel_job(id bigint)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_cancel_job';
COMMENT ON FUNCTION tenancy.cancel_job(bigint) IS 'tenancy: cancels a background job: a queued one at once; a running one starts no new tenant and ends cancelled when the tenants under way are done';

REVOKE ALL ON FUNCTION tenancy.start_migrate_all(integer, boolean, text[], integer, bigint),
                       tenancy.start_provision_many(text[], integer, text, name),
                       tenancy.cancel_job(bigint) FROM PUBLIC;

-- roles that may provision (configure()'s admin_role, granted before this
-- update) may provision many, manage servers and start, watch and cancel jobs too
DO $carry$
DECLARE
  g record;
BEGIN
  FOR g IN SELECT a.grantee FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a
            WHERE p.oid OPERATOR(pg_catalog.=) 'tenancy.provision(text, text, name, jsonb)'::pg_catalog.regprocedure
              AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
              AND a.grantee OPERATOR(pg_catalog.<>) p.proowner
              AND a.grantee OPERATOR(pg_catalog.<>) 0 LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION tenancy.provision_many(text[], integer, text, name), '
                              'tenancy.add_server(name, integer, integer, integer), tenancy.drain_server(name), '
                              'tenancy.server_status(), tenancy.tenant_stats(), tenancy.fill_pools() TO %s',
                              g.grantee::pg_catalog.regrole);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION tenancy.start_migrate_all(integer, boolean, text[], integer, bigint), '
                              'tenancy.start_provision_many(text[], integer, text, name), tenancy.cancel_job(bigint) TO %s',
                              g.grantee::pg_catalog.regrole);
    EXECUTE pg_catalog.format('GRANT SELECT ON tenancy.server, tenancy.spare, tenancy.job, tenancy.job_tenant TO %s',
                              g.grantee::pg_catalog.regrole);
  END LOOP;
END
$carry$;

-------------------------------------------------------------------------------
-- Initial privileges: a fresh install's (keep this last)
-------------------------------------------------------------------------------

-- Every GRANT and REVOKE run in an extension script also records the
-- object's resulting ACL as its initial privileges (pg_init_privs, privtype
-- 'e'), whether or not the object belongs to the extension.  pg_dump writes
-- only the privileges that differ from those: a restore runs CREATE
-- EXTENSION (this script on an empty tenancy.config, which carries nothing)
-- and then the GRANTs and REVOKEs in the dump.  The grants the blocks above
-- carry over from a configured 0.1.0 installation (configure()'s and the
-- operator's, copied to the 0.2.0 functions and tables; the operator's
-- grants on dblink's functions and on dblink servers, kept by the REVOKEs
-- above) would be taken for the extension's own and be missing after a
-- restore.  So the initial privileges are set back to what this script
-- leaves on a fresh install, where it changes nothing (test/t/100_upgrade.pl
-- compares the two and restores a dump of an upgraded installation).  The
-- live ACLs keep the carried grants: pg_dump now writes them.  A superuser
-- runs this script, and a superuser may change pg_init_privs directly.
--
-- 1. Members of tenancy and dblink (functions, relations and their columns,
--    types): the scripts grant to no role but the owner, and revoke from
--    PUBLIC; a privilege of any other grantee came from a carried ACL.
UPDATE pg_catalog.pg_init_privs i
   SET initprivs = ARRAY(SELECT a.item FROM pg_catalog.unnest(i.initprivs) WITH ORDINALITY a(item, n)
                          WHERE EXISTS (SELECT FROM pg_catalog.aclexplode(ARRAY[a.item]) x
                                         WHERE x.grantee OPERATOR(pg_catalog.=) ANY (ARRAY[m.owner, 0::pg_catalog.oid]))
                          ORDER BY a.n)
  FROM (SELECT d.classid, d.objid, COALESCE(p.proowner, c.relowner, t.typowner) AS owner
          FROM pg_catalog.pg_depend d
          JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
          LEFT JOIN pg_catalog.pg_proc p ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                                        AND p.oid OPERATOR(pg_catalog.=) d.objid
          LEFT JOIN pg_catalog.pg_class c ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                         AND c.oid OPERATOR(pg_catalog.=) d.objid
          LEFT JOIN pg_catalog.pg_type t ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
                                        AND t.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
           AND d.deptype OPERATOR(pg_catalog.=) 'e'
           AND e.extname OPERATOR(pg_catalog.=) ANY (ARRAY['tenancy', 'dblink'])) m
 WHERE (i.classoid, i.objoid) OPERATOR(pg_catalog.=) (m.classid, m.objid)
   AND i.privtype OPERATOR(pg_catalog.=) 'e'
   AND m.owner IS NOT NULL
   AND EXISTS (SELECT FROM pg_catalog.aclexplode(i.initprivs) x
                WHERE x.grantee OPERATOR(pg_catalog.<>) ALL (ARRAY[m.owner, 0::pg_catalog.oid]));
-- 2. tenancy.connstr(text, text): a fresh install neither grants nor revokes
--    on it (PUBLIC may execute it); the REVOKE above carried a 0.1.0
--    revocation.  Its initial privileges are the default: no row.
DELETE FROM pg_catalog.pg_init_privs i
 WHERE i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
   AND i.objoid OPERATOR(pg_catalog.=) 'tenancy.connstr(text, text)'::pg_catalog.regprocedure
   AND i.objsubid OPERATOR(pg_catalog.=) 0
   AND i.privtype OPERATOR(pg_catalog.=) 'e';
-- 3. dblink servers that belong to no extension: the operator's own, made by
--    CREATE SERVER in a dump, all of whose privileges pg_dump must write;
--    the $grant$ block's REVOKE USAGE gave them a row.
DELETE FROM pg_catalog.pg_init_privs i
 USING pg_catalog.pg_foreign_server s, pg_catalog.pg_foreign_data_wrapper w
 WHERE i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_foreign_server'::pg_catalog.regclass
   AND i.objoid OPERATOR(pg_catalog.=) s.oid
   AND i.privtype OPERATOR(pg_catalog.=) 'e'
   AND w.oid OPERATOR(pg_catalog.=) s.srvfdw
   AND w.fdwname OPERATOR(pg_catalog.=) 'dblink_fdw'
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                    WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_foreign_server'::pg_catalog.regclass
                      AND d.objid OPERATOR(pg_catalog.=) s.oid
                      AND d.deptype OPERATOR(pg_catalog.=) 'e');
