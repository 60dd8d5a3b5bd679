--
-- schema: schema tenants (isolation 'schema'), their migrations, and
-- search_path following the selection
--
SELECT tenancy.reconcile();
-- a database tenant beside the schema tenants (before any migration:
-- database tenants run migrations with an empty search_path)
DELETE FROM tenancy.migration;
SELECT id FROM tenancy.provision('d-plain');
-- Migrations are shared by every tenant; schema tenants run them with
-- search_path set to their own schema, so these use unqualified names.
DELETE FROM tenancy.migration;
SELECT tenancy.add_migration(1, 'CREATE TABLE item (id int PRIMARY KEY, owner text NOT NULL)');

-- should succeed: two schema tenants, each with its own "item"
SELECT id, isolation, database_name, schema_name, state, applied_version
  FROM tenancy.provision('s-acme', isolation => 'schema');
SELECT id, schema_name, applied_version FROM tenancy.provision('s-globex', isolation => 'schema');
-- should succeed with a NOTICE: already there
SELECT id, state FROM tenancy.provision('s-acme', isolation => 'schema');
-- owned by the tenant owner role, nothing for PUBLIC, a ledger inside
SELECT nspname, pg_get_userbyid(nspowner) = current_user AS owned_by_owner_role,
       has_schema_privilege('public', oid, 'USAGE') AS public_usage
  FROM pg_namespace WHERE nspname LIKE 'regress_tn_s-%' ORDER BY 1;
SELECT version FROM "regress_tn_s-acme".tenancy_applied_migration;
INSERT INTO "regress_tn_s-acme".item VALUES (1, 's-acme'), (2, 's-acme');
INSERT INTO "regress_tn_s-globex".item VALUES (1, 's-globex');

