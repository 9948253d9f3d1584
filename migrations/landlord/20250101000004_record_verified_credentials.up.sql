-- The resourceVersion of the tenant's credentials Secret whose password last logged in: while the Secret is
-- unchanged, a resync knows the role accepts it without opening a session in the tenant database.
ALTER TABLE tenants ADD COLUMN credentials_version text;
