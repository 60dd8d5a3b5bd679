# Copyright (c) 2026, the tenancy authors
#
# Background jobs and the worker: start_provision_many and start_migrate_all
# return at once and the worker runs the job after the caller has gone, as
# the role that started it (a job whose owner lost EXECUTE fails with
# 42501); the worker killed (SIGKILL: crash restart), terminated (SIGTERM)
# or the server restarted in the middle of a job: the job resumes and no
# migration is applied twice; cancel_job() in the middle of a tenant: that
# tenant finishes whole, no new one starts, the job ends cancelled and a
# new job finishes the rest; the worker keeps the warm pools filled and
# replaces their spares after add_migration(); a spare dropped behind
# tenancy's back is not taken.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use TenancyTAP;
use Test::More;

my $password = 'regress_pw_' . int(rand(1_000_000_000));
my $node = PostgreSQL::Test::Cluster->new('jobs');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'tenancy'
tenancy.database_prefix = 'regress_jb_'
tenancy.worker_naptime = 1
restart_after_crash = on
});
hba_prepend($node, 'local all regress_provisioner scram-sha-256');
$node->start;

my ($h, $p) = ($node->host, $node->port);
$node->safe_psql('postgres', qq{
	SET log_statement = 'none';
	CREATE ROLE regress_provisioner LOGIN CREATEDB PASSWORD '$password';
	CREATE ROLE regress_admins NOLOGIN;
	CREATE ROLE regress_admin LOGIN IN ROLE regress_admins;
	CREATE EXTENSION tenancy CASCADE;
	CREATE SERVER tenancy_loopback FOREIGN DATA WRAPPER dblink_fdw OPTIONS (host '$h', port '$p', dbname 'postgres');
	CREATE USER MAPPING FOR regress_provisioner SERVER tenancy_loopback
	  OPTIONS (user 'regress_provisioner', password '$password');
	SELECT tenancy.configure('regress_provisioner', 'tenancy_loopback', admin_role => 'regress_admins');
	SELECT tenancy.add_migration(1, 'CREATE TABLE public.hits (version int)');
});

my @tenants = map { "t$_" } 1 .. 6;
my $array = "ARRAY['" . join("','", @tenants) . "']";

sub admin { return $node->safe_psql('postgres', "SET ROLE regress_admin; $_[0]"); }
sub job { return $node->safe_psql('postgres', "SELECT $_[1] FROM tenancy.job WHERE id = $_[0]"); }
sub wait_job
{
	my ($id, $state) = @_;
	ok($node->poll_query_until('postgres', "SELECT state FROM tenancy.job WHERE id = $id", $state),
		"job $id ends $state");
}
sub worker_pid
{
	my $pid;
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'tenancy worker'})
	  or die 'no worker';
	return $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'tenancy worker'});
}
# how many times each tenant applied "version" (its hits rows), as "t1:1 t2:1 ..."
sub hits
{
	my ($version) = @_;
	return join(' ', map { "$_:" . $node->safe_psql("regress_jb_$_", "SELECT count(*) FROM public.hits WHERE version = $version") } @tenants);
}
my $once = join(' ', map { "$_:1" } @tenants);

# the worker runs, connected to tenancy.database
ok(worker_pid() > 0, 'the worker runs');

# start_provision_many returns at once; the caller disconnects; the job runs
my $id = admin("SELECT tenancy.start_provision_many($array, parallel => 2)");
like($id, qr/^\d+$/, 'start_provision_many returns a job id');
wait_job($id, 'done');
is(job($id, q{owner || ' ' || tenants_total || ' ' || tenants_done || ' ' || tenants_failed || ' ' || runs}),
	'regress_admin 6 6 0 1', 'the job provisioned every tenant, as the role that started it, in one run');
is($node->safe_psql('postgres', q{SELECT string_agg(id || ':' || state, ' ' ORDER BY id) FROM tenancy.tenant}),
	join(' ', map { "$_:ready" } @tenants), 'every tenant is ready');
is($node->safe_psql('postgres', "SELECT count(*) FROM tenancy.job_tenant WHERE job = $id AND status = 'provisioned'"),
	'6', 'one outcome per tenant');

# the worker killed with SIGKILL mid-job (the postmaster restarts every
# backend): the job resumes, and no migration is applied twice
sub slow_migration
{
	my ($version) = @_;
	$node->safe_psql('postgres', qq{SELECT tenancy.add_migration($version,
		'INSERT INTO public.hits VALUES ($version); SELECT pg_catalog.pg_sleep(0.4)')});
}
sub wait_migrated
{
	my ($n) = @_;
	$node->poll_query_until('postgres',
		qq{SELECT count(*) >= $n FROM tenancy.migration_progress WHERE status = 'migrated' AND to_version = (SELECT max(version) FROM tenancy.migration)})
	  or die 'no tenant migrated';
}
slow_migration(2);
$id = admin('SELECT tenancy.start_migrate_all(parallel => 1)');
wait_migrated(2);
kill 'KILL', worker_pid();
wait_job($id, 'done');
is(job($id, q{tenants_done || ' ' || tenants_failed || ' ' || (runs > 1)}), '6 0 true',
	'after SIGKILL of the worker the job resumed and finished');
