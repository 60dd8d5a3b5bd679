/* tenancy--0.1.0.sql: base install script */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION tenancy CASCADE" to load this file. \quit

-- Refuse a schema "tenancy" that somebody else created beforehand: PostgreSQL
-- would otherwise install into it, leaving its owner in control of our objects.
DO $check$
BEGIN
  IF (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'tenancy')
     OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = 'schema "tenancy" must be owned by the extension owner',
      HINT = 'Drop the schema "tenancy" or change its owner, then create the extension again.';
  END IF;
END
$check$;

REVOKE ALL ON SCHEMA tenancy FROM PUBLIC;
GRANT USAGE ON SCHEMA tenancy TO PUBLIC;

-------------------------------------------------------------------------------
-- Catalog
-------------------------------------------------------------------------------

CREATE TABLE tenancy.tenant (
    id              text        PRIMARY KEY
                                CONSTRAINT tenant_id_syntax CHECK (id OPERATOR(pg_catalog.~) '^[a-z0-9][a-z0-9_-]*$'
                                                                   AND pg_catalog.strpos(id, '--') OPERATOR(pg_catalog.=) 0
                                                                   AND pg_catalog.octet_length(id) OPERATOR(pg_catalog.<=) 63),
    isolation       text        NOT NULL DEFAULT 'database'
                                CONSTRAINT tenant_isolation_check CHECK (isolation OPERATOR(pg_catalog.=) ANY (ARRAY['database', 'schema'])),
    database_name   text        CONSTRAINT tenant_database_name_length CHECK (pg_catalog.octet_length(database_name) OPERATOR(pg_catalog.<=) 63),
    schema_name     text        CONSTRAINT tenant_schema_name_length CHECK (pg_catalog.octet_length(schema_name) OPERATOR(pg_catalog.<=) 63),
    server          name,
    state           text        NOT NULL DEFAULT 'provisioning'
                                CONSTRAINT tenant_state_check CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['provisioning', 'ready', 'suspended', 'failed', 'dropping'])),
    applied_version bigint      NOT NULL DEFAULT 0
                                CONSTRAINT tenant_applied_version_check CHECK (applied_version OPERATOR(pg_catalog.>=) 0),
    last_error      text,
    last_sqlstate   text        CONSTRAINT tenant_last_sqlstate_check CHECK (last_sqlstate OPERATOR(pg_catalog.~) '^[0-9A-Z]{5}$'),
    metadata        jsonb       NOT NULL DEFAULT '{}'
                                CONSTRAINT tenant_metadata_object CHECK (pg_catalog.jsonb_typeof(metadata) OPERATOR(pg_catalog.=) 'object'),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT tenant_target_check CHECK (
        (isolation OPERATOR(pg_catalog.=) 'database' AND database_name IS NOT NULL AND schema_name IS NULL)
        OR (isolation OPERATOR(pg_catalog.=) 'schema' AND schema_name IS NOT NULL AND database_name IS NULL))
);
CREATE UNIQUE INDEX tenant_database_key ON tenancy.tenant ((COALESCE(server, ''::pg_catalog.name)), database_name)
    WHERE database_name IS NOT NULL;
CREATE UNIQUE INDEX tenant_schema_key ON tenancy.tenant (schema_name) WHERE schema_name IS NOT NULL;

