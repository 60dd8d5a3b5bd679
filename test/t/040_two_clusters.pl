# Copyright (c) 2026, the tenancy authors
#
# Tenants on another server: the catalog lives on node1, tenant databases
# are created, migrated, suspended and dropped on node2 (a dblink_fdw
# server), as node2's own service role.  node2 down: a clean 08001, nothing
# registered, and provisioning works once it is back.  A crash of node1
# after node2 committed the rename leaves a final-name database that no
# row claims: reconcile drops it.
use strict;
use warnings FATAL => 'all';

use IPC::Run;
use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use TenancyTAP;
use Test::More;

my $password = 'regress_pw_' . int(rand(1_000_000_000));
my $fault_class = 0x74656e63;

my $node1 = PostgreSQL::Test::Cluster->new('admin');
my $node2 = PostgreSQL::Test::Cluster->new('host');
foreach my $node ($node1, $node2)
{
	$node->init;
	$node->append_conf('postgresql.conf', qq{
tenancy.database_prefix = 'regress_tc_'
restart_after_crash = on
});
	hba_prepend($node, 'local all regress_provisioner scram-sha-256');
	$node->start;
	$node->safe_psql('postgres', qq{
		SET log_statement = 'none';
		CREATE ROLE regress_provisioner LOGIN CREATEDB PASSWORD '$password';
	});
}
$node1->append_conf('postgresql.conf', "session_preload_libraries = 'tenancy'");
$node1->restart;

my ($h1, $p1, $h2, $p2) = ($node1->host, $node1->port, $node2->host, $node2->port);
$node1->safe_psql('postgres', qq{
	SET log_statement = 'none';
	CREATE EXTENSION tenancy CASCADE;
	CREATE SERVER tenancy_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host '$h1', port '$p1', dbname 'postgres');
	CREATE USER MAPPING FOR regress_provisioner SERVER tenancy_loopback
	  OPTIONS (user 'regress_provisioner', password '$password');
	CREATE SERVER host2 FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host '$h2', port '$p2', dbname 'postgres');
	CREATE USER MAPPING FOR regress_provisioner SERVER host2
	  OPTIONS (user 'regress_provisioner', password '$password');
	SELECT tenancy.configure('regress_provisioner', 'tenancy_loopback');
	SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int PRIMARY KEY)');
});

my $dbs2 = q{SELECT coalesce(string_agg(regexp_replace(datname, 'tmp_[0-9]+$', 'tmp_N'), ',' ORDER BY datname), 'none')
	FROM pg_database WHERE datname LIKE 'regress_tc_%' AND datname <> 'regress_tc_template'};

# the service role needs no USAGE on a tenant server, and may not hold it:
# pg_user_mappings would show it its password there, to any schema tenant's
# migration.  Refused (42501) before anything is created.
$node1->safe_psql('postgres', 'GRANT USAGE ON FOREIGN SERVER host2 TO regress_provisioner');
my ($ret, $out, $err) = $node1->psql('postgres', q{SELECT tenancy.provision('leaky', server => 'host2')});
like($err, qr/ERROR:  service role "regress_provisioner" can read its own user mapping for server "host2"/,
	'provisioning refuses a tenant server on which the service role holds USAGE');
is($node2->safe_psql('postgres', $dbs2), 'none', 'and creates nothing there');
$node1->safe_psql('postgres', 'REVOKE USAGE ON FOREIGN SERVER host2 FROM regress_provisioner');

# provision on node2
is($node1->safe_psql('postgres', q{SELECT id || ' ' || state || ' ' || server FROM tenancy.provision('remote', server => 'host2')}),
	'remote ready host2', 'a tenant is provisioned on the other server');
is($node2->safe_psql('postgres', $dbs2), 'regress_tc_remote', 'its database is on node2');
is($node1->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'regress_tc_remote'}),
	'0', 'and not on node1');
is($node2->safe_psql('postgres', q{SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'regress_tc_remote'}),
	'regress_provisioner', "owned by node2's service role");
is($node2->safe_psql('regress_tc_remote', 'SELECT count(*) FROM tenancy.applied_migration'), '1',
	'node2 has its template and the migration');

# migrate, suspend, resume on node2
$node1->safe_psql('postgres', q{SELECT tenancy.add_migration(2, 'INSERT INTO public.item VALUES (7)')});
is($node1->safe_psql('postgres', q{SELECT status || ' ' || to_version FROM tenancy.migrate('remote')}),
	'migrated 2', 'migrated on node2');
is($node2->safe_psql('regress_tc_remote', 'SELECT id FROM public.item'), '7', 'the migration ran on node2');
$node1->safe_psql('postgres', q{SELECT tenancy.suspend('remote')});
is($node2->safe_psql('postgres', q{SELECT datallowconn FROM pg_database WHERE datname = 'regress_tc_remote'}),
	'f', 'suspend closes the database on node2');
$node1->safe_psql('postgres', q{SELECT tenancy.resume('remote')});
is($node2->safe_psql('postgres', q{SELECT datallowconn FROM pg_database WHERE datname = 'regress_tc_remote'}),
	't', 'resume opens it again');

