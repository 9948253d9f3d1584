ALTER TABLE tenant_modules DROP CONSTRAINT tenant_modules_status_known;
ALTER TABLE tenants DROP CONSTRAINT tenants_status_known;
ALTER TABLE tenants DROP COLUMN recreated;
ALTER TABLE tenants DROP COLUMN database_made;
