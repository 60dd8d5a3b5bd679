--
-- migrate: registering migrations, applying them per tenant atomically with
-- the tenant's own ledger, drift, and migrations that misbehave
--
SELECT current_setting('unix_socket_directories') AS sockdir,
       current_setting('port') AS port \gset
\set acme_db 'host=' :sockdir ' port=' :port ' dbname=regress_tn_acme'
\set globex_db 'host=' :sockdir ' port=' :port ' dbname=regress_tn_globex'

-- should fail: bad migration input, and nothing is registered
SELECT tenancy.add_migration(NULL, 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(0, 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(-5, 'SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, '');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, E'  \n\t ');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS migrations FROM tenancy.migration;

-- should succeed: register two migrations
SELECT tenancy.add_migration(10, 'CREATE TABLE public.account (id int PRIMARY KEY, name text NOT NULL)', 'accounts');
SELECT tenancy.add_migration(20, 'INSERT INTO public.account VALUES (1, ''first'')');
-- the checksum covers the search_path the migration runs under and its SQL
SELECT version, description, search_path,
       checksum = encode(sha256(convert_to('-- search_path: public' || E'\n' || sql, 'UTF8')), 'hex') AS checksum_is_sha256
  FROM tenancy.migration ORDER BY version;
-- should succeed with a NOTICE: the same migration again
SELECT tenancy.add_migration(20, 'INSERT INTO public.account VALUES (1, ''first'')');
-- should fail: other SQL under a registered version
SELECT tenancy.add_migration(20, 'INSERT INTO public.account VALUES (2, ''second'')');
\echo :LAST_ERROR_SQLSTATE
-- should succeed: lower than the highest registered version (versions are a set)
SELECT tenancy.add_migration(15, 'SELECT 1');
SELECT version FROM tenancy.migration ORDER BY version;

-- provisioning applies every registered migration
SELECT id, state, applied_version FROM tenancy.provision('acme');
SELECT id, state, applied_version FROM tenancy.provision('globex');
SELECT * FROM dblink(:'acme_db', 'SELECT id, name FROM public.account') AS t(id int, name text);
SELECT * FROM dblink(:'acme_db', 'SELECT version, checksum, duration >= ''0'' FROM tenancy.applied_migration ORDER BY version')
    AS t(version bigint, checksum text, has_duration boolean);

-- should succeed: nothing pending
SELECT tenant, from_version, to_version, status, error FROM tenancy.migrate('acme');

-- a new migration, applied to one tenant at a time
SELECT tenancy.add_migration(30, 'ALTER TABLE public.account ADD COLUMN email text; CREATE INDEX account_email_idx ON public.account (email)');
SELECT tenant, applied_version, latest_version, pending FROM tenancy.migration_status ORDER BY tenant;
SELECT tenant, from_version, to_version, status, error, duration >= '0' AS timed FROM tenancy.migrate('acme');
SELECT tenant, applied_version, latest_version, pending FROM tenancy.migration_status ORDER BY tenant;
SELECT * FROM dblink(:'acme_db', 'SELECT count(*) FROM pg_catalog.pg_indexes WHERE indexname = ''account_email_idx''') AS t(n bigint);

-- A migration that fails on one tenant only: globex already has the table
-- that migration 40 creates.  The remote SQLSTATE passes through with the
-- tenant and version in CONTEXT, and globex stays at its last version with
-- nothing of migration 40 applied (one remote transaction per migration).
SELECT dblink_exec(:'globex_db', 'CREATE TABLE public.audit (id int)');
SELECT tenancy.add_migration(40, 'CREATE TABLE public.note (id int); CREATE TABLE public.audit (id int)');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('acme');
-- should fail: relation "audit" already exists (42P07)
SELECT * FROM tenancy.migrate('globex');
\echo :LAST_ERROR_SQLSTATE
-- globex applied 30 (it committed before 40 failed) but nothing of 40; the
-- failed call recorded that in the catalog on its own, with the error
SELECT * FROM dblink(:'globex_db', 'SELECT version FROM tenancy.applied_migration ORDER BY version') AS t(version bigint);
SELECT * FROM dblink(:'globex_db', 'SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = ''note''') AS t(n bigint);
SELECT id, state, applied_version FROM tenancy.tenant ORDER BY id;
-- after the conflict is fixed, a retry finishes the job
SELECT dblink_exec(:'globex_db', 'DROP TABLE public.audit');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('globex');
SELECT dblink_get_connections() AS open_connections;

-- Drift: a ledger row whose checksum differs from the registered migration
-- stops migrate before anything is applied (XX001).
SELECT dblink_exec(:'acme_db', 'UPDATE tenancy.applied_migration SET checksum = repeat(''0'', 64) WHERE version = 20');
SELECT tenancy.add_migration(50, 'CREATE TABLE public.after_drift (id int)');
-- should fail: drift
SELECT * FROM tenancy.migrate('acme');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM dblink(:'acme_db', 'SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = ''after_drift''') AS t(n bigint);
-- a ledger row for a version that is not registered is drift too
SELECT dblink_exec(:'acme_db', 'UPDATE tenancy.applied_migration SET checksum = ' ||
       quote_literal((SELECT checksum FROM tenancy.migration WHERE version = 20)) || ' WHERE version = 20');
SELECT dblink_exec(:'acme_db', 'INSERT INTO tenancy.applied_migration VALUES (25, repeat(''1'', 64), now(), ''0'')');
-- should fail: unregistered version in the ledger
SELECT * FROM tenancy.migrate('acme');
\echo :LAST_ERROR_SQLSTATE
SELECT dblink_exec(:'acme_db', 'DELETE FROM tenancy.applied_migration WHERE version = 25');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('acme');

-- pg_temp.plant(): a migration row written by hand, as a superuser or 0.1.0
-- would (checksum of the SQL alone, empty search_path), so that what
-- add_migration refuses can be shown refused again when it would run
CREATE FUNCTION pg_temp.plant(v bigint, s text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO tenancy.migration (version, sql, checksum)
  VALUES (v, s, encode(sha256(convert_to(s, 'UTF8')), 'hex')) $$;

-- Migrations that leave tenancy's transaction are refused (25000) and their
-- version is not recorded: when registered, and when they would run.
SELECT tenancy.add_migration(60, 'CREATE TABLE public.escaped (id int); COMMIT');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.plant(60, 'CREATE TABLE public.escaped (id int); COMMIT');
-- should fail: the migration ended the transaction
SELECT * FROM tenancy.migrate('acme');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM dblink(:'acme_db', 'SELECT count(*) FROM tenancy.applied_migration WHERE version = 60') AS t(n bigint);
DELETE FROM tenancy.migration WHERE version = 60;
SELECT tenancy.add_migration(60, 'ROLLBACK; BEGIN');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.plant(60, 'ROLLBACK; BEGIN');
-- should fail: ROLLBACK then BEGIN is a different transaction
SELECT * FROM tenancy.migrate('acme');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.migration WHERE version = 60;

-- Statements that cannot run in a transaction block fail remotely (25001)
SELECT tenancy.add_migration(60, 'CREATE INDEX CONCURRENTLY account_name_idx ON public.account (name)');
-- should fail: 25001 passed through
SELECT * FROM tenancy.migrate('acme');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM tenancy.migration WHERE version = 60;

-- Database tenants' migrations run with search_path = public: unqualified
-- names (what ORMs write) work.  A migration may set its own search_path;
-- it lasts for that migration only.
SELECT tenancy.add_migration(60, 'CREATE TABLE unqualified (id int); SET LOCAL search_path = pg_catalog');
-- registered with an empty search_path, unqualified names resolve nowhere
SELECT tenancy.add_migration(70, 'CREATE TABLE unqualified_again (id int)', search_path => '');
-- should fail: no schema has been selected to create in (3F000); 60 applied
SELECT * FROM tenancy.migrate('acme');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM dblink(:'acme_db', 'SELECT max(version) FROM tenancy.applied_migration') AS t(v bigint);
SELECT * FROM dblink(:'acme_db', 'SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = ''public'' AND tablename = ''unqualified''') AS t(n bigint);
SELECT tenancy.remove_migration(70);
-- the failed call recorded 60 and its error on its own; migrate reads the
-- ledger and brings the catalog in line
SELECT applied_version FROM tenancy.tenant WHERE id = 'acme';
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('acme');

-- should fail: a trigger whose function belongs to another (non-superuser)
-- role would run as the role migrations run as; migrate() and migrate_all()
-- refuse (42501) and apply nothing
CREATE ROLE regress_trigger_owner;
SELECT dblink_exec(:'acme_db', $$
  CREATE FUNCTION public.planted() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
  ALTER FUNCTION public.planted() OWNER TO regress_trigger_owner;
  CREATE TABLE public.watched (id int);
  CREATE TRIGGER planted BEFORE INSERT ON public.watched FOR EACH ROW EXECUTE FUNCTION public.planted()$$);
SELECT tenancy.add_migration(80, 'CREATE TABLE IF NOT EXISTS public.watched (id int); INSERT INTO public.watched VALUES (1)');
SELECT * FROM tenancy.migrate('acme');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant, to_version, status, sqlstate, error FROM tenancy.migrate_all(1) WHERE tenant = 'acme';
SELECT * FROM dblink(:'acme_db', 'SELECT count(*) FROM public.watched') AS t(n bigint);
-- in the database and in its ledger, nothing of migration 80
SELECT * FROM dblink(:'acme_db', 'SELECT max(version) FROM tenancy.applied_migration') AS t(v bigint);
SELECT dblink_exec(:'acme_db', 'DROP TRIGGER planted ON public.watched; DROP FUNCTION public.planted()');
SELECT tenant, from_version, to_version, status FROM tenancy.migrate('acme');
DROP ROLE regress_trigger_owner;

-- a migration whose last statement returns rows (setval) runs like any other
SELECT tenancy.add_migration(90, 'CREATE SEQUENCE public.counter; SELECT pg_catalog.setval(''public.counter'', 42)');
SELECT tenant, to_version, status FROM tenancy.migrate('acme');
SELECT * FROM dblink(:'acme_db', 'SELECT last_value FROM public.counter') AS t(v bigint);

-- should fail: unknown and bad tenants
SELECT * FROM tenancy.migrate('ghost');
\echo :LAST_ERROR_SQLSTATE

-- the catalog summary agrees with each ledger
SELECT t.id, t.applied_version,
       (SELECT v FROM dblink('host=' || :'sockdir' || ' port=' || :'port' || ' dbname=' || t.database_name,
                             'SELECT max(version) FROM tenancy.applied_migration') AS l(v bigint)) AS ledger_version
  FROM tenancy.tenant t ORDER BY t.id;

-- A migration that calls back into tenancy for its own tenant (through
-- dblink) would wait forever for the lock its own caller holds: the inner
-- call waits at most tenancy.lock_wait_timeout (here 1s) and fails (55P03),
-- the migration fails with it, nothing is applied and nothing is left open
SELECT tenancy.add_migration(max(version) + 1, 'CREATE EXTENSION IF NOT EXISTS dblink SCHEMA public') FROM tenancy.migration;
SELECT tenant, status FROM tenancy.migrate('acme');
SELECT tenancy.add_migration(max(version) + 1,
  format('SELECT * FROM public.dblink(%L, %L) AS t(s text)',
         format('host=%s port=%s dbname=%s options=-ctenancy.lock_wait_timeout=1s', :'sockdir', :'port', current_database()),
         $$SELECT status FROM tenancy.migrate('acme')$$))
  FROM tenancy.migration;
SELECT max(version) AS callback_version FROM tenancy.migration \gset
-- should fail: 55P03
\set VERBOSITY terse
SELECT * FROM tenancy.migrate('acme');
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
SELECT applied_version < :callback_version AS not_applied FROM tenancy.tenant WHERE id = 'acme';
SELECT count(*) AS sessions_left FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state <> 'idle';
SELECT tenancy.remove_migration(:callback_version);

SELECT tenancy.deprovision('acme');
SELECT tenancy.deprovision('globex');
DELETE FROM tenancy.migration;
SELECT dblink_get_connections() AS open_connections;
