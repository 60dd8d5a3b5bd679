# Copyright (c) 2026, the tenancy authors
#
# Crash safety of provisioning, shown by killing things: provisioning is
# parked at each step with tenancy.fault_injection = '<point>:wait', then
# the server is stopped immediately (crash recovery at restart) or the
# provisioning backend is SIGKILLed.  After a restart and reconcile(): no
# database the catalog cannot explain (I1), nothing untracked (I2), nothing
# left open (I3), and a second reconcile() finds nothing.  Also: a remote
# backend terminated mid-migration fails the provision and leaves nothing.
use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $fault_class = 0x74656e63;	# TENANCY_FAULT_LOCK_CLASS

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
session_preload_libraries = 'tenancy'
tenancy.database_prefix = 'regress_crash_'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION tenancy CASCADE;
	SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int PRIMARY KEY)');
});

# Everything that exists, as one comparable string.
my $state_query = q{
	SELECT coalesce(string_agg(x, ', ' ORDER BY x), 'nothing') FROM (
	  SELECT 'db:' || regexp_replace(datname, 'tmp_[0-9]+$', 'tmp_N') AS x
	    FROM pg_database WHERE datname LIKE 'regress_crash_%' AND datname <> 'regress_crash_template'
	  UNION ALL SELECT 'schema:' || nspname FROM pg_namespace WHERE nspname LIKE 'regress_crash_%'
	  UNION ALL SELECT 'cleanup:' || tenant_id FROM tenancy.pending_cleanup
	  UNION ALL SELECT 'tenant:' || id || ':' || state FROM tenancy.tenant) s};

sub check_clean
{
	my ($label) = @_;
	my $actions = $node->safe_psql('postgres', 'SELECT count(*) FROM tenancy.reconcile()');
	cmp_ok($actions, '>=', 0, "$label: reconcile ran");
	is($node->safe_psql('postgres', $state_query), 'nothing', "$label: nothing left after reconcile");
	is($node->safe_psql('postgres', 'SELECT count(*) FROM tenancy.reconcile()'), '0',
		"$label: a second reconcile finds nothing");
	# remote sessions end asynchronously after tenancy closes them
	ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE application_name LIKE 'tenancy/%' OR state = 'idle in transaction'}),
		"$label: no tenancy session and nothing idle in transaction");
}

# Runs psql in the background; killed with kill_kill when done with.
sub background
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	return IPC::Run::start([ 'psql', '-X', '-d', $node->connstr('postgres'), '-c', $sql ],
		'<', \undef, '>', \$out, '2>', \$err);
}

# Parks a provision of $tenant at $point; returns the two background psql
# runs (the provision, and the session holding the fault lock).
sub park_provision
{
	my ($tenant, $point, $isolation) = @_;
	$isolation //= 'database';
	my $holder = background("SELECT pg_advisory_lock($fault_class, hashtext('$point')); SELECT pg_sleep(3600)");
	$node->poll_query_until('postgres', qq{
		SELECT count(*) > 0 FROM pg_locks
		 WHERE locktype = 'advisory' AND classid = $fault_class AND granted})
	  or die 'fault lock not taken';
	my $prov = background("SET tenancy.fault_injection = '$point:wait'; "
		  . "SELECT tenancy.provision('$tenant', isolation => '$isolation')");
	$node->poll_query_until('postgres', qq{
		SELECT count(*) > 0 FROM pg_locks
		 WHERE locktype = 'advisory' AND classid = $fault_class AND NOT granted})
	  or die "provision never reached $point";
	return ($prov, $holder);
}

# The temporary database is closed until it is renamed: parked before the
# rename, it refuses even a superuser's connection (which would make the
# rename fail with 55006); released, the provision completes and the tenant
# database accepts connections.
{
	my ($prov, $holder) = park_provision('closed', 'before_rename');
	my $tmp = $node->safe_psql('postgres',
		q{SELECT datname FROM pg_database WHERE datname LIKE 'regress_crash_tmp_%'});
	like($tmp, qr/^regress_crash_tmp_\d+$/, 'parked before the rename: the temporary database exists');
	my ($ret, $out, $err) = $node->psql($tmp, 'SELECT 1');
	like($err, qr/database "\Q$tmp\E" is not currently accepting connections/,
		'and refuses a superuser\'s connection');
	$node->safe_psql('postgres', qq{
		SELECT pg_terminate_backend(pid) FROM pg_locks
		 WHERE locktype = 'advisory' AND classid = $fault_class AND granted});
	$prov->finish;
	$holder->kill_kill;
	is($node->safe_psql('postgres', q{SELECT state FROM tenancy.tenant WHERE id = 'closed'}), 'ready',
		'released, the provision completes');
	is($node->safe_psql('regress_crash_closed', 'SELECT 1'), '1', 'and the tenant database accepts connections');
	$node->safe_psql('postgres', q{SELECT tenancy.deprovision('closed')});
}

my $i = 0;
foreach my $point (qw(after_cleanup_record after_remote_create after_bootstrap
	before_rename after_rename after_local_record))
{
	$i++;
	my ($prov, $holder) = park_provision("crash-$i", $point);
	my $before = $node->safe_psql('postgres', $state_query);
	note "parked at $point: $before";
	$node->stop('immediate');
	$prov->kill_kill;
	$holder->kill_kill;
	$node->start;
	check_clean("immediate stop at $point");
}

