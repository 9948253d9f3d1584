ALTER TABLE tenant_modules DROP COLUMN reinstalled;
