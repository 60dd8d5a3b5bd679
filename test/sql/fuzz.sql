--
-- fuzz: nothing read from a tenant crashes the server.  A tenant's ledger
-- is the tenant's: whoever can write there (its owner, a superuser, a
-- migration) can leave values tenancy never writes.  Each damage below is
-- made to a database tenant's ledger and to a schema tenant's, and every
-- operation that reads a ledger (health, migrate, migrate_all, reconcile,
-- bootstrap(verify)) is run on it: each reports a clear error (XX001 for a
-- damaged ledger, the remote SQLSTATE for a missing one, 42501 for a
-- ledger that is not the service role's), and the session survives (a
-- crash would end it, and every later line of this file would differ).
--
SELECT current_setting('unix_socket_directories') AS sockdir,
       current_setting('port') AS port \gset
\set fz_db 'host=' :sockdir ' port=' :port ' dbname=regress_tn_fz'
SET client_min_messages = warning;
SELECT tenancy.add_migration(1, 'CREATE TABLE item (id int)');
SELECT id FROM tenancy.provision('fz');
SELECT id FROM tenancy.provision('fz-s', isolation => 'schema');

-- Runs "damage" (with %1$s for the ledger table) on tenant t's ledger, then
-- every operation that reads a ledger, and puts the ledger back.  One line
-- per operation: what it reported, cut to 110 characters.  One call per
-- tenant: bootstrap() writes every tenant's catalog row, which a later
-- migrate_all() (writing through a session of its own) would wait for.
CREATE FUNCTION pg_temp.fuzz(t text, damage text) RETURNS SETOF text
LANGUAGE plpgsql AS $fuzz$
DECLARE
  tbl text;
  conn text;
  detail text;
  out text;
  ck text := (SELECT checksum FROM tenancy.migration WHERE version = 1);
  restore text := 'DO $r$BEGIN EXECUTE CASE (SELECT relkind FROM pg_class WHERE oid = to_regclass(''%1$s'')) '
                'WHEN ''v'' THEN ''DROP VIEW %1$s'' WHEN ''r'' THEN ''DROP TABLE %1$s'' ELSE ''SELECT'' END; END$r$; '
                'CREATE TABLE %1$s (version bigint PRIMARY KEY, checksum text NOT NULL, '
                'applied_at timestamptz NOT NULL DEFAULT now(), duration interval NOT NULL); '
                'INSERT INTO %1$s VALUES (1, %2$L, now(), ''0'')';
BEGIN
  tbl := CASE t WHEN 'fz' THEN 'tenancy.applied_migration' ELSE '"regress_tn_fz-s".tenancy_applied_migration' END;
  -- in a session of its own, committed: the schema tenant's ledger too
  conn := CASE t WHEN 'fz' THEN current_setting('regress.fz_db') ELSE current_setting('regress.admin_db') END;
  PERFORM dblink_exec(conn, format(damage, tbl));

  SELECT format('health: reachable %s, ledger %s, %s', h.reachable, h.ledger_version,
                coalesce('drift ' || h.drift, 'error ' || h.error, 'fine')) INTO out FROM tenancy.health(t) h;
  RETURN NEXT t || ' ' || left(out, 110);
  BEGIN
    SELECT format('migrate: %s', m.status) INTO out FROM tenancy.migrate(t) m;
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    out := format('migrate: %s %s (DETAIL: %s bytes)', SQLSTATE, left(SQLERRM, 60), octet_length(detail));
  END;
  RETURN NEXT t || ' ' || left(out, 110);
  SELECT format('migrate_all: %s %s %s', a.status, a.sqlstate, a.error) INTO out
    FROM tenancy.migrate_all(1, tenants => ARRAY[t], verify => true) a;
  RETURN NEXT t || ' ' || left(out, 110);
  SELECT format('reconcile: %s', string_agg(c.problem || ' / ' || c.action, '; ')) INTO out
    FROM tenancy.reconcile(dry_run => true, check_ledgers => true) c WHERE c.tenant = t;
  RETURN NEXT t || ' ' || left(out, 110);
  SELECT format('bootstrap: %s %s', string_agg(b.action || ' ' || b.status, ', '), max(b.error)) INTO out
    FROM tenancy.bootstrap(verify => true) b WHERE b.tenant = t;
  RETURN NEXT t || ' ' || left(out, 110);

  PERFORM dblink_exec(conn, format(restore, tbl, ck));
  -- the tenant is whole again, its catalog row too
  UPDATE tenancy.tenant SET state = 'ready', last_error = NULL, last_sqlstate = NULL WHERE id = t;
