--
-- migrations: migrations as teams write them (0.2.0) — unqualified SQL
-- under a search_path the guard checks, versions as a set, remove_migration,
-- transactional => false, down and to_version, rollouts (tenants,
-- max_failures, dry_run), errors naming the statement, adopt(), and a
-- bootstrap() that connects to no up-to-date tenant
--
SELECT current_setting('unix_socket_directories') AS sockdir,
       current_setting('port') AS port \gset
\set a_db 'host=' :sockdir ' port=' :port ' dbname=regress_tn_m-a'
\set b_db 'host=' :sockdir ' port=' :port ' dbname=regress_tn_m-b'
SET client_min_messages = warning;

-- pg_temp.ledger(): a database tenant's ledger versions, read directly
CREATE FUNCTION pg_temp.ledger(db text) RETURNS text LANGUAGE sql AS $$
  SELECT v FROM dblink(format('host=%s port=%s dbname=%s', current_setting('unix_socket_directories'),
                              current_setting('port'), db),
                       'SELECT string_agg(version::text, '','' ORDER BY version) FROM tenancy.applied_migration')
         AS t(v text) $$;

-- should fail: bad input, and nothing is registered
SELECT tenancy.add_migration(1, 'SELECT 1', search_path => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, 'SELECT 1', search_path => '"unclosed');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, 'SELECT 1', search_path => '"$user", public');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, 'SELECT 1', search_path => 'pg_temp');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, 'SELECT 1', down => '  ');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, 'SELECT 1', transactional => NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, 'SELECT 1', down => 'DROP TABEL x');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, 'SELECT 1', down => 'DROP TABLE x; COMMIT');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, 'BEGIN; CREATE INDEX CONCURRENTLY i ON t (x)', transactional => false);
\echo :LAST_ERROR_SQLSTATE
-- a migration that would change how its own statements are split
SELECT tenancy.add_migration(1, E'SET standard_conforming_strings = off;\nSELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, $m$SELECT set_config('standard_conforming_strings', 'off', true)$m$);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS migrations FROM tenancy.migration;

-- Unqualified SQL, as TypeORM writes it, with its down; the search_path is
-- stored in canonical form and is part of the checksum
SELECT tenancy.add_migration(10, 'CREATE TABLE "users" ("id" SERIAL NOT NULL, "name" character varying NOT NULL, CONSTRAINT "PK_users" PRIMARY KEY ("id"))',
                             'CreateUsers', down => 'DROP TABLE "users"');
SELECT tenancy.add_migration(20, E'ALTER TABLE "users" ADD "email" character varying;\nCREATE INDEX "IDX_users_email" ON "users" ("email")',
                             'AddEmail', search_path => 'PUBLIC', down => E'DROP INDEX "IDX_users_email";\nALTER TABLE "users" DROP COLUMN "email"');
SELECT version, search_path, down IS NOT NULL AS has_down, transactional FROM tenancy.migration ORDER BY version;
-- should fail: the same SQL under another search_path is another migration
SELECT tenancy.add_migration(10, 'CREATE TABLE "users" ("id" SERIAL NOT NULL, "name" character varying NOT NULL, CONSTRAINT "PK_users" PRIMARY KEY ("id"))',
                             'CreateUsers', search_path => 'app', down => 'DROP TABLE "users"');
\echo :LAST_ERROR_SQLSTATE
-- provisioning runs them: database and schema tenants alike
SELECT id, applied_version, applied_versions FROM tenancy.provision('m-a');
SELECT id, applied_version, applied_versions FROM tenancy.provision('m-b');
SELECT id, applied_version, applied_versions FROM tenancy.provision('m-s', isolation => 'schema');
SELECT * FROM dblink(:'a_db', 'SELECT string_agg(column_name, '','' ORDER BY column_name) FROM information_schema.columns WHERE table_schema = ''public'' AND table_name = ''users''') AS t(cols text);
SELECT string_agg(column_name, ',' ORDER BY column_name) AS cols FROM information_schema.columns
 WHERE table_schema = 'regress_tn_m-s' AND table_name = 'users';

-- The search_path guard: a schema on the path that another role can create
-- objects in (so it could plant a function or an operator the migration
-- would call) is refused (42501), naming the schema and the role
CREATE ROLE regress_planter;
SELECT dblink_exec(:'a_db', 'GRANT CREATE ON SCHEMA public TO regress_planter');
SELECT tenancy.add_migration(30, 'INSERT INTO "users" ("name") VALUES (''first'')', down => 'DELETE FROM "users"');
-- should fail: 42501, nothing applied
SELECT * FROM tenancy.migrate('m-a');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.ledger('regress_tn_m-a') AS ledger;
SELECT dblink_exec(:'a_db', 'REVOKE CREATE ON SCHEMA public FROM regress_planter');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('m-a');
-- a schema on the path that does not exist, in a database where another
-- role could create it, is refused too
SELECT dblink_exec(:'b_db', 'GRANT CREATE ON DATABASE "regress_tn_m-b" TO regress_planter');
SELECT tenancy.add_migration(35, 'SELECT 1', search_path => 'app, public', down => 'SELECT 1');
-- should fail: 42501
SELECT * FROM tenancy.migrate('m-b');
\echo :LAST_ERROR_SQLSTATE
SELECT dblink_exec(:'b_db', 'REVOKE CREATE ON DATABASE "regress_tn_m-b" FROM regress_planter');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('m-b');
DROP ROLE regress_planter;

-- Versions are a set: a version lower than one applied (a branch merged
-- late) is registered, reported missing from the catalog, and applied
SELECT tenancy.add_migration(15, 'CREATE TABLE "branch" ("id" integer)', down => 'DROP TABLE "branch"');
SELECT tenant, applied_version, latest_version, pending, missing FROM tenancy.migration_status ORDER BY tenant;
SELECT tenant, from_version, to_version, status FROM tenancy.migrate_all(1) ORDER BY tenant;
SELECT pg_temp.ledger('regress_tn_m-a') AS ledger;
SELECT tenant, pending, missing FROM tenancy.migration_status ORDER BY tenant;
-- nothing missing: answered from the catalog
SELECT tenant, status FROM tenancy.migrate_all(1) ORDER BY tenant;

-- remove_migration
-- should fail: applied by a tenant (55006), not registered (42704)
SELECT tenancy.remove_migration(15);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.remove_migration(99);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.remove_migration(NULL);
-- a summary that lags its ledger (the caller rolled back a migrate() whose
-- remote migration committed) does not let an applied migration be removed:
-- the ledgers are read
SELECT tenancy.add_migration(45, 'CREATE TABLE "lagging" ("id" integer)', down => 'DROP TABLE "lagging"');
BEGIN;
SELECT tenant, to_version, status FROM tenancy.migrate('m-a');
ROLLBACK;
SELECT tenant, applied_version, missing FROM tenancy.migration_status WHERE tenant = 'm-a';
-- should fail: 55006, m-a's ledger has it
SELECT tenancy.remove_migration(45);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS still_registered FROM tenancy.migration WHERE version = 45;
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('m-a', to_version => 35);
SELECT tenancy.remove_migration(45);
-- a broken migration, registered by mistake, blocks provisioning until it
-- is removed
SELECT tenancy.add_migration(40, 'CREATE TABLE "users" ("id" integer)');
-- should fail: 42P07 at step "template"
SELECT tenancy.provision('m-c');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.remove_migration(40);
SELECT fingerprint AS old_fingerprint FROM tenancy.template \gset
SELECT id, applied_version FROM tenancy.provision('m-c');
SELECT fingerprint <> :'old_fingerprint' AS template_rebuilt FROM tenancy.template;

-- transactional => false: statement by statement, the ledger row after the
-- last; a failure is recorded with its SQLSTATE and the next run starts it
-- again (hence IF NOT EXISTS).  Database tenants only here: in the admin
-- database CREATE INDEX CONCURRENTLY would wait for the caller's own
-- transaction (README).
SELECT tenancy.add_migration(50, E'CREATE TABLE IF NOT EXISTS "gadget" ("id" integer);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS "IDX_gadget" ON "gadget" ("id")',
                             transactional => false, down => 'DROP INDEX CONCURRENTLY IF EXISTS "IDX_gadget"');
-- in m-b, "gadget" is a view: the index fails there (42809)
SELECT dblink_exec(:'b_db', 'CREATE VIEW public.gadget AS SELECT 1 AS id');
SELECT tenant, to_version, status, error, sqlstate FROM tenancy.migrate_all(1, tenants => ARRAY['m-a', 'm-b']) ORDER BY tenant;
SELECT * FROM dblink(:'a_db', 'SELECT count(*) FROM pg_indexes WHERE indexname = ''IDX_gadget''') AS t(n bigint);
SELECT pg_temp.ledger('regress_tn_m-b') AS ledger;
SELECT dblink_exec(:'b_db', 'DROP VIEW public.gadget');
SELECT tenant, to_version, status FROM tenancy.migrate_all(1, tenants => ARRAY['m-b']);
SELECT pg_temp.ledger('regress_tn_m-b') AS ledger;
-- its down runs outside a transaction too; then it can be removed
SELECT tenant, from_version, to_version, status FROM tenancy.migrate_all(1, tenants => ARRAY['m-a', 'm-b'], to_version => 35) ORDER BY tenant;
SELECT * FROM dblink(:'a_db', 'SELECT count(*) FROM pg_indexes WHERE indexname = ''IDX_gadget''') AS t(n bigint);
SELECT tenancy.remove_migration(50);

-- Errors that point: the statement's ordinal and line, the remote
-- SQLSTATE, detail and hint
SELECT tenancy.add_migration(60, E'SELECT 1;\n\n-- the next one fails\nDO $$BEGIN RAISE EXCEPTION USING ERRCODE = ''P0001'', MESSAGE = ''boom'', DETAIL = ''the detail'', HINT = ''the hint''; END$$;\nSELECT 3');
-- should fail: P0001, statement 2 at line 4
SELECT * FROM tenancy.migrate('m-a');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, status, error, sqlstate FROM tenancy.migrate_all(1, tenants => ARRAY['m-a']);
SELECT tenant, last_error, last_sqlstate FROM tenancy.migration_status WHERE tenant = 'm-a';
SELECT tenancy.remove_migration(60);

-- nested block comments count for the line; SET standard_conforming_strings = on is accepted
SELECT tenancy.add_migration(61, E'SET standard_conforming_strings = on;\n/* a /* nested\n */ comment\n*/ SELECT 1 / 0');
SELECT tenant, error FROM tenancy.migrate_all(1, tenants => ARRAY['m-a']);
SELECT tenancy.remove_migration(61);
-- a migration's temporary table does not outlive it: the next migration's
-- unqualified name is the tenant's table again
SELECT tenancy.add_migration(62, 'CREATE TEMP TABLE "users" (id int, name text)', down => 'SELECT 1');
SELECT tenancy.add_migration(63, 'INSERT INTO "users" ("name") VALUES (''not temporary'')',
                             down => 'DELETE FROM "users" WHERE "name" = ''not temporary''');
SELECT tenant, status FROM tenancy.migrate_all(1, tenants => ARRAY['m-b']);
SELECT * FROM dblink(:'b_db', 'SELECT count(*) FROM public.users WHERE name = ''not temporary''') AS t(n bigint);

-- Rollouts: a canary, max_failures, dry_run
-- should fail: bad arguments, before anything runs
SELECT * FROM tenancy.migrate_all(tenants => ARRAY['m-a', 'ghost']);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate_all(tenants => ARRAY['Bad Id']);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate_all(tenants => ARRAY[]::text[]);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate_all(tenants => ARRAY[NULL]::text[]);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate_all(max_failures => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate_all(max_failures => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate_all(dry_run => true, verify => true);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.suspend('m-c');
SELECT * FROM tenancy.migrate_all(tenants => ARRAY['m-c']);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.resume('m-c');
-- a migration that fails on every database tenant but m-a
SELECT dblink_exec(:'a_db', 'CREATE TABLE public.prerequisite (id int)');
SELECT tenancy.add_migration(70, 'INSERT INTO prerequisite VALUES (1)', down => 'DELETE FROM prerequisite');
-- dry run: the plan, from the catalog; nothing runs
SELECT tenant, from_version, to_version, status, error FROM tenancy.migrate_all(dry_run => true) ORDER BY tenant;
-- a fleet larger than one window of the catalog (64 tenants at parallel 1,
-- here 150 catalog rows, which a dry run never connects to): each tenant is
-- planned once
INSERT INTO tenancy.tenant (id, database_name, state)
SELECT 'w-' || pg_catalog.lpad(i::text, 3, '0'), 'regress_tn_w-' || i, 'ready' FROM generate_series(1, 150) i;
SELECT count(*) AS planned, count(DISTINCT tenant) AS tenants
  FROM tenancy.migrate_all(1, dry_run => true) WHERE tenant LIKE 'w-%' AND status = 'planned';
DELETE FROM tenancy.tenant WHERE id LIKE 'w-%';
SELECT pg_temp.ledger('regress_tn_m-a') AS ledger;
-- canary: only m-a
SELECT tenant, to_version, status FROM tenancy.migrate_all(tenants => ARRAY['m-a']);
-- one at a time, stop after the first failure: the rest are skipped
SELECT tenant, status, error, sqlstate FROM tenancy.migrate_all(1, max_failures => 1) ORDER BY tenant;
SELECT tenant_id, status, error IS NOT NULL AS has_error FROM tenancy.migration_progress ORDER BY tenant_id;
-- the prerequisite everywhere: the rest follow
SELECT dblink_exec(:'b_db', 'CREATE TABLE public.prerequisite (id int)');
SELECT dblink_exec(format('host=%s port=%s dbname=regress_tn_m-c', :'sockdir', :'port'), 'CREATE TABLE public.prerequisite (id int)');
CREATE TABLE "regress_tn_m-s".prerequisite (id int);
SELECT tenant, status FROM tenancy.migrate_all(1) ORDER BY tenant;

-- Down: migrate(..., to_version) rolls back the versions above it, newest
-- first, each down with its ledger row in one transaction
-- should fail: out of range (22023), a version to roll back without a down
-- (55000), before anything runs
SELECT * FROM tenancy.migrate('m-a', to_version => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate('m-a', to_version => 71);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(80, 'CREATE TABLE "forever" ("id" integer)');
SELECT tenant, status FROM tenancy.migrate_all(1, tenants => ARRAY['m-a']);
SELECT * FROM tenancy.migrate('m-a', to_version => 10);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate_all(to_version => 10);
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.ledger('regress_tn_m-a') AS ledger;
SELECT tenancy.remove_migration(80);
\echo :LAST_ERROR_SQLSTATE
SELECT dblink_exec(:'a_db', 'DELETE FROM tenancy.applied_migration WHERE version = 80; DROP TABLE public.forever');
-- should fail: m-a's catalog summary still holds 80
SELECT tenancy.remove_migration(80);
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, problem FROM tenancy.reconcile(check_ledgers => true) ORDER BY tenant;
SELECT tenancy.remove_migration(80);
-- roll m-a back to 15, then to 10
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('m-a', to_version => 15);
SELECT pg_temp.ledger('regress_tn_m-a') AS ledger;
SELECT * FROM dblink(:'a_db', 'SELECT count(*) FROM pg_indexes WHERE indexname IN (''IDX_users_email'', ''IDX_users_name'')') AS t(n bigint);
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('m-a', to_version => 10);
SELECT * FROM dblink(:'a_db', 'SELECT count(*) FROM pg_tables WHERE tablename = ''branch''') AS t(n bigint);
SELECT tenant, applied_version, missing FROM tenancy.migration_status WHERE tenant = 'm-a';
-- a down that fails halfway leaves the version applied, and nothing undone
SELECT tenancy.add_migration(90, 'CREATE TABLE "halfway" ("id" integer)', down => 'DROP TABLE "halfway"; SELECT 1 / 0');
SELECT tenant, to_version, status FROM tenancy.migrate('m-s');
-- should fail: 22012, rolling back version 90, statement 2
SELECT * FROM tenancy.migrate('m-s', to_version => 70);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS halfway_kept FROM pg_tables WHERE schemaname = 'regress_tn_m-s' AND tablename = 'halfway';
SELECT max(version) AS schema_ledger FROM "regress_tn_m-s".tenancy_applied_migration;
-- the failure is recorded (on its own: the caller's transaction aborted)
SELECT tenant, applied_version, missing, last_sqlstate FROM tenancy.migration_status WHERE tenant = 'm-s';
-- the fleet: every tenant rolled back to 70 (90 fails on m-s)
SELECT tenant, from_version, to_version, status, sqlstate FROM tenancy.migrate_all(1, to_version => 70) ORDER BY tenant;
SELECT tenant, missing FROM tenancy.migration_status ORDER BY tenant;
-- and forward again: every tenant gets what it lacks
SELECT tenant, from_version, to_version, status FROM tenancy.migrate_all(1) ORDER BY tenant;
-- 90's down fails on every tenant now: each keeps 90, nothing half-undone
SELECT tenant, to_version, status, sqlstate FROM tenancy.migrate_all(1, to_version => 70) ORDER BY tenant;
SELECT pg_temp.ledger('regress_tn_m-b') AS ledger;
SELECT * FROM dblink(:'b_db', 'SELECT count(*) FROM pg_tables WHERE tablename = ''halfway''') AS t(n bigint);

-- adopt(): an existing database registered as a tenant
CREATE DATABASE regress_adopt_me;
SELECT dblink_exec(format('host=%s port=%s dbname=regress_adopt_me', :'sockdir', :'port'),
                   'CREATE TABLE public.users (id serial PRIMARY KEY, name varchar NOT NULL)');
-- should fail: bad input, nothing registered
SELECT tenancy.adopt('m-old', 'postgres');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('m-old', 'template1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('m-old', current_database());
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('m-old', 'regress_tn_template');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('m-old', 'regress_tn_tmp_1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('m-old', 'regress_no_such_db');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('m-old', 'regress_tn_m-b');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('m-a', 'regress_adopt_me');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('m-old', 'regress_adopt_me', baseline => 1000);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('Bad', 'regress_adopt_me');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.adopt('m-old', NULL);
\echo :LAST_ERROR_SQLSTATE
-- a "tenancy" schema another role owns is refused before it is touched,
-- and the database is left as it was (PUBLIC may still connect)
CREATE ROLE regress_app_owner;
CREATE DATABASE regress_adopt_squatted;
SELECT dblink_exec(format('host=%s port=%s dbname=regress_adopt_squatted', :'sockdir', :'port'),
                   'CREATE SCHEMA tenancy AUTHORIZATION regress_app_owner');
SELECT tenancy.adopt('m-squat', 'regress_adopt_squatted');
\echo :LAST_ERROR_SQLSTATE
SELECT has_database_privilege('public', 'regress_adopt_squatted', 'CONNECT') AS public_connect;
DROP DATABASE regress_adopt_squatted;
ALTER DATABASE regress_adopt_me OWNER TO regress_app_owner;
SELECT tenancy.adopt('m-old', 'regress_adopt_me', baseline => 10);
\echo :LAST_ERROR_SQLSTATE
ALTER DATABASE regress_adopt_me OWNER TO CURRENT_USER;
DROP ROLE regress_app_owner;
SELECT count(*) AS tenants FROM tenancy.tenant WHERE id = 'm-old';
-- should succeed: migration 10 recorded, not run (users exists already)
SELECT id, database_name, state, applied_version, applied_versions FROM tenancy.adopt('m-old', 'regress_adopt_me', baseline => 10);
SELECT pg_temp.ledger('regress_adopt_me') AS ledger;
SELECT datacl::text LIKE '%=Tc/%' AS public_connect FROM pg_database WHERE datname = 'regress_adopt_me';
SELECT dblink_exec(format('host=%s port=%s dbname=regress_adopt_me', :'sockdir', :'port'), 'CREATE TABLE public.prerequisite (id int)');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('m-old');
SELECT pg_temp.ledger('regress_adopt_me') AS ledger;

-- should fail (55000), removing nothing: a ready tenant's ledger cannot be read
SELECT tenancy.add_migration(99, 'SELECT 1');
ALTER DATABASE "regress_tn_m-b" WITH ALLOW_CONNECTIONS false;
\set VERBOSITY terse
SELECT tenancy.remove_migration(99);
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS still_registered FROM tenancy.migration WHERE version = 99;
ALTER DATABASE "regress_tn_m-b" WITH ALLOW_CONNECTIONS true;
SELECT tenancy.remove_migration(99);

-- No role can stall tenancy: the advisory locks SQL can take (even with
-- tenancy's class and the tenant's hash, in a prepared transaction) are
-- not tenancy's, so nothing is skipped or waits
SELECT dblink_connect('staller', format('host=%s port=%s dbname=%s', :'sockdir', :'port', current_database()));
SELECT * FROM dblink('staller', $$SELECT pg_advisory_lock(x'74656e61'::int, hashtext('m-a')),
                                        pg_advisory_lock(x'74656e62'::int, 0)$$) AS t(a text, b text);
SELECT tenant, status FROM tenancy.migrate_all(1, tenants => ARRAY['m-a'], verify => true);
SET statement_timeout = '10s';
SELECT count(*) >= 0 AS reconcile_did_not_wait FROM tenancy.reconcile(dry_run => true);
RESET statement_timeout;
SELECT dblink_disconnect('staller');

-- bootstrap(): nothing to do, no tenant connected to.  A tenant database
-- closed to connections behind tenancy's back shows it: bootstrap() does
-- not notice, bootstrap(verify => true) does.
SELECT tenant, status FROM tenancy.migrate_all(1) WHERE status <> 'up_to_date' ORDER BY tenant;
ALTER DATABASE "regress_tn_m-b" WITH ALLOW_CONNECTIONS false;
SELECT tenant, action, status FROM tenancy.bootstrap() ORDER BY tenant, action;
SELECT tenant, action, status, error IS NOT NULL AS has_error FROM tenancy.bootstrap(verify => true)
 WHERE status <> 'up_to_date' ORDER BY tenant, action;
ALTER DATABASE "regress_tn_m-b" WITH ALLOW_CONNECTIONS true;
SELECT tenant, action, status FROM tenancy.bootstrap(verify => true) WHERE status <> 'up_to_date' ORDER BY tenant;

-- The guards ask in two stages: a cheap question (any trigger? any schema
-- on the path owned or writable by another role?), then, only when it says
-- yes, the checks themselves.  What only looks suspect is not refused: a
-- trigger of the service role's own (made by a migration), and a path
-- schema owned by a superuser that nobody else can write.
SELECT tenancy.add_migration(200, 'CREATE FUNCTION "users_touch"() RETURNS trigger LANGUAGE plpgsql AS $f$BEGIN RETURN NEW; END$f$; '
  'CREATE TRIGGER "users_touch" BEFORE INSERT ON "users" FOR EACH ROW EXECUTE FUNCTION "users_touch"()',
  down => 'DROP TRIGGER "users_touch" ON "users"; DROP FUNCTION "users_touch"()');
SELECT tenancy.add_migration(201, 'INSERT INTO "users" ("name") VALUES (''after the trigger'')', down => 'DELETE FROM "users" WHERE "name" = ''after the trigger''');
SELECT dblink_exec(:'a_db', 'CREATE SCHEMA regress_su_schema');
SELECT tenancy.add_migration(202, 'SELECT 1', search_path => 'regress_su_schema, public', down => 'SELECT 1');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('m-a');
SELECT * FROM dblink(:'a_db', 'SELECT count(*) FROM public.users WHERE name = ''after the trigger''') AS t(n bigint);
-- should fail (42501): the same superuser's schema, once another role may
-- create in it, is refused by the second stage
CREATE ROLE regress_planter2;
SELECT dblink_exec(:'a_db', 'GRANT CREATE ON SCHEMA regress_su_schema TO regress_planter2');
SELECT tenancy.add_migration(203, 'SELECT 1', search_path => 'regress_su_schema, public', down => 'SELECT 1');
SELECT * FROM tenancy.migrate('m-a');
\echo :LAST_ERROR_SQLSTATE
SELECT dblink_exec(:'a_db', 'DROP SCHEMA regress_su_schema');
DROP ROLE regress_planter2;
SELECT tenancy.remove_migration(203);
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('m-a', to_version => 90);
SELECT tenancy.remove_migration(v) FROM generate_series(202, 200, -1) v;

RESET client_min_messages;
SELECT tenancy.deprovision(id) FROM tenancy.tenant ORDER BY id;
SELECT count(*) AS adopted_database_left FROM pg_database WHERE datname = 'regress_adopt_me';
DELETE FROM tenancy.migration;
DELETE FROM tenancy.migration_progress;
