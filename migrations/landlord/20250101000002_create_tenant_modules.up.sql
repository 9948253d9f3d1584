-- The mirror of ModuleInstallation resources.
CREATE TABLE tenant_modules (
    tenant_slug  text NOT NULL REFERENCES tenants (slug) ON DELETE CASCADE,
    module       text NOT NULL,
    version      text,
    status       text NOT NULL,
    resource_uid text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_slug, module)
);

CREATE INDEX tenant_modules_module_idx ON tenant_modules (module);
