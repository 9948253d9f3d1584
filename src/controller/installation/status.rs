//! The ModuleInstallation's status, computed from its plan (as far as the reconcile got to make one) and how
//! the reconcile ended. Pure: the same inputs always yield the same status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::super::conditions::{StepOutcome, Stopped, summarize};
use super::apply::InstallOutcome;
use super::gather::condition_of;
use super::plan::{InstallationPlan, ScopeAction, ScopePlan, describe};
use crate::catalog::Scope;
use crate::crd::{
    AppliedCounts, ConditionType, ModuleInstallation, ModuleInstallationStatus, Reason,
    merge_conditions,
};
use crate::db;

const READY: &str = "The module is installed at the requested release.";

pub fn desired_status(
    mi: &ModuleInstallation,
    plan: Option<&InstallationPlan<'_>>,
    result: &Result<InstallOutcome, Stopped>,
    now: &Time,
) -> ModuleInstallationStatus {
    let current = mi.status.clone().unwrap_or_default();
    let mut status = ModuleInstallationStatus {
        observed_generation: mi.metadata.generation,
        plan: plan.map(InstallationPlan::pending).unwrap_or_default(),
        ..current.clone()
    };
    let steps = match (plan, result) {
        (Some(plan), Ok(applied)) if applied.dry_run => dry_run(plan),
        (Some(plan), Ok(applied)) => {
            status.plan.clear();
            status.installed_version = Some(plan.valid.release.version.to_string());
            status.applied = Some(applied_counts(plan));
            if plan.valid.reinstall.is_some() {
                status.reinstalled = plan.valid.reinstall.clone();
            }
            let mut steps = vec![(
                ConditionType::DependenciesSatisfied,
                StepOutcome::Done(plan.valid.dependencies.clone()),
            )];
            steps.extend(in_condition_order(plan, |scope| {
                StepOutcome::Done(done_message(
                    plan,
                    scope,
                    applied.kept_for.get(&scope.scope),
                ))
            }));
            steps
        }
        (plan, Err(stopped)) => blamed(plan, stopped),
        (None, Ok(_)) => Vec::new(),
    };
    let conditions = summarize(steps, READY);
    status.conditions = merge_conditions(
        &current.conditions,
        &conditions,
        mi.metadata.generation,
        now,
    );
    status
}

/// A reconcile that stopped: every step before the blamed one done (in the order they ran), the blamed
/// one failed, the rest not reached.
fn blamed(
    plan: Option<&InstallationPlan<'_>>,
    stopped: &Stopped,
) -> Vec<(ConditionType, StepOutcome)> {
    let failed = StepOutcome::failed(&stopped.error);
    let Some(plan) = plan else {
        // No plan yet: the tenant, module, release or dependencies, or reading a ledger.
        return [
            ConditionType::DependenciesSatisfied,
            ConditionType::LandlordMigrated,
            ConditionType::TenantMigrated,
        ]
        .into_iter()
        .map(|type_| {
            let step = if type_ == stopped.at {
                failed.clone()
            } else {
                StepOutcome::NotReached
            };
            (type_, step)
        })
        .collect();
    };
    let dependencies = if stopped.at == ConditionType::DependenciesSatisfied {
        failed.clone()
    } else {
        StepOutcome::Done(plan.valid.dependencies.clone())
    };
    let mut reached = stopped.at != ConditionType::DependenciesSatisfied;
    let mut by_run_order = Vec::new();
    for scope in &plan.scopes {
        let type_ = condition_of(scope.scope);
        let step = if type_ == stopped.at {
            reached = false;
            failed.clone()
        } else if reached {
            StepOutcome::Done(done_message(plan, scope, None))
        } else {
            StepOutcome::NotReached
        };
        by_run_order.push((scope.scope, step));
    }
    by_run_order.sort_by_key(|(scope, _)| *scope);
    let mut steps = vec![(ConditionType::DependenciesSatisfied, dependencies)];
    steps.extend(
        by_run_order
            .into_iter()
            .map(|(scope, step)| (condition_of(scope), step)),
    );
    if stopped.at == ConditionType::Ready {
        steps.push((ConditionType::Ready, failed));
    }
    steps
}

