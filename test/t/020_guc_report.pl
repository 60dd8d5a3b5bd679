# Copyright (c) 2026, the tenancy authors
#
# tenancy.current is GUC_REPORT: the server tells the client its value at
# connection start and whenever it changes (ParameterStatus messages), which
# is what lets poolers and drivers track the selected tenant.  Checked by
# speaking the wire protocol directly, so no client library can hide it.
use strict;
use warnings FATAL => 'all';

use IO::Socket::UNIX;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('report');
$node->init;
$node->append_conf('postgresql.conf', "session_preload_libraries = 'tenancy'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION tenancy CASCADE');

my $user = getpwuid($<);
my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $node->host . '/.s.PGSQL.' . $node->port)
  or die "cannot connect: $!";

# Reads messages until ReadyForQuery; returns the ParameterStatus pairs seen.
sub read_until_ready
{
	my %status;
	while (1)
	{
		my $header;
		read($sock, $header, 5) == 5 or die 'connection closed';
		my ($type, $len) = unpack('a1 N', $header);
		my $body = '';
		read($sock, $body, $len - 4) if $len > 4;
		if ($type eq 'S')
		{
			my ($name, $value) = split(/\0/, $body, -1);
			$status{$name} = $value;
		}
		die "server error: $body" if $type eq 'E';
		return \%status if $type eq 'Z';
	}
}

sub query
{
	my ($sql) = @_;
	print $sock pack('a1 N Z*', 'Q', 4 + length($sql) + 1, $sql);
	return read_until_ready();
}

my $params = pack('(Z*)*', 'user', $user, 'database', 'postgres') . "\0";
print $sock pack('N N', 8 + length($params), 196608) . $params;
my $status = read_until_ready();
ok(exists $status->{'tenancy.current'}, 'tenancy.current is reported at connection start');
is($status->{'tenancy.current'}, '', 'reported value is empty: no tenant selected');

$status = query(q{SET tenancy.current = 'acme'});
is($status->{'tenancy.current'}, 'acme', 'SET reports the new value');

$status = query(q{BEGIN; SET LOCAL tenancy.current = 'globex'});
is($status->{'tenancy.current'}, 'globex', 'SET LOCAL reports the transaction value');
$status = query(q{COMMIT});
is($status->{'tenancy.current'}, 'acme', 'when the transaction ends, the session value is reported again');

$status = query(q{RESET tenancy.current});
is($status->{'tenancy.current'}, '', 'RESET reports the empty value');

$status = query(q{SELECT 1});
ok(!exists $status->{'tenancy.current'}, 'nothing is reported when the value does not change');

print $sock pack('a1 N', 'X', 4);
close($sock);
$node->stop;
done_testing();
