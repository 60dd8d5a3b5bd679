--
-- routed: tenancy.exec() and tenancy.query() through the connection the
-- session keeps per tenant
--
SELECT tenancy.reconcile();
SELECT id FROM tenancy.provision('q-acme');
SELECT id FROM tenancy.provision('q-globex');
SELECT id FROM tenancy.provision('q-schema', isolation => 'schema');
-- waits until no session of "appname" is left (backends exit asynchronously)
CREATE FUNCTION public.regress_sessions_of(appname text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
  FOR i IN 1..100 LOOP
    SELECT count(*) INTO n FROM pg_stat_activity WHERE application_name = appname;
    EXIT WHEN n = 0;
    PERFORM pg_sleep(0.05);
    PERFORM pg_stat_clear_snapshot();
  END LOOP;
  RETURN n;
END $$;

-- should fail: nothing selected (55000), NULL (22004) or empty SQL (42601)
SELECT tenancy.exec('SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = 'q-acme';
SELECT tenancy.exec(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.exec('  ');
\echo :LAST_ERROR_SQLSTATE

-- should succeed: commands return their status, queries their rows
SELECT tenancy.exec('CREATE TABLE public.note (id int PRIMARY KEY, body text)');
SELECT tenancy.exec('INSERT INTO note VALUES (1, ''acme one''), (2, NULL)');
SELECT * FROM tenancy.query('SELECT id, body FROM note ORDER BY id') AS t(id int, body text);
SELECT current_database() <> db AS elsewhere, db FROM tenancy.query('SELECT current_database()') AS t(db name);
-- a command without rows gives no rows
SELECT count(*) AS rows FROM tenancy.query('UPDATE note SET body = body') AS t(x int);

-- the connection is kept: same remote backend across calls and transactions
SELECT pid AS acme_pid FROM tenancy.query('SELECT pg_backend_pid()') AS t(pid int) \gset
BEGIN;
SELECT pid = :acme_pid AS same_session FROM tenancy.query('SELECT pg_backend_pid()') AS t(pid int);
COMMIT;
-- one per tenant, each kept
SET tenancy.current = 'q-globex';
SELECT pid <> :acme_pid AS own_session FROM tenancy.query('SELECT pg_backend_pid()') AS t(pid int);
SELECT count(*) AS globex_notes FROM tenancy.query('SELECT 1 FROM pg_class WHERE relname = ''note''') AS t(x int);
SET tenancy.current = 'q-acme';
SELECT pid = :acme_pid AS same_session FROM tenancy.query('SELECT pg_backend_pid()') AS t(pid int);
SELECT count(*) AS sessions FROM pg_stat_activity WHERE application_name LIKE 'tenancy/q-%';

-- should fail: remote errors pass through with their SQLSTATE and the
-- tenant in CONTEXT; the connection stays
SELECT tenancy.exec('SELECT 1/0');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.exec('INSERT INTO note VALUES (1, ''dup'')');
\echo :LAST_ERROR_SQLSTATE
SELECT pid = :acme_pid AS same_session FROM tenancy.query('SELECT pg_backend_pid()') AS t(pid int);
-- should fail: a column definition list that does not match (42804), a
-- value that does not fit (22P02), none at all (42601)
SELECT * FROM tenancy.query('SELECT id, body FROM note') AS t(id int);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.query('SELECT id, body FROM note WHERE id = 1') AS t(id int, body int);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.query('SELECT 1');
\echo :LAST_ERROR_SQLSTATE

-- should fail: a transaction left open is rolled back (25000), and the
-- kept connection is not idle in transaction
SELECT tenancy.exec('BEGIN; INSERT INTO note VALUES (3, ''open'')');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS open_rows FROM tenancy.query('SELECT 1 FROM note WHERE id = 3') AS t(x int);
SELECT state FROM pg_stat_activity WHERE pid = :acme_pid;
-- a whole transaction in one call is fine
SELECT tenancy.exec('BEGIN; INSERT INTO note VALUES (3, ''three''); COMMIT');
-- should fail (0A000) before anything is sent: a prepared transaction would
-- outlive the call and the kept connection, holding its locks and a slot
-- (COMMIT PREPARED and ROLLBACK PREPARED are refused alike)
SELECT tenancy.exec('BEGIN; LOCK TABLE note IN ACCESS SHARE MODE; PREPARE TRANSACTION ''regress_routed_2pc''');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.exec('COMMIT PREPARED ''regress_routed_2pc''');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS prepared_transactions FROM pg_prepared_xacts;
-- should fail (0A000): SQL that changes how the session reads what tenancy
-- sends (client_encoding, standard_conforming_strings) closes it; the next
-- call opens a new one, read as before
SELECT tenancy.exec($q$DO $d$BEGIN PERFORM pg_catalog.set_config('client_' || 'encoding', 'SJIS', false); END$d$$q$);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS rows_read_as_sent FROM tenancy.query('SELECT 1 FROM note WHERE body = ''three''') AS t(x int);
-- remote statements commit on their own: the caller's rollback keeps them
BEGIN;
SELECT tenancy.exec('INSERT INTO note VALUES (4, ''four'')');
ROLLBACK;
SELECT count(*) AS kept_after_rollback FROM tenancy.query('SELECT 1 FROM note WHERE id = 4') AS t(x int);

-- should fail: a cancel (statement_timeout) stops the remote statement and
-- drops the connection; the next call opens a new one
SET statement_timeout = '300ms';
SELECT tenancy.exec('SELECT pg_sleep(30)');
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT public.regress_sessions_of('tenancy/q-acme') AS sessions_after_cancel;
SELECT pid <> :acme_pid AS new_session FROM tenancy.query('SELECT pg_backend_pid()') AS t(pid int);
SELECT pid AS acme_pid FROM tenancy.query('SELECT pg_backend_pid()') AS t(pid int) \gset

-- should fail: the remote backend dies between two calls (08006); the
-- connection is dropped and the next call reconnects
SELECT pg_terminate_backend(:acme_pid);
SELECT public.regress_sessions_of('tenancy/q-acme') AS sessions_after_kill;
SELECT tenancy.exec('SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.exec('SELECT 1');

-- remote notices reach the client (not this server's log), naming the tenant
SELECT tenancy.exec('DO $$BEGIN RAISE NOTICE ''hello from %'', current_database(); END$$');
-- what a client SET on a kept connection does not survive DISCARD ALL (or
-- RESET ALL), which poolers send between clients: the connection is closed
SELECT tenancy.exec('SET application_name = ''left by client 1''');
DISCARD ALL;
SELECT public.regress_sessions_of('left by client 1') AS sessions_after_discard;
SET tenancy.current = 'q-acme';
SELECT name FROM tenancy.query('SELECT current_setting(''application_name'')') AS t(name text);

-- should fail: suspended between two calls (55000); its connection is closed
SELECT tenancy.suspend('q-acme');
SELECT public.regress_sessions_of('tenancy/q-acme') AS sessions_after_suspend;
SELECT tenancy.exec('SELECT 1');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.resume('q-acme');
SELECT * FROM tenancy.query('SELECT id FROM note ORDER BY id') AS t(id int);

-- membership is checked before anything is opened
CREATE ROLE regress_routed_app LOGIN;
SET ROLE regress_routed_app;
-- should fail: not a member (42501)
SELECT tenancy.exec('SELECT 1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT tenancy.grant_access('q-acme', 'regress_routed_app');
SET ROLE regress_routed_app;
-- should fail: a member, but without credentials of its own (no loopback
-- server configured): dblink's password rule (2F003)
SELECT tenancy.exec('SELECT 1');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- schema tenants: no connection, the caller's transaction, the tenant's schema
SET tenancy.current = 'q-schema';
SELECT tenancy.exec('CREATE TABLE note (id int, body text)');
SELECT tenancy.exec('INSERT INTO note VALUES (1, ''schema one'')');
SELECT * FROM tenancy.query('SELECT id, body FROM note') AS t(id int, body text);
SELECT count(*) AS in_schema FROM "regress_tn_q-schema".note;
BEGIN;
SELECT tenancy.exec('DELETE FROM note');
ROLLBACK;
SELECT count(*) AS rolled_back_with_caller FROM "regress_tn_q-schema".note;
-- an empty search_path is fine
SELECT set_config('search_path', '', true) IS NOT NULL AS emptied;
SELECT * FROM tenancy.query('SELECT id FROM note') AS t(id int);
RESET search_path;
-- should fail: transaction control (0A000)
SELECT tenancy.exec('COMMIT');
\echo :LAST_ERROR_SQLSTATE
-- should fail: local errors carry the tenant in CONTEXT too
SELECT tenancy.exec('SELECT * FROM missing_table');
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;

-- Bind parameters: values after the SQL are sent as $1, $2, ... with their
-- types, never spliced into it (a value that looks like SQL stays a value);
-- NULL is NULL.  Database and schema tenants alike.
SET tenancy.current = 'q-acme';
SELECT tenancy.exec('CREATE TABLE param_item (id int, name text)');
SELECT tenancy.exec('INSERT INTO param_item VALUES ($1, $2)', 1, 'one');
SELECT tenancy.exec('INSERT INTO param_item VALUES ($1, $2)', 2, 'x''); DROP TABLE param_item; --');
SELECT tenancy.exec('INSERT INTO param_item VALUES ($1, $2)', 3, NULL::text);
SELECT * FROM tenancy.query('SELECT id, name FROM param_item WHERE id >= $1 ORDER BY id', 1) AS t(id int, name text);
SELECT * FROM tenancy.query('SELECT $1::date + $2', date '2026-12-01', 2) AS t(d date);
-- should fail: a value of another type than its column (42804), one statement only with
-- parameters (42601)
SELECT tenancy.exec('INSERT INTO param_item VALUES ($1)', 'not a number');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.exec('SELECT $1; SELECT 2', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.exec('DROP TABLE param_item');
-- an empty query (only ';' or comments) returns what PostgreSQL returns:
-- no command tag, no rows
SELECT tenancy.exec(';') AS empty_status, tenancy.exec('-- a comment') AS comment_status;
SELECT count(*) AS empty_rows FROM tenancy.query(';') AS t(x int);
SET tenancy.current = 'q-schema';
SELECT tenancy.exec('INSERT INTO note VALUES ($1, $2)', 2, 'x''); DROP TABLE note; --');
SELECT * FROM tenancy.query('SELECT id, body FROM note WHERE id = $1', 2) AS t(id int, body text);
SELECT tenancy.exec(';') AS empty_status;
RESET tenancy.current;

-- Kept connections have a budget: at most tenancy.max_kept_connections
-- per backend, the least recently used closed first
SET tenancy.max_kept_connections = 1;
SET tenancy.current = 'q-acme';
SELECT tenancy.exec('SELECT 1');
SET tenancy.current = 'q-globex';
SELECT tenancy.exec('SELECT 1');
SELECT public.regress_sessions_of('tenancy/q-acme') AS acme_sessions;
SELECT count(*) AS globex_sessions FROM pg_stat_activity WHERE application_name = 'tenancy/q-globex';
RESET tenancy.max_kept_connections;
-- settings made through a kept connection end with the local transaction
-- that made them
BEGIN;
SELECT tenancy.exec('SET statement_timeout = ''1234ms''');
SELECT * FROM tenancy.query('SHOW statement_timeout') AS t(v text);
COMMIT;
SELECT * FROM tenancy.query('SHOW statement_timeout') AS t(v text);
SELECT tenancy.exec('SET application_name = ''not tenancy''');
SELECT * FROM tenancy.query('SELECT current_setting($1)', 'application_name') AS t(v text);
-- a statement that cannot run in a transaction block works in a later
-- transaction too (the reset, when needed, is a round trip of its own)
SELECT tenancy.exec('CREATE TABLE vac_t (id int)');
SELECT tenancy.exec('VACUUM vac_t');
SELECT tenancy.exec('SET work_mem = ''2MB''');
SELECT tenancy.exec('VACUUM vac_t');
SELECT * FROM tenancy.query('SHOW work_mem') AS t(v text);
SELECT tenancy.exec('DROP TABLE vac_t');
-- and an idle one is closed after tenancy.kept_idle_timeout
SET tenancy.kept_idle_timeout = '200ms';
SELECT pid AS first_pid FROM tenancy.query('SELECT pg_backend_pid()') AS t(pid int) \gset
SELECT pg_sleep(0.4);
SELECT pid <> :first_pid AS reconnected FROM tenancy.query('SELECT pg_backend_pid()') AS t(pid int);
RESET tenancy.kept_idle_timeout;
RESET tenancy.current;

-- deprovision closes this session's kept connection first, so it needs no force
SET tenancy.current = 'q-globex';
SELECT tenancy.exec('SELECT 1');
RESET tenancy.current;
SELECT tenancy.deprovision('q-globex');
SELECT tenancy.deprovision('q-acme');
SELECT tenancy.deprovision('q-schema');
SELECT count(*) AS sessions FROM pg_stat_activity WHERE application_name LIKE 'tenancy/q-%';
SELECT dblink_get_connections() AS open_connections;
DROP ROLE regress_routed_app;
DROP FUNCTION public.regress_sessions_of(text);
