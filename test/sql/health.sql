--
-- health: every tenant's database as it is now
--
SELECT current_setting('unix_socket_directories') AS sockdir,
       current_setting('port') AS port \gset
SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int)');
SELECT id FROM tenancy.provision('well');
SELECT id FROM tenancy.provision('sleepy');
SELECT id FROM tenancy.provision('drifted');
SELECT id FROM tenancy.provision('lost');
SELECT tenancy.suspend('sleepy');
SELECT dblink_exec(format('host=%s port=%s dbname=regress_tn_drifted', :'sockdir', :'port'),
                   $$UPDATE tenancy.applied_migration SET checksum = repeat('0', 64)$$);
DROP DATABASE regress_tn_lost;
SELECT tenancy.add_migration(2, 'CREATE INDEX ON public.item (id)');
-- the backend that served dblink_exec exits asynchronously: wait for it
DO $$BEGIN
  FOR i IN 1..100 LOOP
    EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity WHERE datname = 'regress_tn_drifted');
    PERFORM pg_sleep(0.05);
    PERFORM pg_stat_clear_snapshot();
  END LOOP;
END$$;

SELECT tenant, state, reachable, applied_version, latest_version, ledger_version, drift,
       database_size > 1000000 AS has_size, connections, allow_connections, xid_age >= 0 AS has_age,
       regexp_replace(error, 'socket "[^"]*"', 'socket S') AS error
  FROM tenancy.health() ORDER BY 1;
-- one tenant
SELECT tenant, reachable, ledger_version FROM tenancy.health('well');
-- should fail: unknown and malformed tenants
SELECT * FROM tenancy.health('ghost');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.health('Bad');
\echo :LAST_ERROR_SQLSTATE
-- should fail: not for applications
CREATE ROLE regress_nosy;
SET ROLE regress_nosy;
SELECT * FROM tenancy.health();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_nosy;
SELECT dblink_get_connections() AS open_connections;

SELECT tenancy.resume('sleepy');
SELECT tenancy.deprovision(id) FROM tenancy.tenant WHERE id <> 'lost' ORDER BY id;
DELETE FROM tenancy.tenant WHERE id = 'lost';
DELETE FROM tenancy.migration;
