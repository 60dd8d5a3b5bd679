# Copyright (c) 2026, the tenancy authors
#
# migrate_all across a fleet on two clusters: a no-op run opens no
# connection to any tenant; connections never exceed parallel + 1; a
# server down fails its tenants (08001) while the others migrate, and the
# next run finishes the job; a remote backend killed mid-migration leaves its
# tenant at its old version with a consistent ledger, and the rerun applies
# the migration once; a down killed halfway keeps its version and the rerun
# rolls it back once; a migration outside a transaction killed between its
# statements is started again from its first.
use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node1 = PostgreSQL::Test::Cluster->new('fleet1');
my $node2 = PostgreSQL::Test::Cluster->new('fleet2');
foreach my $node ($node1, $node2)
{
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'tenancy'
tenancy.database_prefix = 'regress_fl_'
log_connections = on
# a migration's round trip starts with tenancy's own checks: room to see it
track_activity_query_size = '16kB'
});
	$node->start;
}
my ($h2, $p2) = ($node2->host, $node2->port);
my $user = getpwuid($<);
$node1->safe_psql('postgres', qq{
	CREATE EXTENSION tenancy CASCADE;
	CREATE SERVER host2 FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host '$h2', port '$p2', dbname 'postgres');
	CREATE USER MAPPING FOR CURRENT_USER SERVER host2 OPTIONS (user '$user');
	SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int)');
});
foreach my $i (1 .. 4)
{
	$node1->safe_psql('postgres', qq{SELECT tenancy.provision('local-$i')});
	$node1->safe_psql('postgres', qq{SELECT tenancy.provision('remote-$i', server => 'host2')});
}

sub run_all
{
	my ($parallel) = @_;
	return $node1->safe_psql('postgres', qq{
		SET client_min_messages = warning;
		SELECT string_agg(tenant || ':' || status || ':' || to_version || coalesce(':' || sqlstate, ''), ' ' ORDER BY tenant)
		  FROM tenancy.migrate_all($parallel)});
}
sub connections
{
	my $n = 0;
	foreach my $node ($node1, $node2)
	{
		my $log = slurp_file($node->logfile);
		$n += () = $log =~ /connection authorized: user=\S+ database=regress_fl_(?!template)/g;
	}
	return $n;
}

# nothing pending: answered from the catalog, no tenant connection at all
my $before = connections();
is(run_all(4), join(' ', map { "local-$_:up_to_date:1" } 1 .. 4) . ' ' . join(' ', map { "remote-$_:up_to_date:1" } 1 .. 4),
	'no-op run: every tenant up to date');
is(connections(), $before, 'no-op run opened no connection to any tenant database');

# connections never exceed parallel + 1 (the run's catalog session)
$node1->safe_psql('postgres', q{SELECT tenancy.add_migration(2, 'SELECT pg_catalog.pg_sleep(0.5); CREATE INDEX ON public.item (id)')});
my ($o, $e) = ('', '');
my $run = IPC::Run::start([ 'psql', '-X', '-d', $node1->connstr('postgres'), '-c',
	'SET client_min_messages = warning; SELECT count(*) FROM tenancy.migrate_all(2)' ], '<', \undef, '>', \$o, '2>', \$e);
my $peak = 0;
while ($run->pumpable)
{
	foreach my $node ($node1, $node2)
	{
		my $n = $node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'tenancy/%'});
		$peak = $n if $n > $peak;
	}
	$run->pump_nb;
	select(undef, undef, undef, 0.1);
}
$run->finish;
like($o, qr/8/, 'the run covered the 8 tenants');
cmp_ok($peak, '<=', 3, "at most parallel + 1 tenancy sessions at once (saw $peak)");
cmp_ok($peak, '>=', 2, 'and it did run in parallel');

# a server down: its tenants fail with 08001, the others migrate
$node1->safe_psql('postgres', q{SELECT tenancy.add_migration(3, 'CREATE TABLE public.third (id int)')});
$node2->stop;
is(run_all(4), join(' ', map { "local-$_:migrated:3" } 1 .. 4) . ' ' . join(' ', map { "remote-$_:failed:2:08001" } 1 .. 4),
	'server down: its tenants fail with 08001, the others migrate');
