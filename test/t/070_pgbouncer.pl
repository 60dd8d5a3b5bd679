# Copyright (c) 2026, the tenancy authors
#
# Behind a real PgBouncer in transaction mode (one server connection shared
# by every client): many concurrent clients, each selecting its own tenant
# with SET LOCAL, read a shared table through a row-level security policy on
# tenancy.current_tenant() and never see another tenant's rows; and a client
# that selects with a session-level SET leaks nothing to the next client,
# which gets an error (tenancy.strict_local) instead of those rows.
use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pgbouncer = '/usr/sbin/pgbouncer';
plan skip_all => 'pgbouncer is not installed (test/run.sh installs it)' unless -x $pgbouncer;

my $node = PostgreSQL::Test::Cluster->new('pooled');
$node->init;
$node->append_conf('postgresql.conf', qq{
session_preload_libraries = 'tenancy'
tenancy.database_prefix = 'regress_pb_'
});
$node->start;

my $clients = 6;
$node->safe_psql('postgres', q{
	CREATE EXTENSION tenancy CASCADE;
	CREATE ROLE app LOGIN;
	ALTER ROLE app SET tenancy.strict_local = on;
	CREATE TABLE public.app_data (tenant text NOT NULL, secret text NOT NULL);
	ALTER TABLE public.app_data ENABLE ROW LEVEL SECURITY;
	ALTER TABLE public.app_data FORCE ROW LEVEL SECURITY;
	CREATE POLICY app_data_tenant ON public.app_data USING (tenant = tenancy.current_tenant());
	GRANT SELECT ON public.app_data TO app;
});
foreach my $i (1 .. $clients)
{
	$node->safe_psql('postgres', qq{
		SELECT tenancy.provision('t$i');
		SELECT tenancy.grant_access('t$i', 'app');
		INSERT INTO public.app_data VALUES ('t$i', 'secret-$i'), ('t$i', 'more-$i');
	});
}

# PgBouncer, transaction pooling, a single server connection for everyone
my $dir = $node->basedir . '/pgbouncer';
mkdir $dir;
my $bport = PostgreSQL::Test::Cluster::get_free_port();
my ($host, $port) = ($node->host, $node->port);
open(my $fh, '>', "$dir/userlist.txt") or die $!;
print $fh qq{"app" ""\n};
close($fh);
open($fh, '>', "$dir/pgbouncer.ini") or die $!;
print $fh qq{[databases]
postgres = host=$host port=$port dbname=postgres
[pgbouncer]
listen_addr =
unix_socket_dir = $dir
listen_port = $bport
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 100
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
};
close($fh);
my ($bo, $be) = ('', '');
my $bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ], '>', \$bo, '2>', \$be);
my $through = "host=$dir port=$bport dbname=postgres user=app";
foreach my $try (1 .. 50)
{
	last if system('psql', '-X', '-qAt', '-d', $through, '-c', 'SELECT 1') == 0;
	select(undef, undef, undef, 0.2);
}

# Concurrent clients, interleaved on the one server connection.
my $rounds = 40;
my (@runs, @outs);
foreach my $i (1 .. $clients)
{
	my $script = join('', map {
		"BEGIN;\nSET LOCAL tenancy.current = 't$i';\n"
		  . "SELECT 't$i:' || string_agg(secret, ',' ORDER BY secret) || ':' || pg_backend_pid() FROM public.app_data;\nCOMMIT;\n"
	} 1 .. $rounds);
	my $out = '';
	push @outs, \$out;
	push @runs, IPC::Run::start([ 'psql', '-X', '-qAt', '-v', 'ON_ERROR_STOP=1', '-d', $through ],
		'<', \$script, '>', \$out, '2>', \my $err);
}
$_->finish foreach @runs;
my ($answers, $wrong) = (0, 0);
my %server_pids;
foreach my $i (1 .. $clients)
{
	foreach my $line (split /\n/, ${ $outs[ $i - 1 ] })
	{
		my ($rows, $pid) = $line =~ /^(.*):(\d+)$/;
		$answers++;
		$server_pids{$pid}++ if defined $pid;
		$wrong++ unless defined $rows && $rows eq "t$i:more-$i,secret-$i";
	}
}
is($answers, $clients * $rounds, "every client got an answer to every transaction ($answers)");
is($wrong, 0, 'no answer held another tenant\'s rows');
is(scalar(keys %server_pids), 1, "all $clients clients shared one server connection, transaction by transaction");

# A client that selects with a session-level SET: the value stays on the
# shared server connection, and the next client, which selects nothing,
# gets an error, not those rows.
my ($ret, $out, $err) = (0, '', '');
system('psql', '-X', '-qAt', '-d', $through, '-c', q{SET tenancy.current = 't1'});
IPC::Run::run([ 'psql', '-X', '-qAt', '-d', $through, '-c', 'SELECT secret FROM public.app_data ORDER BY 1' ],
	'>', \$out, '2>', \$err);
unlike($out, qr/secret-1/, 'the leaked selection served no rows to the next client');
like($err, qr/tenancy.current was set outside the current transaction/, 'the next client is told why');

$bouncer->kill_kill;
$node->stop;
done_testing();