# Schema tenants are made under a temporary name too (their migrations run
# in a session of their own, which must see the schema): a crash at any step
# leaves nothing under the tenant's name and nothing untracked (I2), and
# reconcile() removes what is recorded.
my $untracked_query = q{
	SELECT coalesce(string_agg(nspname, ', '), 'none') FROM pg_namespace n
	 WHERE nspname LIKE 'regress_crash_%'
	   AND NOT EXISTS (SELECT FROM tenancy.pending_cleanup c WHERE c.database_name = n.nspname)
	   AND NOT EXISTS (SELECT FROM tenancy.tenant t WHERE t.schema_name = n.nspname)};
# (a schema tenant's migration creates its table in the tenant's schema)
$node->safe_psql('postgres', q{
	DELETE FROM tenancy.migration;
	SELECT tenancy.add_migration(1, 'CREATE TABLE item (id int PRIMARY KEY)');
});
foreach my $point (qw(after_cleanup_record after_remote_create after_bootstrap
	before_rename after_rename after_local_record))
{
	$i++;
	my ($prov, $holder) = park_provision("schema-$i", $point, 'schema');
	like($node->safe_psql('postgres', qq{
		SELECT string_agg(mode, ',') FROM pg_locks l JOIN pg_stat_activity a USING (pid)
		 WHERE a.query LIKE '%provision(''schema-$i''%' AND l.locktype = 'advisory' AND l.granted}),
		qr/ExclusiveLock/, "schema tenant parked at $point holds its tenant lock");
	$node->stop('immediate');
	$prov->kill_kill;
	$holder->kill_kill;
	$node->start;
	is($node->safe_psql('postgres', $untracked_query), 'none',
		"schema tenant, immediate stop at $point: no schema the catalog cannot explain, before reconcile");
	unlike($node->safe_psql('postgres', $state_query), qr/tenant:|schema:regress_crash_schema/,
		"schema tenant, immediate stop at $point: no tenant row and no schema under its name");
	check_clean("schema tenant, immediate stop at $point");
}

$node->safe_psql('postgres', q{
	DELETE FROM tenancy.migration;
	SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int PRIMARY KEY)');
});

# SIGKILL of the provisioning backend: the postmaster restarts every
# backend; the outcome must be the same.
foreach my $point (qw(after_remote_create after_rename))
{
	$i++;
	my ($prov, $holder) = park_provision("killed-$i", $point);
	my $pid = $node->safe_psql('postgres', qq{
		SELECT pid FROM pg_stat_activity
		 WHERE query LIKE '%tenancy.provision(''killed-$i''%' AND pid <> pg_backend_pid()});
	ok($pid =~ /^\d+$/, "found the provisioning backend at $point");
	kill 'KILL', $pid;
	$prov->kill_kill;
	$holder->kill_kill;
	$node->poll_query_until('postgres', 'SELECT 1', '1') or die 'server did not come back';
	check_clean("SIGKILL of the provisioning backend at $point");
}

# A crash after the caller committed keeps the tenant: nothing to repair.
$node->safe_psql('postgres', q{SELECT tenancy.provision('committed')});
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM tenancy.reconcile()'), '0',
	'crash after commit: reconcile changes nothing');
is($node->safe_psql('postgres', $state_query), 'db:regress_crash_committed, tenant:committed:ready',
	'crash after commit: tenant and database kept');
$node->safe_psql('postgres', q{SELECT tenancy.deprovision('committed')});

# The remote backend terminated in the middle of a migration: the provision
# fails with a connection error and undoes itself.
$node->safe_psql('postgres', q{SELECT tenancy.add_migration(2, 'SELECT pg_catalog.pg_sleep(60)')});
my ($out, $err) = ('', '');
my $prov = IPC::Run::start([ 'psql', '-X', '-v', 'VERBOSITY=verbose', '-d', $node->connstr('postgres'),
	'-c', q{SELECT tenancy.provision('remote-killed')} ],
	'<', \undef, '>', \$out, '2>', \$err);
$node->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM pg_stat_activity
	 WHERE application_name = 'tenancy/remote-killed' AND query LIKE '%pg_sleep%'})
  or die 'migration never started';
$node->safe_psql('postgres', q{
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	 WHERE application_name = 'tenancy/remote-killed' AND query LIKE '%pg_sleep%'});
$prov->finish;
like($err, qr/ERROR:  08006: lost the connection to the remote server\nDETAIL:  terminating connection due to administrator command/,
	'provision fails with 08006 (connection failure) when its remote backend is terminated');
like($err, qr/to version 2, statement 1 \(line 1\)\n.*provisioning tenant "remote-killed"/,
	'CONTEXT names the migration, the statement and the tenant');
unlike($err, qr/57P01/, 'the remote 57P01 is not passed off as our own termination');
is($node->safe_psql('postgres', $state_query), 'nothing', 'remote backend killed: nothing left, without reconcile');

# A session holding a routed query's kept connection is terminated: its
# remote session goes with it (nothing leaked, nothing idle in transaction).
$node->safe_psql('postgres', q{DELETE FROM tenancy.migration WHERE version = 2; SELECT tenancy.provision('routed')});
my $holder = background(q{SET tenancy.current = 'routed'; SELECT x FROM tenancy.query('SELECT 1') AS t(x int); SELECT pg_sleep(3600)});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'tenancy/routed' AND state = 'idle'})
  or die 'no kept connection';
$node->safe_psql('postgres', q{
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3600)%' AND pid <> pg_backend_pid()});
ok($node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'tenancy/routed'}),
	'the kept connection ends with the session that kept it');
$holder->kill_kill;
$node->safe_psql('postgres', q{SELECT tenancy.deprovision('routed')});

$node->stop;
done_testing();
