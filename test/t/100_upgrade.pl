# Copyright (c) 2026, the tenancy authors
#
# Upgrade: database "upgraded" installs the oldest release (0.1.0), gets a
# row in every table of the tenancy schema and is updated with ALTER
# EXTENSION tenancy UPDATE; database "fresh" runs CREATE EXTENSION tenancy.
# Both must end at the default version with the same objects (listed from
# the catalogs with their definitions, owners, privileges, comments and
# dependencies), the same pg_extension_config_dump configuration, and the
# upgraded database must keep every row (compared on the columns 0.1.0 had).
# A difference is printed as a unified diff, upgraded (-) against fresh (+).
# Database "configured" is a 0.1.0 installation configured with
# tenancy.configure() and granted on before the update: its pg_init_privs
# must end as a fresh install's, and a restored pg_dump of it must have
# every privilege it has (the carried grants included).
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $oldest = '0.1.0';
my $target = '0.2.0';    # default_version in tenancy.control

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq{
session_preload_libraries = 'tenancy'
tenancy.database_prefix = 'regress_up_'
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE DATABASE upgraded;
	CREATE DATABASE fresh;
	CREATE ROLE regress_up_service LOGIN CREATEDB;
	CREATE ROLE regress_up_member;
});

# unified diff of two texts, empty when they are equal
sub text_diff
{
	my ($old_label, $old, $new_label, $new) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	PostgreSQL::Test::Utils::append_to_file("$dir/old", "$old\n");
	PostgreSQL::Test::Utils::append_to_file("$dir/new", "$new\n");
	my ($out, $err) = run_command(
		[ 'diff', '-u', '--label', $old_label, '--label', $new_label, "$dir/old", "$dir/new" ]);
	return $out;
}

# upgraded (-) against fresh (+)
sub is_text
{
	my ($upgraded, $fresh, $name) = @_;
	local $Test::Builder::Level = $Test::Builder::Level + 1;
	my $diff = text_diff('upgraded', $upgraded, 'fresh', $fresh);
	ok($diff eq '', $name) or diag($diff);
}

###########################################################################
# The oldest release, with data
###########################################################################

$node->safe_psql('upgraded', "CREATE EXTENSION tenancy VERSION '$oldest' CASCADE");
is($node->safe_psql('upgraded', q{SELECT extversion FROM pg_extension WHERE extname = 'tenancy'}),
	$oldest, "upgraded: $oldest installed");

# Catalog rows written directly, as a superuser, so that no tenant database
# or remote server is needed.  tenancy.config names a role and a dblink
# server that exist; it is filled by INSERT rather than tenancy.configure(),
# whose GRANTs would make the privileges differ from a fresh install.
$node->safe_psql('upgraded', q{
	CREATE SERVER regress_up_loopback FOREIGN DATA WRAPPER dblink_fdw
	  OPTIONS (host 'localhost', dbname 'upgraded');

	INSERT INTO tenancy.tenant (id, isolation, database_name, schema_name, server, state,
	                            applied_version, last_error, last_sqlstate, metadata)
	VALUES ('acme', 'database', 'regress_up_acme', NULL, NULL, 'ready', 2, NULL, NULL, '{"plan": "gold"}'),
	       ('globex', 'database', 'regress_up_globex', NULL, 'regress_up_loopback', 'failed', 1,
	        'could not connect to server', '08001', '{}'),
	       ('initech', 'schema', NULL, 'tenant_initech', NULL, 'suspended', 2, NULL, NULL, '{"seats": 12}');

	INSERT INTO tenancy.migration (version, description, sql, checksum)
	SELECT v, d, s, pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(s, 'UTF8')), 'hex')
	  FROM (VALUES (1, 'items', 'CREATE TABLE public.item (id int PRIMARY KEY)'),
	               (2, NULL, 'ALTER TABLE public.item ADD COLUMN name text')) m(v, d, s);

	INSERT INTO tenancy.member (tenant_id, role)
	VALUES ('acme', 'regress_up_member'), ('initech', 'regress_up_member'), ('acme', 'regress_up_service');

	INSERT INTO tenancy.migration_progress (tenant_id, status, from_version, to_version, error, sqlstate, backend_pid)
	VALUES ('acme', 'migrated', 1, 2, NULL, NULL, 4242),
	       ('globex', 'failed', 1, 1, 'could not connect to server', '08001', 4242);

	INSERT INTO tenancy.config (service_role, loopback_server)
	VALUES ('regress_up_service', 'regress_up_loopback');
	-- what 0.1.0's configure() granted, and its README asked for on tenant servers
	GRANT USAGE ON FOREIGN SERVER regress_up_loopback TO regress_up_service;

	INSERT INTO tenancy.template (server, database_name, applied_version, fingerprint)
	VALUES (NULL, 'regress_up_template', 2, pg_catalog.md5('1:a|2:b')),
	       ('regress_up_loopback', 'regress_up_template', 1, pg_catalog.md5('1:a'));

	SELECT pg_catalog.nextval('tenancy.operation_seq') FROM pg_catalog.generate_series(1, 6);
	INSERT INTO tenancy.pending_cleanup (operation_id, tenant_id, server, database_name, final_name)
	VALUES (5, 'hooli', NULL, 'regress_up_tmp_5', 'regress_up_hooli'),
	       (6, 'hooli', 'regress_up_loopback', 'regress_up_tmp_6', 'regress_up_hooli');
});

