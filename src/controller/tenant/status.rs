//! The Tenant's status, computed from how the reconcile ended. Pure: the same result always yields the
//! same status, so a reconcile that changed nothing writes nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::super::conditions::{self, StepOutcome, Stopped, summarize};
use super::super::credentials::secret_name;
use super::apply::TenantOutcome;
use crate::crd::{ConditionType, DesiredCondition, Tenant, TenantStatus, merge_conditions};

const STEPS: [ConditionType; 2] = [ConditionType::DatabaseReady, ConditionType::Migrated];
const READY: &str = "The tenant database is provisioned and its core schema is up to date.";

pub fn desired_status(
    tenant: &Tenant,
    result: &Result<TenantOutcome, Stopped>,
    moved: Option<DesiredCondition>,
    now: &Time,
) -> TenantStatus {
    let database = tenant.database_name();
    let secret = secret_name(&tenant.name_any());
    let provisioned = StepOutcome::Done(format!(
        "Database {database} and its role exist; credentials are in Secret {secret}."
    ));
    let migrated = |version: Option<i64>| {
        StepOutcome::Done(match version {
            Some(version) => format!("Core tenant schema is at version {version}."),
            None => "The catalog has no core tenant migrations.".to_string(),
        })
    };
    let (steps, core_version) = match result {
        Ok(applied) => (
            vec![
                (ConditionType::DatabaseReady, provisioned),
                (ConditionType::Migrated, migrated(applied.core_version)),
            ],
            applied.core_version,
        ),
        Err(stopped) => (blamed(stopped, provisioned, migrated(None)), None),
    };
    let past_database = !matches!(
        result,
        Err(Stopped {
            at: ConditionType::DatabaseReady,
            ..
        })
    );
    let mut conditions = summarize(steps, READY);
    conditions.extend(moved);
    let mut status = build(tenant, &conditions, now);
    if past_database {
        status.database = Some(database);
        status.secret_name = Some(secret);
    }
    status.core_version = core_version.or(status.core_version);
    if let Ok(applied) = result {
        status.server = Some(applied.server.clone());
    }
    status
}

/// The steps of a reconcile that stopped: done before the blamed one, failed there, not reached after.
fn blamed(
    stopped: &Stopped,
    provisioned: StepOutcome,
    migrated: StepOutcome,
) -> Vec<(ConditionType, StepOutcome)> {
    let failed = StepOutcome::failed(&stopped.error);
    let (database, core, ready) = match stopped.at {
        ConditionType::DatabaseReady => (failed, StepOutcome::NotReached, None),
        ConditionType::Migrated => (provisioned, failed, None),
        // Every step done; what failed after them (the mirror) is Ready's alone.
        _ => (provisioned, migrated, Some(failed)),
    };
    let mut steps = vec![
        (ConditionType::DatabaseReady, database),
        (ConditionType::Migrated, core),
    ];
    steps.extend(ready.map(|step| (ConditionType::Ready, step)));
    steps
}

pub fn paused(tenant: &Tenant, now: &Time) -> TenantStatus {
    let conditions = conditions::paused(
        &STEPS,
        "Reconciling is paused (spec.paused); nothing is checked or changed until it is unset.",
    );
    build(tenant, &conditions, now)
}

