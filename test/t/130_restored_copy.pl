# Copyright (c) 2026, the tenancy authors
#
# A dump of the admin database restored into another cluster brings its
# loopback server along unchanged, still pointing at the cluster it came
# from.  The copy refuses (55000) to work through it, so a staging restore
# of production's catalog never writes to production: no database, no
# catalog row, no session on the original.  Pointed at itself, the copy
# works; the original is untouched throughout, and its own loopback
# server keeps working.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use TenancyTAP;
use Test::More;

my $password = 'regress_pw_' . int(rand(1_000_000_000));

my $prod = PostgreSQL::Test::Cluster->new('prod');
my $copy = PostgreSQL::Test::Cluster->new('copy');
foreach my $node ($prod, $copy)
{
	$node->init;
	$node->append_conf('postgresql.conf', qq{
session_preload_libraries = 'tenancy'
tenancy.database_prefix = 'regress_rc_'
log_connections = on
});
	hba_prepend($node, 'local all regress_provisioner,regress_app scram-sha-256');
	$node->start;
	$node->safe_psql('postgres', qq{
		SET log_statement = 'none';
		CREATE ROLE regress_provisioner LOGIN CREATEDB PASSWORD '$password';
		CREATE ROLE regress_app LOGIN PASSWORD '$password';
	});
}

my ($host, $port) = ($prod->host, $prod->port);
$prod->safe_psql('postgres', qq{
	SET log_statement = 'none';
	CREATE EXTENSION tenancy CASCADE;
	CREATE SERVER tenancy_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host '$host', port '$port', dbname 'postgres');
	CREATE USER MAPPING FOR regress_provisioner SERVER tenancy_loopback
	  OPTIONS (user 'regress_provisioner', password '$password');
	SELECT tenancy.configure('regress_provisioner', 'tenancy_loopback');
	SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int PRIMARY KEY)');
});
is($prod->safe_psql('postgres', q{SELECT state FROM tenancy.provision('acme')}),
	'ready', 'the original provisions through its loopback server');
$prod->safe_psql('postgres', qq{
	SET log_statement = 'none';
	SELECT tenancy.grant_access('acme', 'regress_app');
	GRANT USAGE ON FOREIGN SERVER tenancy_loopback TO regress_app;
	CREATE USER MAPPING FOR regress_app SERVER tenancy_loopback OPTIONS (user 'regress_app', password '$password');
});

# the copy: the admin database dumped and restored into another cluster
my $dump = $copy->basedir . '/admin.dump';
$prod->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $prod->connstr('postgres') ], 'pg_dump of the admin database');
$copy->command_ok([ 'pg_restore', '--exit-on-error', '-d', $copy->connstr('postgres'), $dump ],
	'pg_restore into another cluster');
like($copy->safe_psql('postgres', q{SELECT srvoptions::text FROM pg_foreign_server WHERE srvname = 'tenancy_loopback'}),
	qr/port=$port\b/, 'the copy\'s loopback server still points at the original');

my $prod_state = q{SELECT (SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'regress_rc_%')
	|| ' ' || (SELECT string_agg(id, ',' ORDER BY id) FROM tenancy.tenant)
	|| ' ' || (SELECT count(*) FROM tenancy.pending_cleanup)
	|| ' ' || (SELECT count(*) FROM tenancy.migration)};
my $before = $prod->safe_psql('postgres', $prod_state);
my $prod_log_at = -s $prod->logfile;
my $copy_log_at = -s $copy->logfile;	# pg_restore's statements (a user mapping) are before

# should fail: 55000, before anything reaches the original
foreach my $call (
	q{SELECT tenancy.provision('hooli')},
	q{SELECT count(*) FROM tenancy.migrate_all(2, verify => true)},
	q{SELECT tenancy.migrate('acme')})
{
	my ($ret, $out, $err) = $copy->psql('postgres', "\\set VERBOSITY verbose\n$call");
	like($err, qr/ERROR:  55000: tenancy's loopback server "tenancy_loopback" does not reach this cluster/,
		"the copy refuses: $call");
}
is($prod->safe_psql('postgres', $prod_state), $before, 'the original\'s databases and catalog are untouched');
my @sent = slurp_file($prod->logfile, $prod_log_at) =~ /\] tenancy\S* LOG:  statement: (.*)/g;
ok(@sent > 0, 'the copy asked the original who it is');
is(join("\n", grep { !/^SELECT \(pg_catalog\.extract\('epoch'::pg_catalog\.text, pg_catalog\.pg_postmaster_start_time\(\)\)/ } @sent),
	'', 'and sent it nothing else');
is($copy->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'regress_rc_%'}),
	'0', 'nor on the copy');
unlike(slurp_file($copy->logfile, $copy_log_at), qr/$password/, 'the password is in no log line of the refusals');

# a member's routed query goes through the loopback server too: refused
# before it runs on the original (where the member may connect)
local $ENV{PGPASSWORD} = $password;
$prod_log_at = -s $prod->logfile;
my ($ret, $out, $err) = $copy->psql('postgres', q{SET tenancy.current = 'acme'; SELECT tenancy.exec('SELECT 1')},
	extra_params => [ '-U', 'regress_app' ]);
like($err, qr/does not reach this cluster/, 'a routed query on the copy is refused too');
unlike(slurp_file($prod->logfile, $prod_log_at), qr/statement: SELECT 1/, 'before it ran on the original');

# pointed at itself, the copy works: provisioning builds its own template
# and tenants
my ($chost, $cport) = ($copy->host, $copy->port);
$copy->safe_psql('postgres', qq{ALTER SERVER tenancy_loopback OPTIONS (SET host '$chost', SET port '$cport')});
is($copy->safe_psql('postgres', q{SELECT state FROM tenancy.provision('hooli')}),
	'ready', 'pointed at itself, the copy provisions');
is($copy->safe_psql('postgres', q{SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'regress_rc_%'}),
	'regress_rc_hooli,regress_rc_template', 'on itself');
is($prod->safe_psql('postgres', $prod_state), $before, 'the original is still untouched');

# and the original keeps working through its own loopback server
is($prod->safe_psql('postgres', q{SELECT state FROM tenancy.provision('initech')}),
	'ready', 'the original provisions as before');

$copy->stop;
$prod->stop;
done_testing();
