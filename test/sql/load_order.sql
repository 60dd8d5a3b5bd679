--
-- load_order: what happens to tenancy.* settings made before the library is
-- loaded (no session_preload_libraries here; TAP test 010 covers preloading)
--

-- A fresh session: the library is not loaded yet, so PostgreSQL keeps any
-- tenancy.* value as an unchecked placeholder.
\c
SET tenancy.current = 'Not Valid';
SET tenancy.curent = 'typo';
SHOW tenancy.current;
-- Loading the library checks the placeholders: the invalid value is dropped
-- and the typo is removed, each with a WARNING.
LOAD 'tenancy';
SHOW tenancy.current;
-- should fail: the typo no longer exists
SHOW tenancy.curent;
\echo :LAST_ERROR_SQLSTATE

-- A valid value set before loading is kept, and resolves once the first
-- tenancy function loads the library.
\c
SELECT id FROM tenancy.provision('early');
\c
SET tenancy.current = 'early';
SELECT tenancy.current_tenant();

-- An invalid value set before loading never resolves to a tenant: calling a
-- tenancy function loads the library, which drops it with a WARNING.
\c
SET tenancy.current = 'EARLY';
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE

-- A SET LOCAL placeholder is rolled back like any setting.
\c
BEGIN;
SET LOCAL tenancy.current = 'early';
SELECT tenancy.current_tenant();
COMMIT;
SHOW tenancy.current;

SELECT tenancy.deprovision('early');
