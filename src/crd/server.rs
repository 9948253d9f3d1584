use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The server `LANDLORD_ADMIN_DATABASE_URL` names, in Landlord's records and in `Tenant.status.server`; no
/// DatabaseServer may take this name.
pub const DEFAULT_SERVER: &str = "default";

/// A PostgreSQL server (or a cluster's primary) that tenant databases may be placed on.
// Several printcolumns repeat `type_`: clippy mistakes them for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "tenancy.landlord.dev",
    version = "v1alpha1",
    kind = "DatabaseServer",
    status = "DatabaseServerStatus",
    shortname = "dbs",
    category = "landlord",
    doc = "A PostgreSQL server new tenant databases may be placed on, with its capacity; owned by platform engineers.",
    printcolumn(name = "Tenants", type_ = "integer", json_path = ".status.tenants"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxTenants"),
    printcolumn(name = "Cordoned", type_ = "boolean", json_path = ".spec.cordoned"),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.serverVersion"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Reason", type_ = "string", priority = "1", json_path = ".status.conditions[?(@.type==\"Ready\")].reason"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name != 'default'")
        .message("the name default is taken by the server of LANDLORD_ADMIN_DATABASE_URL"),
    // The name labels the per-server metrics and is recorded with every tenant placed here.
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("metadata.name must be at most 63 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseServerSpec {
    /// The Secret in the operator's namespace (never the Tenant's) holding the admin URL of this server's
    /// maintenance database: `postgres://<role>:<password>@<host>:<port>/postgres`, for a role with CREATEDB and
    /// CREATEROLE that is not a superuser.
    pub admin_secret_ref: AdminSecretRef,

    /// How applications reach this server (e.g. a Service name), written into every tenant's Secret placed
    /// here. Default: the admin URL's host and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_endpoint: Option<TenantEndpoint>,

    /// Capacity: no new tenant is placed here once this many are recorded on it (retained databases count).
    /// Lowering it below the count moves nothing. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_tenants: Option<i32>,

    /// No new tenant is placed here; the tenants already here keep working. Default: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cordoned: bool,

    /// Only Tenants of namespaces with these labels may be placed here, whether chosen or named in
    /// `spec.server` (`InvalidSpec` otherwise). Omitted: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Connections the operator opens to this server at once, within `LANDLORD_MAX_DB_CONNECTIONS` for all
    /// servers. Default: the global limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_connections: Option<i32>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct AdminSecretRef {
    /// Name of the Secret, in the operator's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key of the admin URL in the Secret. Default: `uri`.
    #[serde(default = "default_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_key() -> String {
    "uri".into()
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
pub struct TenantEndpoint {
    /// Host name or address applications connect to.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,
    /// Port applications connect to. Default: 5432.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
}

fn default_port() -> u16 {
    5432
}

/// What the operator last observed; written by the operator only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseServerStatus {
    /// The `metadata.generation` this status was computed for; 0 until the operator has looked at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Tenants placed here, from Landlord's records (retained databases count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<i64>,
    /// `server_version` as the server reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// The template database new tenant databases on this server are cloned from, once built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// `Ready`: the server answers and the admin role has exactly the privileges it needs; plus `Reconciling`
    /// or `Stalled` while it is not True (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
