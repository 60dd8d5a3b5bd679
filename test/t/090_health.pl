# Copyright (c) 2026, the tenancy authors
#
# tenancy.health() and a server that hangs: a foreign server whose address
# accepts TCP connections but never answers (a socket this test listens on
# and never serves) holds several tenants.  health() reports each of them
# with a connection timeout (08001) in its own row, reports the tenants of
# this cluster as reachable, and opens ONE connection attempt for that
# server, not one per tenant (counted in the listener's accept queue), so a
# hung server costs one tenancy.connect_timeout, whatever number of tenants
# it holds.
use strict;
use warnings FATAL => 'all';

use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $listener = IO::Socket::INET->new(
	LocalAddr => '127.0.0.1',
	LocalPort => 0,
	Proto => 'tcp',
	Listen => 64,
	ReuseAddr => 1) or die "cannot listen: $!";
my $hung_port = $listener->sockport;

my $node = PostgreSQL::Test::Cluster->new('health');
$node->init;
$node->append_conf('postgresql.conf', qq{
session_preload_libraries = 'tenancy'
tenancy.database_prefix = 'regress_hl_'
tenancy.connect_timeout = 2
});
$node->start;

$node->safe_psql('postgres', qq{
	CREATE EXTENSION tenancy CASCADE;
	CREATE SERVER hung FOREIGN DATA WRAPPER dblink_fdw
	  OPTIONS (host '127.0.0.1', port '$hung_port', dbname 'postgres');
	CREATE USER MAPPING FOR CURRENT_USER SERVER hung OPTIONS (user 'nobody', password 'unused');
	SELECT tenancy.add_migration(1, 'CREATE TABLE public.item (id int)');
	SELECT id FROM tenancy.provision('here-1');
	SELECT id FROM tenancy.provision('here-2');
	-- tenants of the hung server, registered as they would be had it answered once
	INSERT INTO tenancy.tenant (id, database_name, server, state, applied_version)
	SELECT 'far-' || i, 'regress_hl_far-' || i, 'hung', 'ready', 1 FROM generate_series(1, 5) i;
});

my $rows = $node->safe_psql('postgres', q{
	SELECT tenant || ' ' || reachable || ' ' || coalesce(ledger_version::text, '-') || ' ' ||
	       coalesce(substr(error, 1, 5), '-')
	  FROM tenancy.health() ORDER BY tenant});
is($rows, join("\n",
	(map { "far-$_ false - 08001" } 1 .. 5),
	'here-1 true 1 -', 'here-2 true 1 -'),
	'tenants of the hung server fail with 08001 in their rows; the others are reachable');
like($node->safe_psql('postgres', q{SELECT error FROM tenancy.health('far-3')}),
	qr/timeout expired after 2 s/, 'the error says the connection timed out');

# count the connection attempts that reached the hung server's address
$listener->blocking(0);
my $attempts = 0;
while (my $conn = $listener->accept)
{
	$attempts++;
	close($conn);
}
is($attempts, 2, 'one connection attempt per health() call for the whole server, not one per tenant');

is($node->safe_psql('postgres', q{SELECT dblink_get_connections() IS NULL}), 't', 'no connection left open');
$node->safe_psql('postgres', q{
	DELETE FROM tenancy.tenant WHERE server = 'hung';
	SELECT tenancy.deprovision(id) FROM tenancy.tenant;
});
$node->stop;
done_testing();
