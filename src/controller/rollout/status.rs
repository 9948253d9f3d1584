//! The rollout's status: counts from its plan, one `Ready` condition saying where the rollout stands. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::super::Error;
use super::plan::{RolloutPlan, State};
use super::validate::ValidRollout;
use crate::crd::{
    ConditionType, DesiredCondition, ModuleRollout, ModuleRolloutStatus, Reason, merge_conditions,
};

pub fn desired_status(
    rollout: &ModuleRollout,
    outcome: &Result<(&ValidRollout, &RolloutPlan), &Error>,
    now: &Time,
) -> ModuleRolloutStatus {
    let current = rollout.status.clone().unwrap_or_default();
    let generation = rollout.metadata.generation;
    let (status, ready) = match outcome {
        Err(error) => (
            current.clone(),
            DesiredCondition::new(
                ConditionType::Ready,
                Some(false),
                error.reason(),
                error.to_string(),
            ),
        ),
        Ok((valid, plan)) => (
            ModuleRolloutStatus {
                tenants: plan.tenants,
                updated: plan.updated,
                ready: plan.ready,
                failed: plan.failed.len() as u32,
                failed_tenants: plan.listed_failures(),
                conflicts: plan.conflicts.clone(),
                ..current.clone()
            },
            ready_condition(rollout, valid, plan),
        ),
    };
    ModuleRolloutStatus {
        observed_generation: generation,
        conditions: merge_conditions(&current.conditions, &[ready], generation, now),
        ..status
    }
}

fn ready_condition(
    rollout: &ModuleRollout,
    valid: &ValidRollout,
    plan: &RolloutPlan,
) -> DesiredCondition {
    let module = &valid.spec.module;
    let release = &valid.release;
    let wanted = plan.tenants - plan.conflicts.len() as u32;
    let progress = format!(
        "{} of {wanted} tenants have module {module} {release} and are Ready",
        plan.ready
    );
    let ready = |status, reason, message: String| {
        DesiredCondition::new(ConditionType::Ready, status, reason, message)
    };
    match plan.state {
        State::Complete if rollout.spec.dry_run => ready(
            Some(false),
            Reason::DryRun,
            format!(
                "Dry run: the installations of all {wanted} matching tenants published their plans (status.plan); \
                 nothing was applied."
            ),
        ),
        State::Complete => ready(
            Some(true),
            Reason::Reconciled,
            format!("All {wanted} matching tenants have module {module} {release} and are Ready."),
        ),
        State::Paused => ready(
            Some(false),
            Reason::Paused,
            format!("Paused (spec.paused): no installation is started or changed; {progress}."),
        ),
        State::Halted => {
            let tenants: Vec<String> = plan
                .listed_failures()
                .iter()
                .map(|f| format!("{} ({})", f.tenant, f.reason))
                .collect();
            ready(
                Some(false),
                Reason::FailureBudgetExceeded,
                format!(
                    "Halted: {} installations failed, more than spec.strategy.maxFailures ({}): {}. No tenant is \
                     started until they recover; {progress}.",
                    plan.failed.len(),
                    rollout.spec.strategy.max_failures,
                    tenants.join(", ")
                ),
            )
        }
        State::WaitingForCanaries => ready(
            Some(false),
            Reason::Progressing,
            format!(
                "Waiting for the canaries to be Ready before the other tenants start; {progress}."
            ),
        ),
        State::Progressing => ready(
            Some(false),
            Reason::Progressing,
            format!(
                "Rolling out: {progress}; {} in flight (at most {} at once).",
                plan.in_flight, rollout.spec.strategy.max_parallel
            ),
        ),
    }
}
