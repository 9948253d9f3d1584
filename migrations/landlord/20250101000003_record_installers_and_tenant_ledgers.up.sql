-- Which ModuleInstallation installed a module for a tenant: only that one may roll it back.
ALTER TABLE tenant_modules ADD COLUMN name text NOT NULL DEFAULT '';

-- Landlord's own copy of the ledger inside every tenant database. The tenant's role owns its database and can
-- rewrite the ledger there; it cannot write here, so a difference between the two is noticed and refused.
-- `applying` and `reverting` are written before a migration runs, so a crash between the tenant database's
-- commit and this table's update is settled from the tenant's ledger on the next run.
CREATE TABLE tenant_ledger (
    tenant_slug text NOT NULL,
    module      text NOT NULL,
    version     bigint NOT NULL,
    checksum    bytea NOT NULL,
    state       text NOT NULL CHECK (state IN ('applying', 'applied', 'reverting')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_slug, module, version)
);
