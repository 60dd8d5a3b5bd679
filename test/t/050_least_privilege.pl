# Copyright (c) 2026, the tenancy authors
#
# Least privilege: remote work runs as a non-superuser service role with
# CREATEDB, authenticated by SCRAM with credentials that live only in a
# dblink user mapping.  A non-superuser admin provisions, migrates,
# suspends and drops tenants; tenant databases belong to the service role
# and refuse PUBLIC; other roles are refused.  The password never appears in
# errors, the server log, pg_stat_activity or tenancy's tables, dblink's own
# password rule stays in force, and rotating the password works at once.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use TenancyTAP;
use Test::More;

my $password = 'regress_s3cr3t_' . int(rand(1_000_000_000));

my $node = PostgreSQL::Test::Cluster->new('lp');
$node->init;
$node->append_conf('postgresql.conf', qq{
session_preload_libraries = 'tenancy'
tenancy.database_prefix = 'regress_lp_'
log_statement = 'all'
log_min_error_statement = 'debug5'
log_connections = on
});
# the service role must authenticate with SCRAM; everyone else: trust
sub set_hba
{
	my ($method) = @_;
	my $hba = $node->data_dir . '/pg_hba.conf';
	my $rest = slurp_file($hba);
	$rest =~ s/^local\s+all\s+regress_provisioner\s+\S+\n//mg;
	open(my $fh, '>', $hba) or die $!;
	print $fh "local all regress_provisioner $method\n" . $rest;
	close($fh);
}
set_hba('scram-sha-256');
$node->start;

my $host = $node->host;
my $port = $node->port;
# statements that carry the password are kept out of the log by the test
# itself (SET log_statement = 'none'): what must never log it is tenancy
$node->safe_psql('postgres', qq{
	SET log_statement = 'none';
	CREATE ROLE regress_provisioner LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD '$password';
	CREATE ROLE tenancy_admin NOLOGIN;
	CREATE ROLE regress_dba LOGIN IN ROLE tenancy_admin;
	CREATE ROLE regress_app LOGIN;
	CREATE EXTENSION tenancy CASCADE;
	CREATE SERVER tenancy_loopback FOREIGN DATA WRAPPER dblink_fdw
	  OPTIONS (host '$host', port '$port', dbname 'postgres');
	CREATE USER MAPPING FOR regress_provisioner SERVER tenancy_loopback
	  OPTIONS (user 'regress_provisioner', password '$password');
	SELECT tenancy.configure('regress_provisioner', 'tenancy_loopback', admin_role => 'tenancy_admin');
});

my @dba = (extra_params => [ '-U', 'regress_dba' ]);
$node->safe_psql('postgres', q{SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int)')}, @dba);
is($node->safe_psql('postgres', q{SELECT state FROM tenancy.provision('acme')}, @dba),
	'ready', 'a non-superuser admin provisions through the service role');
is($node->safe_psql('postgres', q{
	SELECT pg_get_userbyid(datdba) || ' ' || has_database_privilege('public', datname, 'CONNECT')
	  FROM pg_database WHERE datname = 'regress_lp_acme'}),
	'regress_provisioner false', 'the tenant database belongs to the service role, and PUBLIC cannot connect');
is($node->safe_psql('postgres', q{
	SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'regress_lp_template'}),
	'regress_provisioner', 'so does the template');
$node->safe_psql('postgres', q{SELECT tenancy.add_migration(2, 'CREATE INDEX ON public.item (id)')}, @dba);
is($node->safe_psql('postgres', q{SELECT status FROM tenancy.migrate('acme')}, @dba),
	'migrated', 'the admin migrates');
$node->safe_psql('postgres', q{SELECT tenancy.suspend('acme'); SELECT tenancy.resume('acme')}, @dba);
is($node->safe_psql('postgres', q{SELECT state FROM tenancy.tenant WHERE id = 'acme'}, @dba),
	'ready', 'the admin suspends and resumes');

# a role that is not an admin is refused, before anything happens
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT tenancy.provision('intruder')},
	extra_params => [ '-U', 'regress_app' ]);
like($err, qr/permission denied for function provision/, 'non-admins cannot provision');
($ret, $out, $err) = $node->psql('postgres', q{SELECT dblink_connect('x', 'tenancy_loopback')},
	extra_params => [ '-U', 'regress_app' ]);
like($err, qr/permission denied for function dblink_connect/,
	'non-admins cannot use the loopback server: dblink is not executable by PUBLIC in the admin database');
