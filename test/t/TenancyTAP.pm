# Copyright (c) 2026, the tenancy authors
#
# What several TAP tests do alike.
package TenancyTAP;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use PostgreSQL::Test::Utils;

our @EXPORT = qw(hba_prepend);

# Puts "line" first in the node's pg_hba.conf, where it wins over every
# later line; it counts from the node's next start or reload.
sub hba_prepend
{
	my ($node, $line) = @_;
	my $hba = $node->data_dir . '/pg_hba.conf';
	my $rest = slurp_file($hba);

	open(my $fh, '>', $hba) or die $!;
	print $fh "$line\n" . $rest;
	close($fh);
	return;
}

1;
