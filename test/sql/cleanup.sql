--
-- cleanup: drop what the suite created, and leave no tenant database behind
--
SELECT tenancy.deprovision(id, force => true) FROM tenancy.tenant ORDER BY id;
DELETE FROM tenancy.migration;
-- tenancy's template on this cluster (rebuilt on demand, safe to drop)
DROP DATABASE IF EXISTS regress_tn_template;
SELECT current_database() AS dbname \gset
ALTER DATABASE :"dbname" RESET tenancy.database_prefix;
DROP EXTENSION tenancy;
-- should fail: gone
SELECT tenancy.current_tenant();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS tenant_databases FROM pg_database WHERE datname LIKE 'regress_tn_%';
-- the schema named in the control file outlives the extension, as in core
DROP SCHEMA tenancy;
SELECT count(*) AS tenancy_schemas FROM pg_namespace WHERE nspname = 'tenancy';
SELECT dblink_get_connections() AS open_connections;
SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress_%' ORDER BY 1;