fn build(tenant: &Tenant, desired: &[DesiredCondition], now: &Time) -> TenantStatus {
    let current = tenant.status.clone().unwrap_or_default();
    let generation = tenant.metadata.generation;
    TenantStatus {
        observed_generation: generation,
        slug: Some(tenant.slug()),
        conditions: merge_conditions(&current.conditions, desired, generation, now),
        ..current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::Error;
    use crate::crd::{Reason, TenantSpec};
    use crate::db;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn tenant() -> Tenant {
        let mut tenant = Tenant::new("acme", TenantSpec::default());
        tenant.metadata.generation = Some(1);
        tenant
    }

    fn ready() -> Result<TenantOutcome, Stopped> {
        Ok(TenantOutcome {
            core_version: Some(3),
            server: "default".into(),
        })
    }

    fn stopped(at: ConditionType) -> Result<TenantOutcome, Stopped> {
        Err(Stopped {
            at,
            error: Error::Database(db::Error::ConnectTimeout {
                database: "tenant_acme".into(),
                seconds: 30,
            }),
        })
    }

    #[test]
    fn a_second_identical_reconcile_computes_the_same_status() {
        let mut tenant = tenant();
        let first = desired_status(&tenant, &ready(), None, &at(100));
        tenant.status = Some(first.clone());
        assert_eq!(desired_status(&tenant, &ready(), None, &at(500)), first);
        assert_eq!(first.database.as_deref(), Some("tenant_acme"));
        assert_eq!(first.secret_name.as_deref(), Some("acme-db"));
        assert_eq!(
            first.slug.as_deref(),
            Some("acme"),
            "the defaulted slug is shown"
        );
        assert_eq!(first.core_version, Some(3));
        assert!(first.conditions.iter().all(|c| c.status == "True"));
    }

    #[test]
    fn the_blamed_step_fails_the_ones_before_it_are_done() {
        let unavailable = Reason::DatabaseUnavailable.as_str();
        let cases = [
            (
                ConditionType::DatabaseReady,
                [
                    conditions::row("DatabaseReady", "False", unavailable),
                    conditions::row("Migrated", "Unknown", "Progressing"),
                    conditions::row("Ready", "False", unavailable),
                    conditions::row("Reconciling", "True", unavailable),
                ],
            ),
            (
                ConditionType::Migrated,
                [
                    conditions::row("DatabaseReady", "True", "Reconciled"),
                    conditions::row("Migrated", "False", unavailable),
                    conditions::row("Ready", "False", unavailable),
                    conditions::row("Reconciling", "True", unavailable),
                ],
            ),
            // The mirror write after every step: only Ready says so.
            (
                ConditionType::Ready,
                [
                    conditions::row("DatabaseReady", "True", "Reconciled"),
                    conditions::row("Migrated", "True", "Reconciled"),
                    conditions::row("Ready", "False", unavailable),
                    conditions::row("Reconciling", "True", unavailable),
                ],
            ),
        ];
        for (at_step, expected) in cases {
            let status = desired_status(&tenant(), &stopped(at_step), None, &at(1));
            assert_eq!(
                conditions::rows(&status.conditions),
                expected,
                "{at_step:?}"
            );
        }
    }

    #[test]
    fn a_failure_keeps_what_was_known() {
        let mut tenant = tenant();
        tenant.status = Some(desired_status(&tenant, &ready(), None, &at(100)));
        let status = desired_status(
            &tenant,
            &stopped(ConditionType::DatabaseReady),
            None,
            &at(200),
        );
        assert_eq!(status.core_version, Some(3));
        assert_eq!(status.database.as_deref(), Some("tenant_acme"));
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.last_transition_time, at(200));
    }

    #[test]
    fn paused_and_deleting() {
        let mut tenant = tenant();
        let paused = paused(&tenant, &at(1));
        assert!(paused.conditions.iter().all(|c| c.reason == "Paused"));
        tenant.status = Some(desired_status(&tenant, &ready(), None, &at(1)));
        let blocked = Error::InstallationsRemain {
            installations: vec!["acme-tasks".into()],
        };
        let deleting: TenantStatus = crate::controller::conditions::deleting_status(
            tenant.status.as_ref(),
            tenant.metadata.generation,
            &blocked,
            &at(2),
        );
        assert_eq!(
            conditions::rows(&deleting.conditions),
            [
                conditions::row("DatabaseReady", "True", "Reconciled"),
                conditions::row("Migrated", "True", "Reconciled"),
                conditions::row("Ready", "False", "UninstallBlocked"),
                conditions::row("Reconciling", "True", "UninstallBlocked"),
            ]
        );
    }
}
