-- The last reinstall (the value of the annotation tenancy.landlord.dev/reinstall) the module's installer carried
-- out for the tenant. Whether a reinstall is still to do is decided from here, never from the resource's status,
-- which anyone allowed to write it could clear to make the reinstall run again.
ALTER TABLE tenant_modules ADD COLUMN reinstalled text;
