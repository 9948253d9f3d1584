use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    printcolumn(name = "Slug", type_ = "string", json_path = ".spec.slug"),
    printcolumn(name = "Database", type_ = "string", json_path = ".status.database"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", priority = "1", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("has(self.spec.slug) || self.metadata.name.matches('^[a-z][a-z0-9-]{0,55}$')")
        .message("metadata.name does not give a valid slug (lowercase letters, digits and '-', starting with a letter, at most 56 characters); set spec.slug")
)]
#[x_kube(validation = Rule::new("has(self.slug) == has(oldSelf.slug)").message("spec.slug cannot be added or removed after creation"))]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Names the database `tenant_<slug>`. Defaults to metadata.name with '-' turned into '_'. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"), length(min = 1))]
    #[x_kube(
        validation = Rule::new("size(self) <= 56").message("slug must be at most 56 characters so that tenant_<slug> fits PostgreSQL's 63-byte identifier limit"),
        validation = Rule::new("self == oldSelf").message("spec.slug is immutable")
    )]
    pub slug: Option<String>,

    /// Human-readable name, mirrored to the landlord database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,

    /// PostgreSQL extensions to create in the tenant database, e.g. ltree, btree_gin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(regex(pattern = r"^[a-z][a-z0-9_]*$"), length(min = 1, max = 63))
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub extensions: Vec<String>,

    /// What happens to the database and role when the Tenant is deleted: Retain (default) or Delete.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Stop reconciling this tenant without deleting anything.
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

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The tenant's database, `tenant_<slug>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Secret in this namespace with host, port, database, username, password and uri of the tenant's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Version of the last core tenant migration applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_version: Option<i64>,
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
