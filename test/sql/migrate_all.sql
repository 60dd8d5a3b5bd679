--
-- migrate_all: the fleet in parallel; one failing tenant does not stop the
-- others; failures are recorded and retried; no-op runs answer from the
-- catalog; bootstrap()
--
SELECT current_setting('unix_socket_directories') AS sockdir,
       current_setting('port') AS port \gset
-- progress NOTICEs arrive in completion order: keep them out of the output
SET client_min_messages = warning;

-- should fail: parallel out of range (22023)
SELECT * FROM tenancy.migrate_all(0);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate_all(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate_all(65);
\echo :LAST_ERROR_SQLSTATE

SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int)');
SELECT id FROM tenancy.provision('fleet-a');
SELECT id FROM tenancy.provision('fleet-b');
SELECT id FROM tenancy.provision('fleet-c');
SELECT id FROM tenancy.provision('fleet-d');
SELECT tenancy.suspend('fleet-d');

-- nothing pending: answered from the catalog
SELECT tenant, from_version, to_version, status, error, sqlstate FROM tenancy.migrate_all() ORDER BY 1;

-- fleet-b already has the table migration 2 creates: it fails alone
SELECT dblink_exec(format('host=%s port=%s dbname=regress_tn_fleet-b', :'sockdir', :'port'),
                   'CREATE TABLE public.conflict (id int)');
SELECT tenancy.add_migration(2, 'CREATE TABLE public.conflict (id int); CREATE INDEX ON public.item (id)');
SELECT tenant, from_version, to_version, status, error, sqlstate FROM tenancy.migrate_all(parallel => 2) ORDER BY 1;
-- the failure is recorded where everyone can see it
SELECT tenant, state, applied_version, latest_version, pending, last_error, last_sqlstate
  FROM tenancy.migration_status ORDER BY 1;
-- and in the run's progress table, which other sessions read while it runs
SELECT tenant_id, status, from_version, to_version, sqlstate FROM tenancy.migration_progress ORDER BY 1;
-- nothing of migration 2 reached fleet-b (one transaction per migration)
SELECT * FROM dblink(format('host=%s port=%s dbname=regress_tn_fleet-b', :'sockdir', :'port'),
                     $$SELECT count(*) FROM pg_catalog.pg_indexes WHERE tablename = 'item'$$) AS t(n bigint);
-- fix it; the next run retries only what is not done
SELECT dblink_exec(format('host=%s port=%s dbname=regress_tn_fleet-b', :'sockdir', :'port'),
                   'DROP TABLE public.conflict');
SELECT tenant, from_version, to_version, status, error FROM tenancy.migrate_all() ORDER BY 1;
SELECT tenant, applied_version, pending, last_error FROM tenancy.migration_status ORDER BY 1;

-- verify: connect to every ready tenant and check its ledger, even when the
-- catalog says it is current; drift is reported per tenant (XX001)
SELECT dblink_exec(format('host=%s port=%s dbname=regress_tn_fleet-c', :'sockdir', :'port'),
                   $$UPDATE tenancy.applied_migration SET checksum = repeat('0', 64) WHERE version = 1$$);
SELECT tenant, status, error, sqlstate FROM tenancy.migrate_all() ORDER BY 1;
SELECT tenant, status, error, sqlstate FROM tenancy.migrate_all(verify => true) ORDER BY 1;
SELECT dblink_exec(format('host=%s port=%s dbname=regress_tn_fleet-c', :'sockdir', :'port'),
                   'UPDATE tenancy.applied_migration SET checksum = ' ||
                   quote_literal((SELECT checksum FROM tenancy.migration WHERE version = 1)) || ' WHERE version = 1');

-- a migration that ends the transaction is refused when registered, and
-- (written by hand) fails everywhere, recorded as 25000
SELECT tenancy.add_migration(3, 'COMMIT');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.migration (version, sql, checksum) VALUES (3, 'COMMIT', encode(sha256('COMMIT'), 'hex'));
SELECT tenant, to_version, status, error, sqlstate FROM tenancy.migrate_all(3) ORDER BY 1;
DELETE FROM tenancy.migration WHERE version = 3;
SELECT tenant, status, error FROM tenancy.migrate_all(verify => true) ORDER BY 1;

-- bootstrap: a tenant whose database vanished is recreated, every tenant is
-- checked and migrated
SELECT tenancy.resume('fleet-d');
DROP DATABASE "regress_tn_fleet-a";
SELECT tenant, action, status, error FROM tenancy.bootstrap() ORDER BY 1, 2 DESC;
SELECT tenant, state, applied_version, latest_version FROM tenancy.migration_status ORDER BY 1;
SELECT tenant, action, status, error FROM tenancy.bootstrap() WHERE action <> 'migrate' OR status <> 'up_to_date';

-- nothing left open
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
SELECT pg_temp.tenancy_sessions() AS tenancy_sessions;

RESET client_min_messages;
SELECT tenancy.deprovision(id) FROM tenancy.tenant ORDER BY id;
DELETE FROM tenancy.migration;
DELETE FROM tenancy.migration_progress;