# Every table and sequence the oldest release has, found in the catalog
# rather than listed by hand: each table must hold rows before the update.
my @tables = split /\n/, $node->safe_psql('upgraded', q{
	SELECT c.oid::regclass::text FROM pg_class c
	 WHERE c.relnamespace = 'tenancy'::regnamespace AND c.relkind IN ('r', 'p')
	 ORDER BY 1});
my @sequences = split /\n/, $node->safe_psql('upgraded', q{
	SELECT c.oid::regclass::text FROM pg_class c
	 WHERE c.relnamespace = 'tenancy'::regnamespace AND c.relkind = 'S'
	 ORDER BY 1});
cmp_ok(scalar @tables, '>=', 7, "upgraded: $oldest has its tables: @tables");

# A table's rows on the columns it has now, and their count and checksum.
my %columns;
foreach my $table (@tables)
{
	$columns{$table} = $node->safe_psql('upgraded', qq{
		SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
		 WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped});
}

sub table_rows
{
	my ($table) = @_;
	my $rows = $node->safe_psql('upgraded', qq{
		SELECT r FROM (SELECT ROW($columns{$table})::text AS r FROM $table) s ORDER BY r COLLATE "C"});
	my $summary = $node->safe_psql('upgraded', qq{
		SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(r, E'\\n' ORDER BY r COLLATE "C"), ''))
		  FROM (SELECT ROW($columns{$table})::text AS r FROM $table) s});
	return ($rows, $summary);
}

sub sequence_state
{
	my ($seq) = @_;
	return $node->safe_psql('upgraded', qq{SELECT last_value || ' ' || is_called FROM $seq});
}

my (%rows_before, %summary_before, %sequence_before);
foreach my $table (@tables)
{
	($rows_before{$table}, $summary_before{$table}) = table_rows($table);
	unlike($summary_before{$table}, qr/^0 rows/, "upgraded: $table has rows before the update");
}
$sequence_before{$_} = sequence_state($_) foreach @sequences;

###########################################################################
# Update; fresh install
###########################################################################

$node->safe_psql('upgraded', 'ALTER EXTENSION tenancy UPDATE');
$node->safe_psql('fresh', 'CREATE EXTENSION tenancy CASCADE');

my $version_query = q{SELECT extversion FROM pg_extension WHERE extname = 'tenancy'};
is($node->safe_psql('upgraded', $version_query), $target, "upgraded: at $target after ALTER EXTENSION UPDATE");
is($node->safe_psql('fresh', $version_query), $target, "fresh: CREATE EXTENSION installs $target");
is($node->safe_psql('fresh', q{SELECT default_version FROM pg_available_extensions WHERE name = 'tenancy'}),
	$target, "default_version is $target");

###########################################################################
# No row lost
###########################################################################

foreach my $table (@tables)
{
	my ($rows_after, $summary_after) = table_rows($table);
	is($summary_after, $summary_before{$table}, "upgraded: every row of $table kept ($columns{$table})")
	  or diag(text_diff("$table before the update", $rows_before{$table}, "$table after", $rows_after));
}
foreach my $seq (@sequences)
{
	is(sequence_state($seq), $sequence_before{$seq}, "upgraded: $seq keeps its position");
}

###########################################################################
# Same objects
###########################################################################

