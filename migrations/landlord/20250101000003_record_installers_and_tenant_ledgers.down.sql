DROP TABLE tenant_ledger;
ALTER TABLE tenant_modules DROP COLUMN name;
