DROP TABLE tenant_moves;
UPDATE tenants SET status = 'Provisioning' WHERE status = 'Moving';
ALTER TABLE tenants DROP CONSTRAINT tenants_status_known;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_known
    CHECK (status IN ('Provisioning', 'Ready', 'Failed', 'Retained', 'Missing'));
