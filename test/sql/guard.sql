--
-- guard: a migration cannot end the transaction tenancy commits with its
-- ledger row, however it tries: refused before it runs (the statement
-- scan), and caught after it ran when the scan cannot see it (the
-- transaction id check; tests switch the scan off with a fault point).
-- Nothing is recorded as applied, nothing is left in pg_prepared_xacts,
-- and the tenant stays usable.  For migrate(), migrate_all() and
-- provision(), database and schema tenants alike.
--
SET client_min_messages = warning;
-- the cluster lets transactions be prepared, so the attack is real
SELECT current_setting('max_prepared_transactions')::int > 0 AS can_prepare;
SELECT id FROM tenancy.provision('g-db');
SELECT id FROM tenancy.provision('g-schema', isolation => 'schema');
SELECT tenancy.add_migration(1, 'SELECT 1');
SELECT tenant, to_version, status FROM tenancy.migrate_all(1) WHERE tenant LIKE 'g-%' ORDER BY 1;

-- the attacks: a forged guard (end the transaction, start another, set
-- whatever a guard token would be), a prepared transaction, a plain commit
-- pg_temp.plant(): a migration row written by hand, as a superuser or 0.1.0
-- would (checksum of the SQL alone, empty search_path), so that what
-- add_migration refuses can be shown refused again when it would run
CREATE FUNCTION pg_temp.plant(v bigint, s text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO tenancy.migration (version, sql, checksum)
  VALUES (v, s, encode(sha256(convert_to(s, 'UTF8')), 'hex')) $$;
CREATE TEMP TABLE attack (name text, sql text);
INSERT INTO attack VALUES
  ('forged', 'SELECT 1; COMMIT; BEGIN; '
             'SELECT set_config(''tenancy_guard.token'', current_setting(''tenancy_guard.token'', true), true)'),
  ('prepared', 'SELECT 1; PREPARE TRANSACTION ''regress_guard'''),
  ('rollback', 'ROLLBACK; SELECT 1');

-- A tenant's ledger: the versions it records as applied.
CREATE FUNCTION pg_temp.ledger(tenant_id text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r tenancy.tenant;
  v text;
BEGIN
  SELECT * INTO r FROM tenancy.tenant t WHERE t.id = tenant_id;
  IF r.isolation = 'schema' THEN
    EXECUTE format('SELECT string_agg(version::text, '','' ORDER BY version) FROM %I.tenancy_applied_migration',
                   r.schema_name) INTO v;
  ELSE
    SELECT x INTO v FROM dblink(format('host=%s port=%s dbname=%s', current_setting('unix_socket_directories'),
                                       current_setting('port'), r.database_name),
                                'SELECT string_agg(version::text, '','' ORDER BY version) FROM tenancy.applied_migration')
                         AS t(x text);
  END IF;
  RETURN v;
END $$;

-- should fail (25000) before anything runs: every attack, statement by
-- statement: registering it, and (written by hand) running it
SELECT tenancy.add_migration(2, sql) FROM attack WHERE name = 'forged';
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.plant(2, sql) FROM attack WHERE name = 'forged';
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.migrate('g-schema');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, status, error, sqlstate FROM tenancy.migrate_all(1) WHERE tenant LIKE 'g-%' ORDER BY 1;
-- should fail: a new tenant of either kind cannot be provisioned with it, and nothing is left
SELECT tenancy.provision('g-new');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('g-new-schema', isolation => 'schema');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS leftovers FROM tenancy.pending_cleanup;
SELECT count(*) AS leftovers FROM pg_database WHERE datname LIKE 'regress_tn_g-new%' OR datname LIKE 'regress_tn_tmp_%';
SELECT count(*) AS leftovers FROM pg_namespace WHERE nspname LIKE 'regress_tn_g-new%' OR nspname LIKE 'regress_tn_tmp_%';
DELETE FROM tenancy.migration WHERE version = 2;
SELECT tenancy.add_migration(2, sql) FROM attack WHERE name = 'prepared';
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.plant(2, sql) FROM attack WHERE name = 'prepared';
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, status, sqlstate FROM tenancy.migrate_all(1) WHERE tenant LIKE 'g-%' ORDER BY 1;
DELETE FROM tenancy.migration WHERE version = 2;
SELECT tenancy.add_migration(2, sql) FROM attack WHERE name = 'rollback';
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.plant(2, sql) FROM attack WHERE name = 'rollback';
SELECT tenancy.migrate('g-schema');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.migration WHERE version = 2;
SELECT pg_temp.ledger('g-db') AS db_ledger, pg_temp.ledger('g-schema') AS schema_ledger;

-- should fail (25000) after running, when the scan is bypassed: the
-- transaction status after the statement (and, behind it, the transaction
-- id check) catches the forged guard and the prepared transaction; nothing
-- is recorded as applied
SET tenancy.fault_injection = 'statement_scan:skip';
SELECT tenancy.add_migration(2, sql) FROM attack WHERE name = 'forged';
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.migrate('g-schema');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, status, error, sqlstate FROM tenancy.migrate_all(1) WHERE tenant LIKE 'g-%' ORDER BY 1;
SELECT tenancy.provision('g-new');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('g-new-schema', isolation => 'schema');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.ledger('g-db') AS db_ledger, pg_temp.ledger('g-schema') AS schema_ledger;
SELECT id, applied_version FROM tenancy.tenant WHERE id LIKE 'g-%' ORDER BY 1;
DELETE FROM tenancy.migration WHERE version = 2;
SELECT tenancy.add_migration(2, sql) FROM attack WHERE name = 'prepared';
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.migrate('g-schema');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, status, error, sqlstate FROM tenancy.migrate_all(1) WHERE tenant LIKE 'g-%' ORDER BY 1;
SELECT tenancy.provision('g-new');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('g-new-schema', isolation => 'schema');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.fault_injection;
-- nothing is left prepared, and nothing half-provisioned
SELECT count(*) AS prepared_transactions FROM pg_prepared_xacts;
SELECT count(*) AS leftovers FROM tenancy.pending_cleanup;
SELECT pg_temp.ledger('g-db') AS db_ledger, pg_temp.ledger('g-schema') AS schema_ledger;

-- should fail, and leave nothing prepared: a migration that prepares its
-- transaction and then fakes its session's termination (57P01), and one
-- that commits, begins again and prepares that transaction
DELETE FROM tenancy.migration WHERE version = 2;
SET tenancy.fault_injection = 'statement_scan:skip';
SELECT tenancy.add_migration(2, $m$SELECT 1; PREPARE TRANSACTION 'regress_guard_57';
  DO $d$BEGIN RAISE EXCEPTION USING ERRCODE = '57P01', MESSAGE = 'fake termination'; END$d$$m$);
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS prepared_transactions FROM pg_prepared_xacts;
DELETE FROM tenancy.migration WHERE version = 2;
SELECT tenancy.add_migration(2, 'SELECT 1; COMMIT; BEGIN; SELECT 2; PREPARE TRANSACTION ''regress_guard_second''');
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.migrate('g-schema');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS prepared_transactions FROM pg_prepared_xacts;
-- the same, in a tenant database whose sessions print times in a style
-- that does not read back as the same instant (IST is Israel's in the
-- default abbreviations, India's here): the transaction prepared after the
-- migration began is still found, by the remote clock read as a number
ALTER DATABASE "regress_tn_g-db" SET timezone = 'Asia/Kolkata';
ALTER DATABASE "regress_tn_g-db" SET datestyle = 'Postgres, DMY';
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS prepared_transactions FROM pg_prepared_xacts;
ALTER DATABASE "regress_tn_g-db" RESET timezone;
ALTER DATABASE "regress_tn_g-db" RESET datestyle;
DELETE FROM tenancy.migration WHERE version = 2;
RESET tenancy.fault_injection;

-- should fail (25000) before it runs: a migration that the caller's
-- standard_conforming_strings = off would read as one string literal (the
-- scan reads it as every remote session does)
SET standard_conforming_strings = off;
SELECT tenancy.add_migration(2, $m$SELECT 'a\'; PREPARE TRANSACTION 'regress_guard_scs'; SELECT '--'$m$);
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.plant(2, $m$SELECT 'a\'; PREPARE TRANSACTION 'regress_guard_scs'; SELECT '--'$m$);
RESET standard_conforming_strings;
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.migration WHERE version = 2;
-- should fail (42601) before it runs: what the scan cannot parse is not sent
SELECT tenancy.add_migration(2, 'SELEC 1');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.plant(2, 'SELEC 1');
SELECT tenancy.migrate('g-schema');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.migration WHERE version = 2;

-- should fail (0A000) before it runs: a migration that changes
-- client_encoding (in SJIS the second byte of a character can be a
-- backslash's, which then escapes nothing: the E'' string below ends early
-- for the remote server, and what the scan read as its text would run as
-- statements), by SET, SET NAMES or set_config(); RESET is accepted
SELECT tenancy.add_migration(2, E'SET client_encoding = ''SJIS'';\nSELECT E''ぁ\\''; PREPARE TRANSACTION $g$regress_guard_sjis$g$; SELECT 1; --''');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(2, 'SET NAMES ''SJIS''; SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(2, $m$SELECT pg_catalog.set_config('client_encoding', 'SJIS', false)$m$);
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.plant(2, E'SET client_encoding = ''SJIS'';\nSELECT E''ぁ\\''; PREPARE TRANSACTION $g$regress_guard_sjis$g$; SELECT 1; --''');
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.migration WHERE version = 2;
-- should fail (0A000) after the statement that changed it, before the next
-- is sent, when no statement names the setting (a name built at run time);
-- the table the first statement created is rolled back with the rest, and
-- nothing is prepared or recorded
SELECT tenancy.add_migration(2, $m$CREATE TABLE regress_guard_enc (id int);
DO $d$BEGIN PERFORM pg_catalog.set_config('client_' || 'encoding', 'SJIS', false); END$d$;
SELECT E'ぁ\'; PREPARE TRANSACTION $g$regress_guard_sjis2$g$; SELECT 1; --'$m$);
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.migrate('g-schema');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.migration WHERE version = 2;
SELECT tenancy.add_migration(2, $m$DO $d$BEGIN PERFORM pg_catalog.set_config('standard_' || 'conforming_strings', 'off', false); END$d$;
SELECT 'a\''; PREPARE TRANSACTION $g$regress_guard_scs2$g$; SELECT 1; --'$m$, transactional => false);
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.migration WHERE version = 2;
SELECT count(*) AS prepared_transactions FROM pg_prepared_xacts;
SELECT pg_temp.ledger('g-db') AS db_ledger, pg_temp.ledger('g-schema') AS schema_ledger;
SELECT x AS db_table FROM dblink(format('host=%s port=%s dbname=%s', current_setting('unix_socket_directories'),
  current_setting('port'), 'regress_tn_g-db'), 'SELECT pg_catalog.to_regclass(''public.regress_guard_enc'')::text') AS t(x text);
SELECT to_regclass(format('%I.regress_guard_enc', schema_name)) AS schema_table FROM tenancy.tenant WHERE id = 'g-schema';
-- should fail (0A000) when the setting changes inside tenancy's own
-- statements: a constraint left NOT VALID on the ledger switches the
-- encoding when tenancy inserts the ledger row, so that the next
-- migration's search_path, quoted into tenancy's own SQL, would read as
-- statements; the session is dropped at once, before anything else is
-- sent, and the transaction with it: nothing is applied, no table planted
SELECT tenancy.add_migration(2, $m$ALTER TABLE tenancy.applied_migration ADD CONSTRAINT regress_guard_enc
  CHECK (pg_catalog.set_config('backslash_quote', 'on', false) IS NOT NULL
         AND pg_catalog.set_config('client_' || 'encoding', 'SJIS', false) IS NOT NULL) NOT VALID$m$);
SELECT tenancy.add_migration(3, 'SELECT 1', search_path => $p$"Á\'),true);COMMIT;CREATE TABLE public.regress_guard_pwned();--", public$p$);
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.ledger('g-db') AS db_ledger;
SELECT x AS planted FROM dblink(format('host=%s port=%s dbname=%s', current_setting('unix_socket_directories'),
  current_setting('port'), 'regress_tn_g-db'), $q$SELECT pg_catalog.to_regclass('public.regress_guard_pwned')::text || ' ' ||
  (SELECT count(*) FROM pg_catalog.pg_constraint WHERE conname = 'regress_guard_enc')$q$) AS t(x text);
DELETE FROM tenancy.migration WHERE version IN (2, 3);
-- should fail (42601) remotely: each statement is sent as one statement
-- (extended protocol), so a text the server reads as several does not run
-- (a fault point sends the whole migration unsplit and unchecked)
SET tenancy.fault_injection = 'statement_scan:whole';
SELECT tenancy.add_migration(2, 'CREATE TABLE public.regress_guard_whole (id int); PREPARE TRANSACTION ''regress_guard_whole''');
SELECT tenancy.migrate('g-db');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.fault_injection;
DELETE FROM tenancy.migration WHERE version = 2;
SELECT count(*) AS prepared_transactions FROM pg_prepared_xacts;
SELECT pg_temp.ledger('g-db') AS db_ledger;

-- each migration starts from the session's initial settings: what one SETs
-- (timeouts, application_name) does not reach the next
SELECT tenancy.add_migration(2, 'SET lock_timeout = 0; SET application_name = ''hidden''');
SELECT tenancy.add_migration(4, $m$DO $d$BEGIN
  IF current_setting('lock_timeout') = '0' OR current_setting('application_name') = 'hidden' THEN
    RAISE EXCEPTION 'settings leaked: lock_timeout %, application_name %',
      current_setting('lock_timeout'), current_setting('application_name');
  END IF; END$d$$m$);
SELECT tenant, status, error FROM tenancy.migrate_all(1) WHERE tenant LIKE 'g-%' ORDER BY 1;
DELETE FROM tenancy.migration WHERE version IN (2, 4);
SELECT tenant, applied_version FROM tenancy.migration_status WHERE tenant LIKE 'g-%' ORDER BY 1;

-- create_tenant_schema() creates nothing it is not meant to
SELECT tenancy.create_tenant_schema(999999);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.pending_cleanup (operation_id, tenant_id, database_name, final_name, isolation)
VALUES (999998, 'g-forged', 'public_tmp_999998', 'x', 'schema'),
       (999997, 'g-forged', 'regress_tn_tmp_999997', 'x', 'schema');
SELECT tenancy.create_tenant_schema(999998);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.create_tenant_schema(999997);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS created FROM pg_namespace WHERE nspname IN ('public_tmp_999998', 'regress_tn_tmp_999997');
-- reconcile() drops only temporary names of a record's own operation
SELECT tenant, object, problem, action FROM tenancy.reconcile() ORDER BY object;

-- the tenants stay usable: the next migration applies (the prepared
-- transaction would have held the ledger's lock)
DELETE FROM tenancy.migration WHERE version = 2;
SELECT tenancy.add_migration(3, 'SELECT 3');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('g-db');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('g-schema');
SELECT pg_temp.ledger('g-db') AS db_ledger, pg_temp.ledger('g-schema') AS schema_ledger;

SELECT tenancy.deprovision('g-db');
SELECT tenancy.deprovision('g-schema');
DELETE FROM tenancy.migration;
