--
-- names: every function that takes a tenant refuses bad names before any SQL
-- is built or any connection is opened, and changes nothing
--

-- should fail: NULL is 22004 for operations (functions are not STRICT, so
-- NULL cannot silently do nothing)
SELECT tenancy.provision(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.deprovision(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM tenancy.migrate(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.suspend(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.resume(NULL);
\echo :LAST_ERROR_SQLSTATE

-- should fail: bad syntax (42602), with the pattern in the hint
SELECT tenancy.provision('');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('Acme');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('acme"; DROP DATABASE postgres; --');
\echo :LAST_ERROR_SQLSTATE

-- should fail: too long for the database prefix (42622); regress_tn_ is 11
-- bytes, so 52 bytes is the longest id
SELECT tenancy.provision(repeat('a', 53));
\echo :LAST_ERROR_SQLSTATE
-- should fail: a megabyte of name is refused without a megabyte of message
SELECT tenancy.provision(repeat('a', 1000000));
\echo :LAST_ERROR_SQLSTATE

-- should fail: reserved names (42939)
SELECT tenancy.provision('postgres');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.provision('pg_acme');
\echo :LAST_ERROR_SQLSTATE

-- The whole matrix: each function against each bad name.  Every cell must be
-- an error with the SQLSTATE shown, and none may reach a remote server.
CREATE FUNCTION pg_temp.attempt(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || left(SQLERRM, 70);
END
$$;

CREATE TEMP TABLE bad_name (n int, name text);
INSERT INTO bad_name VALUES
  (1, ''), (2, ' '), (3, ' acme'), (4, 'acme '), (5, E'ac\tme'),
  (6, 'Acme'), (7, 'ACME'), (8, '"acme"'), (9, 'café'), (10, 'ａｃｍｅ'),
  (11, repeat('a', 53)), (12, 'postgres'), (13, 'template0'), (14, 'template1'),
  (15, 'pg_catalog'), (16, 'tmp_1'), (17, 'tenancy'),
  (18, 'acme"; DROP DATABASE postgres; --'), (19, 'acme'' OR ''1''=''1'),
  (20, 'acme$$'), (21, 'U&"\0061cme"'), (22, 'a;b'), (23, 'a--b'), (24, 'a/*b'),
  (25, E'a\nb'), (26, E'a\\'), (27, 'x dbname=postgres'), (28, 'x'' dbname=''postgres'),
  (29, repeat('é', 40)), (30, repeat('a', 62) || 'é');

CREATE TEMP TABLE func (f text, call text);
INSERT INTO func VALUES
  ('provision', 'SELECT tenancy.provision(%L)'),
  ('deprovision', 'SELECT tenancy.deprovision(%L)'),
  ('migrate', 'SELECT * FROM tenancy.migrate(%L)'),
  ('suspend', 'SELECT tenancy.suspend(%L)'),
  ('resume', 'SELECT tenancy.resume(%L)'),
  ('use', 'SELECT tenancy.use(%L, false)');

SELECT b.n, f.f, pg_temp.attempt(format(f.call, b.name)) AS result
  FROM bad_name b CROSS JOIN func f
 WHERE b.n > 1 OR f.f <> 'use'		-- use('') means "no tenant"
 ORDER BY b.n, f.f;

-- Ids in any encoding: the characters are checked before the length, so a
-- non-ASCII id over 63 bytes is invalid (42602), not too long; a name in a
-- message is cut on a character boundary (31 of the 40 é, then "..."), so
-- a LATIN1 client gets tenancy's error, not an encoding error (22P05)
SELECT tenancy.provision(repeat('é', 40));
\echo :LAST_ERROR_SQLSTATE
SET tenancy.current = 'ééééééééééééééééééééééééééééééééééééééééé';
SET client_encoding = 'LATIN1';
\set VERBOSITY sqlstate
SELECT tenancy.provision(repeat(U&'\00e9', 40));
SELECT tenancy.suspend(repeat('a', 62) || U&'\00e9');
\set VERBOSITY default
RESET client_encoding;

-- nothing was created or registered, and no connection is left open
SELECT count(*) AS tenants FROM tenancy.tenant;
SELECT count(*) AS tenant_databases FROM pg_database WHERE datname LIKE 'regress_tn_%' AND datname <> 'regress_tn_template';
SELECT dblink_get_connections() AS open_connections;
SHOW tenancy.current;

-- should succeed: the longest id that fits (52 bytes with regress_tn_), and
-- ids with hyphens and digits, which need quoting as database names
SELECT id, database_name, state FROM tenancy.provision(repeat('b', 52));
SELECT octet_length(datname) FROM pg_database WHERE datname = 'regress_tn_' || repeat('b', 52);
SELECT id, database_name, state FROM tenancy.provision('0-acme_corp-1');
SELECT datname FROM pg_database WHERE datname = 'regress_tn_0-acme_corp-1';
SELECT tenancy.deprovision(repeat('b', 52));
SELECT tenancy.deprovision('0-acme_corp-1');
SELECT count(*) AS tenant_databases FROM pg_database WHERE datname LIKE 'regress_tn_%' AND datname <> 'regress_tn_template';
