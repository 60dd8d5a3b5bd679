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
 *     library keeps serving the 0.1.0 declarations (STYLE 2.4).
 * test/t/100_upgrade.pl installs 0.1.0 with a row in every table, updates it
 * and checks that it matches a fresh install and that no row was lost.
 */

-------------------------------------------------------------------------------
-- 0.2.0 changes: append below
-------------------------------------------------------------------------------

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

  -- what the service role needs: the loopback server, and the catalog rows
  -- it writes on its own (cleanup records, state changes)
  EXECUTE format('GRANT USAGE ON FOREIGN SERVER %I TO %I', loopback_server, r.rolname);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON tenancy.tenant, tenancy.pending_cleanup, '
                 'tenancy.migration_progress TO %I', r.rolname);
  -- and the one way it creates schema tenants' schemas (0.2.0)
  EXECUTE format('GRANT EXECUTE ON FUNCTION tenancy.create_tenant_schema(bigint) TO %I', r.rolname);
  IF admin_role IS NOT NULL THEN
    EXECUTE format('GRANT EXECUTE ON FUNCTION tenancy.provision(text, text, name, jsonb), '
                   'tenancy.deprovision(text, boolean), tenancy.suspend(text), tenancy.resume(text), '
                   'tenancy.reconcile(boolean, boolean), tenancy.add_migration(bigint, text, text), '
                   'tenancy.migrate(text), tenancy.migrate_all(integer, boolean), tenancy.bootstrap(integer), '
                   'tenancy.grant_access(text, regrole), tenancy.revoke_access(text, regrole), '
                   'tenancy.health(text) TO %s',
                   admin_role);
    EXECUTE format('GRANT SELECT ON tenancy.tenant, tenancy.migration, tenancy.migration_status, '
                   'tenancy.member, tenancy.pending_cleanup, tenancy.template, tenancy.migration_progress TO %s',
                   admin_role);
  END IF;

  INSERT INTO tenancy.config AS c (service_role, loopback_server)
  VALUES (configure.service_role, configure.loopback_server)
  ON CONFLICT (singleton) DO UPDATE
     SET service_role = excluded.service_role, loopback_server = excluded.loopback_server,
         configured_at = pg_catalog.now();
END
$configure$;

-- an installation configured before 0.2.0: its service role gets the helper too
DO $grant$
DECLARE
  r pg_catalog.name;
BEGIN
  SELECT a.rolname INTO r FROM tenancy.config c
    JOIN pg_catalog.pg_roles a ON a.oid OPERATOR(pg_catalog.=) c.service_role;
  IF FOUND THEN
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION tenancy.create_tenant_schema(bigint) TO %I', r);
  END IF;
END
$grant$;
