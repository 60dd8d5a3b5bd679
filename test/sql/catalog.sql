--
-- catalog: constraints, dump registration, the migration_status view and the
-- backend tenant cache
--

-- registered with pg_extension_config_dump, so pg_dump keeps the rows
SELECT c.relname
  FROM pg_extension e, unnest(e.extconfig) AS cfg(oid) JOIN pg_class c ON c.oid = cfg.oid
 WHERE e.extname = 'tenancy' ORDER BY 1;

-- should fail: CHECK constraints refuse rows tenancy would never write
-- (terse: the failing rows hold timestamps)
\set VERBOSITY terse
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('Bad', 'x', 'ready');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('a--b', 'x', 'ready');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('ok', 'x', 'sleeping');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.tenant (id, isolation, database_name) VALUES ('ok', 'row', 'x');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.tenant (id, isolation, database_name) VALUES ('ok', 'schema', 'x');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.tenant (id, database_name, metadata) VALUES ('ok', 'x', '[1]');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.tenant (id, database_name, applied_version) VALUES ('ok', 'x', -1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.migration (version, sql, checksum) VALUES (0, 'select 1', repeat('0', 64));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.migration (version, sql, checksum) VALUES (1, '  ', repeat('0', 64));
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.migration (version, sql, checksum) VALUES (1, 'select 1', 'nope');
\echo :LAST_ERROR_SQLSTATE
-- two tenants cannot share a database on one server
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('one', 'regress_tn_shared', 'ready');
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('two', 'regress_tn_shared', 'ready');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
-- members go with their tenant
CREATE ROLE regress_member;
INSERT INTO tenancy.member (tenant_id, role) VALUES ('one', 'regress_member');
INSERT INTO tenancy.member (tenant_id, role) VALUES ('ghost', 'regress_member');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.tenant WHERE id = 'one';
SELECT count(*) AS members_left FROM tenancy.member;
DROP ROLE regress_member;

-- The cache: rows written directly are seen by the next statement of this
-- session (the trigger invalidates it), without re-reading on every call.
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('cached', 'regress_tn_cached', 'ready');
SET tenancy.current = 'cached';
SELECT tenancy.current_tenant();
UPDATE tenancy.tenant SET state = 'suspended' WHERE id = 'cached';
-- should fail: suspended now
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
UPDATE tenancy.tenant SET state = 'ready' WHERE id = 'cached';
SELECT tenancy.current_tenant();
DELETE FROM tenancy.tenant WHERE id = 'cached';
-- should fail: gone
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
-- a change rolled back is not seen
BEGIN;
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('cached', 'regress_tn_cached', 'ready');
SELECT tenancy.current_tenant();
ROLLBACK;
-- should fail: the insert was rolled back
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
-- TRUNCATE invalidates too
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('cached', 'regress_tn_cached', 'ready');
SELECT tenancy.current_tenant();
TRUNCATE tenancy.tenant CASCADE;
-- should fail: truncated
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE

-- A cache hit reads nothing: 100 resolutions in one transaction cost one
-- catalog scan (the first, a miss after the insert invalidated the cache),
-- or a few more if an unrelated invalidation (autovacuum) arrives meanwhile.
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('hot', 'regress_tn_hot', 'ready');
SELECT hits, misses FROM tenancy.cache_stats() \gset before_
SET tenancy.current = 'hot';
SELECT count(tenancy.current_tenant()) AS resolutions FROM generate_series(1, 100);
SELECT hits - :before_hits >= 97 AS mostly_hits, misses - :before_misses BETWEEN 1 AND 3 AS few_misses,
       entries >= 1 AS cached
  FROM tenancy.cache_stats();
DELETE FROM tenancy.tenant WHERE id = 'hot';
RESET tenancy.current;

-- migration_status answers from the catalog alone
INSERT INTO tenancy.tenant (id, database_name, state, applied_version, applied_versions)
VALUES ('s1', 'regress_tn_s1', 'ready', 0, '{}'), ('s2', 'regress_tn_s2', 'failed', 1, '{1}');
INSERT INTO tenancy.migration (version, sql, checksum)
VALUES (1, 'select 1', repeat('a', 64)), (2, 'select 2', repeat('b', 64));
SELECT tenant, state, applied_version, latest_version, pending, missing, last_error
  FROM tenancy.migration_status ORDER BY tenant;
DELETE FROM tenancy.tenant;
DELETE FROM tenancy.migration;
SELECT tenant, latest_version FROM tenancy.migration_status;
