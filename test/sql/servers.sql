--
-- servers: dblink foreign servers registered as homes for new database
-- tenants (add_server, drain_server), placement by provision() without a
-- server, and the fleet's statistics (server_status, tenant_stats), one
-- query per server.  Two "servers" here both reach this cluster.
--
SELECT current_setting('unix_socket_directories') AS sockdir,
       current_setting('port') AS port \gset
SET client_min_messages = warning;
CREATE SERVER regress_here FOREIGN DATA WRAPPER dblink_fdw
  OPTIONS (host :'sockdir', port :'port', dbname :'DBNAME');
CREATE SERVER regress_there FOREIGN DATA WRAPPER dblink_fdw
  OPTIONS (host :'sockdir', port :'port', dbname :'DBNAME');
CREATE SERVER regress_down FOREIGN DATA WRAPPER dblink_fdw
  OPTIONS (host :'sockdir', port '1', dbname :'DBNAME');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_here;
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_there;
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_down;
CREATE FOREIGN DATA WRAPPER regress_other_fdw;
CREATE SERVER regress_not_dblink FOREIGN DATA WRAPPER regress_other_fdw;
RESET client_min_messages;
SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int)');

-- should fail: 22004, 42704, 42809, 22023 (weight, budget); nothing registered
SELECT tenancy.add_server(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_server('regress_nowhere');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_server('regress_not_dblink');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_server('regress_here', weight => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_server('regress_here', max_sessions => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS registered FROM tenancy.server;
-- should fail: not for applications (42501)
CREATE ROLE regress_server_app;
SET ROLE regress_server_app;
SELECT tenancy.add_server('regress_here');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.server_status();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_server_app;

-- registered: placement picks the fewest tenants per unit of weight among
-- the accepting servers (ties by name); schema tenants stay here
SELECT server, weight, max_sessions, accepting FROM tenancy.add_server('regress_here', weight => 2);
SELECT server, weight, max_sessions, accepting FROM tenancy.add_server('regress_there', max_sessions => 2);
SELECT id, server FROM tenancy.provision('p1');
SELECT id, server FROM tenancy.provision('p2');
SELECT id, server FROM tenancy.provision('p3');
SELECT id, server FROM tenancy.provision('p-schema', isolation => 'schema');
-- a drained server gets no new tenant; its tenants stay
SELECT server, accepting FROM tenancy.drain_server('regress_here');
SELECT id, server FROM tenancy.provision('p4');
-- should fail: none accepts (55000), nothing created; unknown server (42704)
SELECT tenancy.drain_server('regress_there') IS NOT NULL AS drained;
SELECT tenancy.provision('p5');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS p5_databases FROM pg_database WHERE datname = 'regress_tn_p5';
SELECT tenancy.drain_server('regress_nowhere');
\echo :LAST_ERROR_SQLSTATE
-- registered again: accepts again, with the new weight and budget
SELECT server, weight, max_sessions, accepting FROM tenancy.add_server('regress_here', weight => 3, max_sessions => 8);
SELECT id, server FROM tenancy.provision('p5');

-- server_status(): one row per server; a server that does not answer is a
-- row with its error, not a failed call
SELECT tenancy.add_server('regress_down') IS NOT NULL AS added_down;
SELECT server, weight, max_sessions, accepting, tenants, total_size > 0 AS has_size,
       sessions >= 0 AS has_sessions, reachable, split_part(error, ':', 1) AS sqlstate
  FROM tenancy.server_status() ORDER BY server;
-- tenant_stats(): every tenant, from its server's statistics
SELECT tenant, server, transactions >= 0 AS has_transactions, size > 0 AS has_size,
       rows_read >= 0 AS has_reads, error
  FROM tenancy.tenant_stats() ORDER BY tenant;

-- a session on a tenant makes last_activity known; read as a number, so the
-- server's DateStyle does not matter
SELECT dblink_connect('stats_holder', format('host=%s port=%s dbname=regress_tn_p1', :'sockdir', :'port'));
ALTER DATABASE :"DBNAME" SET datestyle = 'SQL, DMY';
SELECT tenant, last_activity > now() - interval '1 hour' AS recent, sessions >= 1 AS has_sessions
  FROM tenancy.tenant_stats() WHERE tenant = 'p1';
ALTER DATABASE :"DBNAME" RESET datestyle;
SELECT dblink_disconnect('stats_holder');
-- the catalog keeps servers through pg_dump
SELECT 'tenancy.server'::regclass::oid = ANY (extconfig) AS server_table_dumped FROM pg_extension WHERE extname = 'tenancy';

-- Session budgets: fleet work opens at most max_sessions sessions on a
-- server at once, whatever its parallel.  Each migration records how many
-- sessions the tenants of regress_here have at that moment (it sleeps, so
-- that runs in parallel would overlap): with a budget of 1, never more.
SELECT tenancy.add_server('regress_here', weight => 3, max_sessions => 1) IS NOT NULL AS budget_of_one;
SELECT tenancy.add_migration(2, $m$CREATE TABLE seen AS SELECT count(*) AS sessions FROM pg_catalog.pg_stat_activity
  WHERE datname IN ('regress_tn_p1', 'regress_tn_p3', 'regress_tn_p5'); SELECT pg_catalog.pg_sleep(0.3)$m$);
SET client_min_messages = warning;
SELECT tenant, status FROM tenancy.migrate_all(4) ORDER BY tenant;
RESET client_min_messages;
SELECT max(n) AS most_sessions_on_regress_here FROM (
  SELECT (SELECT s FROM dblink(format('host=%s port=%s dbname=regress_tn_%s', :'sockdir', :'port', t),
                               'SELECT sessions FROM public.seen') AS x(s bigint)) AS n
    FROM unnest(ARRAY['p1', 'p3', 'p5']) t) m;
SELECT count(*) AS health_rows FROM tenancy.health();

-- Warm pools: spare databases at the registered migrations, which
-- provision() takes by renaming instead of copying the template
SELECT tenancy.drain_server('regress_down') IS NOT NULL AS drained_down;
SELECT server, weight, max_sessions, warm_pool FROM tenancy.add_server('regress_here', weight => 3, max_sessions => 1, warm_pool => 2);
-- should fail: 22023, nothing changed
SELECT tenancy.add_server('regress_here', warm_pool => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.fill_pools();
SELECT count(*) FILTER (WHERE ready) AS ready_spares, count(*) AS spares FROM tenancy.spare;
SELECT id, server, applied_version FROM tenancy.provision('w1');
SELECT count(*) AS spares_left FROM tenancy.spare;
SELECT * FROM dblink(format('host=%s port=%s dbname=regress_tn_w1', :'sockdir', :'port'),
                     'SELECT pg_catalog.string_agg(version::text, '','' ORDER BY version) FROM tenancy.applied_migration') AS t(versions text);
-- a new migration makes the spares stale: none is taken (the template is
-- copied instead), and fill_pools() drops and replaces them
SELECT tenancy.add_migration(3, 'CREATE TABLE after_pool (id int)');
SELECT id, server, applied_version FROM tenancy.provision('w2');
SELECT count(*) AS stale_spares_left FROM tenancy.spare;
SELECT * FROM tenancy.fill_pools();
SELECT id, server, applied_version FROM tenancy.provision('w3');
SELECT count(*) AS spares_left FROM tenancy.spare;
-- a spare dropped behind tenancy's back is forgotten by reconcile()
SELECT database_name AS spare_db FROM tenancy.spare LIMIT 1 \gset
DROP DATABASE :"spare_db";
SELECT tenant, problem, action FROM tenancy.reconcile() WHERE object = :'spare_db';
SELECT count(*) AS spares_left FROM tenancy.spare;
-- an interrupted creation (the row says not ready) is dropped and forgotten
CREATE DATABASE regress_tn_tmp_999999;
INSERT INTO tenancy.spare (database_name, server, fingerprint, applied_version)
VALUES ('regress_tn_tmp_999999', 'regress_here', 'interrupted', 0);
SELECT tenant, problem, action FROM tenancy.reconcile() WHERE object = 'regress_tn_tmp_999999';
SELECT count(*) AS left_behind FROM pg_database WHERE datname = 'regress_tn_tmp_999999';
SELECT count(*) AS spares_left FROM tenancy.spare;
SELECT tenancy.add_server('regress_here', weight => 3, max_sessions => 1) IS NOT NULL AS pool_off;

-- provision_many: each tenant atomic on its own, placed like provision(),
-- created within each server's budget (regress_here's is 1), one row each;
-- a bad id and a ready tenant do not stop the others
SELECT tenancy.drain_server('regress_down') IS NOT NULL AS drained_down;
SELECT tenant, status, server, error, sqlstate
  FROM tenancy.provision_many(ARRAY['m1', 'Bad', 'p1', 'm2'], parallel => 3);
-- a server that does not answer: its tenants fail (08001), nothing is left
SELECT tenant, status, left(error, 30) AS error, sqlstate
  FROM tenancy.provision_many(ARRAY['m3', 'm4'], server => 'regress_down');
SELECT id, state, server FROM tenancy.tenant WHERE id LIKE 'm%' ORDER BY id;
SELECT count(*) AS pending_cleanup FROM tenancy.pending_cleanup;
SELECT count(*) AS temporary_databases FROM pg_database WHERE datname LIKE 'regress_tn_tmp_%';
-- schema tenants too; here migration 1 (CREATE TABLE public.item) fails
-- for them, since p-schema's run made public.item: each fails alone, undone
SELECT tenant, status, server, error FROM tenancy.provision_many(ARRAY['ms1', 'ms2'], isolation => 'schema');
SELECT count(*) AS ms_schemas FROM pg_namespace WHERE nspname LIKE 'regress_tn_ms%' OR nspname LIKE 'regress_tn_tmp_%';
-- should fail before anything runs: 22004, 22023 (parallel, an id twice,
-- isolation, a server for schema tenants)
SELECT * FROM tenancy.provision_many(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.provision_many(ARRAY['x1'], parallel => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.provision_many(ARRAY['x1', 'x1']);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.provision_many(ARRAY['x1'], isolation => 'cluster');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.provision_many(ARRAY['x1'], isolation => 'schema', server => 'regress_here');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS x_tenants FROM tenancy.tenant WHERE id LIKE 'x%';

SELECT tenancy.deprovision(id) FROM tenancy.tenant ORDER BY id;
DELETE FROM tenancy.server;
DELETE FROM tenancy.template WHERE server IS NOT NULL;
DELETE FROM tenancy.migration;
SET client_min_messages = warning;
DROP SERVER regress_here, regress_there, regress_down, regress_not_dblink CASCADE;
DROP FOREIGN DATA WRAPPER regress_other_fdw;
RESET client_min_messages;