# One line (or, for definitions, one block) per object and property, sorted.
# The objects: the extension's members, everything in the tenancy schema and
# what hangs off its relations (columns, defaults, constraints, indexes,
# triggers, rules, policies).  OIDs are never printed: objects are named by
# pg_describe_object.
my $objects_query = <<'SQL';
WITH ext AS (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'tenancy'),
nsp AS (SELECT 'tenancy'::pg_catalog.regnamespace::oid AS oid),
member AS (
  SELECT d.classid, d.objid FROM pg_catalog.pg_depend d
   WHERE d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
     AND d.refobjid = (SELECT oid FROM ext) AND d.deptype = 'e'),
rel AS (
  SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = (SELECT oid FROM nsp)
  UNION SELECT m.objid FROM member m WHERE m.classid = 'pg_catalog.pg_class'::pg_catalog.regclass),
obj AS (
  SELECT m.classid, m.objid FROM member m
  UNION SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, oid FROM ext
  UNION SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, oid FROM nsp
  UNION SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, oid FROM rel
  UNION SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid FROM pg_catalog.pg_proc p
         WHERE p.pronamespace = (SELECT oid FROM nsp)
  UNION SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid FROM pg_catalog.pg_type t
         WHERE t.typnamespace = (SELECT oid FROM nsp)
  UNION SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid FROM pg_catalog.pg_constraint c
         WHERE c.connamespace = (SELECT oid FROM nsp) OR c.conrelid IN (SELECT oid FROM rel)
  UNION SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, a.oid FROM pg_catalog.pg_attrdef a
         WHERE a.adrelid IN (SELECT oid FROM rel)
  UNION SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid FROM pg_catalog.pg_trigger t
         WHERE t.tgrelid IN (SELECT oid FROM rel) AND NOT t.tgisinternal
  UNION SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, r.oid FROM pg_catalog.pg_rewrite r
         WHERE r.ev_class IN (SELECT oid FROM rel)
  UNION SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, p.oid FROM pg_catalog.pg_policy p
         WHERE p.polrelid IN (SELECT oid FROM rel)
  UNION SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_operator o
         WHERE o.oprnamespace = (SELECT oid FROM nsp)
  UNION SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_opclass o
         WHERE o.opcnamespace = (SELECT oid FROM nsp)
  UNION SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_opfamily o
         WHERE o.opfnamespace = (SELECT oid FROM nsp)
  UNION SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, c.oid FROM pg_catalog.pg_collation c
         WHERE c.collnamespace = (SELECT oid FROM nsp)
  UNION SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, s.oid FROM pg_catalog.pg_statistic_ext s
         WHERE s.stxnamespace = (SELECT oid FROM nsp)),