($ret, $out, $err) = $node->psql('postgres', 'SELECT 1', extra_params => [ '-U', 'regress_app', '-d', 'regress_lp_acme' ]);
like($err, qr/permission denied for database "regress_lp_acme"/, 'non-members cannot connect to the tenant database');

# failures with the password in play: a wrong password, a remote error
$node->safe_psql('postgres', q{
	SET log_statement = 'none';
	ALTER USER MAPPING FOR regress_provisioner SERVER tenancy_loopback OPTIONS (SET password 'wrong')});
($ret, $out, $err) = $node->psql('postgres', q{SELECT tenancy.provision('wrong-password')}, @dba);
like($err, qr/password authentication failed for user "regress_provisioner"/, 'a wrong password fails cleanly');
is($node->safe_psql('postgres', q{SELECT count(*) FROM tenancy.tenant WHERE id = 'wrong-password'}), '0',
	'and registers nothing');
my $all_errors = $err;

# rotation: role password and user mapping in one transaction; works at once
my $new_password = $password . '_rotated';
$node->safe_psql('postgres', qq{
	SET log_statement = 'none';
	BEGIN;
	ALTER ROLE regress_provisioner PASSWORD '$new_password';
	ALTER USER MAPPING FOR regress_provisioner SERVER tenancy_loopback OPTIONS (SET password '$new_password');
	COMMIT;
});
is($node->safe_psql('postgres', q{SELECT state FROM tenancy.provision('rotated')}, @dba),
	'ready', 'provisioning works right after a password rotation');
$node->safe_psql('postgres', q{SELECT tenancy.add_migration(3, 'SELECT 1/0')}, @dba);
($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM tenancy.migrate('acme')}, @dba);
like($err, qr/division by zero/, 'a remote error passes through');
$all_errors .= $err;
$node->safe_psql('postgres', q{DELETE FROM tenancy.migration WHERE version = 3});

# a tenant whose "tenancy" schema another role took over, without granting
# the service role USAGE on it: refused with what is wrong (42501), before
# anything reads the ledger, not with a permission error of the lookup
is($node->safe_psql('postgres', q{SELECT state FROM tenancy.provision('squatted')}, @dba),
	'ready', 'a tenant to take over');
$node->safe_psql('regress_lp_squatted', q{
	ALTER SCHEMA tenancy RENAME TO tenancy_original;
	CREATE SCHEMA tenancy AUTHORIZATION regress_app;
	CREATE TABLE tenancy.applied_migration (version bigint, checksum text);
	ALTER TABLE tenancy.applied_migration OWNER TO regress_app;
	REVOKE ALL ON SCHEMA tenancy FROM PUBLIC;
});
($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM tenancy.migrate('squatted')}, @dba);
like($err,
	qr/ERROR:  the migration ledger tenancy.applied_migration is not a table of role regress_provisioner in a schema it owns \(schema owner regress_app, ledger owner regress_app, relkind r\)/,
	'a ledger schema another role owns is refused as such, even without USAGE on it');
unlike($err, qr/permission denied for schema/, 'and not as a failed lookup');

# dblink's own rule stays in force: without password authentication, the
# non-superuser service role may not connect at all
set_hba('trust');
$node->reload;
($ret, $out, $err) = $node->psql('postgres', q{SELECT tenancy.provision('trusted')}, @dba);
like($err, qr/password is required/, 'dblink refuses the service role when the server does not ask for a password');
$all_errors .= $err;
set_hba('scram-sha-256');
$node->reload;

# routed queries run as the calling role, with its own credentials (its own
# user mapping on the loopback server, SCRAM), never as the service role
my $web_password = 'regress_s3cr3t_web_' . int(rand(1_000_000_000));
$node->safe_psql('postgres', qq{
	SET log_statement = 'none';
	CREATE ROLE regress_web LOGIN PASSWORD '$web_password';
	CREATE USER MAPPING FOR regress_web SERVER tenancy_loopback
	  OPTIONS (user 'regress_web', password '$web_password');
});
hba_prepend($node, 'local all regress_web scram-sha-256');
$node->reload;
$node->safe_psql('postgres', q{SELECT tenancy.grant_access('acme', 'regress_web')}, @dba);
# a kept connection goes through the loopback server: USAGE on it is needed,
# as dblink would need it (42501 otherwise)
($ret, $out, $err) = $node->psql('postgres', q{
	SET ROLE regress_web; SET tenancy.current = 'acme'; SELECT tenancy.exec('SELECT 1')});
