use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Asks for a new, empty tenant database when the one Landlord made is missing (`DatabaseMissing`); carried
/// out once per value, as the landlord database records.
pub const RECREATE_DATABASE_ANNOTATION: &str = "tenancy.landlord.dev/recreate-database";

/// Asks for the tenant's database to be moved to the server named (a DatabaseServer, or `default`).
pub const MOVE_TO_ANNOTATION: &str = "tenancy.landlord.dev/move-to";

/// In production, a move goes ahead only when this names the same server as `MOVE_TO_ANNOTATION`.
pub const MOVE_APPROVED_ANNOTATION: &str = "tenancy.landlord.dev/move-approved";

/// A tenant of the platform: its own PostgreSQL database `tenant_<slug>`, its own role, and the core schema.
// Several printcolumns repeat `type_`: clippy mistakes them for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "tenancy.landlord.dev",
    version = "v1alpha1",
    kind = "Tenant",
    namespaced,
    status = "TenantStatus",
    shortname = "tn",
    category = "landlord",
    doc = "A tenant with its own PostgreSQL database tenant_<slug>, role and core schema.",
    printcolumn(name = "Slug", type_ = "string", json_path = ".status.slug"),
    printcolumn(name = "Database", type_ = "string", json_path = ".status.database"),
    printcolumn(name = "Server", type_ = "string", json_path = ".status.server"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", priority = "1", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(self.spec.slug) || self.metadata.name.matches('^[a-z][a-z0-9-]{0,55}$')")
        .message("metadata.name does not give a valid slug (lowercase letters, digits and '-', starting with a letter, at most 56 characters); set spec.slug"),
    // The name is the value of the tenant label on its Secret: a label value holds at most 63 characters.
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("metadata.name must be at most 63 characters: it labels the tenant's credentials Secret")
)]
#[x_kube(
    validation = Rule::new("has(self.slug) == has(oldSelf.slug)").message("spec.slug cannot be added or removed after creation"),
    validation = Rule::new("has(self.server) == has(oldSelf.server)").message("spec.server cannot be added or removed after creation")
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Names the tenant's database `tenant_<slug>` and its role. Optional: defaults to `metadata.name` with `-`
    /// turned into `_`. Lowercase letters, digits and `_`, starting with a letter, at most 56 characters so that
    /// `tenant_<slug>` fits PostgreSQL's 63-byte limit. Immutable: it cannot be changed, added or removed after
    /// creation. A slug another Tenant already holds gets reason `SlugConflict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"), length(min = 1))]
    #[x_kube(
        validation = Rule::new("size(self) <= 56").message("slug must be at most 56 characters so that tenant_<slug> fits PostgreSQL's 63-byte identifier limit"),
        validation = Rule::new("self == oldSelf").message("spec.slug is immutable")
    )]
    pub slug: Option<String>,

    /// The DatabaseServer (or `default`, the server of `LANDLORD_ADMIN_DATABASE_URL`) to place the tenant's
    /// database on. Optional: Landlord picks one. Immutable. A server whose `namespaceSelector` does not admit
    /// this namespace is refused (`InvalidSpec`); one that is full, cordoned or not Ready makes the Tenant wait
    /// (`NoServerAvailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.server is immutable"))]
    pub server: Option<String>,

    /// Without `server`: only DatabaseServers with these labels are considered (the `default` server has no
    /// labels, so a selector leaves it out). Among the Ready, uncordoned servers that admit the namespace and
    /// are under `maxTenants`, the one with the fewest tenants wins (ties by name). Read once, at placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_selector: Option<LabelSelector>,

    /// Human-readable name of the tenant, mirrored to the tenant's record in the landlord database. Optional;
    /// changing it updates only that record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,

    /// PostgreSQL extensions to create in the tenant database, e.g. `ltree`, `btree_gin`, at most 32. They are
    /// created as the tenant's own role, so only extensions the server marks trusted can be used; one that is
    /// untrusted or not installed on the server is refused with reason `InvalidSpec` before the role and
    /// database are created. Removing a name from the list does not drop the extension. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(regex(pattern = r"^[a-z][a-z0-9_]*$"), length(min = 1, max = 63))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub extensions: Vec<String>,

    /// What deleting the Tenant does. `Retain` (default) keeps the database, the role and the credentials
    /// Secret, for the next Tenant of the same namespace and name; `Delete` drops what Landlord made for this
    /// Tenant. With `LANDLORD_ENVIRONMENT=production`, `Delete` is refused (reason `DestructiveActionBlocked`).
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Stop reconciling this tenant without deleting anything: while true, nothing is checked or changed, the
    /// conditions say `Paused`, and a deletion waits until it is unset. Default: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the database and role when the Tenant is deleted.
    #[default]
    Retain,
    /// Drop the database and role when the Tenant is deleted.
    Delete,
}

/// What the operator last observed and did; written by the operator only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The `metadata.generation` this status was computed for; 0 until the operator has looked at the Tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The slug in effect: `spec.slug`, or the one defaulted from `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// The tenant's database, `tenant_<slug>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The server the database is placed on, as Landlord's records say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Name of the Secret in this namespace (`<name>-db`) with `host`, `port`, `database`, `username`,
    /// `password` and `uri` of the tenant's own role. Editing its password changes the role's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Version of the last core tenant migration applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_version: Option<i64>,
    /// `DatabaseReady`, `Migrated` and the summary `Ready`, plus `Reconciling` or `Stalled` while `Ready` is not
    /// True (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl Tenant {
    /// The slug this tenant's database is named after: spec.slug or the defaulted metadata.name.
    pub fn slug(&self) -> String {
        match &self.spec.slug {
            Some(slug) => slug.clone(),
            None => self
                .metadata
                .name
                .as_deref()
                .unwrap_or_default()
                .replace('-', "_"),
        }
    }

    pub fn database_name(&self) -> String {
        format!("tenant_{}", self.slug())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_defaults_from_name() {
        let tenant = Tenant::new("acme-corp", TenantSpec::default());
        assert_eq!(tenant.slug(), "acme_corp");
        assert_eq!(tenant.database_name(), "tenant_acme_corp");
    }

    #[test]
    fn explicit_slug_wins() {
        let spec = TenantSpec {
            slug: Some("acme".into()),
            ..Default::default()
        };
        assert_eq!(Tenant::new("whatever", spec).database_name(), "tenant_acme");
    }

    #[test]
    fn deletion_policy_defaults_to_retain() {
        let spec: TenantSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec.deletion_policy, DeletionPolicy::Retain);
        assert!(!spec.paused);
    }
}
