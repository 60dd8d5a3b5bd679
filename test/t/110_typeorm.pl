# Copyright (c) 2026, the tenancy authors
#
# The TypeORM project in test/example/typeorm: two entities (User, Post with
# a foreign key to User) whose migrations the real TypeORM CLI generates
# against a scratch database, the first from nothing, the second from a
# later change to Post (a "published" column).  register.js registers them
# (up and down SQL recorded from the migration classes) with
# tenancy.add_migration, unchanged: unqualified names, which database tenants
# run with search_path = public and schema tenants in their schema.  Then,
# on database and schema tenants alike: provisioning at migration 1, rows
# kept across migrate_all to 2, migrate_all(to_version => 1) rolling back
# (the column gone, ledger and migration_status at 1), migrate_all() bringing
# them back.  Failure paths: register.js refuses what it cannot register and
# registers all of a run or nothing; TypeORM's down() of the first migration
# names "public"."post_author" and so fails on a schema tenant, leaving it at
# a version its ledger states; a migration without down cannot be rolled
# back.  node and npm are required (test/run.sh installs them): without
# them this test fails rather than skips.
use strict;
use warnings FATAL => 'all';

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Copy qw(copy);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $source = abs_path(dirname(__FILE__) . '/../example/typeorm');

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

# The project in a copy of test/example/typeorm, its dependencies (typeorm,
# pg) installed from package-lock.json; npm's cache under the test's own
# directory (the postgres OS user's home may not be writable).
my $tmp = abs_path(PostgreSQL::Test::Utils::tempdir);
my $app_dir = "$tmp/typeorm";
foreach my $d ($app_dir, "$app_dir/entity", "$app_dir/later")
{
	mkdir $d or die "mkdir $d: $!";
}
foreach my $f (qw(package.json package-lock.json data-source.js register.js
	entity/User.js entity/Post.js later/Post.js))
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
	ok($ok, 'npm ci installed typeorm and pg from package-lock.json') or diag("npm ci:\n$out\n$err");
	ok(-f "$app_dir/node_modules/typeorm/package.json", 'node_modules/typeorm is there');
}

my $node = PostgreSQL::Test::Cluster->new('typeorm');
$node->init;
$node->append_conf('postgresql.conf', qq{
session_preload_libraries = 'tenancy'
max_connections = 40
});
$node->start;
my $user = getpwuid($<);
$node->safe_psql('postgres', q{
	CREATE EXTENSION tenancy CASCADE;
	CREATE DATABASE typeorm_scratch;
});

# Runs a command in the project directory with the libpq environment for
# database $db (the TypeORM CLI through data-source.js, and register.js,
# read it); returns (exit code, stdout, stderr).
sub in_project
{
	my ($db, @cmd) = @_;
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGUSER} = $user;
	local $ENV{PGDATABASE} = $db;
	delete local $ENV{PGPASSWORD};
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, init => sub { chdir $app_dir or die "chdir $app_dir: $!" },
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(300));
	return ($? >> 8, $out, $err);
}
sub typeorm { return in_project('typeorm_scratch', "$app_dir/node_modules/.bin/typeorm", @_); }
sub register { return in_project('postgres', 'node', "$app_dir/register.js", @_); }

