# Copyright (c) 2026, the tenancy authors
#
# With tenancy in session_preload_libraries: settings are checked from the
# first statement, role defaults select a tenant, the catalog survives a
# restart and a crash, and pg_dump/pg_restore of the admin database keeps
# every catalog row.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('admin');
$node->init;
$node->append_conf('postgresql.conf', qq{
session_preload_libraries = 'tenancy'
tenancy.database_prefix = 'regress_tap_'
});
$node->start;

# Preloaded, the prefix is reserved and values are checked from the first
# statement: no placeholder is ever stored.
my ($ret, $out, $err) = $node->psql('postgres', "SET tenancy.curent = 'acme'");
isnt($ret, 0, 'typo in a tenancy setting is refused');
like($err, qr/invalid configuration parameter name "tenancy\.curent"/, 'typo error names the parameter');

($ret, $out, $err) = $node->psql('postgres', "SET tenancy.current = 'Not Valid'");
isnt($ret, 0, 'malformed tenant is refused at SET time');
like($err, qr/invalid value for parameter "tenancy\.current"/, 'malformed tenant error');

is($node->safe_psql('postgres', 'SHOW tenancy.database_prefix'), 'regress_tap_',
	'postgresql.conf sets the database prefix');

$node->safe_psql('postgres', 'CREATE EXTENSION tenancy CASCADE');
$node->safe_psql('postgres', q{
	SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int PRIMARY KEY)', 'items');
	SELECT tenancy.add_migration(2, 'INSERT INTO public.item VALUES (42)');
	SELECT tenancy.provision('acme', metadata => '{"plan": "gold"}');
	SELECT tenancy.provision('globex');
	SELECT tenancy.suspend('globex');
});

# A role default selects a tenant for every new session.
$node->safe_psql('postgres', q{CREATE ROLE regress_app LOGIN});
($ret, $out, $err) = $node->psql('postgres', q{ALTER ROLE regress_app SET tenancy.current = 'Bad Name'});
isnt($ret, 0, 'ALTER ROLE refuses a malformed tenant');
$node->safe_psql('postgres', q{ALTER ROLE regress_app SET tenancy.current = 'acme'});
($ret, $out, $err) = $node->psql('postgres', 'SELECT tenancy.current_tenant()', extra_params => [ '-U', 'regress_app' ]);
like($err, qr/permission denied for tenant "acme"/, 'selecting is not using: a role default alone gives no access');
$node->safe_psql('postgres', q{SELECT tenancy.grant_access('acme', 'regress_app')});
is($node->safe_psql('postgres', 'SELECT tenancy.current_tenant()', extra_params => [ '-U', 'regress_app' ]),
	'acme', 'role default selects the tenant in a new session');

my $catalog_query = q{
	SELECT string_agg(format('%s|%s|%s|%s|%s', id, database_name, state, applied_version, metadata), E'\n' ORDER BY id)
	  FROM tenancy.tenant};
my $migration_query = q{
	SELECT string_agg(format('%s|%s|%s', version, description, checksum), E'\n' ORDER BY version)
	  FROM tenancy.migration};
my $catalog = $node->safe_psql('postgres', $catalog_query);
my $migrations = $node->safe_psql('postgres', $migration_query);
like($catalog, qr/^acme\|regress_tap_acme\|ready\|2\|\{"plan": "gold"\}\nglobex\|regress_tap_globex\|suspended\|2\|\{\}$/,
	'catalog holds both tenants');

# pg_dump and pg_restore of the admin database keep every catalog row.
my $dumpfile = $node->basedir . '/admin.dump';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-Fc', '-f', $dumpfile ], 'pg_dump of the admin database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dumpfile ], 'pg_restore into a new database');
is($node->safe_psql('restored', $catalog_query), $catalog, 'restored tenant rows are identical');
is($node->safe_psql('restored', $migration_query), $migrations, 'restored migrations are identical');
is($node->safe_psql('restored', q{SET tenancy.current = 'acme'; SELECT tenancy.current_tenant()}),
	'acme', 'restored catalog resolves tenants');
$node->safe_psql('postgres', 'DROP DATABASE restored');

# A clean restart keeps everything.
$node->restart;
is($node->safe_psql('postgres', $catalog_query), $catalog, 'catalog unchanged after restart');
is($node->safe_psql('regress_tap_acme', 'SELECT id FROM public.item'), '42', 'tenant data unchanged after restart');

# An immediate shutdown (no checkpoint: crash recovery at the next start)
# loses nothing committed.
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', $catalog_query), $catalog, 'catalog unchanged after a crash restart');
is($node->safe_psql('postgres', q{SET tenancy.current = 'acme'; SELECT tenancy.current_tenant()}),
	'acme', 'tenant resolves after a crash restart');
($ret, $out, $err) = $node->psql('postgres', q{SET tenancy.current = 'globex'; SELECT tenancy.current_tenant()});
like($err, qr/tenant "globex" is not ready/, 'suspended tenant still refused after a crash restart');

$node->safe_psql('postgres', q{
	SELECT tenancy.deprovision(id, force => true) FROM tenancy.tenant;
	ALTER ROLE regress_app RESET tenancy.current;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname LIKE 'regress_tap_%' AND datname <> 'regress_tap_template'}),
	'0', 'no tenant database left');

# Parallel workers load their leader's session_preload_libraries after
# start-up: tenancy must load there too
is($node->safe_psql('postgres', q{
	SET force_parallel_mode = on; SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
	SELECT count(*) FROM pg_class}) > 0 ? 'ran' : 'no', 'ran',
	'a query in a parallel worker runs with tenancy in session_preload_libraries');

# Not preloaded, tenancy refuses to load (55000, with a hint): CREATE
# EXTENSION, LOAD and every tenancy function.  Without it nothing would keep
# search_path with a selection made before the library was loaded, and a
# schema tenant's unqualified writes could land in public.
$node->adjust_conf('postgresql.conf', 'session_preload_libraries', "''");
$node->restart;
$node->safe_psql('postgres', 'CREATE DATABASE regress_not_preloaded');
($ret, $out, $err) = $node->psql('regress_not_preloaded', 'CREATE EXTENSION tenancy CASCADE');
like($err, qr/ERROR:  tenancy must be loaded via shared_preload_libraries or session_preload_libraries\n(.*\n)*HINT:  Add tenancy to shared_preload_libraries/,
	'not preloaded: CREATE EXTENSION is refused, with a hint');
is($node->safe_psql('regress_not_preloaded', q{SELECT count(*) FROM pg_extension WHERE extname = 'tenancy'}), '0',
	'and nothing is installed');
($ret, $out, $err) = $node->psql('postgres', 'SELECT tenancy.current_tenant()', extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  55000: tenancy must be loaded via shared_preload_libraries/,
	'not preloaded: a tenancy function is refused (55000)');
($ret, $out, $err) = $node->psql('postgres', q{SET tenancy.current = 'acme'; SELECT tenancy.provision('late')});
like($err, qr/tenancy must be loaded via/, 'not preloaded: provisioning is refused');
($ret, $out, $err) = $node->psql('postgres', q{LOAD 'tenancy'});
like($err, qr/tenancy must be loaded via/, 'not preloaded: LOAD is refused');
$node->adjust_conf('postgresql.conf', 'session_preload_libraries', "'tenancy'");
$node->restart;
is($node->safe_psql('postgres', q{SELECT count(*) FROM tenancy.tenant}), '0', 'preloaded again, tenancy works');

$node->stop;
done_testing();
