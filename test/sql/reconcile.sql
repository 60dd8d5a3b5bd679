--
-- reconcile: no orphans, whatever fails.  Provisioning works under a
-- temporary name recorded (on its own) in tenancy.pending_cleanup; errors
-- undo at once, and a rollback or crash leaves only what reconcile() and
-- the next provision() clean up.
--
SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int)');

-- what exists, with operation ids masked
CREATE VIEW pg_temp.leftovers AS
SELECT 'database' AS kind, regexp_replace(datname, 'tmp_[0-9]+$', 'tmp_N') AS name
  FROM pg_database WHERE datname LIKE 'regress_tn_%' AND datname <> 'regress_tn_template'
UNION ALL
SELECT 'cleanup row', tenant_id || ' ' || regexp_replace(database_name, 'tmp_[0-9]+$', 'tmp_N') || ' -> ' || final_name
  FROM tenancy.pending_cleanup
UNION ALL
SELECT 'tenant row', id || ' ' || state FROM tenancy.tenant;

-- A caller that rolls back after a successful provision: the final name
-- never existed outside its transaction; the temporary database is recorded.
BEGIN;
SELECT id, state FROM tenancy.provision('rolled-back');
SELECT kind, name FROM pg_temp.leftovers ORDER BY 1, 2;
ROLLBACK;
SELECT kind, name FROM pg_temp.leftovers ORDER BY 1, 2;
-- dry run: reports, changes nothing
SELECT tenant, regexp_replace(object, '[0-9]+$', 'N') AS object, problem, action
  FROM tenancy.reconcile(dry_run => true) ORDER BY 1, 2;
SELECT count(*) AS leftovers FROM pg_temp.leftovers;
SELECT tenant, regexp_replace(object, '[0-9]+$', 'N') AS object, problem, action
  FROM tenancy.reconcile() ORDER BY 1, 2;
SELECT count(*) AS leftovers FROM pg_temp.leftovers;
-- a second run finds nothing
SELECT count(*) AS second_run FROM tenancy.reconcile();

-- The next provision of the same tenant cleans up an earlier attempt itself.
BEGIN;
SELECT id FROM tenancy.provision('retried');
ROLLBACK;
SELECT kind, name FROM pg_temp.leftovers ORDER BY 1, 2;
SELECT id, state FROM tenancy.provision('retried');
SELECT kind, name FROM pg_temp.leftovers ORDER BY 1, 2;
SELECT tenancy.deprovision('retried');

-- An error at any step undoes everything at once: no database, no record,
-- no row, no connection left.
CREATE TEMP TABLE fault_point (n int, point text);
INSERT INTO fault_point VALUES (1, 'before_cleanup_record'), (2, 'after_cleanup_record'),
  (3, 'after_remote_create'), (4, 'after_bootstrap'), (5, 'before_rename'),
  (6, 'after_rename'), (7, 'after_local_record');
CREATE FUNCTION pg_temp.provision_with_fault(point text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('tenancy.fault_injection', point || ':error', true);
  PERFORM tenancy.provision('faulty');
  RETURN 'provisioned';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END
$$;
SELECT n, point, pg_temp.provision_with_fault(point) AS result,
       (SELECT count(*) FROM pg_temp.leftovers) AS leftovers,
       dblink_get_connections() AS open_connections
  FROM fault_point ORDER BY n;
RESET tenancy.fault_injection;

-- A migration that fails while provisioning: its error, and nothing left.
SELECT tenancy.add_migration(2, 'CREATE TABLE public.item (id int)');
-- should fail: relation "item" already exists
SELECT tenancy.provision('bad-migration');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS leftovers FROM pg_temp.leftovers;
DELETE FROM tenancy.migration WHERE version = 2;

-- Deprovision commits each step on its own: a rollback of the caller cannot
-- bring back a row whose database is gone.
SELECT id FROM tenancy.provision('dropped');
BEGIN;
SELECT tenancy.deprovision('dropped');
ROLLBACK;
SELECT kind, name FROM pg_temp.leftovers ORDER BY 1, 2;

-- A failed drop puts the tenant back as it was.
SELECT id FROM tenancy.provision('kept');
SET tenancy.fault_injection = 'before_drop:error';
-- should fail: injected fault
SELECT tenancy.deprovision('kept');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.fault_injection;
SELECT kind, name FROM pg_temp.leftovers ORDER BY 1, 2;
SELECT tenancy.suspend('kept');
SET tenancy.fault_injection = 'before_drop:error';
-- should fail, and the tenant stays suspended
SELECT tenancy.deprovision('kept');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.fault_injection;
SELECT state FROM tenancy.tenant WHERE id = 'kept';
SELECT tenancy.resume('kept');

-- An interrupted deprovision (state dropping) is finished by reconcile.
UPDATE tenancy.tenant SET state = 'dropping' WHERE id = 'kept';
SELECT tenant, object, problem, action FROM tenancy.reconcile() ORDER BY 1, 2;
SELECT kind, name FROM pg_temp.leftovers ORDER BY 1, 2;

-- A ready row whose database has disappeared is marked failed; the tenant
-- cannot be selected; provisioning it again recreates it.
SELECT id FROM tenancy.provision('lost');
DROP DATABASE "regress_tn_lost";
SELECT tenant, object, problem, action FROM tenancy.reconcile() ORDER BY 1, 2;
SELECT state, last_error FROM tenancy.tenant WHERE id = 'lost';
SET tenancy.current = 'lost';
-- should fail: not ready
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
SELECT id, state, applied_version, last_error FROM tenancy.provision('lost');
SELECT count(*) AS second_run FROM tenancy.reconcile();

-- should fail: a failed tenant whose database still exists is not re-provisioned
UPDATE tenancy.tenant SET state = 'failed' WHERE id = 'lost';
SELECT tenancy.provision('lost');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.deprovision('lost');

-- The catalog summary can be rebuilt from the tenants' ledgers.
SELECT id FROM tenancy.provision('summarised');
UPDATE tenancy.tenant SET applied_version = 7 WHERE id = 'summarised';
-- without check_ledgers, reconcile does not connect to tenants
SELECT count(*) AS plain_findings FROM tenancy.reconcile();
SELECT tenant, problem, action FROM tenancy.reconcile(dry_run => true, check_ledgers => true);
SELECT applied_version FROM tenancy.tenant WHERE id = 'summarised';
SELECT tenant, problem, action FROM tenancy.reconcile(check_ledgers => true);
SELECT applied_version FROM tenancy.tenant WHERE id = 'summarised';
SELECT count(*) AS second_run FROM tenancy.reconcile(check_ledgers => true);
SELECT tenancy.deprovision('summarised');

SELECT count(*) AS leftovers FROM pg_temp.leftovers;
SELECT dblink_get_connections() AS open_connections;
DELETE FROM tenancy.migration;
