--
-- routing: resolving tenancy.current with current_tenant() and use()
--
SELECT id, state FROM tenancy.provision('acme');
SELECT id, state FROM tenancy.provision('globex');

-- should fail: nothing selected, with a hint saying how to select
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE

-- should succeed
SET tenancy.current = 'acme';
SELECT tenancy.current_tenant();
SET tenancy.current = 'globex';
SELECT tenancy.current_tenant();

-- should fail: unknown tenant (42704)
SET tenancy.current = 'ghost';
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
-- '' means no tenant
SET tenancy.current = '';
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE

-- should fail: not ready (55000, with the state in DETAIL)
SELECT tenancy.suspend('globex');
SET tenancy.current = 'globex';
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.resume('globex');
SELECT tenancy.current_tenant();
RESET tenancy.current;

-- SET LOCAL selects for one transaction only
BEGIN;
SET LOCAL tenancy.current = 'acme';
SELECT tenancy.current_tenant();
COMMIT;
-- should fail: the selection ended with the transaction
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE

-- use(): checks first, then selects; is_local defaults to true
BEGIN;
SELECT tenancy.use('acme');
SELECT tenancy.current_tenant();
SHOW tenancy.current;
COMMIT;
SHOW tenancy.current;
-- is_local => false selects for the session
SELECT tenancy.use('globex', is_local => false);
SELECT tenancy.current_tenant();
-- should fail and change nothing: unknown, suspended and malformed tenants
SELECT tenancy.use('ghost', false);
\echo :LAST_ERROR_SQLSTATE
SHOW tenancy.current;
SELECT tenancy.suspend('acme');
SELECT tenancy.use('acme', false);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.resume('acme');
SHOW tenancy.current;
SELECT tenancy.use('Acme', false);
\echo :LAST_ERROR_SQLSTATE
SHOW tenancy.current;
-- NULL and '' clear the selection
SELECT tenancy.use(NULL, false) IS NULL AS cleared;
SHOW tenancy.current;
SELECT tenancy.use('globex', false);
SELECT tenancy.use('', false) IS NULL AS cleared;
SHOW tenancy.current;
-- a local selection outside a transaction block does nothing: say so
SELECT tenancy.use('acme');
SHOW tenancy.current;
-- a local selection rolled back is gone
BEGIN;
SELECT tenancy.use('acme');
ROLLBACK;
SHOW tenancy.current;

-- Resolution works for roles that cannot read the catalog: the setting is a
-- selector, and the lookup runs as the catalog owner with a pinned
-- search_path.
CREATE ROLE regress_app;
SET ROLE regress_app;
-- should fail: the role cannot read the catalog itself
SELECT count(*) FROM tenancy.tenant;
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = 'acme';
SELECT tenancy.current_tenant();
SELECT tenancy.use('globex');
-- should fail: the role cannot provision
SELECT tenancy.provision('app-made');
\echo :LAST_ERROR_SQLSTATE
-- and nothing it does changes who it is
SHOW is_superuser;
SELECT current_user;
RESET tenancy.current;
RESET ROLE;
DROP ROLE regress_app;

-- A hostile search_path changes nothing: objects named like those tenancy
-- uses, placed first on the path, are never called.
CREATE SCHEMA regress_evil;
CREATE TABLE regress_evil.tenant (id text, database_name text, state text);
CREATE TABLE regress_evil.canary (hits int);
INSERT INTO regress_evil.canary VALUES (0);
CREATE FUNCTION regress_evil.dblink_exec(text, text, boolean) RETURNS text
  LANGUAGE sql AS $$ UPDATE regress_evil.canary SET hits = hits + 1 RETURNING 'x' $$;
CREATE FUNCTION regress_evil.dblink_connect(text, text) RETURNS text
  LANGUAGE sql AS $$ UPDATE regress_evil.canary SET hits = hits + 1 RETURNING 'x' $$;
CREATE FUNCTION regress_evil.lower(text) RETURNS text
  LANGUAGE sql AS $$ UPDATE regress_evil.canary SET hits = hits + 1 RETURNING 'x' $$;
CREATE FUNCTION regress_evil."="(text, text) RETURNS boolean
  LANGUAGE sql AS $$ UPDATE regress_evil.canary SET hits = hits + 1 RETURNING true $$;
CREATE OPERATOR regress_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_evil."=");
SET search_path = regress_evil, pg_catalog, public;
SELECT id, state FROM tenancy.provision('evil-path');
-- the provision invalidated the cache, so this lookup reads the catalog
SET tenancy.current = 'evil-path';
SELECT tenancy.current_tenant();
SELECT tenant, status FROM tenancy.migrate('evil-path');
SELECT tenancy.deprovision('evil-path');
RESET tenancy.current;
RESET search_path;
SELECT hits AS canary_hits FROM regress_evil.canary;
DROP SCHEMA regress_evil CASCADE;

SELECT tenancy.deprovision('acme');
SELECT tenancy.deprovision('globex');
