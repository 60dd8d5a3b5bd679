--
-- guc: tenancy.current and the operator settings
--
LOAD 'tenancy';

-- should succeed: valid ids, and '' for no tenant
SET tenancy.current = 'acme';
SHOW tenancy.current;
SET tenancy.current = 'acme-corp_2';
SET tenancy.current = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
SHOW tenancy.current;
SET tenancy.current = '';
SHOW tenancy.current;

-- should fail: bad syntax is refused at SET time, with the allowed form
SET tenancy.current = 'ACME';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = 'Acme';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = ' acme';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = 'acme ';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = E'a\nb';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = '-acme';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = 'café';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = 'acme"; DROP DATABASE postgres; --';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = 'x dbname=postgres';
\echo :LAST_ERROR_SQLSTATE
SELECT set_config('tenancy.current', repeat('a', 64), false);
\echo :LAST_ERROR_SQLSTATE
-- the failed SETs changed nothing
SHOW tenancy.current;

-- should succeed: 63 bytes is syntactically fine (whether it fits with the
-- database prefix is checked when the tenant is provisioned)
SELECT length(set_config('tenancy.current', repeat('a', 63), false));
RESET tenancy.current;

-- SET LOCAL lasts until the end of the transaction
BEGIN;
SET LOCAL tenancy.current = 'acme';
SHOW tenancy.current;
COMMIT;
SHOW tenancy.current;

-- a session-level SET survives a transaction that rolls back another SET
SET tenancy.current = 'acme';
BEGIN;
SET tenancy.current = 'globex';
ROLLBACK;
SHOW tenancy.current;
RESET tenancy.current;

-- should fail: the tenancy prefix is reserved, so a typo is an error
SET tenancy.curent = 'acme';
\echo :LAST_ERROR_SQLSTATE

-- operator settings: superuser only, checked
SHOW tenancy.database_prefix;
SHOW tenancy.template_database;
SHOW tenancy.connect_timeout;
SHOW tenancy.remote_lock_timeout;
SET tenancy.database_prefix = 'customer_';
SHOW tenancy.database_prefix;
-- should fail: bad prefixes
SET tenancy.database_prefix = 'Customer_';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.database_prefix = 'cust-';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.database_prefix = 'a_prefix_that_is_too_long_';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.database_prefix = '1abc';
\echo :LAST_ERROR_SQLSTATE
-- '' means tenancy's own template
SET tenancy.template_database = '';
-- should fail: bad template names
SELECT set_config('tenancy.template_database', repeat('t', 64), false);
\echo :LAST_ERROR_SQLSTATE
SET tenancy.template_database = 'template0 connect_timeout=1';
\echo :LAST_ERROR_SQLSTATE
-- should fail: out of range
SET tenancy.connect_timeout = 0;
\echo :LAST_ERROR_SQLSTATE
SET tenancy.remote_lock_timeout = '5s';
SHOW tenancy.remote_lock_timeout;
RESET tenancy.remote_lock_timeout;
RESET tenancy.database_prefix;

-- should fail: ordinary roles cannot change operator settings
CREATE ROLE regress_guc_user;
SET ROLE regress_guc_user;
SET tenancy.database_prefix = 'mine_';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.template_database = 'template1';
\echo :LAST_ERROR_SQLSTATE
-- should succeed: anyone may select a tenant (the selection is checked on use)
SET tenancy.current = 'acme';
SHOW tenancy.current;
RESET tenancy.current;
RESET ROLE;
DROP ROLE regress_guc_user;

-- should fail: ALTER ROLE ... SET checks the syntax too
CREATE ROLE regress_guc_role;
ALTER ROLE regress_guc_role SET tenancy.current = 'Not Valid';
\echo :LAST_ERROR_SQLSTATE
ALTER ROLE regress_guc_role SET tenancy.current = 'acme';
SELECT unnest(setconfig) AS role_setting FROM pg_db_role_setting
 WHERE setrole = 'regress_guc_role'::regrole;
DROP ROLE regress_guc_role;

-- what the settings are (pg_settings)
SELECT name, setting, unit, context, vartype, short_desc
  FROM pg_settings WHERE name LIKE 'tenancy.%' ORDER BY name;