END
$fuzz$;
SELECT set_config('regress.fz_db', :'fz_db', false) IS NOT NULL AS set,
       set_config('regress.admin_db', format('host=%s port=%s dbname=%s', :'sockdir', :'port', current_database()), false) IS NOT NULL AS set;

-- a NULL checksum (0.1.0: SIGSEGV in health())
\set d 'ALTER TABLE %1$s ALTER checksum DROP NOT NULL; UPDATE %1$s SET checksum = NULL'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
-- versions that are not positive numbers, or do not fit a bigint
\set d 'UPDATE %1$s SET version = -version'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'INSERT INTO %1$s VALUES (0, ''x'', now(), ''0'')'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'ALTER TABLE %1$s ALTER version TYPE text; UPDATE %1$s SET version = '' 1'''
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'ALTER TABLE %1$s ALTER version TYPE text; UPDATE %1$s SET version = repeat(''é'', 100)'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'ALTER TABLE %1$s ALTER version TYPE numeric; UPDATE %1$s SET version = 1e30'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'ALTER TABLE %1$s ALTER version TYPE numeric; UPDATE %1$s SET version = 1.5'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
-- a checksum of another type, or a megabyte long (never copied whole into an error)
\set d 'ALTER TABLE %1$s ALTER checksum TYPE bytea USING convert_to(checksum, ''UTF8'')'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'UPDATE %1$s SET checksum = repeat(''f'', 1000000)'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
-- the same version twice, and a version tenancy never registered
\set d 'DO $d$BEGIN EXECUTE (SELECT format(''ALTER TABLE %%s DROP CONSTRAINT %%I'', conrelid::regclass, conname) FROM pg_constraint WHERE conrelid = ''%1$s''::regclass AND contype = ''p''); END$d$; INSERT INTO %1$s SELECT * FROM %1$s'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'INSERT INTO %1$s VALUES (9223372036854775807, ''x'', now(), ''0'')'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
-- columns missing, added or renamed; the ledger gone, or a view
\set d 'ALTER TABLE %1$s DROP COLUMN checksum'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'ALTER TABLE %1$s ADD COLUMN extra int DEFAULT 7'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'ALTER TABLE %1$s RENAME version TO v'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'DROP TABLE %1$s'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
\set d 'DROP TABLE %1$s; CREATE VIEW %1$s AS SELECT 1::bigint AS version, ''x''::text AS checksum'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
-- a plain table, but another role's: refused as well (42501), before
-- anything reads it
CREATE ROLE regress_fz_squatter;
\set d 'ALTER TABLE %1$s OWNER TO regress_fz_squatter'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');
DROP ROLE regress_fz_squatter;
-- an empty ledger is a tenant that applied nothing: tenancy applies what it
-- lacks, and the migration's own error (42P07) stops it
\set d 'TRUNCATE %1$s'
SELECT * FROM pg_temp.fuzz('fz', :'d');
SELECT * FROM pg_temp.fuzz('fz-s', :'d');

-- the tenants are whole: both migrate and report no drift
SELECT tenant, reachable, ledger_version, drift, error FROM tenancy.health() ORDER BY 1;
RESET client_min_messages;
SELECT tenancy.deprovision(id) FROM tenancy.tenant ORDER BY id;
DELETE FROM tenancy.migration;
DELETE FROM tenancy.migration_progress;