fn dry_run(plan: &InstallationPlan<'_>) -> Vec<(ConditionType, StepOutcome)> {
    let mut steps = vec![(
        ConditionType::DependenciesSatisfied,
        StepOutcome::Done(plan.valid.dependencies.clone()),
    )];
    steps.extend(in_condition_order(plan, |scope| match &scope.action {
        ScopeAction::Migrate(planned) if planned.is_empty() => {
            StepOutcome::Failed(Reason::DryRun, "Dry run: nothing to apply.".into())
        }
        ScopeAction::Migrate(planned) => StepOutcome::Failed(
            Reason::DryRun,
            format!(
                "Dry run: would run {}; nothing was applied.",
                describe(&planned.steps)
            ),
        ),
        _ => StepOutcome::Done(done_message(plan, scope, None)),
    }));
    let pending = plan.pending().len();
    let summary = match pending {
        0 => "Dry run: nothing to apply.".to_string(),
        n => format!(
            "Dry run: would run {n} migration{} (see status.plan); nothing was applied.",
            if n == 1 { "" } else { "s" }
        ),
    };
    steps.push((
        ConditionType::Ready,
        StepOutcome::Failed(Reason::DryRun, summary),
    ));
    steps
}

fn in_condition_order<'p>(
    plan: &'p InstallationPlan<'_>,
    step: impl Fn(&'p ScopePlan) -> StepOutcome,
) -> Vec<(ConditionType, StepOutcome)> {
    let mut scopes: Vec<&ScopePlan> = plan.scopes.iter().collect();
    scopes.sort_by_key(|s| s.scope);
    scopes
        .into_iter()
        .map(|s| (condition_of(s.scope), step(s)))
        .collect()
}

fn done_message(
    plan: &InstallationPlan<'_>,
    scope: &ScopePlan,
    kept_for: Option<&Vec<String>>,
) -> String {
    let module = &plan.valid.module.name;
    let name = scope.scope;
    match (&scope.action, kept_for) {
        (_, Some(tenants)) => format!(
            "The {name} scope of module {module} stays as it is: tenants {} still use it.",
            tenants.join(", ")
        ),
        (ScopeAction::NotManaged, _) => {
            format!("The {name} scope is not managed by this installation (spec.scope).")
        }
        (ScopeAction::Empty, _) => format!("Module {module} has no {name} migrations."),
        (
            ScopeAction::Migrate(db::Plan {
                target: Some(v), ..
            }),
            _,
        ) => {
            format!("The {name} scope of module {module} is at migration {v}.")
        }
        (ScopeAction::Migrate(_), _) => {
            format!(
                "Release {} has no {name} migrations.",
                plan.valid.release.version
            )
        }
    }
}