is(hits(2), $once, 'no tenant applied migration 2 twice');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT applied_version::text, ',') FROM tenancy.tenant}), '2',
	'every tenant is at version 2 in the catalog');

# the worker terminated (SIGTERM): started again five seconds later, resumes
slow_migration(3);
$id = admin('SELECT tenancy.start_migrate_all(parallel => 1)');
wait_migrated(2);
kill 'TERM', worker_pid();
wait_job($id, 'done');
is(job($id, q{tenants_done || ' ' || (runs > 1)}), '6 true', 'after SIGTERM of the worker the job resumed');
is(hits(3), $once, 'no tenant applied migration 3 twice');

# the server restarted (immediate shutdown) mid-job
slow_migration(4);
$id = admin('SELECT tenancy.start_migrate_all(parallel => 1)');
wait_migrated(2);
$node->stop('immediate');
$node->start;
wait_job($id, 'done');
is(job($id, q{tenants_done || ' ' || (runs > 1)}), '6 true', 'after an immediate restart the job resumed');
is(hits(4), $once, 'no tenant applied migration 4 twice');

# cancelled in the middle of a tenant: it finishes whole, no new tenant starts
$node->safe_psql('postgres', q{SELECT tenancy.add_migration(5,
	'INSERT INTO public.hits VALUES (5); SELECT pg_catalog.pg_sleep(1.5)')});
$id = admin('SELECT tenancy.start_migrate_all(parallel => 1)');
wait_migrated(1);
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE datname LIKE 'regress_jb_t%' AND wait_event = 'PgSleep'})
  or die 'no tenant running';
admin("SELECT tenancy.cancel_job($id)");
wait_job($id, 'cancelled');
my ($done, $skipped) = split / /, job($id, q{tenants_done || ' ' || tenants_skipped});
ok($done >= 2 && $done < 6, "the cancelled job finished the tenants under way ($done)");
is($done + $skipped, 6, 'and skipped the others');
my %at5 = map { $_ => $node->safe_psql("regress_jb_$_",
	'SELECT count(*) FROM tenancy.applied_migration WHERE version = 5') . ':'
	  . $node->safe_psql("regress_jb_$_", 'SELECT count(*) FROM public.hits WHERE version = 5') } @tenants;
is(scalar(grep { $_ eq '1:1' } values %at5), $done, 'each finished tenant has migration 5 and its row once');
is(scalar(grep { $_ eq '0:0' } values %at5), 6 - $done, 'each other tenant has neither');
my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE regress_admin; SELECT tenancy.cancel_job($id)");
like($err, qr/ERROR:  job $id has already finished/, 'a finished job cannot be cancelled');
$id = admin('SELECT tenancy.start_migrate_all(parallel => 2)');
wait_job($id, 'done');
is(hits(5), $once, 'a new job finishes the rest, once each');

# the job runs with its owner's privileges, not the worker's
$node->safe_psql('postgres',
	'REVOKE EXECUTE ON FUNCTION tenancy.migrate_all(integer, boolean, text[], integer, boolean, bigint) FROM regress_admins');
$id = admin('SELECT tenancy.start_migrate_all()');
wait_job($id, 'failed');
like(job($id, q{last_sqlstate || ' ' || last_error}), qr/^42501 permission denied for function migrate_all/,
	'a job whose owner may not run migrate_all fails with 42501');
$node->safe_psql('postgres',
	'GRANT EXECUTE ON FUNCTION tenancy.migrate_all(integer, boolean, text[], integer, boolean, bigint) TO regress_admins');

# warm pools: the worker fills them on its own and replaces stale spares
$node->safe_psql('postgres', q{SELECT tenancy.add_server('tenancy_loopback', warm_pool => 2)});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 2 FROM tenancy.spare WHERE ready AND applied_version = 5}),
	'the worker filled the warm pool');
$node->safe_psql('postgres', q{SELECT tenancy.add_migration(6, 'CREATE TABLE public.more (id int)')});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) FILTER (WHERE applied_version = 6) = 2 AND count(*) = 2 FROM tenancy.spare WHERE ready}),
	'after add_migration the worker replaced the spares');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'regress_jb_tmp_%'}), '2',
	'and dropped the old ones');

# a spare dropped behind tenancy's back is never taken
my $spare = $node->safe_psql('postgres', q{SELECT database_name FROM tenancy.spare ORDER BY created_at LIMIT 1});
$node->safe_psql('postgres', qq{DROP DATABASE "$spare"});
is(admin(q{SELECT state FROM tenancy.provision('late')}), 'ready', 'provisioning works with a spare gone');
is($node->safe_psql('regress_jb_late', q{SELECT count(*) FROM tenancy.applied_migration}), '6',
	'the new tenant has every migration');

$node->stop;
done_testing();