line(section, key, body) AS (
  -- what exists, and what belongs to the extension
  SELECT 'object', pg_catalog.pg_describe_object(o.classid, o.objid, 0), ''
    FROM obj o
  UNION ALL
  SELECT 'member', pg_catalog.pg_describe_object(m.classid, m.objid, 0), ''
    FROM member m
  UNION ALL
  -- dependencies (other than membership): OWNED BY, what a view, default or
  -- function uses, the extension's schema and required extensions
  SELECT 'depends', pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
         pg_catalog.format('on %s (%s)', pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), d.deptype)
    FROM pg_catalog.pg_depend d JOIN obj o ON (o.classid, o.objid) = (d.classid, d.objid)
   WHERE d.deptype <> 'e'
  UNION ALL
  -- owners and privileges
  SELECT 'owner/acl', 'schema ' || n.nspname,
         pg_catalog.format('owner %s, acl %s', pg_catalog.pg_get_userbyid(n.nspowner), n.nspacl)
    FROM pg_catalog.pg_namespace n JOIN obj o ON (o.classid, o.objid) = ('pg_catalog.pg_namespace'::pg_catalog.regclass, n.oid)
  UNION ALL
  SELECT 'owner/acl', 'extension ' || e.extname,
         pg_catalog.format('owner %s, schema %s, relocatable %s', pg_catalog.pg_get_userbyid(e.extowner),
                           e.extnamespace::pg_catalog.regnamespace, e.extrelocatable)
    FROM pg_catalog.pg_extension e JOIN ext ON ext.oid = e.oid
  UNION ALL
  SELECT 'owner/acl', pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0),
         pg_catalog.format('owner %s, acl %s', pg_catalog.pg_get_userbyid(c.relowner), c.relacl)
    FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT oid FROM rel)
  UNION ALL
  SELECT 'owner/acl', pg_catalog.pg_describe_object('pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, 0),
         pg_catalog.format('owner %s, acl %s', pg_catalog.pg_get_userbyid(p.proowner), p.proacl)
    FROM pg_catalog.pg_proc p JOIN obj o ON (o.classid, o.objid) = ('pg_catalog.pg_proc'::pg_catalog.regclass, p.oid)
  UNION ALL
  SELECT 'owner/acl', pg_catalog.pg_describe_object('pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0),
         pg_catalog.format('owner %s, acl %s', pg_catalog.pg_get_userbyid(t.typowner), t.typacl)
    FROM pg_catalog.pg_type t JOIN obj o ON (o.classid, o.objid) = ('pg_catalog.pg_type'::pg_catalog.regclass, t.oid)
  UNION ALL
  -- the privileges pg_dump takes as the extension's own (GRANT/REVOKE in scripts)
  SELECT 'init privs', pg_catalog.pg_describe_object(i.classoid, i.objoid, i.objsubid),
         pg_catalog.format('%s %s', i.privtype, i.initprivs)
    FROM pg_catalog.pg_init_privs i JOIN obj o ON (o.classid, o.objid) = (i.classoid, i.objoid)
  UNION ALL
  -- comments, on objects and on columns
  SELECT 'comment', pg_catalog.pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
    FROM pg_catalog.pg_description d JOIN obj o ON (o.classid, o.objid) = (d.classoid, d.objoid)
  UNION ALL
  -- relations
  SELECT 'relation', pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0),
         pg_catalog.format('kind %s, persistence %s, access method %s, options %s, row security %s, forced %s, replica identity %s, of type %s, partition %s',
                           c.relkind, c.relpersistence, am.amname, c.reloptions, c.relrowsecurity,
                           c.relforcerowsecurity, c.relreplident, NULLIF(c.reloftype, 0)::pg_catalog.regtype,
                           pg_catalog.pg_get_expr(c.relpartbound, c.oid))
    FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
   WHERE c.oid IN (SELECT oid FROM rel)
  UNION ALL
  SELECT 'column', pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum),
         pg_catalog.format('#%s %s, not null %s, default %s, identity "%s", generated "%s", collation %s, storage %s, compression "%s", statistics %s, options %s, acl %s',
                           a.attnum, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                           pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
                           co.collname, a.attstorage, a.attcompression, a.attstattarget, ao.options, a.attacl)
    FROM pg_catalog.pg_attribute a
    LEFT JOIN pg_catalog.pg_attrdef ad ON (ad.adrelid, ad.adnum) = (a.attrelid, a.attnum)
    LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
    -- without pg_attver, which this server build keeps in attoptions and
    -- which differs between any two databases
    LEFT JOIN LATERAL (SELECT pg_catalog.array_agg(x ORDER BY x) AS options
                         FROM pg_catalog.unnest(a.attoptions) x WHERE x NOT LIKE 'pg\_attver=%') ao ON true
   WHERE a.attrelid IN (SELECT oid FROM rel) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint', pg_catalog.pg_describe_object('pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid, 0),
         pg_catalog.format('%s, deferrable %s, deferred %s, validated %s, no inherit %s',
                           pg_catalog.pg_get_constraintdef(c.oid, true), c.condeferrable, c.condeferred,
                           c.convalidated, c.connoinherit)
    FROM pg_catalog.pg_constraint c JOIN obj o ON (o.classid, o.objid) = ('pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid)
  UNION ALL
  SELECT 'index', pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid, 0),
         pg_catalog.format('%s, valid %s, clustered %s, replica identity %s',
                           pg_catalog.pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisclustered, i.indisreplident)
    FROM pg_catalog.pg_index i WHERE i.indrelid IN (SELECT oid FROM rel)
  UNION ALL
  SELECT 'trigger', pg_catalog.pg_describe_object('pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid, 0),
         pg_catalog.format('%s, enabled %s', pg_catalog.pg_get_triggerdef(t.oid, true), t.tgenabled)
    FROM pg_catalog.pg_trigger t JOIN obj o ON (o.classid, o.objid) = ('pg_catalog.pg_trigger'::pg_catalog.regclass, t.oid)
  UNION ALL
  SELECT 'rule', pg_catalog.pg_describe_object('pg_catalog.pg_rewrite'::pg_catalog.regclass, r.oid, 0),
         pg_catalog.format('%s, enabled %s', pg_catalog.pg_get_ruledef(r.oid, true), r.ev_enabled)
    FROM pg_catalog.pg_rewrite r
   WHERE r.ev_class IN (SELECT oid FROM rel) AND r.rulename <> '_RETURN'
  UNION ALL
  SELECT 'view', pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0),
         pg_catalog.pg_get_viewdef(c.oid, true)
    FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT oid FROM rel) AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'policy', pg_catalog.pg_describe_object('pg_catalog.pg_policy'::pg_catalog.regclass, p.oid, 0),
         pg_catalog.format('for %s, permissive %s, to %s, using (%s), with check (%s)', p.polcmd, p.polpermissive,
                           (SELECT pg_catalog.array_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r) END ORDER BY 1)
                              FROM pg_catalog.unnest(p.polroles) r),
                           pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_catalog.pg_policy p WHERE p.polrelid IN (SELECT oid FROM rel)
  UNION ALL
  SELECT 'sequence', pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, s.seqrelid, 0),
         pg_catalog.format('%s, start %s, increment %s, min %s, max %s, cache %s, cycle %s',
                           s.seqtypid::pg_catalog.regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                           s.seqcache, s.seqcycle)
    FROM pg_catalog.pg_sequence s WHERE s.seqrelid IN (SELECT oid FROM rel)
  UNION ALL
  SELECT 'type', pg_catalog.pg_describe_object('pg_catalog.pg_type'::pg_catalog.regclass, t.oid, 0),
         pg_catalog.format('type %s, category %s, relation %s, element %s, base %s, not null %s, default %s, labels %s',
                           t.typtype, t.typcategory, NULLIF(t.typrelid, 0)::pg_catalog.regclass,
                           NULLIF(t.typelem, 0)::pg_catalog.regtype,
                           CASE WHEN t.typbasetype <> 0 THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
                           t.typnotnull, t.typdefault,
                           (SELECT pg_catalog.array_agg(e.enumlabel ORDER BY e.enumsortorder)
                              FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid))
    FROM pg_catalog.pg_type t JOIN obj o ON (o.classid, o.objid) = ('pg_catalog.pg_type'::pg_catalog.regclass, t.oid)
  UNION ALL
  -- routines: the whole CREATE statement (language, volatility, strictness,
  -- parallel safety, security, SET options, cost, body)
  SELECT 'function', pg_catalog.pg_describe_object('pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, 0),
         CASE WHEN p.prokind = 'a'
              THEN (SELECT pg_catalog.format('aggregate kind %s, transition %s, final %s, combine %s, state %s, initial %s',
                                             a.aggkind, a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
                                             pg_catalog.format_type(a.aggtranstype, NULL), a.agginitval)
                      FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = p.oid)
              ELSE pg_catalog.pg_get_functiondef(p.oid) END
    FROM pg_catalog.pg_proc p JOIN obj o ON (o.classid, o.objid) = ('pg_catalog.pg_proc'::pg_catalog.regclass, p.oid)
  UNION ALL
  SELECT 'event trigger', pg_catalog.pg_describe_object('pg_catalog.pg_event_trigger'::pg_catalog.regclass, t.oid, 0),
         pg_catalog.format('on %s, tags %s, function %s, enabled %s, owner %s', t.evtevent, t.evttags,
                           t.evtfoid::pg_catalog.regproc, t.evtenabled, pg_catalog.pg_get_userbyid(t.evtowner))
    FROM pg_catalog.pg_event_trigger t JOIN obj o ON (o.classid, o.objid) = ('pg_catalog.pg_event_trigger'::pg_catalog.regclass, t.oid))
