#!/usr/bin/env bash
# test/layers.sh: checks the layering of src/ that README's "Code map"
# describes.  Every source file belongs to one layer; a file may include
# only the headers of its own layer or of a lower one; the modules'
# includes form no cycle; no header declares another module's functions
# (each extern function declared in x.h is defined in x.c, or, for
# isolation.h, in an isolation_*.c); every source file is listed in
# README's code map.  Prints what is wrong and exits 1, or prints
# "layers: ok".
set -u
cd "$(dirname "$0")/../src" || exit 1
exec perl -e '
use strict;
use warnings;
# layer of each module, lowest first (keep in step with README "Code map")
my %layer;
my @layers = (
	[qw(tenancy tenant_id guc names fault try)],                 # 0 base
	[qw(conninfo remote fleet)],                                 # 1 remote access
	[qw(scope locks catalog cache jobs)],                             # 2 catalog
	[qw(ledger guard engine database_ddl template pool isolation kept selection repair)], # 3 domain
	[qw(provision adopt reconcile migrate health access select routed servers hooks worker entry)],  # 4 SQL entry points
);
for my $i (0 .. $#layers) { $layer{$_} = $i for @{ $layers[$i] }; }
sub module { my ($f) = @_; $f =~ s/\.[ch]$//; $f =~ s/^isolation_.*/isolation/; return $f eq "tenancy" && $_[1] ? "entry" : $f; }
my $bad = 0;
my %edges;
my @files = sort glob("*.c *.h");
for my $f (@files)
{
	my $m = module($f, $f eq "tenancy.c");
	if (!exists $layer{$m}) { print "layers: $f belongs to no layer\n"; $bad = 1; next; }
	open(my $fh, "<", $f) or die $!;
	while (<$fh>)
	{
		next unless m{^#include "([^"/]+)\.h"} && -f "$1.h";
		my $to = module("$1.h");
		next if $to eq $m;
		if (!exists $layer{$to}) { print "layers: $f includes $1.h, which belongs to no layer\n"; $bad = 1; next; }
		if ($layer{$to} > $layer{$m}) { print "layers: $f (layer $layer{$m}) includes $1.h (layer $layer{$to}): calls go down only\n"; $bad = 1; }
		$edges{$m}{$to} = 1;
	}
	close $fh;
}
# cycles among modules
my (%state, @stack);
sub visit
{
	my ($m) = @_;
	$state{$m} = 1; push @stack, $m;
	for my $to (sort keys %{ $edges{$m} || {} })
	{
		if (($state{$to} // 0) == 1) { print "layers: include cycle: @stack $to\n"; $bad = 1; }
		elsif (!$state{$to}) { visit($to); }
	}
	pop @stack; $state{$m} = 2;
}
visit($_) for grep { !$state{$_} } sort keys %edges;
# a header declares only its own module'\''s functions
my %defined;
for my $c (grep { /\.c$/ } @files)
{
	open(my $fh, "<", $c) or die $!;
	my $prev = "";
	while (<$fh>) { $defined{$1} = $c if /^(tenancy_\w+)\(/ && $prev !~ /^static/; $prev = $_; }
	close $fh;
}
for my $h (grep { /\.h$/ } @files)
{
	my $m = module($h);
	open(my $fh, "<", $h) or die $!;
	while (<$fh>)
	{
		next unless /^extern\b.*?\b(tenancy_\w+)\s*\(/;
		my $fn = $1;
		my $c = $defined{$fn};
		if (!defined $c) { print "layers: $h declares $fn, which no .c file defines\n"; $bad = 1; next; }
		if (module($c) ne $m) { print "layers: $h declares $fn, defined in $c (another module)\n"; $bad = 1; }
	}
	close $fh;
}
# README code map lists every file
open(my $rd, "<", "../README.md") or die $!;
my $readme = do { local $/; <$rd> };
my ($map) = $readme =~ /\n## Code map\n(.*?)(?=\n## |\z)/s;
if (!defined $map) { print "layers: README.md has no \"## Code map\" section\n"; $bad = 1; $map = ""; }
for my $f (@files) { if ($map !~ /`\Q$f\E`/) { print "layers: README code map does not list $f\n"; $bad = 1; } }
print "layers: ok\n" unless $bad;
exit $bad;
'
