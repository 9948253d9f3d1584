//! From the outcome of a pipeline's steps to the full, ordered list of conditions of a kind. Pure: the same
//! outcome always yields the same conditions, which is what makes a no-op reconcile write nothing.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::{ConditionType, DesiredCondition, Reason, merge_conditions};

/// How far one step of a pipeline (one condition type) got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Done(String),
    Failed(Reason, String),
    /// Not attempted because an earlier step failed or is still waiting.
    NotReached,
}

impl StepOutcome {
    /// A step that failed with `err`: its reason, and its message for a person to act on.
    pub fn failed(err: &super::Error) -> StepOutcome {
        StepOutcome::Failed(err.reason(), err.to_string())
    }
}

/// Where a reconcile stopped (the condition that takes the blame) and why. `Ready` itself takes it for
/// what follows every finer step (the mirror, a dry run's summary).
#[derive(Debug)]
pub struct Stopped {
    pub at: ConditionType,
    pub error: super::Error,
}

/// `map_err(stop_at(ConditionType::Migrated))`: the error, blamed on that step.
pub fn stop_at<E: Into<super::Error>>(at: ConditionType) -> impl FnOnce(E) -> Stopped {
    move |error| Stopped {
        at,
        error: error.into(),
    }
}

/// Conditions for `steps` in order, followed by the `Ready` summary: True only when every step is done;
/// otherwise False with the first failure's reason and message (a `Ready` entry among the steps speaks for
/// itself and comes first), or Unknown while steps are still ahead.
pub fn summarize(
    steps: Vec<(ConditionType, StepOutcome)>,
    ready_message: &str,
) -> Vec<DesiredCondition> {
    let failure = |(type_, step): &(ConditionType, StepOutcome)| match step {
        StepOutcome::Failed(reason, message) => Some((*type_, *reason, message.clone())),
        _ => None,
    };
    let first_failure = steps
        .iter()
        .filter(|(type_, _)| *type_ == ConditionType::Ready)
        .find_map(failure)
        .or_else(|| steps.iter().find_map(failure));
    let mut conditions: Vec<DesiredCondition> = steps
        .into_iter()
        .filter(|(type_, _)| *type_ != ConditionType::Ready)
        .map(|(type_, step)| match step {
            StepOutcome::Done(message) => {
                DesiredCondition::new(type_, Some(true), Reason::Reconciled, message)
            }
            StepOutcome::Failed(reason, message) => {
                DesiredCondition::new(type_, Some(false), reason, message)
            }
            StepOutcome::NotReached => {
                let message = match &first_failure {
                    Some((blocking, _, _)) => {
                        format!("Waiting until {} is True.", blocking.as_str())
                    }
                    None => "Not checked yet.".to_string(),
                };
                DesiredCondition::new(type_, None, Reason::Progressing, message)
            }
        })
        .collect();
    let ready = match first_failure {
        Some((_, reason, message)) => {
            DesiredCondition::new(ConditionType::Ready, Some(false), reason, message)
        }
        None if conditions.iter().all(|c| c.status == Some(true)) => DesiredCondition::new(
            ConditionType::Ready,
            Some(true),
            Reason::Reconciled,
            ready_message,
        ),
        None => DesiredCondition::new(
            ConditionType::Ready,
            None,
            Reason::Progressing,
            "Reconciling.",
        ),
    };
    conditions.push(ready);
    conditions
}

/// A kind's status as far as its conditions go: what a deletion that cannot finish rewrites.
pub trait ConditionedStatus: Default + Clone {
    fn conditions(&self) -> &[Condition];
    fn set_conditions(&mut self, generation: Option<i64>, conditions: Vec<Condition>);
}

macro_rules! conditioned_status {
    ($($status:ty),*) => {$(
        impl ConditionedStatus for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }
            fn set_conditions(&mut self, generation: Option<i64>, conditions: Vec<Condition>) {
                self.observed_generation = generation;
                self.conditions = conditions;
            }
        }
    )*};
}

conditioned_status!(
    crate::crd::TenantStatus,
    crate::crd::ModuleInstallationStatus,
    crate::crd::ModuleRolloutStatus
);

/// The status of a deletion that cannot finish: the last status with `Ready` (and kstatus) saying what the
/// deletion waits for.
pub fn deleting_status<S: ConditionedStatus>(
    current: Option<&S>,
    generation: Option<i64>,
    error: &super::Error,
    now: &Time,
) -> S {
    let mut status = current.cloned().unwrap_or_default();
    let conditions = deleting(status.conditions(), error, generation, now);
    status.set_conditions(generation, conditions);
    status
}

