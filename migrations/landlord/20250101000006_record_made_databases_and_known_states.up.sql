-- Whether the slug's database was made (or adopted) by Landlord. A database missing while this says it was made
-- was dropped or lost outside Landlord: it is reported (DatabaseMissing), never made again empty on its own.
ALTER TABLE tenants ADD COLUMN database_made boolean NOT NULL DEFAULT false;
-- The last re-creation (the value of the annotation tenancy.landlord.dev/recreate-database) carried out for the
-- slug, so that each value asks for one new database only.
ALTER TABLE tenants ADD COLUMN recreated text;
-- Slugs an earlier Landlord provisioned: their databases were made.
UPDATE tenants SET database_made = true WHERE status IN ('Ready', 'Failed', 'Retained');
-- The states the operator writes, and nothing else (src/db/mirror/state.rs holds the same lists).
ALTER TABLE tenants ADD CONSTRAINT tenants_status_known
    CHECK (status IN ('Provisioning', 'Ready', 'Failed', 'Retained', 'Missing'));
ALTER TABLE tenant_modules ADD CONSTRAINT tenant_modules_status_known
    CHECK (status IN ('Installing', 'Installed', 'Uninstalling'));
