--
-- preload: tenancy is loaded when a session starts (shared_preload_libraries
-- here; TAP test 010 covers session_preload_libraries and a server without
-- either, where tenancy refuses to load)
--
SELECT current_setting('shared_preload_libraries') ~ '(^|[ ,])tenancy($|[ ,])' OR
       current_setting('session_preload_libraries') ~ '(^|[ ,])tenancy($|[ ,])' AS preloaded;

-- A fresh session: the settings are checked from its first statement, and
-- the prefix is reserved, so no tenancy.* placeholder is ever kept
\c
-- should fail: 22023, and 42602 for the typo
SET tenancy.current = 'Not Valid';
\echo :LAST_ERROR_SQLSTATE
SET tenancy.curent = 'typo';
\echo :LAST_ERROR_SQLSTATE
SHOW tenancy.current;
-- LOAD of the loaded library changes nothing
LOAD 'tenancy';
SHOW tenancy.current;

-- A selection made in the first statement of a session resolves at once
SELECT id FROM tenancy.provision('early');
\c
SET tenancy.current = 'early';
SELECT tenancy.current_tenant();
-- a SET LOCAL is rolled back like any setting
\c
BEGIN;
SET LOCAL tenancy.current = 'early';
SELECT tenancy.current_tenant();
COMMIT;
SHOW tenancy.current;
SELECT tenancy.deprovision('early');