# TypeORM's migration:generate, from the entities' difference with the
# scratch database; returns the new migration's timestamp (its version).
sub generate
{
	my ($name) = @_;
	my ($rc, $out, $err) = typeorm('migration:generate', "migrations/$name", '-d', 'data-source.js', '-o');
	is($rc, 0, "typeorm migration:generate wrote migration $name") or diag("$out\n$err");
	my @files = glob("$app_dir/migrations/*-$name.js");
	is(scalar @files, 1, "one file migrations/<timestamp>-$name.js");
	my ($version) = basename($files[0] // '') =~ /^(\d{13})-/;
	return $version // 0;
}

# What register.js would register, from its --dry-run: version => row.
sub planned
{
	my ($rc, $out, $err) = register('--dry-run', @_);
	is($rc, 0, 'register.js --dry-run read the migration classes') or diag("$out\n$err");
	return { map { my $m = decode_json($_); ($m->{version} => $m) } grep { /\S/ } split /\n/, $out };
}

# --- migration 1: User and Post, generated from an empty scratch database
my $v1 = generate('Init');
my $plan = planned();
is_deeply([ sort keys %$plan ], [$v1], "register.js finds migration $v1");
my $m1 = $plan->{$v1} // {};
is($m1->{description}, "Init$v1", 'its description is the class name');
like($m1->{sql}, qr/^CREATE TABLE "user" \(.*;\nCREATE TABLE "post" \(.*;\nCREATE INDEX "post_author" ON "post" \("authorId"\);\nALTER TABLE "post" ADD CONSTRAINT "FK_\w+" FOREIGN KEY \("authorId"\) REFERENCES "user"\("id"\)/s,
	'up: the statements of up(), in order, joined with ";\n"');
unlike($m1->{sql}, qr/public/, 'up: unqualified names, as TypeORM writes them');
like($m1->{down}, qr/^ALTER TABLE "post" DROP CONSTRAINT "FK_\w+";\nDROP INDEX "public"\."post_author";\nDROP TABLE "post";\nDROP TABLE "user"$/,
	'down: the statements of down(); TypeORM qualifies DROP INDEX with the schema it generated against');
is($m1->{transactional}, JSON::PP::true, 'transactional');

# applied to the scratch database, so that the next migration is a difference
my ($rc, $out, $err) = typeorm('migration:run', '-d', 'data-source.js');
is($rc, 0, 'typeorm migration:run applied migration 1 to the scratch database') or diag("$out\n$err");

($rc, $out, $err) = register();
is($rc, 0, 'register.js registered migration 1') or diag("$out\n$err");
like($out, qr/^migration $v1 Init$v1: 4 statements up, 4 statements down$/m, 'register.js says what it registered');
is( $node->safe_psql('postgres',
		q{SELECT version || '|' || description || '|' || search_path || '|' || (down IS NOT NULL) || '|' || transactional FROM tenancy.migration}),
	"$v1|Init$v1|public|true|true", 'the catalog holds it: search_path public, a down, transactional');

# --- tenants of both models, provisioned at migration 1
my %where;    # tenant => [database, schema]
foreach my $t (qw(a b))
{
	my $db = $node->safe_psql('postgres', qq{SELECT database_name FROM tenancy.provision('$t')});
	$where{$t} = [ $db, 'public' ];
}
foreach my $t (qw(s1 s2))
{
	my $schema = $node->safe_psql('postgres', qq{SELECT schema_name FROM tenancy.provision('$t', isolation => 'schema')});
	$where{$t} = [ 'postgres', $schema ];
}
my @tenants = qw(a b s1 s2);

# SQL in a tenant, with unqualified names as in the migrations
sub tsql
{
	my ($t, $sql) = @_;
	my ($db, $schema) = @{ $where{$t} };
	return $node->safe_psql($db, qq{SET search_path = "$schema"; $sql});
}
sub columns
{
	my ($t) = @_;
	return tsql($t, q{SELECT string_agg(column_name, ',' ORDER BY ordinal_position)
	                    FROM information_schema.columns
	                   WHERE table_schema = current_schema() AND table_name = 'post'});
}
sub ledger
{
	my ($t) = @_;
	my $table = $where{$t}[1] eq 'public' ? 'tenancy.applied_migration' : 'tenancy_applied_migration';
	return tsql($t, qq{SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM $table});
}
sub status
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(tenant || ':' || applied_version || ':' || latest_version || ':' || pending || ':' || missing::text
		                  || coalesce(':' || last_sqlstate, ''), ' ' ORDER BY tenant)
		  FROM tenancy.migration_status});
}
sub status_of_all
{
	my ($applied, $latest, $missing) = @_;
	return join(' ', map { "$_:$applied:$latest:" . scalar(@$missing) . ':{' . join(',', @$missing) . '}' } @tenants);
}
sub migrate_all
{
	my ($args) = @_;
	return $node->safe_psql('postgres', qq{
		SET client_min_messages = warning;
		SELECT string_agg(tenant || ':' || status || ':' || coalesce(from_version::text, 'null') || '->'
		                  || coalesce(to_version::text, 'null') || coalesce(':' || sqlstate, ''), ' ' ORDER BY tenant)
		  FROM tenancy.migrate_all($args)});
}
sub outcome_of_all
{
	my ($status, $from, $to) = @_;
	return join(' ', map { "$_:$status:$from->$to" } @tenants);
}