fn applied_counts(plan: &InstallationPlan<'_>) -> AppliedCounts {
    let count = |scope: Scope| {
        let managed = plan
            .scopes
            .iter()
            .any(|s| s.scope == scope && !matches!(s.action, ScopeAction::NotManaged));
        let target = plan.valid.release.target(scope);
        let n = plan
            .valid
            .module
            .migrations(scope)
            .migrations
            .iter()
            .filter(|m| managed && target.is_some_and(|t| m.version <= t))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    AppliedCounts {
        landlord: count(Scope::Landlord),
        tenant: count(Scope::Tenant),
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::tests::{mi, plan_for};
    use super::*;
    use crate::controller::Error;
    use crate::controller::conditions;
    use crate::db;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn message<'s>(status: &'s ModuleInstallationStatus, type_: &str) -> &'s str {
        &status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
            .message
    }

    #[test]
    fn installed_is_ready_and_a_second_reconcile_changes_nothing() {
        let catalog = crate::catalog::Catalog::shipped();
        let mut object = mi("expenses", Some("1.1.0"), false);
        object.metadata.generation = Some(2);
        let plan = plan_for(&catalog, &object, None, false);
        let done = Ok(InstallOutcome::default());
        let first = desired_status(&object, Some(&plan), &done, &at(10));
        assert!(first.plan.is_empty());
        assert_eq!(first.installed_version.as_deref(), Some("1.1.0"));
        assert_eq!(
            first.applied,
            Some(AppliedCounts {
                landlord: 0,
                tenant: 4
            })
        );
        assert!(
            first
                .conditions
                .iter()
                .all(|c| c.status == "True" && c.observed_generation == Some(2))
        );
        object.status = Some(first.clone());
        assert_eq!(desired_status(&object, Some(&plan), &done, &at(99)), first);
    }

    #[test]
    fn a_dry_run_summarises_every_scope_in_ready() {
        let catalog = crate::catalog::Catalog::shipped();
        let object = mi("digital_card", None, true);
        let plan = plan_for(&catalog, &object, None, false);
        let status = desired_status(
            &object,
            Some(&plan),
            &Ok(InstallOutcome {
                dry_run: true,
                ..Default::default()
            }),
            &at(1),
        );
        assert_eq!(status.plan.len(), 3);
        assert_eq!(
            conditions::rows(&status.conditions),
            [
                conditions::row("DependenciesSatisfied", "True", "Reconciled"),
                conditions::row("LandlordMigrated", "False", "DryRun"),
                conditions::row("TenantMigrated", "False", "DryRun"),
                conditions::row("Ready", "False", "DryRun"),
            ]
        );
        assert_eq!(
            message(&status, "Ready"),
            "Dry run: would run 3 migrations (see status.plan); nothing was applied."
        );
        assert!(
            message(&status, "TenantMigrated").contains("20251010120200_create_digital_cards up")
        );
    }

    #[test]
    fn a_failed_scope_is_blamed_in_the_order_the_scopes_ran() {
        let catalog = crate::catalog::Catalog::shipped();
        let failure = || {
            Error::Database(db::Error::ConnectTimeout {
                database: "tenant_acme".into(),
                seconds: 30,
            })
        };
        // Going up the landlord scope runs first: when it fails, the tenant scope was not reached.
        let object = mi("digital_card", None, false);
        let up = plan_for(&catalog, &object, None, false);
        let stopped = Err(Stopped {
            at: ConditionType::LandlordMigrated,
            error: failure(),
        });
        assert_eq!(
            conditions::rows(&desired_status(&object, Some(&up), &stopped, &at(1)).conditions),
            [
                conditions::row("DependenciesSatisfied", "True", "Reconciled"),
                conditions::row("LandlordMigrated", "False", "DatabaseUnavailable"),
                conditions::row("TenantMigrated", "Unknown", "Progressing"),
                conditions::row("Ready", "False", "DatabaseUnavailable"),
                conditions::row("Reconciling", "True", "DatabaseUnavailable"),
            ]
        );
        // Going down the tenant scope runs first: the landlord scope was not reached.
        let object = mi("expenses", Some("1.0.0"), false);
        let down = plan_for(&catalog, &object, Some("1.1.0"), false);
        let stopped = Err(Stopped {
            at: ConditionType::TenantMigrated,
            error: failure(),
        });
        assert_eq!(
            conditions::rows(&desired_status(&object, Some(&down), &stopped, &at(1)).conditions)
                [1..3],
            [
                conditions::row("LandlordMigrated", "Unknown", "Progressing"),
                conditions::row("TenantMigrated", "False", "DatabaseUnavailable"),
            ]
        );
        // The mirror after both scopes: only Ready.
        let stopped = Err(Stopped {
            at: ConditionType::Ready,
            error: failure(),
        });
        let status = desired_status(&object, Some(&down), &stopped, &at(1));
        assert_eq!(
            conditions::rows(&status.conditions)[1..],
            [
                conditions::row("LandlordMigrated", "True", "Reconciled"),
                conditions::row("TenantMigrated", "True", "Reconciled"),
                conditions::row("Ready", "False", "DatabaseUnavailable"),
                conditions::row("Reconciling", "True", "DatabaseUnavailable"),
            ]
        );
    }

    #[test]
    fn a_shared_landlord_scope_kept_for_others_says_so() {
        let catalog = crate::catalog::Catalog::shipped();
        let object = mi("digital_card", None, false);
        let plan = plan_for(&catalog, &object, None, false);
        let applied = InstallOutcome {
            dry_run: false,
            kept_for: [(Scope::Landlord, vec!["globex".to_string()])].into(),
        };
        let status = desired_status(&object, Some(&plan), &Ok(applied), &at(1));
        assert!(message(&status, "LandlordMigrated").contains("tenants globex still use it"));
    }
}
