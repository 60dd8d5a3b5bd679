-- test/example/setup.sql: what an operator does once, as a superuser, in the
-- admin database (the one where tenancy is installed), before app.js runs.
--
--   psql -X -v ON_ERROR_STOP=1 -d postgres -f setup.sql
--
-- Six tenants: four the application may use, one it is not a member of
-- (requests for it get 403), one suspended (409).  Their data lives in ONE
-- shared table here, kept apart by row-level security on the selected tenant.

CREATE EXTENSION IF NOT EXISTS tenancy CASCADE;   -- CASCADE: dblink (contrib)

-- tenant databases are named example_<tenant> (this session only)
SET tenancy.database_prefix = 'example_';
SELECT id, database_name, state FROM tenancy.provision('acme');
SELECT id, database_name, state FROM tenancy.provision('globex');
SELECT id, database_name, state FROM tenancy.provision('initech');
SELECT id, database_name, state FROM tenancy.provision('umbrella');
SELECT id, database_name, state FROM tenancy.provision('hooli');
SELECT id, database_name, state FROM tenancy.provision('soylent');

-- The application's login role: not a superuser, no BYPASSRLS, not the
-- table's owner (any of those would skip the policy below).  Give it a
-- password (\password example_app) wherever it does not authenticate by trust.
CREATE ROLE example_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
-- The pool reuses connections: refuse any selection that was not made in the
-- transaction using it (a session-level SET left behind by an earlier request).
ALTER ROLE example_app SET tenancy.strict_local = on;

-- Membership is what authorises: the role may select only these tenants.
SELECT tenancy.grant_access('acme', 'example_app');
SELECT tenancy.grant_access('globex', 'example_app');
SELECT tenancy.grant_access('initech', 'example_app');
SELECT tenancy.grant_access('umbrella', 'example_app');
SELECT tenancy.grant_access('soylent', 'example_app');
-- 'hooli' is not granted: 42501, 403
SELECT tenancy.suspend('soylent');                -- 55000, 409

-- The shared table, owned by this superuser.  A new row's tenant defaults to
-- the selected one; the policy shows and accepts only the selected tenant's
-- rows.  tenancy.current_tenant_id() (STABLE, parallel safe) is NULL when
-- nothing is selected, so a forgotten selection sees no row (and cannot
-- insert: NOT NULL), and raises for a tenant the role may not use.
CREATE TABLE public.items (
  tenant text NOT NULL DEFAULT tenancy.current_tenant_id(),
  name   text NOT NULL
);
ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.items FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON public.items
  USING (tenant = tenancy.current_tenant_id())
  WITH CHECK (tenant = tenancy.current_tenant_id());
GRANT SELECT, INSERT ON public.items TO example_app;

-- two rows for every tenant, including the two the application cannot use:
-- a leak would show them
INSERT INTO public.items (tenant, name)
SELECT t, t || '-seed-' || n
  FROM unnest(ARRAY['acme', 'globex', 'initech', 'umbrella', 'hooli', 'soylent']) AS t,
       generate_series(1, 2) AS n;
