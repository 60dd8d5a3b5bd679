--
-- init: install tenancy, refuse a hijacked schema, check what was installed
--
-- pg_regress has loaded dblink (--load-extension=dblink).

-- A schema "tenancy" created beforehand by another role must not be adopted.
CREATE ROLE regress_squatter;
SELECT current_database() AS dbname \gset
GRANT CREATE ON DATABASE :"dbname" TO regress_squatter;
SET ROLE regress_squatter;
CREATE SCHEMA tenancy;
RESET ROLE;
-- should fail: schema owned by someone else
CREATE EXTENSION tenancy;
\echo :LAST_ERROR_SQLSTATE
-- nothing was installed
SELECT count(*) AS tenancy_extensions FROM pg_extension WHERE extname = 'tenancy';
DROP SCHEMA tenancy;
REVOKE CREATE ON DATABASE :"dbname" FROM regress_squatter;
DROP ROLE regress_squatter;

-- non-superusers cannot install it (trusted = false)
CREATE ROLE regress_installer;
GRANT CREATE ON DATABASE :"dbname" TO regress_installer;
SET ROLE regress_installer;
-- should fail: must be superuser
CREATE EXTENSION tenancy;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE CREATE ON DATABASE :"dbname" FROM regress_installer;
DROP ROLE regress_installer;

-- should succeed
CREATE EXTENSION tenancy;
\dx tenancy
\dx+ tenancy

-- every object of the extension has a comment
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS undocumented
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'tenancy')
   AND d.deptype = 'e'
   AND obj_description(d.objid, (SELECT relname FROM pg_class WHERE oid = d.classid)) IS NULL
 ORDER BY 1;

-- tests create tenant databases named regress_tn_<tenant>
ALTER DATABASE :"dbname" SET tenancy.database_prefix = 'regress_tn_';
