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

-- The setting is a selector, never a credential: any role may SET it, but
-- only roles granted a tenant may use it (superusers may use any).
CREATE ROLE regress_app;
CREATE ROLE regress_team;
CREATE ROLE regress_member IN ROLE regress_team;
SET ROLE regress_app;
-- should fail: the role cannot read the catalog itself
SELECT count(*) FROM tenancy.tenant;
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = 'acme';
-- should fail: not granted (42501)
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
-- should fail: use() checks too, and changes nothing
SELECT tenancy.use('globex', false);
\echo :LAST_ERROR_SQLSTATE
-- should fail: the role cannot grant itself access
SELECT tenancy.grant_access('acme', 'regress_app');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- granting lets the role use the tenant, and connect to its database
SELECT tenancy.grant_access('acme', 'regress_app');
SELECT tenant_id, role FROM tenancy.member ORDER BY 1, 2;
SELECT has_database_privilege('regress_app', 'regress_tn_acme', 'CONNECT') AS app_can_connect,
       has_database_privilege('regress_app', 'regress_tn_globex', 'CONNECT') AS app_can_connect_globex;
SET ROLE regress_app;
SELECT tenancy.current_tenant();
-- should fail: globex was not granted
SET tenancy.current = 'globex';
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
-- the lookups ran as the catalog owner, and nothing changed who we are
SHOW is_superuser;
SELECT current_user;
RESET tenancy.current;
RESET ROLE;
-- should succeed with a NOTICE: granted already
SELECT tenancy.grant_access('acme', 'regress_app');

-- a grant to a group role covers its members
SELECT tenancy.grant_access('globex', 'regress_team');
SET ROLE regress_member;
SET tenancy.current = 'globex';
SELECT tenancy.current_tenant();
RESET tenancy.current;
RESET ROLE;

-- revoking takes effect at once, here and (isolation spec) in other sessions
SELECT tenancy.revoke_access('acme', 'regress_app');
SELECT has_database_privilege('regress_app', 'regress_tn_acme', 'CONNECT') AS app_can_connect;
SET ROLE regress_app;
SET tenancy.current = 'acme';
-- should fail: revoked
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
RESET ROLE;
-- should succeed with a NOTICE: nothing to revoke
SELECT tenancy.revoke_access('acme', 'regress_app');

-- should fail: bad arguments change nothing
SELECT tenancy.grant_access(NULL, 'regress_app');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.grant_access('acme', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.grant_access('ghost', 'regress_app');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.grant_access('Acme', 'regress_app');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.grant_access('acme', 'regress_no_such_role');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.revoke_access('acme"; DROP DATABASE postgres; --', 'regress_app');
\echo :LAST_ERROR_SQLSTATE
SELECT tenant_id, role FROM tenancy.member ORDER BY 1, 2;
SELECT tenancy.revoke_access('globex', 'regress_team');
DROP ROLE regress_app, regress_member, regress_team;

-- tenancy.strict_local (pooled deployments): only a selection made in the
-- transaction that uses it counts
SET tenancy.strict_local = on;
SET tenancy.current = 'acme';
-- should fail: selected by a session-level SET in an earlier transaction
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.connstr() IS NOT NULL;
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
BEGIN;
SET LOCAL tenancy.current = 'acme';
SELECT tenancy.current_tenant();
COMMIT;
-- should fail: the SET LOCAL ended with its transaction
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT tenancy.use('globex');
SELECT tenancy.current_tenant();
COMMIT;
-- a session-level SET inside the transaction counts in that transaction only
BEGIN;
SET tenancy.current = 'acme';
SELECT tenancy.current_tenant();
COMMIT;
-- should fail: the next transaction (the next pooled client) cannot use it
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
-- a value restored by ROLLBACK TO SAVEPOINT comes back with the time it
-- was made: a leaked session-level selection stays refused (55000)
SET tenancy.current = 'acme';
BEGIN;
SAVEPOINT s;
SET LOCAL tenancy.current = '';
ROLLBACK TO SAVEPOINT s;
SHOW tenancy.current;
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
-- and one made in this transaction, restored so, still counts
BEGIN;
SET LOCAL tenancy.current = 'globex';
SAVEPOINT s;
SET LOCAL tenancy.current = 'acme';
ROLLBACK TO SAVEPOINT s;
SELECT tenancy.current_tenant();
COMMIT;
RESET tenancy.current;
-- should fail: an application role cannot turn it off
CREATE ROLE regress_pooled;
SET ROLE regress_pooled;
SET tenancy.strict_local = off;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_pooled;
RESET tenancy.strict_local;

-- connstr(): where to connect directly, never who or with what password
CREATE FUNCTION pg_temp.masked(c text) RETURNS text LANGUAGE sql AS
$$ SELECT regexp_replace(regexp_replace(c, 'host=''[^'']*''', 'host=HOST'), 'port=''[0-9]+''', 'port=PORT') $$;
-- should fail: nothing selected
SELECT tenancy.connstr();
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.masked(tenancy.connstr('acme'));
BEGIN;
SET LOCAL tenancy.current = 'globex';
SELECT pg_temp.masked(tenancy.connstr());
COMMIT;
-- it works: connect with it
SELECT * FROM dblink(tenancy.connstr('acme'), 'SELECT current_database()') AS t(db name);
-- as a URI (postgresql://, percent-encoded: node-postgres and TypeORM take
-- it), which works too; should fail: an unknown format (22023)
SELECT regexp_replace(tenancy.connstr('acme', format => 'uri'), '^postgresql://[^/]*/', 'postgresql://HOST:PORT/') AS uri;
SELECT * FROM dblink(tenancy.connstr('acme', format => 'uri'), 'SELECT current_database()') AS t(db name);
SELECT tenancy.connstr('acme', format => 'url');
\echo :LAST_ERROR_SQLSTATE
-- should fail: unknown, malformed
SELECT tenancy.connstr('ghost');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.connstr('Acme');
\echo :LAST_ERROR_SQLSTATE
-- should fail: not granted
CREATE ROLE regress_stranger;
SET ROLE regress_stranger;
SELECT tenancy.connstr('acme');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_stranger;
-- a tenant on another server: that server's host and port, never the
-- user mapping's credentials
CREATE SERVER regress_far FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host 'db.example', port '6543', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER regress_far OPTIONS (user 'someone', password 'regress_secret');
INSERT INTO tenancy.tenant (id, database_name, server, state) VALUES ('far', 'regress_tn_far', 'regress_far', 'ready');
SELECT tenancy.connstr('far');
DELETE FROM tenancy.tenant WHERE id = 'far';
DROP USER MAPPING FOR CURRENT_USER SERVER regress_far;
DROP SERVER regress_far;

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