# node2 down: a clean connection error, nothing registered or recorded
$node2->stop;
($ret, $out, $err) = $node1->psql('postgres', q{SELECT tenancy.provision('while-down', server => 'host2')},
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  08001: could not establish connection/, 'server down: 08001');
unlike($err, qr/\Q$password\E/, 'the error holds no password');
is($node1->safe_psql('postgres', q{SELECT count(*) FROM tenancy.tenant WHERE id = 'while-down'}), '0',
	'nothing registered');
($ret, $out, $err) = $node1->psql('postgres', q{SELECT * FROM tenancy.migrate('remote')});
like($err, qr/could not establish connection/, 'migrating a tenant on a down server fails cleanly');

# A fleet of two servers, node2 down: provision_many places tenants by the
# fewest per unit of weight; the one placed on node2 fails with 08001 and
# node2 gets no more of the run, the others are provisioned on node1;
# nothing is orphaned; server_status reports node2 unreachable
$node1->safe_psql('postgres', q{
	SELECT tenancy.add_server('host2');
	SELECT tenancy.add_server('tenancy_loopback');
});
is($node1->safe_psql('postgres', q{
	SELECT string_agg(tenant || ':' || status || ':' || coalesce(sqlstate, '-'), ',' ORDER BY tenant)
	  FROM tenancy.provision_many(ARRAY['fleet-1', 'fleet-2', 'fleet-3', 'fleet-4'], parallel => 4)}),
	'fleet-1:provisioned:-,fleet-2:failed:08001,fleet-3:provisioned:-,fleet-4:provisioned:-',
	'provision_many with one server down: its tenants fail with 08001, the others are provisioned');
is($node1->safe_psql('postgres', q{
	SELECT string_agg(id || '@' || coalesce(server, 'here'), ',' ORDER BY id) FROM tenancy.tenant WHERE id LIKE 'fleet-%'}),
	'fleet-1@here,fleet-3@here,fleet-4@here', 'the provisioned ones are on node1');
is($node1->safe_psql('postgres', q{SELECT count(*) FROM tenancy.pending_cleanup}), '0',
	'no cleanup record is left');
is($node1->safe_psql('postgres', q{
	SELECT string_agg(server || ':' || reachable || ':' || coalesce(split_part(error, ':', 1), '-'), ',' ORDER BY server)
	  FROM tenancy.server_status()}),
	'host2:false:08001,tenancy_loopback:true:-', 'server_status reports node2 unreachable');
$node2->start;
is($node2->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'regress_tc_%fleet%' OR datname LIKE 'regress_tc_tmp_%'}),
	'0', 'nothing was created on node2');
$node1->safe_psql('postgres', q{
	SELECT count(tenancy.deprovision(id)) FROM tenancy.tenant WHERE id LIKE 'fleet-%';
	DELETE FROM tenancy.server;
});
$node1->safe_psql('postgres', 'SELECT count(*) FROM tenancy.reconcile()');
is($node1->safe_psql('postgres', q{SELECT state FROM tenancy.provision('while-down', server => 'host2')}),
	'ready', 'once node2 is back, provisioning works');

