DROP INDEX tenants_server;
ALTER TABLE tenants DROP COLUMN server;