SELECT l.section || ': ' || l.key || CASE WHEN l.body = '' THEN '' ELSE ': ' || l.body END
  FROM line l
 ORDER BY l.section COLLATE "C", l.key COLLATE "C", l.body COLLATE "C"
SQL

# 0.2.0 takes USAGE on dblink servers from the service role: it would show
# it its passwords in pg_user_mappings
is($node->safe_psql('upgraded', q{SELECT has_server_privilege('regress_up_service', 'regress_up_loopback', 'USAGE')}),
	'f', 'the update revokes the service role\'s USAGE on the loopback server');

my $objects_upgraded = $node->safe_psql('upgraded', $objects_query);
my $objects_fresh = $node->safe_psql('fresh', $objects_query);

# The differences by design: 0.1.0 was configured here, so the update
# grants its service role provisioning's new helper and the warm pools'
# table, as configure() now does.
my $helper = qr/function tenancy\.create_tenant_schema\(bigint\)/;
like($objects_upgraded, qr/$helper.*\{postgres=X\/postgres,regress_up_service=X\/postgres\}/,
	'the update grants the configured service role create_tenant_schema()');
$objects_upgraded =~ s/^(.*$helper.*\{postgres=X\/postgres),regress_up_service=X\/postgres\}/$1}/mg;
my $spare = qr/table tenancy\.spare/;
like($objects_upgraded, qr/$spare.*\{postgres=arwdDxt\/postgres,regress_up_service=arwd\/postgres\}/,
	'the update grants the configured service role tenancy.spare');
