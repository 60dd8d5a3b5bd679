# Copyright (c) 2026, the tenancy authors
#
# The example application in test/example: a node-postgres HTTP service with
# ONE shared pg.Pool (5 connections) that selects the tenant of each request
# with tenancy.use($1, true) inside the request's transaction.  test.js fires
# 600 requests, 50 at a time, with mixed tenants, reads and writes, and bad
# cases; every answer must belong to the tenant its request named (row-level
# security on current_tenant_id()), counts must add up, and unknown, malformed,
# non-member and suspended tenants must get 404, 400, 403 and 409 with their
# SQLSTATE.  node and npm are required (CI installs them): without them this
# test fails rather than skips.
use strict;
use warnings FATAL => 'all';

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $source = abs_path(dirname(__FILE__) . '/../example');

# node and npm, or fail
sub version_of
{
	my ($cmd) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval { IPC::Run::run([ $cmd, '--version' ], '>', \$out, '2>', \$err) };
	return $ok ? ($out =~ s/\s+$//r) : undef;
}
my $node_version = version_of('node');
my $npm_version = version_of('npm');
ok(defined $node_version, 'node is installed (test/run.sh installs it): ' . ($node_version // 'missing'));
ok(defined $npm_version, 'npm is installed (test/run.sh installs it): ' . ($npm_version // 'missing'));
if (!defined $node_version || !defined $npm_version)
{
	done_testing();
	exit 1;
}

# The application in a copy of test/example, its dependencies installed from
# package-lock.json; npm's cache under the test's own directory (the postgres
# OS user's home may not be writable).
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $app_dir = "$tmp/example";
mkdir $app_dir or die $!;
foreach my $f (qw(package.json package-lock.json app.js test.js setup.sql))
{
	copy("$source/$f", "$app_dir/$f") or die "copy $f: $!";
}
{
	local $ENV{npm_config_cache} = "$tmp/npm-cache";
	local $ENV{npm_config_update_notifier} = 'false';
	local $ENV{npm_config_fund} = 'false';
	local $ENV{npm_config_audit} = 'false';
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'npm', 'ci', '--prefix', $app_dir ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(600));
	ok($ok, 'npm ci installed pg from package-lock.json') or diag("npm ci:\n$out\n$err");
	ok(-f "$app_dir/node_modules/pg/package.json", 'node_modules/pg is there');
}

my $node = PostgreSQL::Test::Cluster->new('node_client');
$node->init;
$node->append_conf('postgresql.conf', qq{
session_preload_libraries = 'tenancy'
max_connections = 40
});
$node->start;

# setup.sql: extension, six tenants (example_<id> databases), the app role,
# its memberships (all but hooli), soylent suspended, the shared RLS table
$node->safe_psql('postgres', slurp_file("$app_dir/setup.sql"));
is( $node->safe_psql('postgres',
		q{SELECT string_agg(id || ':' || state, ',' ORDER BY id) FROM tenancy.tenant}),
	'acme:ready,globex:ready,hooli:ready,initech:ready,soylent:suspended,umbrella:ready',
	'six tenants provisioned, one suspended');
is( $node->safe_psql('postgres',
		q{SELECT r.rolsuper, r.rolbypassrls, c.relowner = r.oid
		    FROM pg_roles r, pg_class c
		   WHERE r.rolname = 'example_app' AND c.oid = 'public.items'::regclass}),
	'f|f|f', 'the app role is not a superuser, has no BYPASSRLS and does not own the table');

# the app: one pool of 5 connections to the admin database, as example_app
my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $url = "http://127.0.0.1:$http_port";
my ($app_out, $app_err) = ('', '');
my $app;
{
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGUSER} = 'example_app';
	local $ENV{PGDATABASE} = 'postgres';
	local $ENV{PORT} = $http_port;
	local $ENV{POOL_SIZE} = 5;
	delete local $ENV{PGPASSWORD};
	$app = IPC::Run::start([ 'node', "$app_dir/app.js" ], '>', \$app_out, '2>', \$app_err);
}
# always stop it, whatever happens below
END { eval { $app->kill_kill(grace => 5) if $app && $app->pumpable; }; }

my $http = HTTP::Tiny->new(timeout => 5);
my $up = 0;
foreach my $try (1 .. 150)
{
	$app->pump_nb;
	last unless $app->pumpable;
	my $r = $http->get("$url/health");
	if ($r->{success})
	{
		$up = 1;
		last;
	}
	select(undef, undef, undef, 0.2);
}
ok($up, "the app answers on port $http_port") or diag("app output:\n$app_out\n$app_err");

# the load: 600 requests, 50 at a time
my ($test_out, $test_err) = ('', '');
my $test_ok;
{
	local $ENV{APP_URL} = $url;
	local $ENV{REQUESTS} = 600;
	local $ENV{CONCURRENCY} = 50;
	$test_ok = IPC::Run::run([ 'node', "$app_dir/test.js" ],
		'>', \$test_out, '2>', \$test_err, IPC::Run::timeout(300));
}
ok($test_ok, 'test.js passed') or diag("test.js:\n$test_out\n$test_err");
note($_) foreach grep { !/^SUMMARY / } split /\n/, $test_out;

my ($json) = $test_out =~ /^SUMMARY (.*)$/m;
my $s = eval { decode_json($json // '') } // {};
is($s->{requests}, 600, 'test.js sent 600 requests');
is($s->{concurrency}, 50, '50 at a time');
is($s->{pool_size}, 5, 'through a pool of 5 connections');
is($s->{failures}, 0, 'no check failed');
cmp_ok($s->{rows_checked} // 0, '>', 1000, 'more than 1000 returned rows checked');
is($s->{foreign_rows}, 0, 'no answer held another tenant\'s row');
cmp_ok($s->{most_tenants_on_one_backend} // 0, '>=', 2, 'connections served several tenants each');
foreach my $status (200, 201, 400, 403, 404, 409)
{
	cmp_ok($s->{statuses}{$status} // 0, '>', 0, "some answers were $status");
}
ok(!exists $s->{statuses}{500}, 'no answer was 500');

# what the database holds agrees with what the app answered, and nothing was
# written for the tenants the app may not use
my %in_db = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres', 'SELECT tenant, count(*) FROM public.items GROUP BY tenant');
is_deeply({ map { $_ => $in_db{$_} } qw(acme globex initech umbrella) }, $s->{final_counts} // {},
	'per tenant row counts in the table are those the app answered');
is("$in_db{hooli}/$in_db{soylent}", '2/2', 'the non-member and the suspended tenant got no rows');

# A selection made the way some drivers and ORMs make it, with set_config()
# and a bind parameter (the extended protocol), on schema tenants whose
# tables the next statements name unqualified: in a pool of 4, each of 200
# requests must read its own tenant's row, through a simple-protocol query
# and an extended-protocol one alike.  (Before 0.2.0 every one failed with
# 42P01: the path moved only once the portal was dropped, after the next
# statement had been parsed.)
$node->safe_psql('postgres', q{
	SELECT tenancy.provision('nb-one', isolation => 'schema');
	SELECT tenancy.provision('nb-two', isolation => 'schema');
	CREATE TABLE "tenant_nb-one".notes AS SELECT 'nb-one'::text AS tenant;
	CREATE TABLE "tenant_nb-two".notes AS SELECT 'nb-two'::text AS tenant;
	SELECT tenancy.grant_access('nb-one', 'example_app');
	SELECT tenancy.grant_access('nb-two', 'example_app');
});
my $set_config_js = q{
const { Pool } = require('pg');
const pool = new Pool({ max: 4 });
(async () => {
  const tally = { requests: 0, ok: 0, wrong: 0, errors: {} };
  await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const tenant = i % 2 ? 'nb-two' : 'nb-one';
    const c = await pool.connect();
    tally.requests++;
    try {
      await c.query('BEGIN');
      await c.query("SELECT set_config('tenancy.current', $1, true)", [tenant]);
      const simple = await c.query('SELECT tenant FROM notes');
      const extended = await c.query('SELECT tenant FROM notes WHERE $1::int = 1', [1]);
      if (simple.rows.length === 1 && simple.rows[0].tenant === tenant &&
          extended.rows.length === 1 && extended.rows[0].tenant === tenant) tally.ok++;
      else tally.wrong++;
      await c.query('COMMIT');
    } catch (e) {
      tally.errors[e.code] = (tally.errors[e.code] || 0) + 1;
      await c.query('ROLLBACK').catch(() => {});
    } finally {
      c.release();
    }
  }));
  console.log(JSON.stringify(tally));
  await pool.end();
})();
};
{
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGUSER} = 'example_app';
	local $ENV{PGDATABASE} = 'postgres';
	local $ENV{NODE_PATH} = "$app_dir/node_modules";
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'node', '-e', $set_config_js ], '>', \$out, '2>', \$err, IPC::Run::timeout(120));
	ok($ok, 'the set_config() client ran') or diag("$out\n$err");
	my $t = eval { decode_json($out) } // {};
	is($t->{requests}, 200, '200 requests through a pool of 4');
	is($t->{ok}, 200, 'each read its own tenant\'s row right after set_config($1), simple and extended protocol')
	  or diag($out);
	is($t->{wrong}, 0, 'none read another tenant\'s row');
}

# connstr(format => 'uri'): node-postgres takes it as a connection string
# (it rejects the keyword form) and reaches the tenant's database with it
my $uri = $node->safe_psql('postgres', q{SELECT tenancy.connstr('acme', format => 'uri')},
	extra_params => [ '-U', 'example_app' ]);
like($uri, qr{^postgresql://[^/]+:\d+/example_acme$}, "connstr(format => 'uri') is a postgresql:// URI");
{
	local $ENV{PGUSER} = 'example_app';
	local $ENV{NODE_PATH} = "$app_dir/node_modules";
	my ($out, $err) = ('', '');
	my $js = q{
const { Client } = require('pg');
const c = new Client({ connectionString: process.argv[1] });
c.connect().then(() => c.query('SELECT current_database() AS db')).then((r) => {
  console.log(r.rows[0].db); return c.end();
}).catch((e) => { console.error(e.message); process.exit(1); });
};
	IPC::Run::run([ 'node', '-e', $js, $uri ], '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	is($out =~ s/\s+$//r, 'example_acme', 'node-postgres connects to the tenant database with the URI') or diag($err);
}

# SIGTERM: the app drains, closes its pool and exits 0
$app->signal('TERM');
my $timer = IPC::Run::timer(20);
$timer->start;
while ($app->pumpable && !$timer->is_expired)
{
	$app->pump_nb;
	select(undef, undef, undef, 0.1);
}
my $stopped = !$app->pumpable;
if ($stopped) { $app->finish; } else { $app->kill_kill(grace => 5); }
ok($stopped, 'the app stopped on SIGTERM');
is($app->full_result(0), 0, 'with exit code 0');
is($app_err, '', 'the app logged no errors');
ok($node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM pg_stat_activity WHERE usename = 'example_app'}),
	'its pooled connections are closed');

$node->stop;
done_testing();