# Runs SQL expected to fail; returns its error as "SQLSTATE: message", with
# " (CONTEXT: ...)" if it has one.
sub error_of
{
	my ($sql) = @_;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', "\\set VERBOSITY verbose\nSET client_min_messages = warning;\n$sql",
		on_error_stop => 1);
	return 'no error' if $ret == 0;
	return $stderr unless $stderr =~ /ERROR:  ([0-9A-Z]{5}): ([^\n]*)/;
	my $error = "$1: $2";
	$error .= " (CONTEXT: $1)" if $stderr =~ /\nCONTEXT:  ([^\n]*)/;
	return $error;
}

foreach my $t (@tenants)
{
	is(columns($t), 'id,title,authorId', "$t: table post as migration 1 created it ($where{$t}[0], schema $where{$t}[1])");
	is(ledger($t), $v1, "$t: its ledger holds migration 1");
	tsql($t, qq{INSERT INTO "user" (name) VALUES ('$t-ann');
	            INSERT INTO post (title, "authorId") SELECT '$t-hello', id FROM "user"});
	is(tsql($t, q{SELECT u.name || '/' || p.title FROM post p JOIN "user" u ON u.id = p."authorId"}),
		"$t-ann/$t-hello", "$t: rows written through the foreign key");
}
is( $node->safe_psql('postgres', q{SELECT to_regclass('public.user') IS NULL AND to_regclass('public.post') IS NULL}),
	't', 'the schema tenants\' tables are not in the admin database\'s public schema');

# --- migration 2: Post gets "published"; TypeORM writes the difference
copy("$app_dir/later/Post.js", "$app_dir/entity/Post.js") or die "copy: $!";
my $v2 = generate('AddPublished');
cmp_ok($v2, '>', $v1, 'the later migration has the higher timestamp');
$plan = planned();
is_deeply([ sort keys %$plan ], [ $v1, $v2 ], 'register.js finds both migrations');
is($plan->{$v2}{sql}, 'ALTER TABLE "post" ADD "published" boolean NOT NULL DEFAULT false', 'migration 2 is the difference');
is($plan->{$v2}{down}, 'ALTER TABLE "post" DROP COLUMN "published"', 'and its down drops the column');
($rc, $out, $err) = typeorm('migration:run', '-d', 'data-source.js');
is($rc, 0, 'typeorm migration:run applied migration 2 to the scratch database') or diag("$out\n$err");
($rc, $out, $err) = typeorm('migration:generate', 'migrations/Nothing', '-d', 'data-source.js', '-o', '--check');
is($rc, 0, 'typeorm migration:generate --check: the two migrations are the entities') or diag("$out\n$err");

# register.js registers every migration on every run: the first again is a no-op
($rc, $out, $err) = register();
is($rc, 0, 'register.js registered migration 2 (and found migration 1 registered)') or diag("$out\n$err");
like($out, qr/^migration $v2 AddPublished$v2: 1 statement up, 1 statement down$/m, 'register.js says so');
is( $node->safe_psql('postgres', q{SELECT string_agg(version || ':' || description, ',' ORDER BY version) FROM tenancy.migration}),
	"$v1:Init$v1,$v2:AddPublished$v2", 'the catalog holds both, once each');
is(status(), status_of_all($v1, $v2, [$v2]), 'migration_status: every tenant lacks migration 2');

# --- migrate_all: every tenant to migration 2, rows kept
is(migrate_all(''), outcome_of_all('migrated', $v1, $v2), 'migrate_all() migrated every tenant to migration 2');
foreach my $t (@tenants)
{
	is(columns($t), 'id,title,authorId,published', "$t: post has the column");
	is(tsql($t, q{SELECT title || ':' || published FROM post}), "$t-hello:false", "$t: the row kept, published false");
	is(ledger($t), "$v1,$v2", "$t: its ledger holds both migrations");
}
is(status(), status_of_all($v2, $v2, []), 'migration_status: every tenant at migration 2, nothing missing');

# a tenant provisioned now starts at migration 2 (tenancy's template)
my ($c_db, $c_version) = split /\|/,
  $node->safe_psql('postgres', q{SELECT database_name || '|' || applied_version FROM tenancy.provision('c')});
