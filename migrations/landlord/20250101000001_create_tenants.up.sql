-- The mirror of Tenant resources, for applications that read the landlord database.
CREATE TABLE tenants (
    slug          text PRIMARY KEY,
    database_name text NOT NULL UNIQUE,
    display_name  text,
    status        text NOT NULL,
    -- UID of the Tenant resource that owns this slug: a second claimant is refused (SlugConflict).
    resource_uid  text NOT NULL,
    namespace     text NOT NULL,
    name          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
