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

-- Loading tenancy costs no stack: its hooks keep small frames (no PG_TRY
-- on the executor's path), so a recursion as deep as works without tenancy
-- (about 7,200 levels of this function at max_stack_depth = 2MB; 4,900
-- with 0.1.0's hooks) still runs
SET max_stack_depth = '2MB';
CREATE FUNCTION pg_temp.recurse(n int) RETURNS int LANGUAGE sql AS
  'SELECT CASE WHEN n <= 0 THEN 0 ELSE pg_temp.recurse(n - 1) + 1 END';
SELECT pg_temp.recurse(6000) AS depth;
-- an error deep inside, caught by an exception block, leaves the hooks'
-- bookkeeping as it was: the next top-level statement that moves
-- search_path away from a selected schema tenant is still corrected
SELECT id FROM tenancy.provision('deep', isolation => 'schema');
SET tenancy.current = 'deep';
BEGIN;
DO $$BEGIN PERFORM pg_temp.recurse(100000); EXCEPTION WHEN statement_too_complex THEN RAISE NOTICE 'too deep, caught'; END$$;
SELECT set_config('search_path', 'public', false) AS moved;
SHOW search_path;
COMMIT;
-- a procedure's COMMIT is not an error: the statements after it are still
-- nested (no correction of search_path in the middle of the CALL), and the
-- CALL's end corrects it
CREATE PROCEDURE pg_temp.commit_then_move() LANGUAGE plpgsql AS $$
BEGIN
  COMMIT;
  PERFORM set_config('search_path', 'public', false);
  RAISE NOTICE 'inside the CALL: %', current_setting('search_path');
END$$;
CALL pg_temp.commit_then_move();
SHOW search_path;
RESET tenancy.current;
RESET search_path;
SELECT tenancy.deprovision('deep');
RESET max_stack_depth;