is($c_version, $v2, 'a database tenant provisioned now is at migration 2');
$where{c} = [ $c_db, 'public' ];
is(columns('c'), 'id,title,authorId,published', 'c: post has the column');
is(ledger('c'), "$v1,$v2", 'c: its ledger holds both migrations');
my ($s3_schema, $s3_version) = split /\|/,
  $node->safe_psql('postgres', q{SELECT schema_name || '|' || applied_version FROM tenancy.provision('s3', isolation => 'schema')});
is($s3_version, $v2, 'a schema tenant provisioned now is at migration 2');
$where{s3} = [ 'postgres', $s3_schema ];
is(columns('s3'), 'id,title,authorId,published', 's3: post has the column');
is(ledger('s3'), "$v1,$v2", 's3: its ledger holds both migrations');
$node->safe_psql('postgres', q{SELECT tenancy.deprovision('c'); SELECT tenancy.deprovision('s3')});

# the plan first: nothing runs
is(migrate_all("dry_run => true, to_version => $v1"), outcome_of_all('planned', $v2, $v1),
	'migrate_all(dry_run => true, to_version => 1) plans the rollback of every tenant');
is(ledger('a') . ' ' . ledger('s1'), "$v1,$v2 $v1,$v2", 'and runs nothing');

# --- roll back to migration 1: the down of migration 2 on every tenant
is(migrate_all("to_version => $v1"), outcome_of_all('rolled_back', $v2, $v1),
	'migrate_all(to_version => 1) rolled every tenant back to migration 1');
foreach my $t (@tenants)
{
	is(columns($t), 'id,title,authorId', "$t: the column of migration 2 is gone");
	is(tsql($t, q{SELECT count(*) FROM post}), '1', "$t: the row kept");
	is(ledger($t), $v1, "$t: its ledger holds migration 1 only");
}
is(status(), status_of_all($v1, $v2, [$v2]), 'migration_status: every tenant at migration 1, lacking migration 2');
is(migrate_all("to_version => $v1"), outcome_of_all('up_to_date', $v1, $v1), 'again: nothing to roll back');

# --- and forward again
is(migrate_all(''), outcome_of_all('migrated', $v1, $v2), 'migrate_all() brought every tenant back to migration 2');
foreach my $t (@tenants)
{
	is(columns($t), 'id,title,authorId,published', "$t: the column is back");
	is(ledger($t), "$v1,$v2", "$t: its ledger holds both migrations");
}
is(status(), status_of_all($v2, $v2, []), 'migration_status: every tenant at migration 2');
is(migrate_all(''), outcome_of_all('up_to_date', $v2, $v2), 'a second run has nothing to do');

# --- TypeORM's down() of migration 1 names "public"."post_author": it rolls a
# database tenant back to nothing, and fails on a schema tenant (its index is
# in its own schema), which stays at a version its ledger states
my $r = $node->safe_psql('postgres', q{
	SET client_min_messages = warning;
	SELECT status || ':' || coalesce(from_version::text, 'null') || '->' || coalesce(to_version::text, 'null')
	  FROM tenancy.migrate('a', to_version => 0)});
is($r, "rolled_back:$v2->0", 'migrate(a, to_version => 0) ran both downs');
is(tsql('a', q{SELECT count(*) FROM pg_tables WHERE schemaname = 'public'}), '0', 'a: no table left');
is(ledger('a'), '', 'a: its ledger is empty');
is(error_of(q{SELECT * FROM tenancy.migrate('s1', to_version => 0)}),
	qq{42704: index "post_author" does not exist (CONTEXT: rolling back migration $v1 of tenant "s1", statement 2 (line 2))},
	'migrate(s1, to_version => 0) fails on the down of migration 1, statement 2: DROP INDEX "public"."post_author"');
is(ledger('s1'), $v1, 's1: migration 2 rolled back, migration 1 still applied (its failed down undid nothing)');
is(columns('s1'), 'id,title,authorId', 's1: its tables as migration 1 left them');
is( $node->safe_psql('postgres', q{SELECT applied_version || ':' || pending || ':' || missing::text FROM tenancy.migration_status WHERE tenant = 's1'}),
	"$v1:1:{$v2}", 's1: migration_status agrees: at migration 1, lacking migration 2');
