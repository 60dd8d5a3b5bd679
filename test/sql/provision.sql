--
-- provision: create, find again, suspend, resume and drop tenant databases on
-- this cluster, through dblink
--
SELECT current_setting('unix_socket_directories') AS sockdir,
       current_setting('port') AS port \gset

-- should succeed: provisioning returns the ready row
SELECT id, isolation, database_name, schema_name, server, state, applied_version, last_error, metadata
  FROM tenancy.provision('acme', metadata => '{"plan": "gold"}');
-- the database exists, and PUBLIC may neither connect nor create temp tables
SELECT datname,
       has_database_privilege('public', datname, 'CONNECT') AS public_connect,
       has_database_privilege('public', datname, 'TEMP') AS public_temp
  FROM pg_database WHERE datname = 'regress_tn_acme';
-- the ledger exists in the tenant database
SELECT * FROM dblink(format('host=%s port=%s dbname=regress_tn_acme', :'sockdir', :'port'),
                     'SELECT count(*) FROM tenancy.applied_migration') AS t(n bigint);
-- no connection is left open
SELECT dblink_get_connections() AS open_connections;
-- remote sessions end asynchronously after tenancy closes them: wait (at
-- most 5 s) for their backends to exit before counting
CREATE FUNCTION pg_temp.tenancy_sessions() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  FOR i IN 1..100 LOOP
    PERFORM pg_stat_clear_snapshot();
    SELECT count(*) INTO n FROM pg_stat_activity WHERE application_name LIKE 'tenancy/%';
    EXIT WHEN n = 0;
    PERFORM pg_sleep(0.05);
  END LOOP;
  RETURN n;
END $$;
SELECT pg_temp.tenancy_sessions() AS remote_sessions;

-- New tenants are copies of tenancy's own template, built from the
-- registered migrations, closed to connections and to PUBLIC.
SELECT server, database_name, applied_version, fingerprint = md5('') AS built_from_no_migrations
  FROM tenancy.template;
SELECT datallowconn, has_database_privilege('public', datname, 'CONNECT') AS public_connect
  FROM pg_database WHERE datname = 'regress_tn_template';
-- should fail: nobody connects to the template
\set VERBOSITY terse
SELECT dblink_connect('tpl', format('host=%s port=%s dbname=regress_tn_template', :'sockdir', :'port'));
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
-- a registered migration changes the fingerprint: the next provision
-- rebuilds the template, and the new tenant has the migration's table
SELECT tenancy.add_migration(1, 'CREATE TABLE public.from_template (id int)');
SELECT id, applied_version FROM tenancy.provision('copied');
SELECT applied_version, fingerprint = md5('1:' || (SELECT checksum FROM tenancy.migration WHERE version = 1)) AS rebuilt
  FROM tenancy.template;
SELECT * FROM dblink(format('host=%s port=%s dbname=regress_tn_copied', :'sockdir', :'port'),
                     $$SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'from_template'$$) AS t(n bigint);
-- acme, provisioned before the migration, does not have it until migrated
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('acme');
SELECT tenancy.deprovision('copied');
-- an explicit template is copied as it is, and migrations run in the copy
SET tenancy.template_database = 'template0';
SELECT id, applied_version FROM tenancy.provision('explicit');
RESET tenancy.template_database;
SELECT tenancy.deprovision('explicit');
DELETE FROM tenancy.migration;

-- should succeed with a NOTICE: provisioning a ready tenant again
SELECT id, state FROM tenancy.provision('acme');