-- should fail: bad arguments; nothing is created
SELECT tenancy.provision('s-bad', isolation => 'schema', server => 'anything');
\echo :LAST_ERROR_SQLSTATE
-- should fail: the schema exists but is not registered (42P06)
CREATE SCHEMA "regress_tn_s-squat";
SELECT tenancy.provision('s-squat', isolation => 'schema');
\echo :LAST_ERROR_SQLSTATE
DROP SCHEMA "regress_tn_s-squat";
-- should fail: a schema name PostgreSQL or tenancy uses (42939)
SET tenancy.database_prefix = '';
SELECT tenancy.provision('public', isolation => 'schema');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('tenancy', isolation => 'schema');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.database_prefix;
-- should fail: a failing migration; the schema and the row go with the transaction
SELECT tenancy.add_migration(2, 'INSERT INTO item VALUES (1, ''dup''), (1, ''dup'')');
SELECT tenancy.provision('s-broken', isolation => 'schema');
\echo :LAST_ERROR_SQLSTATE
-- should fail: a fault after the migrations; nothing is left either
DELETE FROM tenancy.migration WHERE version = 2;
SET tenancy.fault_injection = 'after_bootstrap:error';
SELECT tenancy.provision('s-broken', isolation => 'schema');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.fault_injection;
-- a rolled-back provision leaves no tenant and no schema under its name:
-- the temporary schema it made for its migrations (committed, so that the
-- migration engine's session could see it) stays recorded for reconcile()
BEGIN;
SELECT id FROM tenancy.provision('s-broken', isolation => 'schema');
ROLLBACK;
SELECT count(*) AS leftover_rows FROM tenancy.tenant WHERE id = 's-broken';
SELECT count(*) AS leftover_schemas FROM pg_namespace WHERE nspname = 'regress_tn_s-broken';
SELECT count(*) AS cleanup_rows, bool_and(isolation = 'schema') AS schemas,
       bool_and(EXISTS (SELECT FROM pg_namespace n WHERE n.nspname = c.database_name)) AS temporary_schema_exists
  FROM tenancy.pending_cleanup c;
SELECT tenant, problem, action FROM tenancy.reconcile() ORDER BY problem;
SELECT count(*) AS cleanup_rows FROM tenancy.pending_cleanup;
SELECT count(*) AS temporary_schemas FROM pg_namespace WHERE nspname LIKE 'regress_tn_tmp_%';

-- selection puts the tenant's schema first on search_path
SHOW search_path;
SET tenancy.current = 's-acme';
SHOW search_path;
SELECT owner, count(*) FROM item GROUP BY owner;
SET tenancy.current = 's-globex';
SHOW search_path;
SELECT owner, count(*) FROM item GROUP BY owner;
RESET tenancy.current;
SHOW search_path;
-- should fail: no tenant, no item
SELECT count(*) FROM item;
\echo :LAST_ERROR_SQLSTATE
-- SET LOCAL: gone with the transaction (commit or rollback)
BEGIN;
SET LOCAL tenancy.current = 's-acme';
SHOW search_path;
COMMIT;
SHOW search_path;
BEGIN;
SELECT tenancy.use('s-globex');
SELECT owner FROM item;
ROLLBACK;
SHOW search_path;
-- a session selection survives a transaction that selected another tenant locally
SET tenancy.current = 's-acme';
BEGIN;
SET LOCAL tenancy.current = 's-globex';
SELECT DISTINCT owner FROM item;
COMMIT;
SHOW search_path;
SELECT DISTINCT owner FROM item;
-- a database tenant (or none) takes the schema off
SET tenancy.current = 'd-plain';
SHOW search_path;
SELECT tenancy.deprovision('d-plain');
-- the application's own search_path is kept behind the tenant's schema
SET search_path = public, pg_catalog;
SET tenancy.current = 's-globex';
SHOW search_path;
SELECT tenancy.use(NULL, is_local => false);
SHOW search_path;
RESET search_path;

-- plan caching: a plan made under one tenant never serves another
SET tenancy.current = 's-acme';
PREPARE items AS SELECT DISTINCT owner FROM item;
EXECUTE items;
SET tenancy.current = 's-globex';
EXECUTE items;
CREATE FUNCTION pg_temp.item_owners() RETURNS SETOF text LANGUAGE plpgsql AS
$$BEGIN RETURN QUERY SELECT DISTINCT owner FROM item; END$$;
SELECT pg_temp.item_owners();
SET tenancy.current = 's-acme';
SELECT pg_temp.item_owners();
DEALLOCATE items;
RESET tenancy.current;

-- search_path follows the selection whichever way the two part
-- a selection made inside a function whose SET clause restores search_path
CREATE FUNCTION pg_temp.pick(t text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog AS
$$BEGIN PERFORM tenancy.use(t, true); RETURN current_setting('search_path'); END$$;
SET tenancy.current = 's-globex';
BEGIN;
SELECT pg_temp.pick('s-acme') AS path_inside;
SHOW search_path;
SELECT DISTINCT owner FROM item;
COMMIT;
SHOW search_path;
SELECT DISTINCT owner FROM item;
RESET tenancy.current;
-- set_config() selects without moving the path: the statement's end does
SELECT set_config('tenancy.current', 's-acme', false) AS selected;
SHOW search_path;
SELECT DISTINCT owner FROM item;
-- the application's path with a tenant schema further down: taken off
SET search_path = public, "regress_tn_s-acme";
SET tenancy.current = 's-globex';
SHOW search_path;
-- a changed prefix does not confuse which schemas are tenants'
SET tenancy.database_prefix = 'other_';
SET tenancy.current = 's-acme';
SHOW search_path;
RESET tenancy.current;
SHOW search_path;
RESET tenancy.database_prefix;
RESET search_path;
-- a function with its own search_path, evaluated while planning, keeps it
-- and leaves the session's path alone (run twice: the plan is cached)
CREATE FUNCTION pg_temp.stable_one() RETURNS int LANGUAGE plpgsql STABLE SET search_path = pg_catalog, public AS
$$DECLARE n int; BEGIN SELECT count(*) INTO n FROM pg_class WHERE false; RETURN 1 + n; END$$;
SET tenancy.current = 's-acme';
SELECT owner FROM item WHERE id = pg_temp.stable_one();
SELECT owner FROM item WHERE id = pg_temp.stable_one();
SHOW search_path;
RESET tenancy.current;
-- an application's SET LOCAL search_path stays transaction-local
SET tenancy.current = 's-acme';
SET search_path = "my, app", public;
BEGIN;
SET LOCAL search_path = public;
SELECT count(*) FROM item;
COMMIT;
SHOW search_path;
RESET tenancy.current;
RESET search_path;
-- SET TRANSACTION still works after a selection (no snapshot taken for it),
-- even when the selection has to read the catalog (cache just invalidated)
UPDATE tenancy.tenant SET metadata = metadata WHERE id = 's-globex';
BEGIN;
SET LOCAL tenancy.current = 's-globex';
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
SELECT current_setting('transaction_isolation') AS isolation, count(*) FROM item;
COMMIT;
SET tenancy.current = 's-acme';
UPDATE tenancy.tenant SET metadata = metadata WHERE id = 's-acme';
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT current_setting('transaction_isolation') AS isolation;
COMMIT;
RESET tenancy.current;
-- a session path naming another tenant's schema, left by a transaction
-- that selected that tenant locally: the next statement is refused, never
-- run against it; SET, SHOW, RESET and transaction control still work and
-- the path is corrected at their end
SET tenancy.current = 's-acme';
BEGIN;
SET LOCAL tenancy.current = 's-globex';
SET search_path = "regress_tn_s-globex", public;
COMMIT;
-- should fail: 55000
SELECT count(*) FROM item;
\echo :LAST_ERROR_SQLSTATE
SHOW search_path;
SHOW search_path;
SELECT DISTINCT owner FROM item;
RESET tenancy.current;
RESET search_path;
-- functions that set their own search_path keep it while a tenant is selected
CREATE FUNCTION pg_temp.own_path() RETURNS text LANGUAGE sql SET search_path = pg_catalog AS
$$SELECT current_setting('search_path')$$;
SET tenancy.current = 's-acme';
SELECT pg_temp.own_path();
RESET tenancy.current;

-- strict_local means it: a session-level selection left from an earlier
-- transaction (a pooled connection's previous client) serves nothing, not
-- even through search_path: an unqualified read is refused (55000), and the
-- schema leaves the path at the end of the next statement that completes
SET tenancy.strict_local = on;
SET tenancy.current = 's-acme';
-- should fail: 55000
SELECT count(*) FROM item;
\echo :LAST_ERROR_SQLSTATE
SHOW search_path;
SHOW search_path;
-- should fail: 42P01, no tenant schema on the path any more
SELECT count(*) FROM item;
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
RESET tenancy.strict_local;
RESET search_path;

-- A selection a session starts with (a role default, a connection option)
-- is on search_path from its first statement, even when the first ones fail
SELECT current_user AS regress_superuser, current_database() AS regress_db \gset
CREATE ROLE regress_default_sel LOGIN;
SELECT tenancy.grant_access('s-acme', 'regress_default_sel');
ALTER ROLE regress_default_sel SET tenancy.current = 's-acme';
\c - regress_default_sel
SELECT 1 / 0;
SELECT 1 / 0;
SELECT DISTINCT owner FROM item;
SHOW search_path;
\c - :regress_superuser
\set conn 'dbname=' :regress_db ' options=-ctenancy.current=s-globex'
\c :conn
SELECT 1 / 0;
SELECT DISTINCT owner FROM item;
\set conn 'dbname=' :regress_db ' user=' :regress_superuser
\c :conn
SHOW tenancy.current;
SELECT tenancy.revoke_access('s-acme', 'regress_default_sel');
DROP ROLE regress_default_sel;

-- membership is access: grant_access gives USAGE on the schema and DML on
-- its tables (never its ledger); the setting alone grants nothing
CREATE ROLE regress_schema_app;
SELECT tenancy.grant_access('s-acme', 'regress_schema_app');
SELECT has_schema_privilege('regress_schema_app', 'regress_tn_s-acme', 'USAGE') AS acme_usage,
       has_table_privilege('regress_schema_app', '"regress_tn_s-acme".item', 'SELECT, INSERT, UPDATE, DELETE') AS acme_dml,
       has_table_privilege('regress_schema_app', '"regress_tn_s-acme".item', 'TRUNCATE, REFERENCES, TRIGGER') AS acme_more,
       has_table_privilege('regress_schema_app', '"regress_tn_s-acme".tenancy_applied_migration', 'SELECT, INSERT, UPDATE, DELETE') AS acme_ledger,
       has_schema_privilege('regress_schema_app', 'regress_tn_s-globex', 'USAGE') AS globex_usage,
       has_table_privilege('regress_schema_app', '"regress_tn_s-globex".item', 'SELECT') AS globex_select;
ANALYZE "regress_tn_s-acme".item, "regress_tn_s-globex".item;
SET ROLE regress_schema_app;
SET tenancy.current = 's-acme';
SELECT DISTINCT owner FROM item;
-- statistics of a tenant the role was never granted stay hidden
SELECT DISTINCT schemaname FROM pg_stats WHERE schemaname LIKE 'regress_tn_s-%' ORDER BY 1;
-- a view the member makes while granted
CREATE VIEW pg_temp.acme_items AS SELECT owner FROM "regress_tn_s-acme".item;
-- should fail: not a member (42501); the schema is not put on the path
SET tenancy.current = 's-globex';
SHOW search_path;
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
-- should fail: even naming the schema by hand, no USAGE (42501)
SELECT owner FROM "regress_tn_s-globex".item;
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
RESET ROLE;
-- a revoke takes every privilege in the schema away: the member's own view
-- reaches nothing any more
SELECT tenancy.revoke_access('s-acme', 'regress_schema_app');
SELECT has_schema_privilege('regress_schema_app', 'regress_tn_s-acme', 'USAGE') AS acme_usage,
       has_table_privilege('regress_schema_app', '"regress_tn_s-acme".item', 'SELECT') AS acme_select;
SET ROLE regress_schema_app;
-- should fail: permission denied (42501)
SELECT count(*) FROM pg_temp.acme_items;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP VIEW pg_temp.acme_items;

-- suspended: not selectable, not on the path, members lose USAGE until resume
SELECT tenancy.grant_access('s-globex', 'regress_schema_app');
SELECT tenancy.suspend('s-globex');
SET tenancy.current = 's-globex';
SHOW search_path;
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
SELECT has_schema_privilege('regress_schema_app', 'regress_tn_s-globex', 'USAGE') AS usage_while_suspended,
       has_table_privilege('regress_schema_app', '"regress_tn_s-globex".item', 'SELECT') AS select_while_suspended;
-- a grant while suspended records the member; USAGE comes with resume
CREATE ROLE regress_schema_late;
SELECT tenancy.grant_access('s-globex', 'regress_schema_late');
SELECT has_schema_privilege('regress_schema_late', 'regress_tn_s-globex', 'USAGE') AS late_usage_while_suspended;
SELECT tenancy.resume('s-globex');
SELECT has_schema_privilege('regress_schema_app', 'regress_tn_s-globex', 'USAGE') AS usage_after_resume,
       has_schema_privilege('regress_schema_late', 'regress_tn_s-globex', 'USAGE') AS late_usage_after_resume,
       has_table_privilege('regress_schema_late', '"regress_tn_s-globex".item', 'SELECT') AS late_select_after_resume;
-- tables later migrations create are granted to members too (default privileges)
SELECT tenancy.add_migration(2, 'CREATE TABLE later (id int)');
SELECT tenant, to_version FROM tenancy.migrate('s-globex');
SELECT has_table_privilege('regress_schema_late', '"regress_tn_s-globex".later', 'SELECT, INSERT') AS late_on_new_table;
SELECT tenancy.revoke_access('s-globex', 'regress_schema_app');
SELECT tenancy.revoke_access('s-globex', 'regress_schema_late');
DELETE FROM tenancy.migration WHERE version = 2;
SELECT tenancy.deprovision('s-globex');
SELECT id FROM tenancy.provision('s-globex', isolation => 'schema');
INSERT INTO "regress_tn_s-globex".item VALUES (1, 's-globex');
DROP ROLE regress_schema_late;

-- connstr: the admin database, with the schema as search_path
SELECT tenancy.connstr('s-acme') LIKE '% dbname=''' || current_database() || ''' options=''-csearch_path="regress_tn_s-acme"''' AS connstr_ok;

-- migrations run inside the schema, atomically per tenant
SELECT tenancy.add_migration(2, 'ALTER TABLE item ADD COLUMN note text; CREATE INDEX ON item (owner)');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('s-acme');
SELECT attname FROM pg_attribute WHERE attrelid = '"regress_tn_s-acme".item'::regclass AND attnum > 0 ORDER BY attnum;
-- should fail: a migration that ends the transaction (25000), nothing applied
SELECT tenancy.add_migration(3, 'CREATE TABLE ended (); COMMIT');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.migration (version, sql, checksum)
  VALUES (3, 'CREATE TABLE ended (); COMMIT', encode(sha256('CREATE TABLE ended (); COMMIT'), 'hex'));
SELECT tenancy.migrate('s-acme');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS ended_tables FROM pg_class WHERE relname = 'ended';
DELETE FROM tenancy.migration WHERE version = 3;
-- a migration's SET stays inside it: not in the caller's session, not in
-- the next migration; unqualified names never reach the caller's temporary
-- tables
SELECT tenancy.add_migration(3, 'SET work_mem = ''77MB''; SET search_path = pg_catalog');
SELECT tenancy.add_migration(4, 'INSERT INTO item (id, owner) VALUES (99, ''mig'')');
CREATE TEMP TABLE item (id int, owner text);
SET search_path = pg_temp, public;
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('s-acme');
SHOW work_mem;
SHOW search_path;
SELECT count(*) AS temp_rows FROM pg_temp.item;
SELECT count(*) AS tenant_rows FROM "regress_tn_s-acme".item WHERE id = 99;
DROP TABLE pg_temp.item;
RESET search_path;

-- migrate_all: schema tenants are migrated through sessions to the admin
-- database, each migration committed with its ledger row (so a fleet never
-- piles up locks in one transaction); a failing tenant stops at its last
-- good version and is recorded, the others go on
DELETE FROM "regress_tn_s-acme".item WHERE id = 99;
INSERT INTO "regress_tn_s-globex".item VALUES (6, 'dup');
SELECT tenancy.add_migration(5, 'CREATE UNIQUE INDEX ON item ((id % 5))');
SELECT tenant, from_version, to_version, status, sqlstate FROM tenancy.migrate_all(1) WHERE tenant LIKE 's-%' ORDER BY tenant;
SELECT id, applied_version, last_sqlstate FROM tenancy.tenant WHERE id LIKE 's-%' ORDER BY id;
SELECT count(*) AS globex_ledger FROM "regress_tn_s-globex".tenancy_applied_migration;
DELETE FROM "regress_tn_s-globex".item WHERE id = 6;
SELECT tenant, from_version, to_version, status FROM tenancy.migrate_all(1) WHERE tenant LIKE 's-%' ORDER BY tenant;

-- should fail: a member granted TRIGGER on a tenant table plants a trigger
-- running its own function; migrations would run it as their role, so
-- migrate() and migrate_all() refuse (42501) and apply nothing
CREATE ROLE regress_schema_planter;
CREATE SCHEMA regress_planter_own AUTHORIZATION regress_schema_planter;
GRANT TRIGGER ON "regress_tn_s-acme".item TO regress_schema_planter;
GRANT USAGE ON SCHEMA "regress_tn_s-acme" TO regress_schema_planter;
SET ROLE regress_schema_planter;
CREATE FUNCTION regress_planter_own.trojan() RETURNS trigger LANGUAGE plpgsql AS
  'BEGIN RAISE NOTICE ''trojan ran as %'', current_user; RETURN NEW; END';
CREATE TRIGGER trojan BEFORE INSERT ON "regress_tn_s-acme".item FOR EACH ROW EXECUTE FUNCTION regress_planter_own.trojan();
RESET ROLE;
SELECT tenancy.add_migration(6, 'INSERT INTO item (id, owner) VALUES (600, ''m6'')');
SELECT tenancy.migrate('s-acme');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, to_version, status, sqlstate FROM tenancy.migrate_all(1) WHERE tenant = 's-acme';
SELECT count(*) AS m6_rows FROM "regress_tn_s-acme".item WHERE id = 600;
DROP TRIGGER trojan ON "regress_tn_s-acme".item;
DROP SCHEMA regress_planter_own CASCADE;
REVOKE ALL ON "regress_tn_s-acme".item FROM regress_schema_planter;
REVOKE ALL ON SCHEMA "regress_tn_s-acme" FROM regress_schema_planter;
DROP ROLE regress_schema_planter;
SELECT tenant, to_version, status FROM tenancy.migrate_all(1) WHERE tenant LIKE 's-%' ORDER BY tenant;

-- Selecting a schema tenant cannot run planted code: a migration that
-- leaves a function (here the varchar = a superuser's comparison would
-- resolve to) or an operator in a tenant's schema is refused (42501) before
-- its ledger row, and rolled back
SELECT tenancy.add_migration(7, $m$CREATE FUNCTION veq(varchar, varchar) RETURNS boolean LANGUAGE sql AS 'SELECT true'$m$);
-- should fail: 42501
SELECT tenancy.migrate('s-acme');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.remove_migration(7);
SELECT tenancy.add_migration(7, 'CREATE OPERATOR === (LEFTARG = text, RIGHTARG = text, FUNCTION = texteq)');
-- should fail: 42501
SET client_min_messages = warning;
SELECT tenant, status, sqlstate, error FROM tenancy.migrate_all(1) WHERE tenant = 's-acme';
RESET client_min_messages;
SELECT (SELECT count(*) FROM pg_proc WHERE pronamespace = 'regress_tn_s-acme'::regnamespace) AS functions,
       (SELECT count(*) FROM pg_operator WHERE oprnamespace = 'regress_tn_s-acme'::regnamespace) AS operators;
SELECT tenancy.remove_migration(7);
-- should fail: 42501 too when a migration of one schema tenant leaves a
-- function in another tenant's schema (every schema the service role owns
-- is checked, not only the one migrated); nothing stays
SELECT tenancy.add_migration(7, $m$DO $d$BEGIN IF current_schema() = 'regress_tn_s-acme' THEN
  CREATE FUNCTION "regress_tn_s-globex".veq2(varchar, varchar) RETURNS boolean LANGUAGE sql AS 'SELECT true';
END IF; END $d$$m$);
SET client_min_messages = warning;
SELECT tenant, status, sqlstate, error FROM tenancy.migrate_all(1, tenants => ARRAY['s-acme']);
RESET client_min_messages;
SELECT count(*) AS planted FROM pg_proc WHERE proname = 'veq2';
SELECT tenancy.remove_migration(7);
-- should fail: 42501 for an aggregate too, though its support functions
-- are built-ins: a count(text) in the tenant's schema would win over
-- pg_catalog's count("any"), and ts_rewrite() runs the query its state holds
SELECT tenancy.add_migration(7, $m$CREATE AGGREGATE count(text) (sfunc = pg_catalog.ts_rewrite, stype = pg_catalog.tsquery, initcond = 'a')$m$);
SET client_min_messages = warning;
SELECT tenant, status, sqlstate, error FROM tenancy.migrate_all(1, tenants => ARRAY['s-acme']);
RESET client_min_messages;
SELECT count(*) AS planted FROM pg_proc WHERE proname = 'count' AND pronamespace = 'regress_tn_s-acme'::regnamespace;
SELECT tenancy.remove_migration(7);
-- should fail: 0A000 before anything runs: outside a transaction each
-- statement would commit before that check, so a schema tenant refuses a
-- migration registered with transactional => false
SELECT tenancy.add_migration(7, $m$CREATE FUNCTION veq3(varchar, varchar) RETURNS boolean LANGUAGE sql AS 'SELECT true'$m$,
                             transactional => false);
SELECT tenancy.migrate('s-acme');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS planted FROM pg_proc WHERE proname = 'veq3';
SELECT tenancy.remove_migration(7);

-- should fail: drift in a schema ledger (XX001)
UPDATE "regress_tn_s-globex".tenancy_applied_migration SET checksum = 'tampered' WHERE version = 1;
SELECT tenancy.migrate('s-globex');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, reachable, ledger_version, drift IS NOT NULL AS drift, database_size > 0 AS has_size
  FROM tenancy.health() WHERE tenant LIKE 's-%' ORDER BY tenant;

-- deprovision is transactional: rolled back, everything is still there
BEGIN;
SELECT tenancy.deprovision('s-globex');
ROLLBACK;
SELECT count(*) AS globex_rows FROM "regress_tn_s-globex".item;
SELECT tenancy.deprovision('s-globex');
SELECT count(*) AS globex_schemas FROM pg_namespace WHERE nspname = 'regress_tn_s-globex';

-- reconcile: a schema dropped behind tenancy's back marks the tenant failed;
-- provision then makes it again
DROP SCHEMA "regress_tn_s-acme" CASCADE;
SELECT * FROM tenancy.reconcile();
SELECT id, state FROM tenancy.tenant WHERE id = 's-acme';
SELECT id, state, applied_version FROM tenancy.provision('s-acme', isolation => 'schema');
SELECT * FROM tenancy.reconcile(check_ledgers => true);

SELECT tenancy.deprovision('s-acme');
DROP ROLE regress_schema_app;
DELETE FROM tenancy.migration;