$objects_upgraded =~ s/^(.*$spare.*\{postgres=arwdDxt\/postgres),regress_up_service=arwd\/postgres\}/$1}/mg;
like($objects_fresh, qr/^function: function tenancy\.provision\(text,text,name,jsonb\): CREATE OR REPLACE FUNCTION/m,
	'the object listing shows definitions');
like($objects_fresh, qr/^column: column state of table tenancy\.tenant: #\d+ text, not null t, default 'provisioning'::text/m,
	'the object listing shows columns');
is_text($objects_upgraded, $objects_fresh, 'upgraded and fresh install have the same objects');

# What a backup sees: pg_dump leaves the members out but writes the
# extension, its schema, and any privilege or object that differs from what
# the scripts made.  Session settings, comments and blank lines are dropped.
sub schema_dump
{
	my ($db) = @_;
	my ($out, $err) = run_command(
		[ 'pg_dump', '--schema-only', '--schema=tenancy', '--extension=tenancy', '-d', $node->connstr($db) ]);
	is($err, '', "pg_dump of $db");
	return join "\n", grep { !/^(--|SET |SELECT pg_catalog\.set_config|\\(un)?restrict |$)/ } split /\n/, $out;
}
my $dump_fresh = schema_dump('fresh');
like($dump_fresh, qr/^CREATE EXTENSION IF NOT EXISTS tenancy WITH SCHEMA tenancy;$/m, 'fresh: pg_dump writes the extension');
# The upgraded database dumps as the fresh one, but for the grants the
# update made for the configured service role (above): a role's own
# privileges, which a dump must write
my @grants = (
	'GRANT ALL ON FUNCTION tenancy.create_tenant_schema(operation_id bigint) TO regress_up_service;',
	'GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE tenancy.spare TO regress_up_service;');
my @dump_upgraded = split /\n/, schema_dump('upgraded');
foreach my $grant (@grants)
{
	ok((grep { $_ eq $grant } @dump_upgraded), "upgraded: pg_dump writes $grant");
}
my $dump_upgraded = join "\n", grep { my $line = $_; !grep { $_ eq $line } @grants } @dump_upgraded;
is_text($dump_upgraded, $dump_fresh, 'upgraded and fresh install dump the same schema');

# pg_dump keeps the rows of the same tables, with the same conditions.
my $config_query = q{
	SELECT string_agg(format('%s %L', c.cfg::regclass, e.extcondition[c.ord]), E'\n' ORDER BY c.cfg::regclass::text)
	  FROM pg_extension e, unnest(e.extconfig) WITH ORDINALITY c(cfg, ord)
	 WHERE e.extname = 'tenancy'};
my $config_fresh = $node->safe_psql('fresh', $config_query);
like($config_fresh, qr/^tenancy\.tenant ''$/m, 'fresh: tenancy.tenant is configuration');
is_text($node->safe_psql('upgraded', $config_query), $config_fresh,
	'upgraded and fresh install have the same pg_extension_config_dump configuration');

# 0.2.0's new columns, filled from what 0.1.0 knew
is($node->safe_psql('upgraded', q{SELECT string_agg(id || ':' || applied_versions::text, ' ' ORDER BY id) FROM tenancy.tenant}),
	'acme:{1,2} globex:{1} initech:{1,2}',
	'upgraded: applied_versions holds every registered version up to applied_version');
is($node->safe_psql('upgraded', q{SELECT string_agg(version || ':' || quote_literal(search_path) || ':' || transactional || ':' || (down IS NULL), ' ' ORDER BY version) FROM tenancy.migration}),
	"1:'':true:true 2:'':true:true",
	'upgraded: 0.1.0 migrations keep the empty search_path they ran under, in a transaction, without down');