# a routed query's kept connection while node2 goes down mid-session: the
# next call reports the lost connection (08006) and drops it, the one after
# cannot connect (08001), and once node2 is back a call works again
$node1->safe_psql('postgres', qq{
	SET log_statement = 'none';
	CREATE USER MAPPING FOR CURRENT_USER SERVER host2
	  OPTIONS (user 'regress_provisioner', password '$password');
});
my $d2 = $node2->data_dir;
($ret, $out, $err) = $node1->psql('postgres', qq{
SET tenancy.current = 'remote';
SELECT 'first ' || x FROM tenancy.query('SELECT 1') AS t(x int);
\\! pg_ctl -D '$d2' -m fast -w stop >/dev/null
SELECT 'during ' || x FROM tenancy.query('SELECT 1') AS t(x int);
SELECT 'again ' || x FROM tenancy.query('SELECT 1') AS t(x int);
}, on_error_stop => 0, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
$node2->_update_pid(0);		# stopped behind the Cluster object's back
like($out, qr/first 1/, 'a routed query reaches the tenant on node2');
like($err, qr/ERROR:  08006: .*\n(.*\n)*?CONTEXT:  running SQL on tenant "remote"/,
	'node2 stopped mid-session: the kept connection reports 08006 with the tenant');
like($err, qr/ERROR:  08001: could not establish connection/, 'the next call cannot connect: 08001');
unlike($out, qr/during|again/, 'and returns nothing');
unlike($err, qr/\Q$password\E/, 'the errors hold no password');
$node2->start;
is($node1->safe_psql('postgres', q{SET tenancy.current = 'remote'; SELECT x FROM tenancy.query('SELECT 1') AS t(x int)}),
	'1', 'node2 back: routed queries work again');

# node1 crashes after node2 committed the rename: reconcile drops the
# final-name database on node2 that no row claims
my ($o, $e) = ('', '');
my $holder = IPC::Run::start([ 'psql', '-X', '-d', $node1->connstr('postgres'), '-c',
	"SELECT pg_advisory_lock($fault_class, hashtext('after_rename')); SELECT pg_sleep(3600)" ],
	'<', \undef, '>', \$o, '2>', \$e);
$node1->poll_query_until('postgres', "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND classid = $fault_class AND granted")
  or die 'no fault lock';
my $prov = IPC::Run::start([ 'psql', '-X', '-d', $node1->connstr('postgres'), '-c',
	q{SET tenancy.fault_injection = 'after_rename:wait'; SELECT tenancy.provision('crashed', server => 'host2')} ],
	'<', \undef, '>', \$o, '2>', \$e);
$node1->poll_query_until('postgres', "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND classid = $fault_class AND NOT granted")
  or die 'provision never reached after_rename';
is($node2->safe_psql('postgres', $dbs2), 'regress_tc_crashed,regress_tc_remote,regress_tc_while-down',
	'node2 committed the rename');
$node1->stop('immediate');
$prov->kill_kill;
$holder->kill_kill;
$node1->start;
my $report = $node1->safe_psql('postgres', q{SELECT string_agg(object || ': ' || action, '; ' ORDER BY object) FROM tenancy.reconcile() WHERE tenant = 'crashed'});
like($report, qr/regress_tc_crashed: dropped database/, 'reconcile drops the unregistered final-name database on node2');
is($node2->safe_psql('postgres', $dbs2), 'regress_tc_remote,regress_tc_while-down', 'nothing orphaned on node2');
is($node1->safe_psql('postgres', 'SELECT count(*) FROM tenancy.reconcile()'), '0', 'a second reconcile finds nothing');
is($node1->safe_psql('postgres', q{SELECT count(*) FROM tenancy.tenant WHERE id = 'crashed'}), '0', 'and no row');

# The local backend killed while node2 runs a long migration for it: node2
# notices the closed connection within seconds (client_connection_check_
# interval on tenancy's remote sessions) instead of finishing the statement,
# and the migration does not commit.
$node1->safe_psql('postgres', q{SELECT tenancy.add_migration(3, 'SELECT pg_catalog.pg_sleep(120); INSERT INTO public.item VALUES (99)')});
my $slow = IPC::Run::start([ 'psql', '-X', '-d', $node1->connstr('postgres'), '-c', q{SELECT * FROM tenancy.migrate('remote')} ],
	'<', \undef, '>', \$o, '2>', \$e);
$node2->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'tenancy/remote' AND query LIKE '%pg_sleep%'})
  or die 'the slow migration never started';
my $victim = $node1->safe_psql('postgres', q{
	SELECT pid FROM pg_stat_activity WHERE query LIKE '%tenancy.migrate(''remote'')%' AND pid <> pg_backend_pid()});
my $killed_at = time();
kill 'KILL', $victim;
$slow->kill_kill;
$node2->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'tenancy/remote'})
  or die 'the remote session never ended';
cmp_ok(time() - $killed_at, '<', 30, 'the remote statement stops soon after the local backend is killed');
is($node2->safe_psql('regress_tc_remote', 'SELECT max(version) FROM tenancy.applied_migration'), '2',
	'the interrupted migration did not commit');
$node1->poll_query_until('postgres', 'SELECT 1', '1') or die 'node1 did not come back';
$node1->safe_psql('postgres', q{DELETE FROM tenancy.migration WHERE version = 3});

# bootstrap(), the restart with nothing to do, opens one session on node2
# (one query for all its tenants' databases) and none on a tenant database;
# bootstrap(verify => true) connects to every tenant.
$node2->safe_psql('postgres', q{ALTER SYSTEM SET log_connections = on; SELECT pg_reload_conf()});
$node1->safe_psql('postgres', q{SELECT count(*) FROM tenancy.migrate_all(1)});
sub node2_sessions_during
{
	my ($sql) = @_;
	my $before = length(slurp_file($node2->logfile));
	my $out = $node1->safe_psql('postgres', $sql);
	my $log = substr(slurp_file($node2->logfile), $before);
	my @sessions = ($log =~ /connection authorized: user=regress_provisioner database=(\S+)/g);
	return ($out, @sessions);
}
my ($boot, @quiet) = node2_sessions_during(q{SELECT string_agg(tenant || ':' || status, ',' ORDER BY tenant) FROM tenancy.bootstrap()});
is($boot, 'remote:up_to_date,while-down:up_to_date', 'bootstrap() finds both remote tenants up to date');
is(join(',', @quiet), 'postgres', 'bootstrap() opened one session on node2, to its maintenance database');
my ($audit, @loud) = node2_sessions_during(q{SELECT count(*) FROM tenancy.bootstrap(verify => true)});
cmp_ok(scalar(grep { /^regress_tc_/ } @loud), '>=', 2, 'bootstrap(verify => true) connects to each tenant database');
$node2->safe_psql('postgres', q{ALTER SYSTEM RESET log_connections; SELECT pg_reload_conf()});

# deprovision on node2
$node1->safe_psql('postgres', q{SELECT tenancy.deprovision(id) FROM tenancy.tenant});
is($node2->safe_psql('postgres', $dbs2), 'none', 'deprovision drops the databases on node2');

$node1->stop;
$node2->stop;
done_testing();