COMMENT ON TABLE tenancy.tenant IS 'tenancy: one row per tenant, with its isolation, target database or schema, server and state';
COMMENT ON COLUMN tenancy.tenant.id IS 'tenant id: canonical lower-case ASCII, ^[a-z0-9][a-z0-9_-]*$ without "--"';
COMMENT ON COLUMN tenancy.tenant.isolation IS 'database (own database) or schema (own schema in the admin database)';
COMMENT ON COLUMN tenancy.tenant.database_name IS 'name of the tenant database (database tenants)';
COMMENT ON COLUMN tenancy.tenant.schema_name IS 'name of the tenant schema (schema tenants)';
COMMENT ON COLUMN tenancy.tenant.server IS 'dblink foreign server holding the tenant database; NULL means this cluster';
COMMENT ON COLUMN tenancy.tenant.state IS 'provisioning, ready, suspended, failed or dropping';
COMMENT ON COLUMN tenancy.tenant.applied_version IS 'highest migration version in the tenant''s own ledger (a summary of it)';
COMMENT ON COLUMN tenancy.tenant.last_error IS 'text of the last error recorded for the tenant (cleared by the next success)';
COMMENT ON COLUMN tenancy.tenant.last_sqlstate IS 'SQLSTATE of that error';
COMMENT ON COLUMN tenancy.tenant.metadata IS 'free-form JSON object for the application';
COMMENT ON COLUMN tenancy.tenant.created_at IS 'when the tenant was registered';
COMMENT ON COLUMN tenancy.tenant.updated_at IS 'when the row last changed state or version';
COMMENT ON INDEX tenancy.tenant_database_key IS 'tenancy: at most one tenant per database on each server';
COMMENT ON INDEX tenancy.tenant_schema_key IS 'tenancy: at most one tenant per schema';

CREATE TABLE tenancy.migration (
    version     bigint      PRIMARY KEY
                            CONSTRAINT migration_version_check CHECK (version OPERATOR(pg_catalog.>) 0),
    description text,
    sql         text        NOT NULL
                            CONSTRAINT migration_sql_check CHECK (pg_catalog.btrim(sql) OPERATOR(pg_catalog.<>) ''),
    checksum    text        NOT NULL
                            CONSTRAINT migration_checksum_check CHECK (checksum OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE tenancy.migration IS 'tenancy: registered migrations, applied to every tenant in ascending version order';
COMMENT ON COLUMN tenancy.migration.version IS 'positive version; migrations are applied in ascending order';
COMMENT ON COLUMN tenancy.migration.description IS 'free-form description';
COMMENT ON COLUMN tenancy.migration.sql IS 'the migration''s SQL, run in one remote transaction per tenant';
COMMENT ON COLUMN tenancy.migration.checksum IS 'hex SHA-256 of sql: the identity of the migration';
COMMENT ON COLUMN tenancy.migration.created_at IS 'when the migration was registered';

CREATE TABLE tenancy.member (
    tenant_id   text        NOT NULL REFERENCES tenancy.tenant (id) ON DELETE CASCADE,
    role        regrole     NOT NULL,
    granted_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, role)
);

COMMENT ON TABLE tenancy.member IS 'tenancy: which roles may use which tenant';
COMMENT ON COLUMN tenancy.member.tenant_id IS 'the tenant';
COMMENT ON COLUMN tenancy.member.role IS 'a role allowed to select and use the tenant';
COMMENT ON COLUMN tenancy.member.granted_at IS 'when access was granted';

CREATE TABLE tenancy.migration_progress (
    tenant_id    text        PRIMARY KEY,
    status       text        NOT NULL
                             CONSTRAINT migration_progress_status_check CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['running', 'migrated', 'up_to_date', 'failed', 'skipped'])),
    from_version bigint,
    to_version   bigint,
    error        text,
    sqlstate     text,
    backend_pid  integer     NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE tenancy.migration_progress IS 'tenancy: the latest migrate_all() outcome per tenant, written as each tenant starts and ends (committed on its own, so other sessions watch a run while it goes)';
COMMENT ON COLUMN tenancy.migration_progress.tenant_id IS 'the tenant';
COMMENT ON COLUMN tenancy.migration_progress.status IS 'running, migrated, up_to_date, failed or skipped';
COMMENT ON COLUMN tenancy.migration_progress.from_version IS 'ledger version before the run';
COMMENT ON COLUMN tenancy.migration_progress.to_version IS 'ledger version reached';
COMMENT ON COLUMN tenancy.migration_progress.error IS 'error text of a failure';
COMMENT ON COLUMN tenancy.migration_progress.sqlstate IS 'SQLSTATE of a failure';
COMMENT ON COLUMN tenancy.migration_progress.backend_pid IS 'the backend running migrate_all()';
COMMENT ON COLUMN tenancy.migration_progress.updated_at IS 'when this row last changed';

