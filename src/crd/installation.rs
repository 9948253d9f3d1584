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
    /// Name of a Tenant in the same namespace. Immutable.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.tenant is immutable; create another ModuleInstallation"))]
    pub tenant: String,

    /// Name of a module in the catalog. Immutable.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"), length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.module is immutable; create another ModuleInstallation"))]
    pub module: String,

    /// A release of the module; omitted means the newest release in the catalog.
    /// Raising it upgrades, lowering it rolls back with down migrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$"),
        length(max = 64)
    )]
    pub version: Option<String>,

    /// Which scopes this installation manages: All (default), Landlord or Tenant.
    #[serde(default)]
    pub scope: InstallScope,

    /// What deleting this resource does: Retain (default) keeps the module's tables; Rollback runs its down migrations.
    #[serde(default)]
    pub uninstall_policy: UninstallPolicy,

    /// Compute and publish the plan in status, apply nothing.
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

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Direction {
    Up,
    Down,
}

/// One pending migration of the plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    /// Landlord or Tenant.
    pub scope: String,
    /// `<version>_<description>` of the migration file.
    pub migration: String,
    pub direction: Direction,
}

/// Number of this module's migrations applied, per scope.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedCounts {
    #[serde(default)]
    pub landlord: u32,
    #[serde(default)]
    pub tenant: u32,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleInstallationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed_version: Option<String>,
    /// Pending steps: what the next reconcile applies (or what a dry run would apply).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlanStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedCounts>,
    /// The last value of the reinstall annotation that was carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinstalled: Option<String>,
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
