//! The ModuleInstallation's status, computed from what the reconcile found. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::super::conditions::{Step, override_ready, summarize};
use crate::crd::{
    AppliedCounts, ConditionType, DesiredCondition, ModuleInstallation, ModuleInstallationStatus,
    PlanStep, merge_conditions,
};

#[derive(Debug, Default)]
pub struct Progress {
    pub dependencies: Option<Step>,
    pub landlord: Option<Step>,
    pub tenant: Option<Step>,
    /// None keeps what status already says.
    pub installed_version: Option<String>,
    pub plan: Vec<PlanStep>,
    pub applied: Option<AppliedCounts>,
    pub reinstalled: Option<String>,
    /// Overrides the summary while the resource is being deleted.
    pub deleting: Option<DesiredCondition>,
}

pub fn desired_status(
    mi: &ModuleInstallation,
    progress: Progress,
    now: &Time,
) -> ModuleInstallationStatus {
    let current = mi.status.clone().unwrap_or_default();
    let mut desired = summarize(
        vec![
            (
                ConditionType::DependenciesSatisfied,
                progress.dependencies.unwrap_or(Step::NotReached),
            ),
            (
                ConditionType::LandlordMigrated,
                progress.landlord.unwrap_or(Step::NotReached),
            ),
            (
                ConditionType::TenantMigrated,
                progress.tenant.unwrap_or(Step::NotReached),
            ),
        ],
        "The module is installed at the requested release.",
    );
    override_ready(&mut desired, progress.deleting);
    let generation = mi.metadata.generation;
    ModuleInstallationStatus {
        observed_generation: generation,
        installed_version: progress.installed_version.or(current.installed_version),
        plan: progress.plan,
        applied: progress.applied.or(current.applied),
        reinstalled: progress.reinstalled.or(current.reinstalled),
        conditions: merge_conditions(&current.conditions, &desired, generation, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ModuleInstallationSpec, Reason};

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn installed() -> Progress {
        Progress {
            dependencies: Some(Step::Done("none".into())),
            landlord: Some(Step::Done("none".into())),
            tenant: Some(Step::Done("2 applied".into())),
            installed_version: Some("1.0.0".into()),
            applied: Some(AppliedCounts {
                landlord: 0,
                tenant: 2,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn no_op_reconcile_computes_identical_status() {
        let mut mi = ModuleInstallation::new("acme-tasks", ModuleInstallationSpec::default());
        mi.metadata.generation = Some(2);
        let first = desired_status(&mi, installed(), &at(10));
        mi.status = Some(first.clone());
        assert_eq!(desired_status(&mi, installed(), &at(99)), first);
        assert!(
            first
                .conditions
                .iter()
                .all(|c| c.status == "True" && c.observed_generation == Some(2))
        );
    }

    #[test]
    fn waiting_on_tenant_is_not_ready_and_keeps_version() {
        let mut mi = ModuleInstallation::new("acme-tasks", ModuleInstallationSpec::default());
        mi.status = Some(desired_status(&mi, installed(), &at(10)));
        let progress = Progress {
            dependencies: Some(Step::Failed(Reason::TenantNotReady, "wait".into())),
            ..Default::default()
        };
        let status = desired_status(&mi, progress, &at(20));
        assert_eq!(status.installed_version.as_deref(), Some("1.0.0"));
        let ready = status.conditions.last().unwrap();
        assert_eq!(
            (
                ready.type_.as_str(),
                ready.status.as_str(),
                ready.reason.as_str()
            ),
            ("Ready", "False", "TenantNotReady")
        );
    }
}
