//! The Tenant's status, computed from what the reconcile found. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::super::conditions::{Step, override_ready, paused, summarize};
use crate::crd::{ConditionType, DesiredCondition, Tenant, TenantStatus, merge_conditions};

const STEPS: [ConditionType; 2] = [ConditionType::DatabaseReady, ConditionType::Migrated];

/// How far one reconcile of a Tenant got.
#[derive(Debug, Default)]
pub struct Progress {
    pub database: Option<String>,
    pub secret_name: Option<String>,
    pub core_version: Option<i64>,
    pub database_step: Option<Step>,
    pub migrated_step: Option<Step>,
    pub paused: bool,
    /// Overrides the summary while the resource is being deleted.
    pub deleting: Option<DesiredCondition>,
}

pub fn desired_status(tenant: &Tenant, progress: Progress, now: &Time) -> TenantStatus {
    let current = tenant.status.clone().unwrap_or_default();
    let mut desired = if progress.paused {
        paused(
            &STEPS,
            "Reconciling is paused (spec.paused); nothing is checked or changed until it is unset.",
        )
    } else {
        summarize(
            vec![
                (
                    ConditionType::DatabaseReady,
                    progress.database_step.unwrap_or(Step::NotReached),
                ),
                (
                    ConditionType::Migrated,
                    progress.migrated_step.unwrap_or(Step::NotReached),
                ),
            ],
            "The tenant database is provisioned and its core schema is up to date.",
        )
    };
    override_ready(&mut desired, progress.deleting);
    let generation = tenant.metadata.generation;
    TenantStatus {
        observed_generation: generation,
        database: progress.database.or(current.database),
        secret_name: progress.secret_name.or(current.secret_name),
        core_version: progress.core_version.or(current.core_version),
        conditions: merge_conditions(&current.conditions, &desired, generation, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Reason, TenantSpec};

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn ready_progress() -> Progress {
        Progress {
            database: Some("tenant_acme".into()),
            secret_name: Some("acme-db".into()),
            core_version: Some(3),
            database_step: Some(Step::Done("ok".into())),
            migrated_step: Some(Step::Done("ok".into())),
            ..Default::default()
        }
    }

    #[test]
    fn second_identical_reconcile_computes_the_same_status() {
        let mut tenant = Tenant::new("acme", TenantSpec::default());
        tenant.metadata.generation = Some(1);
        let first = desired_status(&tenant, ready_progress(), &at(100));
        tenant.status = Some(first.clone());
        let second = desired_status(&tenant, ready_progress(), &at(500));
        assert_eq!(
            first, second,
            "a no-op reconcile must not produce a different status"
        );
        let ready = first
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.observed_generation),
            ("True", Some(1))
        );
    }

    #[test]
    fn failure_keeps_what_was_known() {
        let mut tenant = Tenant::new("acme", TenantSpec::default());
        tenant.status = Some(desired_status(&tenant, ready_progress(), &at(100)));
        let progress = Progress {
            database_step: Some(Step::Failed(Reason::DatabaseUnavailable, "down".into())),
            ..Default::default()
        };
        let status = desired_status(&tenant, progress, &at(200));
        assert_eq!(status.core_version, Some(3));
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "DatabaseUnavailable")
        );
        assert_eq!(ready.last_transition_time, at(200));
    }

    #[test]
    fn paused_reports_paused() {
        let tenant = Tenant::new(
            "acme",
            TenantSpec {
                paused: true,
                ..Default::default()
            },
        );
        let status = desired_status(
            &tenant,
            Progress {
                paused: true,
                ..Default::default()
            },
            &at(1),
        );
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.reason == Reason::Paused.as_str())
        );
    }
}
