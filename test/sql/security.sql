--
-- security: what PUBLIC may do, SECURITY DEFINER hygiene, ownership, and the
-- install script's own rules
--

-- Only the routing functions are executable by PUBLIC.
SELECT p.oid::regprocedure::text AS function,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       p.prosecdef AS security_definer,
       p.proconfig
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tenancy')
 ORDER BY 1;

-- No table or view is readable or writable by PUBLIC.
SELECT c.oid::regclass::text AS relation,
       has_table_privilege('public', c.oid, 'SELECT') AS public_select,
       has_table_privilege('public', c.oid, 'INSERT,UPDATE,DELETE,TRUNCATE') AS public_write
  FROM pg_class c WHERE c.relnamespace = 'tenancy'::regnamespace AND c.relkind IN ('r', 'v')
 ORDER BY 1;

-- Everything is owned by the installing superuser.
SELECT count(*) AS not_owned_by_superuser
  FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
 WHERE c.relnamespace = 'tenancy'::regnamespace AND NOT r.rolsuper;
SELECT r.rolsuper AS schema_owner_is_superuser
  FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = 'tenancy';

-- dblink's unsafe entry point stays closed to PUBLIC.
SELECT has_function_privilege('public', 'dblink_connect_u(text,text)', 'EXECUTE') AS public_dblink_connect_u;

-- The scripts use no IF NOT EXISTS and the install script no OR REPLACE, so
-- an object planted beforehand makes installation fail instead of being
-- adopted; upgrade scripts replace only functions (PostgreSQL refuses to
-- replace one the extension does not own).
SELECT setting AS sharedir FROM pg_config WHERE name = 'SHAREDIR' \gset
SELECT s.file,
       pg_read_file(:'sharedir' || '/extension/' || s.file)
         ~* (CASE WHEN s.file ~ '--.*--' THEN 'create\s+or\s+replace\s+(?!function)' ELSE 'create\s+or\s+replace' END
             || '|create\s+\w+(\s+\w+)?\s+if\s+not\s+exists') AS adopts_objects
  FROM (SELECT pg_ls_dir(:'sharedir' || '/extension') AS file) s
 WHERE s.file LIKE 'tenancy--%.sql'
 ORDER BY 1;

-- Ordinary roles can use neither the admin functions nor the catalog.
CREATE ROLE regress_intruder;
SET ROLE regress_intruder;
-- should fail: 42501 for each
SELECT tenancy.provision('intruder');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.deprovision('intruder');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate('intruder');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_migration(1, 'DROP TABLE public.x');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.suspend('intruder');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.resume('intruder');
\echo :LAST_ERROR_SQLSTATE
INSERT INTO tenancy.tenant (id, database_name, state) VALUES ('intruder', 'x', 'ready');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migration_status;
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.member;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_intruder;
SELECT count(*) AS tenants FROM tenancy.tenant;

-- configure(): the service role must be a plain role with LOGIN and
-- CREATEDB, the server a dblink_fdw server with a user mapping for it.
CREATE ROLE regress_svc_super SUPERUSER LOGIN;
CREATE ROLE regress_svc_crole LOGIN CREATEDB CREATEROLE;
CREATE ROLE regress_svc_nodb LOGIN;
CREATE ROLE regress_svc LOGIN CREATEDB;
CREATE SERVER regress_loop FOREIGN DATA WRAPPER dblink_fdw OPTIONS (dbname 'postgres');
CREATE FOREIGN DATA WRAPPER regress_fdw;
CREATE SERVER regress_not_dblink FOREIGN DATA WRAPPER regress_fdw;
-- should fail: 22004, 22023 (superuser, CREATEROLE, no CREATEDB), 42704
SELECT tenancy.configure(NULL, 'regress_loop');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.configure('regress_svc_super', 'regress_loop');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.configure('regress_svc_crole', 'regress_loop');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.configure('regress_svc_nodb', 'regress_loop');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.configure('regress_svc', 'no_such_server');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.configure('regress_svc', 'regress_not_dblink');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.configure('regress_svc', 'regress_loop');
\echo :LAST_ERROR_SQLSTATE
-- nothing was configured or granted
SELECT count(*) AS configured FROM tenancy.config;
SELECT has_table_privilege('regress_svc', 'tenancy.tenant', 'INSERT') AS svc_can_write;
-- Switching an existing fleet to a service role is refused up front
-- (55000) while its tenants or template belong to another role (here the
-- superuser that provisioned them), saying what to do; nothing changes
SELECT id FROM tenancy.provision('sec-old');
SELECT id FROM tenancy.provision('sec-old-s', isolation => 'schema');
CREATE USER MAPPING FOR regress_svc SERVER regress_loop OPTIONS (user 'regress_svc', password 'unused');
-- should fail: 55000
SELECT tenancy.configure('regress_svc', 'regress_loop');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS configured FROM tenancy.config;
SELECT tenancy.deprovision('sec-old');
SELECT tenancy.deprovision('sec-old-s');
-- should fail: 55000, the template still belongs to the superuser
SELECT tenancy.configure('regress_svc', 'regress_loop');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS configured FROM tenancy.config;
DROP USER MAPPING FOR regress_svc SERVER regress_loop;
-- should fail: only superusers configure
CREATE ROLE regress_not_super;
SET ROLE regress_not_super;
SELECT tenancy.configure('regress_svc', 'regress_loop');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- Unconfigured, a non-superuser granted EXECUTE still cannot provision:
-- dblink would need a password, and there is no service role to use one.
GRANT EXECUTE ON FUNCTION tenancy.provision(text, text, name, jsonb) TO regress_not_super;
SET ROLE regress_not_super;
-- should fail: 42501, before any connection
SELECT tenancy.provision('not-super');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE EXECUTE ON FUNCTION tenancy.provision(text, text, name, jsonb) FROM regress_not_super;
SELECT count(*) AS tenants FROM tenancy.tenant;
DROP SERVER regress_loop;
DROP SERVER regress_not_dblink;
DROP FOREIGN DATA WRAPPER regress_fdw;
DROP ROLE regress_svc_super, regress_svc_crole, regress_svc_nodb, regress_svc, regress_not_super;

-- dblink, which CREATE EXTENSION tenancy CASCADE installs in the admin
-- database, is no tool for members: PUBLIC may execute none of its functions
SELECT count(*) AS dblink_functions_public_may_execute
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dblink')
   AND has_function_privilege('public', p.oid, 'EXECUTE');
CREATE ROLE regress_dblink_prober;
SET ROLE regress_dblink_prober;
-- should fail: 42501
SELECT dblink_connect('probe', 'host=127.0.0.1 port=1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_dblink_prober;
