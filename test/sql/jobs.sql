--
-- jobs: start_migrate_all, start_provision_many and cancel_job refuse bad
-- arguments with the errors of the functions they start, before anything
-- is queued; refuse (55000) to queue a job no worker would run (the worker
-- tends tenancy.database, "postgres" here, not this database); and are for
-- admins only.  The worker itself is tested in test/t/120_jobs.pl.
--
SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int)');
SELECT id FROM tenancy.provision('jobs-a');
SELECT tenancy.suspend('jobs-a');

-- should fail: 22023 (parallel, max_failures, to_version, an empty list),
-- 42602 (a bad id), 42704 (unknown tenant), 55000 (suspended tenant)
SELECT tenancy.start_migrate_all(parallel => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_migrate_all(max_failures => 0);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_migrate_all(to_version => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_migrate_all(tenants => ARRAY['Bad!']);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_migrate_all(tenants => '{}');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_migrate_all(tenants => ARRAY['jobs-nobody']);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_migrate_all(tenants => ARRAY['jobs-a']);
\echo :LAST_ERROR_SQLSTATE
-- should fail: 22004 (NULL list, NULL element), 22023 (twice, parallel,
-- isolation, server for schema tenants, empty list)
SELECT tenancy.start_provision_many(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_provision_many(ARRAY['jobs-b', NULL]);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_provision_many(ARRAY['jobs-b', 'jobs-b']);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_provision_many(ARRAY['jobs-b'], parallel => 65);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_provision_many(ARRAY['jobs-b'], isolation => 'cluster');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_provision_many(ARRAY['jobs-b'], isolation => 'schema', server => 'anywhere');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_provision_many('{}');
\echo :LAST_ERROR_SQLSTATE

-- should fail: good arguments, but the worker runs another database's jobs
-- (55000); nothing is queued
SELECT tenancy.start_migrate_all();
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_provision_many(ARRAY['jobs-b']);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS jobs FROM tenancy.job;

-- cancel_job: should fail with 22004 (NULL) and 42704 (unknown job)
SELECT tenancy.cancel_job(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.cancel_job(12345);
\echo :LAST_ERROR_SQLSTATE
-- a job as the worker leaves it: finished, so it cannot be cancelled (55000)
INSERT INTO tenancy.job (kind, owner, parallel, state, finished_at)
VALUES ('migrate_all', current_user::regrole, 1, 'done', now()) RETURNING id AS done_job \gset
SELECT tenancy.cancel_job(:done_job);
\echo :LAST_ERROR_SQLSTATE
-- a queued job is cancelled at once
INSERT INTO tenancy.job (kind, owner, parallel) VALUES ('migrate_all', current_user::regrole, 1)
RETURNING id AS queued_job \gset
SELECT tenancy.cancel_job(:queued_job);
SELECT state, cancel_requested, finished_at IS NOT NULL AS finished
  FROM tenancy.job WHERE id = :queued_job;
-- a cancel rolled back with its savepoint cancels nothing
INSERT INTO tenancy.job (kind, owner, parallel) VALUES ('migrate_all', current_user::regrole, 1)
RETURNING id AS kept_job \gset
BEGIN;
SAVEPOINT s;
SELECT tenancy.cancel_job(:kept_job);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT state, cancel_requested FROM tenancy.job WHERE id = :kept_job;
-- the job table's checks (23514)
\set VERBOSITY terse
INSERT INTO tenancy.job (kind, owner, parallel) VALUES ('vacuum_all', current_user::regrole, 1);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.job (kind, owner, parallel) VALUES ('migrate_all', current_user::regrole, 0);
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
DELETE FROM tenancy.job;

-- a role granted nothing can neither start, cancel nor watch jobs (42501)
CREATE ROLE regress_nojobs;
SET ROLE regress_nojobs;
SELECT tenancy.start_migrate_all();
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.start_provision_many(ARRAY['jobs-b']);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.cancel_job(1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tenancy.job;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM tenancy.job_tenant;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_nojobs;

SELECT tenancy.deprovision('jobs-a');
DELETE FROM tenancy.migration;