is($node1->safe_psql('postgres', q{SELECT count(*) FROM tenancy.tenant WHERE last_sqlstate = '08001'}), '4',
	'the failures are recorded');
$node2->start;
is(run_all(4), join(' ', map { "local-$_:up_to_date:3" } 1 .. 4) . ' ' . join(' ', map { "remote-$_:migrated:3" } 1 .. 4),
	'server back: the next run migrates only the failed tenants');

# a remote backend killed mid-migration: that tenant stays at its version
$node1->safe_psql('postgres', q{SELECT tenancy.add_migration(4, 'CREATE TABLE public.fourth (id int); SELECT pg_catalog.pg_sleep(3)')});
$run = IPC::Run::start([ 'psql', '-X', '-d', $node1->connstr('postgres'), '-At', '-c',
	q{SET client_min_messages = warning; SELECT string_agg(tenant || ':' || status || ':' || to_version || coalesce(':' || sqlstate, ''), ' ' ORDER BY tenant) FROM tenancy.migrate_all(8)} ],
	'<', \undef, '>', \$o, '2>', \$e);
$o = '';
$node2->poll_query_until('postgres', q{
	SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'tenancy/remote-2' AND query LIKE '%pg_sleep%'})
  or die 'migration 4 never started on remote-2';
$node2->safe_psql('postgres', q{
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tenancy/remote-2'});
$run->finish;
like($o, qr/remote-2:failed:3:08006/, 'the killed tenant failed with 08006 (not 57P01) and stayed at version 3');
is(() = $o =~ /:migrated:4/g, 7, 'the other seven migrated');
is($node2->safe_psql('regress_fl_remote-2', q{
	SELECT max(version) || ' ' || (SELECT count(*) FROM pg_tables WHERE tablename = 'fourth') FROM tenancy.applied_migration}),
	'3 0', 'its ledger and schema agree: version 3, nothing of migration 4');
is(run_all(4), join(' ', map { "local-$_:up_to_date:4" } 1 .. 4) . ' remote-1:up_to_date:4 remote-2:migrated:4 remote-3:up_to_date:4 remote-4:up_to_date:4',
	'the rerun applies it once');
is($node2->safe_psql('regress_fl_remote-2', q{SELECT count(*) FROM tenancy.applied_migration WHERE version = 4}),
	'1', 'exactly one ledger row for version 4');
ok($node1->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name LIKE 'tenancy/%'})
	&& $node2->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name LIKE 'tenancy/%'}),
	'no tenancy session left on either node');

# a tenant whose table an application keeps locked: the remote lock_timeout
# fails that tenant (55P03) instead of hanging the fleet
my $holder = IPC::Run::start([ 'psql', '-X', '-d', $node1->connstr('regress_fl_local-1'), '-c',
	'BEGIN; LOCK TABLE public.item IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)' ], '<', \undef, '>', \$o, '2>', \$e);
$node1->poll_query_until('regress_fl_local-1', q{
	SELECT count(*) > 0 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	 WHERE c.relname = 'item' AND l.mode = 'AccessExclusiveLock' AND l.granted})
  or die 'the application lock was not taken';
$node1->safe_psql('postgres', q{SELECT tenancy.add_migration(5, 'ALTER TABLE public.item ADD COLUMN five int')});
my $started = time();
my $result = $node1->safe_psql('postgres', q{
	SET tenancy.remote_lock_timeout = '1s';
	SET client_min_messages = warning;
	SELECT string_agg(tenant || ':' || status || coalesce(':' || sqlstate, ''), ' ' ORDER BY tenant) FROM tenancy.migrate_all(4)});
