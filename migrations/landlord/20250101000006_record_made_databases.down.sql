ALTER TABLE tenants DROP COLUMN recreated;
ALTER TABLE tenants DROP COLUMN database_made;
