-- A tenant database on its way from one server to another, or the last move it made. The phase is the move's
-- whole memory: an operator that restarts resumes (or rolls back) from here, never from a status field.
-- Before 'Switched' the source serves and the target is closed; 'Switched' is written in the same transaction
-- as tenants.server, and from then on the target serves and the source stays closed until it is dropped.
CREATE TABLE tenant_moves (
    tenant_slug      text PRIMARY KEY REFERENCES tenants (slug) ON DELETE CASCADE,
    source           text NOT NULL,
    target           text NOT NULL,
    phase            text NOT NULL CHECK (phase IN ('Quiescing', 'Copying', 'Verifying', 'Switched', 'Dropping',
                                                    'Done', 'RollingBack', 'Failed')),
    -- The source role's CONNECTION LIMIT before the move closed it: restored on the target, or on the source
    -- when the move is rolled back. NULL until read.
    connection_limit integer,
    bytes            bigint NOT NULL DEFAULT 0,
    problem          text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
-- Placement counts the moves still on their way to a server as tenants of it.
CREATE INDEX tenant_moves_target ON tenant_moves (target) WHERE phase IN ('Quiescing', 'Copying', 'Verifying');
-- A tenant being moved is neither Ready nor served: installations wait for it.
ALTER TABLE tenants DROP CONSTRAINT tenants_status_known;
ALTER TABLE tenants ADD CONSTRAINT tenants_status_known
    CHECK (status IN ('Provisioning', 'Ready', 'Failed', 'Retained', 'Missing', 'Moving'));