cmp_ok(time() - $started, '<', 30, 'a locked tenant does not hang the fleet');
like($result, qr/local-1:failed:55P03/, 'the locked tenant fails with the remote lock timeout (55P03)');
is(() = $result =~ /:migrated/g, 7, 'the seven others migrate');
$node1->safe_psql('postgres', q{
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%LOCK TABLE public.item%' AND pid <> pg_backend_pid()});
$holder->kill_kill;
like(run_all(4), qr/local-1:migrated:5/, 'once the lock is gone, the next run migrates it');

# Runs migrate_all(ARGS) in the background, kills remote-N's tenancy
# session on node2 while its statement LIKE 'PATTERN' runs, and returns the
# run's rows.
sub killed_run
{
	my ($args, $tenant, $pattern) = @_;
	my ($out, $err) = ('', '');
	my $bg = IPC::Run::start([ 'psql', '-X', '-d', $node1->connstr('postgres'), '-At', '-c',
		qq{SET client_min_messages = warning; SELECT string_agg(tenant || ':' || status || ':' || to_version || coalesce(':' || sqlstate, ''), ' ' ORDER BY tenant) FROM tenancy.migrate_all($args)} ],
		'<', \undef, '>', \$out, '2>', \$err);
	$node2->poll_query_until('postgres', qq{
		SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'tenancy/$tenant' AND query LIKE '$pattern'})
	  or die "$tenant never reached $pattern";
	$node2->safe_psql('postgres', qq{
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tenancy/$tenant'});
	$bg->finish;
	return $out;
}

# a down killed halfway: its tenant keeps the version (the down and the
# removal of its ledger row are one transaction); the rerun rolls it back once
$node1->safe_psql('postgres', q{
	SELECT tenancy.add_migration(6, 'CREATE TABLE public.sixth (id int)',
	                             down => 'DROP TABLE public.sixth; SELECT pg_catalog.pg_sleep(3)')});
like(run_all(4), qr/remote-3:migrated:6/, 'migration 6 applied everywhere');
$o = killed_run('8, to_version => 5', 'remote-3', '%pg_sleep%');
like($o, qr/remote-3:failed:6:08006/, 'the tenant whose down was killed failed with 08006 and kept version 6');
is(() = $o =~ /:rolled_back:5/g, 7, 'the other seven rolled back to 5');
is($node2->safe_psql('regress_fl_remote-3', q{
	SELECT max(version) || ' ' || (SELECT count(*) FROM pg_tables WHERE tablename = 'sixth') FROM tenancy.applied_migration}),
	'6 1', 'its ledger and schema agree: version 6 and its table');
like($node1->safe_psql('postgres', q{SET client_min_messages = warning;
	SELECT string_agg(tenant || ':' || status, ' ' ORDER BY tenant) FROM tenancy.migrate_all(4, to_version => 5)}),
	qr/^(?=.*remote-3:rolled_back)(?!.*:(failed|migrated))/, 'the rerun rolls remote-3 back, and only it');
is($node2->safe_psql('regress_fl_remote-3', q{
	SELECT count(*) FILTER (WHERE version = 6) || ' ' || (SELECT count(*) FROM pg_tables WHERE tablename = 'sixth') FROM tenancy.applied_migration}),
	'0 0', 'version 6 and its table are gone from remote-3');

# a migration outside a transaction killed between its statements: the
# first committed on its own, no ledger row; the rerun starts it again and,
# written idempotently, finishes it
$node1->safe_psql('postgres', q{
	SELECT tenancy.add_migration(7, 'CREATE TABLE IF NOT EXISTS public.seventh (id int); SELECT pg_catalog.pg_sleep(3); '
	                                'CREATE INDEX CONCURRENTLY IF NOT EXISTS seventh_idx ON public.seventh (id)',
	                             transactional => false)});
$o = killed_run('8', 'remote-4', '%pg_sleep%');
like($o, qr/remote-4:failed:6:08006/, 'the tenant killed mid-migration failed with 08006 at version 6');
is(() = $o =~ /:migrated:7/g, 7, 'the other seven got 6 and 7');
is($node2->safe_psql('regress_fl_remote-4', q{
	SELECT coalesce(max(version) FILTER (WHERE version = 7), 0) || ' ' || (SELECT count(*) FROM pg_tables WHERE tablename = 'seventh') FROM tenancy.applied_migration}),
	'0 1', 'its first statement committed, its ledger row was not written');
like(run_all(4), qr/remote-4:migrated:7/, 'the rerun applies it again from its first statement');
is($node2->safe_psql('regress_fl_remote-4', q{
	SELECT count(*) FILTER (WHERE version = 7) || ' ' || (SELECT count(*) FROM pg_indexes WHERE indexname = 'seventh_idx') FROM tenancy.applied_migration}),
	'1 1', 'one ledger row for version 7, and its index');

$node1->safe_psql('postgres', q{SELECT tenancy.deprovision(id) FROM tenancy.tenant});
$node1->stop;
$node2->stop;
done_testing();