-- should fail: bad arguments (nothing is created)
SELECT tenancy.provision('bad-iso', isolation => 'row');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('bad-iso', isolation => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('bad-iso', isolation => 'schema', server => 'no_such_server');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('bad-meta', metadata => '[1, 2]');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('bad-meta', metadata => '"text"');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('bad-server', server => 'no_such_server');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('bad-server', server => 'x host=evil');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('bad-server', server => 'x'' dbname=''postgres');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('bad-server', server => 'a=b c');
\echo :LAST_ERROR_SQLSTATE
-- should fail: the server exists but there is no user mapping for the role
-- remote work runs as (42704), or it is not a server that role may use
CREATE SERVER regress_nomap FOREIGN DATA WRAPPER dblink_fdw OPTIONS (dbname 'postgres');
SELECT tenancy.provision('bad-server', server => 'regress_nomap');
\echo :LAST_ERROR_SQLSTATE
DROP SERVER regress_nomap;
SELECT tenancy.deprovision('acme', force => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS tenants FROM tenancy.tenant;

-- should fail: the database exists but is not registered (42P04), and
-- nothing is registered
CREATE DATABASE regress_tn_squatter;
SELECT tenancy.provision('squatter');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS squatter_rows FROM tenancy.tenant WHERE id = 'squatter';
DROP DATABASE regress_tn_squatter;

-- should fail: the tenant's database name is the template's
SET tenancy.template_database = 'regress_tn_tpl';
SELECT tenancy.provision('tpl');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.template_database;

-- should fail: the template does not exist; the remote error passes through
-- with its SQLSTATE, and the catalog row rolls back with the caller's
-- transaction
SET tenancy.template_database = 'regress_no_such_template';
SELECT tenancy.provision('no-template');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.template_database;
SELECT count(*) AS rows_left FROM tenancy.tenant WHERE id = 'no-template';
SELECT dblink_get_connections() AS open_connections;

-- suspend: not selectable, and the database refuses connections
SELECT tenancy.suspend('acme');
SELECT state FROM tenancy.tenant WHERE id = 'acme';
SELECT datallowconn FROM pg_database WHERE datname = 'regress_tn_acme';
-- should fail: connecting to a suspended tenant's database
\set VERBOSITY terse
SELECT dblink_connect('suspended', format('host=%s port=%s dbname=regress_tn_acme', :'sockdir', :'port'));
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
-- should fail: selecting it
SELECT tenancy.use('acme');
\echo :LAST_ERROR_SQLSTATE
-- should succeed with a NOTICE: suspending again
SELECT tenancy.suspend('acme');
-- should fail: provisioning a suspended tenant
SELECT tenancy.provision('acme');
\echo :LAST_ERROR_SQLSTATE
-- should fail: migrating a suspended tenant
SELECT * FROM tenancy.migrate('acme');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.resume('acme');
SELECT state FROM tenancy.tenant WHERE id = 'acme';
SELECT datallowconn FROM pg_database WHERE datname = 'regress_tn_acme';
-- should succeed with a NOTICE: resuming a ready tenant
SELECT tenancy.resume('acme');
-- should fail: unknown tenants
SELECT tenancy.suspend('ghost');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.resume('ghost');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.deprovision('ghost');
\echo :LAST_ERROR_SQLSTATE

-- deprovision refuses while a session is connected, unless forced
SELECT dblink_connect('holder', format('host=%s port=%s dbname=regress_tn_acme', :'sockdir', :'port'));
-- should fail: a session is connected (55006, passed through from the server)
SELECT tenancy.deprovision('acme');
\echo :LAST_ERROR_SQLSTATE
-- nothing changed
SELECT state FROM tenancy.tenant WHERE id = 'acme';
SELECT count(*) AS databases FROM pg_database WHERE datname = 'regress_tn_acme';
-- should succeed: force terminates the session
SELECT tenancy.deprovision('acme', force => true);
SELECT count(*) AS rows_left FROM tenancy.tenant WHERE id = 'acme';
SELECT count(*) AS databases FROM pg_database WHERE datname = 'regress_tn_acme';
SELECT dblink_disconnect('holder');

-- a deprovisioned name can be provisioned again
SELECT id, state FROM tenancy.provision('acme');
SELECT tenancy.deprovision('acme');
SELECT count(*) AS tenant_databases FROM pg_database WHERE datname LIKE 'regress_tn_%' AND datname <> 'regress_tn_template';
SELECT dblink_get_connections() AS open_connections;

-- One catalog's migrations never reach another's tenants: a second catalog
-- on this cluster with the same prefix would share regress_tn_template; it
-- is refused (42P04, naming the catalog that built it) and creates nothing
SELECT shobj_description(oid, 'pg_database') ~ ('^tenancy template of the catalog [0-9]+/[0-9]+ \(database ' || quote_ident(current_database()) || '\)$') AS template_marked
  FROM pg_database WHERE datname = 'regress_tn_template';
CREATE DATABASE regress_second_catalog;
\set second 'host=' :sockdir ' port=' :port ' dbname=regress_second_catalog'
SELECT dblink_exec(:'second', 'CREATE EXTENSION tenancy CASCADE');
SELECT dblink_exec(:'second', 'ALTER DATABASE regress_second_catalog SET tenancy.database_prefix = ''regress_tn_''');
SELECT * FROM dblink(:'second', 'SELECT tenancy.add_migration(1, ''CREATE TABLE public.other_catalog (id int)'')::text') AS t(r text);
-- should fail: 42P04 (terse: the DETAIL names this cluster's system identifier)
\set VERBOSITY terse
SELECT * FROM dblink(:'second', $$SELECT id FROM tenancy.provision('intruder')$$) AS t(id text);
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS intruder_databases FROM pg_database WHERE datname LIKE 'regress_tn_%intruder%';
SELECT * FROM dblink(:'second', 'SELECT count(*) FROM tenancy.tenant') AS t(n bigint);
-- this catalog's template is untouched and still serves it
SELECT id, state FROM tenancy.provision('after-intruder');
SELECT * FROM dblink(format('host=%s port=%s dbname=regress_tn_after-intruder', :'sockdir', :'port'),
                     $$SELECT count(*) FROM pg_class WHERE relname = 'other_catalog'$$) AS t(n bigint);
SELECT tenancy.deprovision('after-intruder');
-- with a prefix of its own, the second catalog works
SELECT dblink_exec(:'second', 'ALTER DATABASE regress_second_catalog SET tenancy.database_prefix = ''regress_tn2_''');
SELECT * FROM dblink(:'second', $$SELECT id || ' ' || database_name FROM tenancy.provision('other')$$) AS t(r text);
SELECT * FROM dblink(:'second', $$SELECT tenancy.deprovision('other')::text$$) AS t(r text);
DROP DATABASE regress_second_catalog;
DROP DATABASE regress_tn2_template;
