--
-- rls: row-level security on a shared table, keyed on
-- tenancy.current_tenant_id()
--
SELECT tenancy.reconcile();
SELECT id FROM tenancy.provision('r-acme', isolation => 'schema');
SELECT id FROM tenancy.provision('r-globex', isolation => 'schema');

-- the helper is STABLE, parallel safe and executable by anyone
SELECT provolatile, proparallel, has_function_privilege('public', oid, 'EXECUTE') AS public_execute
  FROM pg_proc WHERE oid = 'tenancy.current_tenant_id()'::regprocedure;

-- the table's owner (here the superuser) is not the application's role;
-- FORCE makes the policy apply to the owner too
CREATE ROLE regress_rls_app;
CREATE ROLE regress_rls_outsider;
CREATE TABLE public.rls_item (
    tenant_id text NOT NULL DEFAULT tenancy.current_tenant_id(),
    name      text NOT NULL
);
ALTER TABLE public.rls_item ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.rls_item FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON public.rls_item
    USING (tenant_id = tenancy.current_tenant_id())
    WITH CHECK (tenant_id = tenancy.current_tenant_id());
GRANT SELECT, INSERT ON public.rls_item TO regress_rls_app, regress_rls_outsider;
SELECT tenancy.grant_access('r-acme', 'regress_rls_app');
SELECT tenancy.grant_access('r-globex', 'regress_rls_app');

SET ROLE regress_rls_app;
SET tenancy.current = 'r-acme';
INSERT INTO public.rls_item (name) VALUES ('acme 1'), ('acme 2');
SET tenancy.current = 'r-globex';
INSERT INTO public.rls_item (name) VALUES ('globex 1');
-- a member sees its selected tenant's rows only
SELECT tenant_id, name FROM public.rls_item ORDER BY name;
SET tenancy.current = 'r-acme';
SELECT tenant_id, name FROM public.rls_item ORDER BY name;
-- should fail: writing a row of another tenant (42501, WITH CHECK)
INSERT INTO public.rls_item VALUES ('r-globex', 'sneaky');
\echo :LAST_ERROR_SQLSTATE
-- nothing selected: no row at all
RESET tenancy.current;
SELECT count(*) AS rows_without_tenant FROM public.rls_item;
-- should fail: a selected tenant that does not exist (42704)
SET tenancy.current = 'r-ghost';
SELECT count(*) FROM public.rls_item;
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
RESET ROLE;

-- should fail: a role that is not a member sees nothing of the tenant it
-- selects (42501), and nothing without one
SET ROLE regress_rls_outsider;
SET tenancy.current = 'r-acme';
SELECT count(*) FROM public.rls_item;
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
SELECT count(*) AS outsider_rows FROM public.rls_item;
RESET ROLE;

-- should fail: a suspended tenant (55000)
SELECT tenancy.suspend('r-globex');
SET ROLE regress_rls_app;
SET tenancy.current = 'r-globex';
SELECT count(*) FROM public.rls_item;
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
RESET ROLE;
SELECT tenancy.resume('r-globex');

-- parallel workers evaluate the policy with the leader's selection
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SET ROLE regress_rls_app;
SET tenancy.current = 'r-acme';
EXPLAIN (COSTS OFF) SELECT count(*) FROM public.rls_item;
SELECT count(*) AS acme_rows_in_parallel FROM public.rls_item;
RESET tenancy.current;
-- tenancy's own catalog reads (here: is the first schema on search_path a
-- tenant's?) never run in parallel, even when every query is forced to:
-- a worker would run the setting's hooks again while restoring it
SET force_parallel_mode = on;
SET search_path = "regress_rls_nowhere", public;
SET tenancy.current = 'r-acme';
SELECT count(*) AS acme_rows_forced_parallel FROM public.rls_item;
RESET search_path;
RESET force_parallel_mode;
RESET ROLE;
SET ROLE regress_rls_outsider;
\set VERBOSITY terse
-- should fail: not a member, in parallel too (42501)
SELECT count(*) FROM public.rls_item;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
RESET ROLE;
-- with strict_local, a selection left from an earlier transaction serves no
-- parallel plan either (workers cannot tell when it was made)
SET tenancy.strict_local = on;
SET ROLE regress_rls_app;
SET tenancy.current = 'r-acme';
-- should fail: 55000
SELECT count(*) FROM public.rls_item;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL tenancy.current = 'r-acme';
SELECT count(*) AS acme_rows_in_parallel FROM public.rls_item;
-- a generic plan is not planned again, so the leader does not evaluate the
-- policy before its workers do: refused at executor start
SET plan_cache_mode = force_generic_plan;
PREPARE acme_count AS SELECT count(*) FROM public.rls_item;
EXECUTE acme_count;
COMMIT;
-- should fail: 55000, the selection is from an earlier transaction
EXECUTE acme_count;
\echo :LAST_ERROR_SQLSTATE
DEALLOCATE acme_count;
RESET plan_cache_mode;
RESET ROLE;
RESET tenancy.strict_local;
SET ROLE regress_rls_outsider;
RESET tenancy.current;
RESET ROLE;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;

-- A selection cannot be laundered: a non-member that selects a tenant and
-- calls a SECURITY DEFINER function owned by a member reads nothing
-- (42501); the role that made the selection must be permitted too.  A
-- selection the function makes itself is the function owner's.
CREATE FUNCTION public.rls_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
  SET search_path = pg_catalog, public AS 'SELECT count(*) FROM public.rls_item';
CREATE FUNCTION public.rls_count_of(t text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS
  'BEGIN PERFORM set_config(''tenancy.current'', t, true); RETURN (SELECT count(*) FROM public.rls_item); END';
ALTER FUNCTION public.rls_count() OWNER TO regress_rls_app;
ALTER FUNCTION public.rls_count_of(text) OWNER TO regress_rls_app;
GRANT EXECUTE ON FUNCTION public.rls_count(), public.rls_count_of(text) TO regress_rls_outsider;
SET ROLE regress_rls_app;
SET tenancy.current = 'r-acme';
SELECT public.rls_count() AS member_selected;
RESET tenancy.current;
RESET ROLE;
SET ROLE regress_rls_outsider;
SET tenancy.current = 'r-acme';
-- should fail: 42501, selected by the outsider
SELECT public.rls_count();
\echo :LAST_ERROR_SQLSTATE
RESET tenancy.current;
BEGIN;
SELECT public.rls_count_of('r-acme') AS owner_selected;
ROLLBACK;
RESET ROLE;
DROP FUNCTION public.rls_count(), public.rls_count_of(text);

-- caveat: superusers and BYPASSRLS roles are never subject to policies
SELECT count(*) AS superuser_sees_all FROM public.rls_item;

DROP TABLE public.rls_item;
SELECT tenancy.deprovision('r-acme');
SELECT tenancy.deprovision('r-globex');
DROP ROLE regress_rls_app;
DROP ROLE regress_rls_outsider;
