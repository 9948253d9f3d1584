ALTER TABLE tenants DROP COLUMN credentials_version;
