DROP TABLE tenant_modules;