like($err, qr/permission denied for foreign server tenancy_loopback/,
	'a routed call without USAGE on the foreign server is refused');
$node->safe_psql('postgres', 'GRANT USAGE ON FOREIGN SERVER tenancy_loopback TO regress_web');
is($node->safe_psql('postgres', q{
	SET ROLE regress_web; SET tenancy.current = 'acme';
	SELECT u || ' ' || db FROM tenancy.query('SELECT current_user, current_database()') AS t(u name, db name)}),
	'regress_web regress_lp_acme', 'tenancy.query() runs as the caller, in the tenant database');
is($node->safe_psql('postgres', q{
	SET ROLE regress_web; SET tenancy.current = 'acme';
	SELECT a.pid = b.pid FROM tenancy.query('SELECT pg_backend_pid()') AS a(pid int),
	       tenancy.query('SELECT pg_backend_pid()') AS b(pid int)}),
	't', 'and keeps its connection between calls');
($ret, $out, $err) = $node->psql('postgres', q{
	SET ROLE regress_web; SET tenancy.current = 'rotated'; SELECT tenancy.exec('SELECT 1')});
like($err, qr/permission denied for tenant "rotated"/, 'a tenant the caller was not granted is refused');
# dblink's rule: a non-superuser's own mapping must carry a password, so the
# server's password file or environment can never log it in as anyone
$node->safe_psql('postgres', q{
	CREATE ROLE regress_nopw LOGIN;
	CREATE USER MAPPING FOR regress_nopw SERVER tenancy_loopback OPTIONS (user 'regress_provisioner');
	GRANT USAGE ON FOREIGN SERVER tenancy_loopback TO regress_nopw;
});
$node->safe_psql('postgres', q{SELECT tenancy.grant_access('acme', 'regress_nopw')}, @dba);
($ret, $out, $err) = $node->psql('postgres', q{
	SET ROLE regress_nopw; SET tenancy.current = 'acme'; SELECT tenancy.exec('SELECT 1')});
like($err, qr/password is required.*\n.*DETAIL:  Non-superusers must provide a password in the user mapping/,
	'a user mapping without a password is refused before connecting');
$node->safe_psql('postgres', q{SELECT tenancy.revoke_access('acme', 'regress_nopw')}, @dba);
$node->safe_psql('postgres', q{
	SET log_statement = 'none';
	ALTER USER MAPPING FOR regress_web SERVER tenancy_loopback OPTIONS (SET password 'wrong')});
($ret, $out, $err) = $node->psql('postgres', q{
	SET ROLE regress_web; SET tenancy.current = 'acme'; SELECT tenancy.exec('SELECT 1')});
like($err, qr/password authentication failed for user "regress_web"/, 'the caller\'s wrong password fails cleanly');
$all_errors .= $err;

# schema tenants under the service role: made by the non-superuser admin,
# owned by the service role, which needs no CREATE on the admin database
$node->safe_psql('postgres', q{DELETE FROM tenancy.migration});
$node->safe_psql('postgres', q{SELECT tenancy.add_migration(1, 'CREATE TABLE item (id int)')}, @dba);
is($node->safe_psql('postgres', q{SELECT state FROM tenancy.provision('s-acme', isolation => 'schema')}, @dba),
	'ready', 'a non-superuser admin provisions a schema tenant');
is($node->safe_psql('postgres', q{
	SELECT pg_get_userbyid(n.nspowner) || ' ' || pg_get_userbyid(c.relowner) || ' ' ||
	       has_database_privilege('regress_provisioner', current_database(), 'CREATE')
	  FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'item'
	 WHERE n.nspname = 'regress_lp_s-acme'}),
	'regress_provisioner regress_provisioner false',
	'the schema and what its migrations made belong to the service role, which cannot create schemas itself');
($ret, $out, $err) = $node->psql('postgres', q{SELECT tenancy.add_migration(2, 'SET ROLE postgres')}, @dba);
($ret, $out, $err) = $node->psql('postgres', q{SELECT tenancy.migrate('s-acme')}, @dba);
like($err, qr/permission denied to set role "postgres"\nCONTEXT:  migrating tenant "s-acme" to version 2/,
	'a schema tenant\'s migration cannot change role');
$node->safe_psql('postgres', q{DELETE FROM tenancy.migration WHERE version = 2});
$node->safe_psql('postgres', q{SELECT tenancy.grant_access('s-acme', 'regress_web')}, @dba);
is($node->safe_psql('postgres', q{SELECT has_schema_privilege('regress_web', 'regress_lp_s-acme', 'USAGE')}),
	't', 'grant_access gives USAGE on the schema');