# EXECUTE granted on 0.1.0's functions carries over to their 0.2.0
# signatures (and to the functions that came with them), nothing more
$node->safe_psql('postgres', 'CREATE DATABASE granted');
$node->safe_psql('granted', qq{
	CREATE EXTENSION tenancy VERSION '$oldest' CASCADE;
	GRANT EXECUTE ON FUNCTION tenancy.migrate(text), tenancy.add_migration(bigint, text, text) TO regress_up_member;
});
# before the update, this library refuses to work on a 0.1.0 catalog
my ($rc, $stdout, $stderr) = $node->psql('granted', q{SELECT tenancy.add_migration(1, 'SELECT 1', 'first')});
like($stderr, qr/catalog is at version 0\.1\.0, older than its library.*HINT:  Run ALTER EXTENSION tenancy UPDATE/s,
	'granted: the new library refuses a 0.1.0 catalog (55000) and says how to update it');
$node->safe_psql('granted', 'ALTER EXTENSION tenancy UPDATE');
# a start-up loop written for 0.1.0 registers 0.1.0's migrations again: the same
$node->safe_psql('granted', q{
	INSERT INTO tenancy.migration (version, sql, checksum)
	VALUES (1, 'SELECT 1', pg_catalog.encode(pg_catalog.sha256('SELECT 1'), 'hex'))});
($rc, $stdout, $stderr) = $node->psql('granted', q{SELECT tenancy.add_migration(1, 'SELECT 1', 'first')});
is($rc, 0, 'granted: a 0.1.0 migration registered again without search_path is the same migration');
like($stderr, qr/already registered with the same SQL/, 'granted: with a NOTICE');
is($node->safe_psql('granted', q{
	SELECT string_agg(f || '=' || has_function_privilege('regress_up_member', f, 'EXECUTE'), ' ' ORDER BY f)
	  FROM unnest(ARRAY['tenancy.add_migration(bigint, text, text, text, text, boolean)', 'tenancy.migrate(text, bigint)',
	                    'tenancy.migrate_all(integer, boolean, text[], integer, boolean, bigint)',
	                    'tenancy.remove_migration(bigint)']) f}),
	'tenancy.add_migration(bigint, text, text, text, text, boolean)=true tenancy.migrate(text, bigint)=true '
	  . 'tenancy.migrate_all(integer, boolean, text[], integer, boolean, bigint)=false tenancy.remove_migration(bigint)=true',
	'granted: EXECUTE on the 0.1.0 signatures carries over to the 0.2.0 ones');

###########################################################################
# Configured before the update: pg_dump keeps the carried grants
###########################################################################

