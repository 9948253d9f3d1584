use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::installation::{InstallScope, UninstallPolicy};

/// Label on every ModuleInstallation a rollout manages: the rollout's name.
pub const ROLLOUT_LABEL: &str = "tenancy.landlord.dev/rollout";

/// One module at one release on every matching Tenant of the namespace, in waves.
// Several printcolumns repeat `type_`: clippy mistakes them for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[kube(
    group = "tenancy.landlord.dev",
    version = "v1alpha1",
    kind = "ModuleRollout",
    namespaced,
    status = "ModuleRolloutStatus",
    shortname = "mro",
    category = "landlord",
    doc = "A module at one release on every matching Tenant of the namespace, in waves: canaries first, at most maxParallel at once, halted past maxFailures.",
    printcolumn(name = "Module", type_ = "string", json_path = ".spec.module"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "Tenants", type_ = "integer", json_path = ".status.tenants"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.ready"),
    printcolumn(name = "Failed", type_ = "integer", json_path = ".status.failed"),
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
pub struct ModuleRolloutSpec {
    /// Name of a module in the catalog. Immutable.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"), length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.module is immutable; create another ModuleRollout"))]
    pub module: String,

    /// A release of the module; omitted means the newest release in the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$"),
        length(max = 64)
    )]
    pub version: Option<String>,

    /// Which scopes the installations manage: All (default), Landlord or Tenant.
    #[serde(default)]
    pub scope: InstallScope,

    /// What deleting an installation does: Retain (default) or Rollback.
    #[serde(default)]
    pub uninstall_policy: UninstallPolicy,

    /// Installations compute and publish their plans, applying nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,

    /// The Tenants of this namespace to install on; omitted means every Tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_selector: Option<LabelSelector>,

    #[serde(default)]
    pub strategy: RolloutStrategy,

    /// Start or change no installation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// Installations of this rollout not yet Ready for their current spec, at most.
    #[serde(default = "default_max_parallel")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_parallel: u32,

    /// Failed tenants tolerated; one more halts the rollout.
    #[serde(default)]
    #[schemars(range(max = 100000))]
    pub max_failures: u32,

    /// These tenants go first; no other tenant starts before every canary is Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<LabelSelector>,
}

fn default_max_parallel() -> u32 {
    10
}

impl Default for RolloutStrategy {
    fn default() -> Self {
        RolloutStrategy {
            max_parallel: default_max_parallel(),
            max_failures: 0,
            canary: None,
        }
    }
}

/// A tenant whose installation failed at the rollout's current spec.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedTenant {
    pub tenant: String,
    pub reason: String,
    pub message: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleRolloutStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Matching tenants.
    #[serde(default)]
    pub tenants: u32,
    /// Installations at this spec.
    #[serde(default)]
    pub updated: u32,
    /// Installations at this spec and Ready.
    #[serde(default)]
    pub ready: u32,
    /// Installations at this spec that failed.
    #[serde(default)]
    pub failed: u32,
    /// At most 20, by tenant name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_tenants: Vec<FailedTenant>,
    /// Matching tenants with an installation of the module this rollout does not own: left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let spec: ModuleRolloutSpec = serde_json::from_str(r#"{"module":"expenses"}"#).unwrap();
        assert_eq!(spec.strategy.max_parallel, 10);
        assert_eq!(spec.strategy.max_failures, 0);
        assert_eq!(spec.scope, InstallScope::All);
        assert_eq!(spec.uninstall_policy, UninstallPolicy::Retain);
        assert!(!spec.paused && !spec.dry_run && spec.tenant_selector.is_none());
    }
}