/// While a resource is being deleted, `Ready` says what the deletion waits for; the other conditions stay
/// as the last reconcile left them.
fn deleting(
    current: &[Condition],
    error: &super::Error,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let ready = DesiredCondition::new(
        ConditionType::Ready,
        Some(false),
        error.reason(),
        error.to_string(),
    );
    // Ready and the kstatus conditions that follow from it are computed anew; the finer ones stay.
    let derived = [
        ConditionType::Ready,
        ConditionType::Reconciling,
        ConditionType::Stalled,
    ];
    let ready = merge_conditions(current, &[ready], generation, now);
    current
        .iter()
        .filter(|c| !derived.iter().any(|t| c.type_ == t.as_str()))
        .cloned()
        .chain(ready)
        .collect()
}

/// Every condition of a paused resource: nothing is checked or changed, and `Ready` says so.
pub fn paused(types: &[ConditionType], message: &str) -> Vec<DesiredCondition> {
    types
        .iter()
        .map(|type_| DesiredCondition::new(*type_, None, Reason::Paused, message))
        .chain(std::iter::once(DesiredCondition::new(
            ConditionType::Ready,
            Some(false),
            Reason::Paused,
            message,
        )))
        .collect()
}

/// (type, status, reason) of each condition: what the table tests of the kinds' statuses compare.
#[cfg(test)]
pub(crate) fn rows(conditions: &[Condition]) -> Vec<(String, String, String)> {
    conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect()
}

#[cfg(test)]
pub(crate) fn row(type_: &str, status: &str, reason: &str) -> (String, String, String) {
    (type_.into(), status.into(), reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConditionType::{DatabaseReady, Migrated, Ready};

    fn statuses(conditions: &[DesiredCondition]) -> Vec<(ConditionType, Option<bool>, Reason)> {
        conditions
            .iter()
            .map(|c| (c.type_, c.status, c.reason))
            .collect()
    }

    #[test]
    fn all_done_is_ready() {
        let conditions = summarize(
            vec![
                (DatabaseReady, StepOutcome::Done("db".into())),
                (Migrated, StepOutcome::Done("migrated".into())),
            ],
            "ready",
        );
        assert_eq!(
            statuses(&conditions),
            [
                (DatabaseReady, Some(true), Reason::Reconciled),
                (Migrated, Some(true), Reason::Reconciled),
                (Ready, Some(true), Reason::Reconciled)
            ]
        );
        assert_eq!(conditions[2].message, "ready");
    }

    #[test]
    fn failure_blocks_later_steps_and_summarizes() {
        let conditions = summarize(
            vec![
                (
                    DatabaseReady,
                    StepOutcome::Failed(Reason::DatabaseUnavailable, "down".into()),
                ),
                (Migrated, StepOutcome::NotReached),
            ],
            "ready",
        );
        assert_eq!(
            statuses(&conditions),
            [
                (DatabaseReady, Some(false), Reason::DatabaseUnavailable),
                (Migrated, None, Reason::Progressing),
                (Ready, Some(false), Reason::DatabaseUnavailable)
            ]
        );
        assert_eq!(
            conditions[1].message,
            "Waiting until DatabaseReady is True."
        );
        assert_eq!(conditions[2].message, "down");
    }

    #[test]
    fn later_failure_is_the_summary() {
        let conditions = summarize(
            vec![
                (DatabaseReady, StepOutcome::Done("db".into())),
                (
                    Migrated,
                    StepOutcome::Failed(Reason::ChecksumMismatch, "drift".into()),
                ),
            ],
            "ready",
        );
        assert_eq!(conditions[2].reason, Reason::ChecksumMismatch);
        assert_eq!(conditions[2].status, Some(false));
    }

    #[test]
    fn a_ready_entry_speaks_for_the_summary() {
        let conditions = summarize(
            vec![
                (
                    DatabaseReady,
                    StepOutcome::Failed(Reason::DryRun, "one".into()),
                ),
                (Migrated, StepOutcome::Failed(Reason::DryRun, "two".into())),
                (Ready, StepOutcome::Failed(Reason::DryRun, "both".into())),
            ],
            "ready",
        );
        assert_eq!(conditions.len(), 3);
        assert_eq!(
            (conditions[2].type_, conditions[2].message.as_str()),
            (Ready, "both")
        );
    }

    #[test]
    fn paused_says_so_everywhere() {
        let conditions = paused(&[DatabaseReady, Migrated], "paused");
        assert_eq!(
            statuses(&conditions),
            [
                (DatabaseReady, None, Reason::Paused),
                (Migrated, None, Reason::Paused),
                (Ready, Some(false), Reason::Paused)
            ]
        );
    }
}