is(migrate_all(''), "a:migrated:0->$v2 b:up_to_date:$v2->$v2 s1:migrated:$v1->$v2 s2:up_to_date:$v2->$v2",
	'migrate_all() brings a and s1 back to migration 2');

# --- register.js refuses what it cannot register, and registers all of a run
# or nothing
my $bad = "$tmp/bad";
mkdir $bad or die $!;
open(my $fh, '>', "$bad/1000000000001-Seed.js") or die $!;
print $fh q{module.exports = class Seed1000000000001 {
  async up(queryRunner) { await queryRunner.query('INSERT INTO "user" (name) VALUES ($1)', ['root']); }
  async down(queryRunner) { await queryRunner.query('DELETE FROM "user" WHERE name = $1', ['root']); }
};
};
close $fh;
($rc, $out, $err) = register($bad);
is($rc, 1, 'register.js refuses a migration with query parameters');
like($err, qr/Seed1000000000001\.up\(\) passes query parameters/, 'and says which');
unlink "$bad/1000000000001-Seed.js" or die $!;
open($fh, '>', "$bad/1000000000002-Table.js") or die $!;
print $fh q{module.exports = class Table1000000000002 {
  async up(queryRunner) { await queryRunner.createTable({ name: 'x' }); }
  async down(queryRunner) { await queryRunner.dropTable('x'); }
};
};
close $fh;
($rc, $out, $err) = register($bad);
is($rc, 1, 'register.js refuses a migration that calls the QueryRunner API');
like($err, qr/Table1000000000002\.up\(\) uses queryRunner\.createTable/, 'and says which');
unlink "$bad/1000000000002-Table.js" or die $!;

# migration 2 edited after it was registered, next to a new migration that
# sorts before it: 42710, and the new one is not registered either
my ($m2_file) = glob("$app_dir/migrations/*-AddPublished.js");
my $edited = slurp_file($m2_file) =~ s/DEFAULT false/DEFAULT true/r;
copy($_, "$bad/" . basename($_)) or die $! foreach glob("$app_dir/migrations/*.js");
open($fh, '>', "$bad/" . basename($m2_file)) or die $!;
print $fh $edited;
close $fh;
my $v_mid = $v1 + 1;
open($fh, '>', "$bad/$v_mid-Note.js") or die $!;
print $fh qq{module.exports = class Note$v_mid {
  async up(queryRunner) { await queryRunner.query('CREATE TABLE note (id int)'); }
  async down(queryRunner) { await queryRunner.query('DROP TABLE note'); }
};
};
close $fh;
($rc, $out, $err) = register($bad);
is($rc, 1, 'register.js fails on a migration edited after it was registered');
like($err, qr/\(SQLSTATE 42710\)$/m, 'with tenancy\'s 42710');
is( $node->safe_psql('postgres', q{SELECT string_agg(version::text, ',' ORDER BY version) FROM tenancy.migration}),
	"$v1,$v2", 'nothing of that run was registered');

# --- a migration without down (hand-written, registered without one) cannot
# be rolled back
my $v3 = $v2 + 1;
$node->safe_psql('postgres', qq{SELECT tenancy.add_migration($v3, 'CREATE TABLE audit (id int)', 'hand-written, no down')});
is(migrate_all(''), outcome_of_all('migrated', $v2, $v3), 'migrate_all() applied the migration without down');
is(error_of(qq{SELECT * FROM tenancy.migrate('a', to_version => $v2)}),
	"55000: migration $v3 cannot be rolled back", 'migrate(a, to_version => 2) is refused: migration 3 has no down');
is(error_of(qq{SELECT * FROM tenancy.migrate_all(to_version => $v2)}),
	"55000: migration $v3 cannot be rolled back", 'so is migrate_all(to_version => 2)');
is(error_of(qq{SELECT tenancy.remove_migration($v3)}), "55006: migration $v3 has been applied",
	'and it cannot be removed once applied');
foreach my $t (@tenants)
{
	is(ledger($t), "$v1,$v2,$v3", "$t: its ledger untouched");
}
is(tsql('a', q{SELECT to_regclass('audit') IS NOT NULL}) . tsql('s1', q{SELECT to_regclass('audit') IS NOT NULL}),
	'tt', 'the table of migration 3 is still there');
is(status(), status_of_all($v3, $v3, []), 'migration_status: every tenant at migration 3');

$node->stop;
done_testing();