# A 0.1.0 installation that configure() (with an admin role) and an
# operator granted on.  The update carries those grants to 0.2.0's objects
# with GRANTs run inside its script, and PostgreSQL records what a GRANT or
# REVOKE in an extension script leaves as the object's initial privileges
# (pg_init_privs, privtype 'e'); pg_dump writes only the privileges that
# differ from those, so a grant taken for an initial one is lost in a dump.
# After the update, pg_init_privs must be a fresh install's, and a dump
# restored into a new database must have every privilege of the original.
$node->safe_psql('postgres', q{
	CREATE DATABASE configured;
	CREATE DATABASE restored;
	CREATE ROLE regress_up_admin;
});
my $host = $node->host;
my $port = $node->port;
$node->safe_psql('configured', qq{
	CREATE EXTENSION tenancy VERSION '$oldest' CASCADE;
	CREATE SERVER regress_up_loop FOREIGN DATA WRAPPER dblink_fdw
	  OPTIONS (host '$host', port '$port', dbname 'configured');
	CREATE USER MAPPING FOR regress_up_service SERVER regress_up_loop OPTIONS (user 'regress_up_service');
	SELECT tenancy.configure('regress_up_service', 'regress_up_loop', 'regress_up_admin');
	-- grants of the operator's own: on a 0.1.0 function the update replaces,
	-- on one whose PUBLIC EXECUTE it carries over (revoked here), on a dblink
	-- function (the update revokes PUBLIC's EXECUTE on dblink) and on the
	-- loopback server (the update revokes the service role's USAGE)
	GRANT EXECUTE ON FUNCTION tenancy.migrate(text) TO regress_up_member;
	REVOKE EXECUTE ON FUNCTION tenancy.connstr(text) FROM PUBLIC;
	GRANT EXECUTE ON FUNCTION tenancy.connstr(text) TO regress_up_member;
	GRANT EXECUTE ON FUNCTION public.dblink_connect(text) TO regress_up_member;
	GRANT USAGE ON FOREIGN SERVER regress_up_loop TO regress_up_member;
});
$node->safe_psql('configured', 'ALTER EXTENSION tenancy UPDATE');
is($node->safe_psql('configured', $version_query), $target, "configured: at $target after ALTER EXTENSION UPDATE");

# every row of pg_init_privs (tenancy's members, dblink's, and any other
# object the script granted or revoked on), objects named, not numbered
my $init_privs_query = q{
	SELECT l FROM (
	  SELECT pg_catalog.format('%s: %s %s', pg_catalog.pg_describe_object(i.classoid, i.objoid, i.objsubid),
	                           i.privtype, i.initprivs) AS l
	    FROM pg_catalog.pg_init_privs i) x
	 ORDER BY l COLLATE "C"};
my $init_privs_fresh = $node->safe_psql('fresh', $init_privs_query);
like($init_privs_fresh, qr/^function tenancy\.migrate\(text,bigint\): e \{postgres=X\/postgres\}$/m,
	'fresh: pg_init_privs holds what the scripts granted and revoked');
is_text($node->safe_psql('configured', $init_privs_query), $init_privs_fresh,
	'configured and updated: pg_init_privs is a fresh install\'s');

# The privileges of tenancy's schema, functions, relations and columns,
# dblink's functions and the database's foreign servers
my $acl_query = q{
	SELECT l FROM (
	  SELECT pg_catalog.format('schema %s: %s', n.nspname, n.nspacl) AS l
	    FROM pg_catalog.pg_namespace n WHERE n.nspname = 'tenancy'
	  UNION ALL
	  SELECT pg_catalog.format('%s: %s', pg_catalog.pg_describe_object('pg_catalog.pg_proc'::pg_catalog.regclass, p.oid, 0), p.proacl)
	    FROM pg_catalog.pg_proc p
	   WHERE p.pronamespace IN ('tenancy'::pg_catalog.regnamespace,
	                            (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.extname = 'dblink'))
	  UNION ALL
	  SELECT pg_catalog.format('%s: %s', pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, c.oid, 0), c.relacl)
	    FROM pg_catalog.pg_class c WHERE c.relnamespace = 'tenancy'::pg_catalog.regnamespace
	  UNION ALL
	  SELECT pg_catalog.format('%s: %s', pg_catalog.pg_describe_object('pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum), a.attacl)
	    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
	   WHERE c.relnamespace = 'tenancy'::pg_catalog.regnamespace AND a.attacl IS NOT NULL
	  UNION ALL
	  SELECT pg_catalog.format('server %s: %s', s.srvname, s.srvacl) FROM pg_catalog.pg_foreign_server s) x
	 ORDER BY l COLLATE "C"};
my $acl_configured = $node->safe_psql('configured', $acl_query);
# what the update carried over and granted, live
like($acl_configured, qr/^function tenancy\.migrate\(text,bigint\): \{postgres=X\/postgres,regress_up_admin=X\/postgres,regress_up_member=X\/postgres\}$/m,
	'configured: EXECUTE on migrate() carried over to the admin role and the member');
like($acl_configured, qr/^function tenancy\.connstr\(text,text\): \{postgres=X\/postgres,regress_up_member=X\/postgres\}$/m,
	'configured: connstr() keeps its revoked PUBLIC EXECUTE and its grant');
like($acl_configured, qr/^table tenancy\.spare: \{postgres=arwdDxt\/postgres,regress_up_service=arwd\/postgres,regress_up_admin=r\/postgres\}$/m,
	'configured: the service role and the admin role were granted tenancy.spare');
like($acl_configured, qr/^function tenancy\.cancel_job\(bigint\): \{postgres=X\/postgres,regress_up_admin=X\/postgres\}$/m,
	'configured: the admin role was granted cancel_job()');

my $dump_dir = PostgreSQL::Test::Utils::tempdir;
$node->command_ok([ 'pg_dump', '-d', $node->connstr('configured'), '-f', "$dump_dir/configured.sql" ],
	'pg_dump of the configured database');
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored'),
		'-f', "$dump_dir/configured.sql" ], 'its dump restored into a new database');
my $acl_diff = text_diff('configured', $acl_configured, 'restored', $node->safe_psql('restored', $acl_query));
ok($acl_diff eq '', 'restored: every privilege of the configured database, carried grants included')
  or diag($acl_diff);

$node->stop;
done_testing();