# The service role cannot read its own password: configure() leaves it no
# USAGE on the loopback server, so pg_user_mappings hides the options from it,
# and a schema tenant's migration (run as the service role in this database)
# that tries to raise them into its error finds nothing.  Granted USAGE behind
# tenancy's back, every remote operation refuses (42501) before connecting.
is($node->safe_psql('postgres', q{
	SELECT has_server_privilege('regress_provisioner', 'tenancy_loopback', 'USAGE')}),
	'f', 'configure() leaves the service role no USAGE on the loopback server');
$node->safe_psql('postgres', q{SELECT tenancy.add_migration(3, $m$DO $d$BEGIN RAISE EXCEPTION 'options: %',
	(SELECT coalesce(string_agg(coalesce(umoptions::text, 'hidden'), ';'), 'none') FROM pg_catalog.pg_user_mappings); END$d$$m$)}, @dba);
($ret, $out, $err) = $node->psql('postgres', q{SELECT tenancy.migrate('s-acme')}, @dba);
like($err, qr/ERROR:  options: hidden\b/, 'a migration running as the service role sees no user mapping options');
$all_errors .= $err;
$node->safe_psql('postgres', 'GRANT USAGE ON FOREIGN SERVER tenancy_loopback TO regress_provisioner');
($ret, $out, $err) = $node->psql('postgres', q{SELECT tenancy.migrate('s-acme')}, @dba);
like($err, qr/ERROR:  service role "regress_provisioner" can read its own user mapping for server "tenancy_loopback"/,
	'with USAGE granted behind its back, tenancy refuses to connect as the service role');
$all_errors .= $err;
($ret, $out, $err) = $node->psql('postgres', q{SELECT tenancy.configure('regress_provisioner', 'tenancy_loopback', admin_role => 'tenancy_admin')});
is($node->safe_psql('postgres', q{
	SELECT has_server_privilege('regress_provisioner', 'tenancy_loopback', 'USAGE')}),
	'f', 'configure() takes USAGE back');
$node->safe_psql('postgres', 'GRANT USAGE ON FOREIGN SERVER tenancy_loopback TO PUBLIC');
($ret, $out, $err) = $node->psql('postgres', q{SELECT tenancy.configure('regress_provisioner', 'tenancy_loopback', admin_role => 'tenancy_admin')});
like($err, qr/ERROR:  service role "regress_provisioner" can read its own user mapping for server "tenancy_loopback"/,
	'configure() refuses when the service role would still hold USAGE through PUBLIC');
$node->safe_psql('postgres', 'REVOKE USAGE ON FOREIGN SERVER tenancy_loopback FROM PUBLIC');
$node->safe_psql('postgres', q{DELETE FROM tenancy.migration WHERE version = 3});
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM tenancy.tenant WHERE last_error LIKE '%regress_s3cr3t_%'
	UNION ALL SELECT count(*) FROM tenancy.migration_progress WHERE error LIKE '%regress_s3cr3t_%'}),
	"0\n0", 'nothing tenancy stores holds a password');

# the passwords appear nowhere
my $log = slurp_file($node->logfile);
foreach my $secret ($password, $new_password, $web_password)
{
	unlike($all_errors, qr/\Q$secret\E/, 'no password in client errors');
	unlike($log, qr/\Q$secret\E/, 'no password in the server log (all statements and errors logged)');
}
like($log, qr/tenancy\/acme LOG:  statement: CREATE DATABASE/, 'the log did record tenancy\'s remote statements');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
	  SELECT t::text AS row FROM tenancy.tenant t UNION ALL SELECT c::text FROM tenancy.config c
	  UNION ALL SELECT p::text FROM tenancy.pending_cleanup p UNION ALL SELECT m::text FROM tenancy.migration m
	  UNION ALL SELECT query FROM pg_stat_activity) s
	 WHERE row LIKE '%regress_s3cr3t_%' AND row NOT LIKE '%pg_stat_activity%'}),
	'0', 'no password in tenancy tables or pg_stat_activity');

$node->safe_psql('postgres', q{
	SELECT tenancy.deprovision(id, force => true) FROM tenancy.tenant;
	SELECT count(*) FROM tenancy.reconcile();
}, @dba);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'regress_lp_%' AND datname <> 'regress_lp_template'}),
	'0', 'the admin drops every tenant');

$node->stop;
done_testing();
