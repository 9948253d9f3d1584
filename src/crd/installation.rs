use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Setting this annotation to a new value asks for a fresh reinstall (roll back everything, apply again).
pub const REINSTALL_ANNOTATION: &str = "tenancy.landlord.dev/reinstall";

/// A feature module installed, at a release, into one tenant.
// Several printcolumns repeat `type_`: clippy mistakes them for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "tenancy.landlord.dev",
    version = "v1alpha1",
    kind = "ModuleInstallation",
    namespaced,
    status = "ModuleInstallationStatus",
    shortname = "mi",
    category = "landlord",
    doc = "A module from the catalog installed, at a release, into one Tenant of the same namespace.",
    printcolumn(name = "Tenant", type_ = "string", json_path = ".spec.tenant"),
    printcolumn(name = "Module", type_ = "string", json_path = ".spec.module"),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.installedVersion"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = "1",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ModuleInstallationSpec {
    /// Name of a Tenant in the same namespace to install the module into. Until that Tenant exists and its
    /// database is ready, the installation waits (reasons `TenantNotFound`, `TenantNotReady`). Immutable.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.tenant is immutable; create another ModuleInstallation"))]
    pub tenant: String,

    /// Name of a module in the catalog (`modules/<name>/`); one that is not there gets reason `ModuleNotFound`.
    /// A Tenant can have only one installation of a module (a second one gets `InvalidSpec`). Immutable.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"), length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.module is immutable; create another ModuleInstallation"))]
    pub module: String,

    /// A release of the module from its `module.yaml` (semantic version); omitted means the newest release in
    /// the catalog, and one the catalog does not list gets reason `VersionNotFound`. Raising it upgrades (applies
    /// the newer migrations); lowering it rolls back with down migrations, which production refuses
    /// (`DestructiveActionBlocked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$"),
        length(max = 64)
    )]
    pub version: Option<String>,

    /// Which of the module's migrations this installation runs: `All` (default) both the landlord scope (in the
    /// shared landlord database) and the tenant scope (in the tenant's database), `Landlord` or `Tenant` only
    /// that one; the other scope is left as it is.
    #[serde(default)]
    pub scope: InstallScope,

    /// What deleting this resource does. `Retain` (default) leaves the module's tables and data in place;
    /// `Rollback` runs its down migrations (tenant scope first; the landlord scope only when no other tenant has
    /// the module) and removes its permissions and roles from the tenant. Production refuses `Rollback`
    /// (`DestructiveActionBlocked`); a module another installed module depends on is never removed
    /// (`UninstallBlocked`).
    #[serde(default)]
    pub uninstall_policy: UninstallPolicy,

    /// Compute the plan and publish it in `status.plan`, apply nothing; `Ready` says `DryRun`. Default: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum InstallScope {
    #[default]
    All,
    Landlord,
    Tenant,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum UninstallPolicy {
    /// Leave the module's tables when the resource is deleted.
    #[default]
    Retain,
    /// Run the down migrations and remove the module's permissions and roles.
    Rollback,
}

pub use crate::catalog::Direction;

/// One pending migration of the plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    /// `Landlord` or `Tenant`: the database the migration runs in.
    pub scope: String,
    /// `<version>_<description>` of the migration file.
    pub migration: String,
    /// `Up` applies the migration, `Down` rolls it back.
    pub direction: Direction,
}

/// Number of this module's migrations applied, per scope.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedCounts {
    /// Migrations applied in the landlord database.
    #[serde(default)]
    pub landlord: u32,
    /// Migrations applied in the tenant's database.
    #[serde(default)]
    pub tenant: u32,
}

/// What the operator last observed and did; written by the operator only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleInstallationStatus {
    /// The `metadata.generation` this status was computed for; 0 until the operator has looked at the
    /// installation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The release the module's migrations were last brought to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    /// Pending steps: what the next reconcile applies (or what a dry run would apply).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlanStep>,
    /// Number of this module's migrations applied, per scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedCounts>,
    /// The last value of the annotation `tenancy.landlord.dev/reinstall` that was carried out; setting the
    /// annotation to another value asks for a fresh reinstall (everything down, then up again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinstalled: Option<String>,
    /// `DependenciesSatisfied`, `LandlordMigrated`, `TenantMigrated` and the summary `Ready`, plus `Reconciling`
    /// or `Stalled` while `Ready` is not True (kstatus).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_retain_and_manage_all_scopes() {
        let spec: ModuleInstallationSpec =
            serde_json::from_str(r#"{"tenant":"acme","module":"expenses"}"#).unwrap();
        assert_eq!(spec.scope, InstallScope::All);
        assert_eq!(spec.uninstall_policy, UninstallPolicy::Retain);
        assert!(!spec.dry_run);
        assert_eq!(spec.version, None);
    }
}
