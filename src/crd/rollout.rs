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
    ),
    // The name is the value of the rollout label on every installation it makes: at most 63 characters.
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("metadata.name must be at most 63 characters: it labels every installation of the rollout")
)]
#[serde(rename_all = "camelCase")]
pub struct ModuleRolloutSpec {
    /// Name of a module in the catalog (`modules/<name>/`), copied into every installation. Immutable.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_]*$"), length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.module is immutable; create another ModuleRollout"))]
    pub module: String,

    /// A release of the module, copied into every installation; omitted means the newest release in the
    /// catalog. Changing it rolls the new release out to every matching Tenant in waves, by `strategy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = r"^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$"),
        length(max = 64)
    )]
    pub version: Option<String>,

    /// Which scopes the installations manage, copied into every installation: `All` (default), `Landlord` or
    /// `Tenant` (see ModuleInstallation `spec.scope`).
    #[serde(default)]
    pub scope: InstallScope,

    /// What deleting one of the rollout's installations does, copied into every installation: `Retain`
    /// (default) keeps the module's tables, `Rollback` runs its down migrations. It applies when a Tenant stops
    /// matching and when the rollout is deleted.
    #[serde(default)]
    pub uninstall_policy: UninstallPolicy,

    /// Copied into every installation: each computes and publishes its plan and applies nothing; `Ready` says
    /// `DryRun`. Default: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,

    /// Label selector for the Tenants of this namespace to install on; omitted means every Tenant. A Tenant that
    /// stops matching has its installation deleted (`uninstallPolicy` applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_selector: Option<LabelSelector>,

    /// How fast the rollout goes and when it halts. Default: 10 at once, no failure tolerated, no canaries.
    #[serde(default)]
    pub strategy: RolloutStrategy,

    /// Start, change or delete no installation while true (reason `Paused`); those in flight finish by
    /// themselves. Default: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// The waves of a rollout: canaries first, then the other Tenants by name, a bounded number at once.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStrategy {
    /// At most this many installations of this rollout are not yet Ready for their current spec at once
    /// (counted from the cluster, so a restart keeps the bound). Default: 10.
    #[serde(default = "default_max_parallel")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_parallel: u32,

    /// At most this many of them on any one PostgreSQL server (as Landlord's records place each tenant), so
    /// that a wave never piles onto one server while others idle. Default: 5.
    #[serde(default = "default_max_parallel_per_server")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_parallel_per_server: u32,

    /// Failed installations tolerated: one more halts the rollout (no installation starts, those in flight
    /// finish) with reason `FailureBudgetExceeded`, until failures recover. Default: 0.
    #[serde(default)]
    #[schemars(range(max = 100000))]
    pub max_failures: u32,

    /// Label selector for the canary Tenants: they go first, and no other Tenant starts before every canary
    /// is Ready. Omitted means no canaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<LabelSelector>,
}

fn default_max_parallel() -> u32 {
    10
}

fn default_max_parallel_per_server() -> u32 {
    5
}

impl Default for RolloutStrategy {
    fn default() -> Self {
        RolloutStrategy {
            max_parallel: default_max_parallel(),
            max_parallel_per_server: default_max_parallel_per_server(),
            max_failures: 0,
            canary: None,
        }
    }
}

/// A tenant whose installation failed at the rollout's current spec.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedTenant {
    /// Name of the Tenant.
    pub tenant: String,
    /// The reason of its installation's `Ready` condition, or why the rollout could not create or update
    /// that installation (`InvalidSpec`: a name or an object the API refuses; `Progressing`: tried again).
    pub reason: String,
    /// The message of its installation's `Ready` condition, or of the rollout's failed write.
    pub message: String,
}

/// What the operator last observed and did; written by the operator only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleRolloutStatus {
    /// The `metadata.generation` this status was computed for; 0 until the operator has looked at the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Tenants that match `spec.tenantSelector`.
    #[serde(default)]
    pub tenants: u32,
    /// Installations at the rollout's current spec.
    #[serde(default)]
    pub updated: u32,
    /// Installations at the rollout's current spec and Ready.
    #[serde(default)]
    pub ready: u32,
    /// Installations at the rollout's current spec that failed.
    #[serde(default)]
    pub failed: u32,
    /// The failed installations: at most 20, by tenant name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_tenants: Vec<FailedTenant>,
    /// Names of matching Tenants with an installation of the module this rollout does not own: left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// The summary `Ready` (True when every matching Tenant but the conflicts is Ready at this spec), plus
    /// `Reconciling` or `Stalled` while it is not True (kstatus).
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
        assert_eq!(spec.strategy.max_parallel_per_server, 5);
        assert_eq!(spec.strategy.max_failures, 0);
        assert_eq!(spec.scope, InstallScope::All);
        assert_eq!(spec.uninstall_policy, UninstallPolicy::Retain);
        assert!(!spec.paused && !spec.dry_run && spec.tenant_selector.is_none());
    }
}