CREATE TABLE tenancy.config (
    singleton       boolean     PRIMARY KEY DEFAULT true
                                CONSTRAINT config_singleton CHECK (singleton),
    service_role    regrole     NOT NULL,
    loopback_server name        NOT NULL,
    configured_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE tenancy.config IS 'tenancy: who remote work runs as (set by tenancy.configure); no credentials are stored here';
COMMENT ON COLUMN tenancy.config.singleton IS 'always true: there is one configuration';
COMMENT ON COLUMN tenancy.config.service_role IS 'the non-superuser role (CREATEDB, no CREATEROLE) that creates, owns, migrates and drops tenant databases';
COMMENT ON COLUMN tenancy.config.loopback_server IS 'the dblink foreign server that reaches this cluster; its user mapping for the service role holds the credentials';
COMMENT ON COLUMN tenancy.config.configured_at IS 'when tenancy.configure() last ran';

CREATE TABLE tenancy.template (
    server          name,
    database_name   text        NOT NULL
                                CONSTRAINT template_database_name_length CHECK (pg_catalog.octet_length(database_name) OPERATOR(pg_catalog.<=) 63),
    applied_version bigint      NOT NULL DEFAULT 0
                                CONSTRAINT template_applied_version_check CHECK (applied_version OPERATOR(pg_catalog.>=) 0),
    fingerprint     text        NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE UNIQUE INDEX template_server_key ON tenancy.template ((COALESCE(server, ''::pg_catalog.name)));

COMMENT ON TABLE tenancy.template IS 'tenancy: the template database tenancy keeps on each server, rebuilt whenever the registered migrations change, that new tenant databases are copied from';
COMMENT ON COLUMN tenancy.template.server IS 'foreign server holding the template; NULL means this cluster';
COMMENT ON COLUMN tenancy.template.database_name IS 'name of the template database';
COMMENT ON COLUMN tenancy.template.applied_version IS 'highest migration version the template was built with';
COMMENT ON COLUMN tenancy.template.fingerprint IS 'MD5 of the registered migrations (versions and checksums) the template was built from';
COMMENT ON COLUMN tenancy.template.updated_at IS 'when the template was last built';
COMMENT ON INDEX tenancy.template_server_key IS 'tenancy: one template per server';

CREATE SEQUENCE tenancy.operation_seq;
COMMENT ON SEQUENCE tenancy.operation_seq IS 'tenancy: ids of provisioning operations, which name temporary databases';

CREATE TABLE tenancy.pending_cleanup (
    operation_id  bigint      PRIMARY KEY,
    tenant_id     text        NOT NULL,
    server        name,
    database_name text        NOT NULL
                              CONSTRAINT pending_cleanup_name_length CHECK (pg_catalog.octet_length(database_name) OPERATOR(pg_catalog.<=) 63),
    final_name    text        NOT NULL
                              CONSTRAINT pending_cleanup_final_length CHECK (pg_catalog.octet_length(final_name) OPERATOR(pg_catalog.<=) 63),
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE tenancy.pending_cleanup IS 'tenancy: databases a provisioning operation created under a temporary name, recorded (committed on its own) before they are created; deleted in the same transaction that registers the tenant';
COMMENT ON COLUMN tenancy.pending_cleanup.operation_id IS 'the operation (from tenancy.operation_seq)';
COMMENT ON COLUMN tenancy.pending_cleanup.tenant_id IS 'the tenant being provisioned';
COMMENT ON COLUMN tenancy.pending_cleanup.server IS 'foreign server holding the database; NULL means this cluster';
COMMENT ON COLUMN tenancy.pending_cleanup.database_name IS 'temporary database name (<prefix>tmp_<operation_id>)';
COMMENT ON COLUMN tenancy.pending_cleanup.final_name IS 'the name the database gets when the tenant is registered';
COMMENT ON COLUMN tenancy.pending_cleanup.created_at IS 'when the operation started';

-- pg_dump keeps the rows of extension configuration tables
SELECT pg_catalog.pg_extension_config_dump('tenancy.tenant', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.pending_cleanup', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.template', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.config', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.operation_seq', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.migration', '');
SELECT pg_catalog.pg_extension_config_dump('tenancy.member', '');

REVOKE ALL ON tenancy.tenant, tenancy.migration, tenancy.member, tenancy.pending_cleanup, tenancy.template,
               tenancy.config, tenancy.migration_progress FROM PUBLIC;
REVOKE ALL ON SEQUENCE tenancy.operation_seq FROM PUBLIC;

CREATE VIEW tenancy.migration_status AS
SELECT t.id AS tenant,
       t.state,
       t.applied_version,
       l.latest_version,
       (SELECT pg_catalog.count(*) FROM tenancy.migration m
         WHERE m.version OPERATOR(pg_catalog.>) t.applied_version) AS pending,
       t.last_error,
       t.last_sqlstate,
       t.updated_at
  FROM tenancy.tenant t
 CROSS JOIN (SELECT COALESCE(pg_catalog.max(version), 0) AS latest_version
               FROM tenancy.migration) l;

COMMENT ON VIEW tenancy.migration_status IS 'tenancy: per tenant, applied and latest migration version, pending count, state and last error, from the catalog alone';
REVOKE ALL ON tenancy.migration_status FROM PUBLIC;

-------------------------------------------------------------------------------
-- Cache invalidation
-------------------------------------------------------------------------------

CREATE FUNCTION tenancy.tenant_cache_invalidate()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'tenancy_cache_invalidate';

COMMENT ON FUNCTION tenancy.tenant_cache_invalidate() IS 'tenancy: trigger that invalidates every backend''s tenant cache';
REVOKE ALL ON FUNCTION tenancy.tenant_cache_invalidate() FROM PUBLIC;

CREATE TRIGGER tenant_cache_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.tenant
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.tenant_cache_invalidate();

COMMENT ON TRIGGER tenant_cache_invalidate ON tenancy.tenant IS 'tenancy: tells every session that tenants changed';

CREATE TRIGGER member_cache_invalidate
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenancy.member
    FOR EACH STATEMENT EXECUTE FUNCTION tenancy.tenant_cache_invalidate();

COMMENT ON TRIGGER member_cache_invalidate ON tenancy.member IS 'tenancy: tells every session that who may use which tenant changed';

CREATE FUNCTION tenancy.cache_stats(OUT entries bigint, OUT hits bigint, OUT misses bigint, OUT invalidations bigint)
RETURNS record
LANGUAGE C VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'tenancy_cache_stats';

COMMENT ON FUNCTION tenancy.cache_stats() IS 'tenancy: this backend''s tenant cache: entries held, and hits, misses and invalidations since it started';
REVOKE ALL ON FUNCTION tenancy.cache_stats() FROM PUBLIC;

-------------------------------------------------------------------------------
-- Provisioning (superuser or granted; EXECUTE revoked from PUBLIC)
-------------------------------------------------------------------------------

CREATE FUNCTION tenancy.provision(tenant text,
                                  isolation text DEFAULT 'database',
                                  server name DEFAULT NULL,
                                  metadata jsonb DEFAULT '{}')
RETURNS tenancy.tenant
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_provision';

COMMENT ON FUNCTION tenancy.provision(text, text, name, jsonb) IS 'tenancy: registers a tenant, creates its database on its server and applies every migration';

CREATE FUNCTION tenancy.deprovision(tenant text, force boolean DEFAULT false)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_deprovision';

COMMENT ON FUNCTION tenancy.deprovision(text, boolean) IS 'tenancy: drops a tenant''s database and its row; force terminates connected sessions';

CREATE FUNCTION tenancy.suspend(tenant text)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_suspend';

COMMENT ON FUNCTION tenancy.suspend(text) IS 'tenancy: makes a tenant unselectable and its database refuse new connections';

CREATE FUNCTION tenancy.resume(tenant text)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_resume';

COMMENT ON FUNCTION tenancy.resume(text) IS 'tenancy: undoes suspend()';

CREATE FUNCTION tenancy.reconcile(dry_run boolean DEFAULT false, check_ledgers boolean DEFAULT false)
RETURNS TABLE (tenant text, object text, problem text, action text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_reconcile';

COMMENT ON FUNCTION tenancy.reconcile(boolean, boolean) IS 'tenancy: finds and repairs what interrupted operations left: temporary databases, unregistered final databases, interrupted drops, rows whose database is missing; with check_ledgers, also rebuilds each ready tenant''s applied_version from its ledger';

-------------------------------------------------------------------------------
-- Least privilege: the service role
-------------------------------------------------------------------------------

CREATE FUNCTION tenancy.configure(service_role regrole, loopback_server name, admin_role regrole DEFAULT NULL)
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

COMMENT ON FUNCTION tenancy.configure(regrole, name, regrole) IS 'tenancy: names the service role remote work runs as and the dblink server that reaches this cluster; optionally grants the admin functions to an admin role';
REVOKE ALL ON FUNCTION tenancy.configure(regrole, name, regrole) FROM PUBLIC;

-------------------------------------------------------------------------------
-- Migrations
-------------------------------------------------------------------------------

CREATE FUNCTION tenancy.add_migration(version bigint, sql text, description text DEFAULT NULL)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_add_migration';

COMMENT ON FUNCTION tenancy.add_migration(bigint, text, text) IS 'tenancy: registers a migration; its SHA-256 checksum is its identity';

CREATE FUNCTION tenancy.migrate(tenant text)
RETURNS TABLE (tenant text, from_version bigint, to_version bigint, status text, duration interval, error text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_migrate';

CREATE FUNCTION tenancy.migrate_all(parallel integer DEFAULT 4, verify boolean DEFAULT false)
RETURNS TABLE (tenant text, from_version bigint, to_version bigint, status text, duration interval,
               error text, sqlstate text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_migrate_all';

COMMENT ON FUNCTION tenancy.migrate_all(integer, boolean) IS 'tenancy: migrates every ready tenant, at most parallel at once; failures are recorded and the others go on; up-to-date tenants are answered from the catalog unless verify';

CREATE FUNCTION tenancy.bootstrap(parallel integer DEFAULT 4)
RETURNS TABLE (tenant text, action text, status text, error text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $bootstrap$
DECLARE
  r record;
BEGIN
  -- what interrupted operations left; rows whose database is gone become failed
  FOR r IN SELECT * FROM tenancy.reconcile(check_ledgers => true) LOOP
    tenant := r.tenant; action := 'reconcile'; status := r.action; error := r.problem;
    RETURN NEXT;
  END LOOP;
  -- every ready tenant reachable, its ledger checked, and migrated
  RETURN QUERY
    SELECT m.tenant, 'migrate'::text, m.status,
           CASE WHEN m.sqlstate IS NULL THEN m.error ELSE m.sqlstate OPERATOR(pg_catalog.||) ': ' OPERATOR(pg_catalog.||) m.error END
      FROM tenancy.migrate_all(bootstrap.parallel, verify => true) m;
  -- every registered tenant exists: recreate those whose database is missing
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

COMMENT ON FUNCTION tenancy.bootstrap(integer) IS 'tenancy: an application''s start-up routine in one call: reconcile, recreate tenants whose database is missing, connect to every tenant and migrate it';

COMMENT ON FUNCTION tenancy.migrate(text) IS 'tenancy: applies pending migrations to one tenant, each in one remote transaction with its ledger row';

REVOKE ALL ON FUNCTION tenancy.provision(text, text, name, jsonb),
                       tenancy.deprovision(text, boolean),
                       tenancy.suspend(text),
                       tenancy.resume(text),
                       tenancy.reconcile(boolean, boolean),
                       tenancy.add_migration(bigint, text, text),
                       tenancy.migrate(text),
                       tenancy.migrate_all(integer, boolean),
                       tenancy.bootstrap(integer)
  FROM PUBLIC;

-------------------------------------------------------------------------------
-- Access
-------------------------------------------------------------------------------

CREATE FUNCTION tenancy.grant_access(tenant text, role regrole)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_grant_access';

COMMENT ON FUNCTION tenancy.grant_access(text, regrole) IS 'tenancy: lets a role use a tenant (and connect to its database)';

CREATE FUNCTION tenancy.revoke_access(tenant text, role regrole)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_revoke_access';

COMMENT ON FUNCTION tenancy.revoke_access(text, regrole) IS 'tenancy: undoes grant_access(); takes effect on the next statement of every session';

REVOKE ALL ON FUNCTION tenancy.grant_access(text, regrole), tenancy.revoke_access(text, regrole) FROM PUBLIC;

-------------------------------------------------------------------------------
-- Routing (any role)
-------------------------------------------------------------------------------

CREATE FUNCTION tenancy.current_tenant()
RETURNS text
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'tenancy_current_tenant';

COMMENT ON FUNCTION tenancy.current_tenant() IS 'tenancy: the tenant selected by tenancy.current, checked to exist and be ready';

CREATE FUNCTION tenancy.current_tenant_id()
RETURNS text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'tenancy_current_tenant_id';

COMMENT ON FUNCTION tenancy.current_tenant_id() IS 'tenancy: for row-level security policies: the selected tenant, checked like current_tenant(), or NULL when none is selected (so a policy matches no row)';

CREATE FUNCTION tenancy.use(tenant text, is_local boolean DEFAULT true)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_use';

COMMENT ON FUNCTION tenancy.use(text, boolean) IS 'tenancy: checks a tenant and selects it, like SET [LOCAL] tenancy.current';

CREATE FUNCTION tenancy.connstr(tenant text DEFAULT NULL)
RETURNS text
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'tenancy_connstr';

COMMENT ON FUNCTION tenancy.connstr(text) IS 'tenancy: a libpq connection string (host, port, database; no user, no password) for a tenant''s database, default the selected tenant';

CREATE FUNCTION tenancy.exec(sql text)
RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_exec';

COMMENT ON FUNCTION tenancy.exec(text) IS 'tenancy: runs SQL in the selected tenant''s database (kept connection, as the calling role) or schema; returns the last command status';

CREATE FUNCTION tenancy.query(sql text)
RETURNS SETOF record
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_query';

COMMENT ON FUNCTION tenancy.query(text) IS 'tenancy: runs a query in the selected tenant''s database (kept connection, as the calling role) or schema; rows typed by the column definition list';

CREATE FUNCTION tenancy.health(tenant text DEFAULT NULL)
RETURNS TABLE (tenant text, state text, reachable boolean, applied_version bigint, latest_version bigint,
               ledger_version bigint, drift text, database_size bigint, connections integer,
               allow_connections boolean, xid_age integer, error text)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'tenancy_health';

COMMENT ON FUNCTION tenancy.health(text) IS 'tenancy: per tenant (or one): reachable, state, catalog and ledger versions, drift, database size, sessions, datallowconn, age(datfrozenxid)';
REVOKE ALL ON FUNCTION tenancy.health(text) FROM PUBLIC;
