//! Conditions are computed, not accumulated: each reconcile builds the full desired list in a fixed order and
//! `merge_conditions` keeps `lastTransitionTime` unless a status flipped, so an unchanged world yields an
//! identical status (and no write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    DatabaseReady,
    Migrated,
    DependenciesSatisfied,
    LandlordMigrated,
    TenantMigrated,
}

/// Every reason either kind reports. The first block is fixed by the design contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    InvalidSpec,
    SlugConflict,
    TenantNotFound,
    TenantNotReady,
    ModuleNotFound,
    VersionNotFound,
    DependencyMissing,
    MigrationFailed,
    ChecksumMismatch,
    DatabaseUnavailable,
    IrreversibleMigration,
    UninstallBlocked,
    DestructiveActionBlocked,
    Paused,
    Reconciled,
    AdoptionRefused,
    /// Work is under way or waits on an earlier step.
    Progressing,
    /// A dry run published its plan and applied nothing.
    DryRun,
    /// A rollout halted: more installations failed than its failure budget allows.
    FailureBudgetExceeded,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidSpec => "InvalidSpec",
            Reason::SlugConflict => "SlugConflict",
            Reason::TenantNotFound => "TenantNotFound",
            Reason::TenantNotReady => "TenantNotReady",
            Reason::ModuleNotFound => "ModuleNotFound",
            Reason::VersionNotFound => "VersionNotFound",
            Reason::DependencyMissing => "DependencyMissing",
            Reason::MigrationFailed => "MigrationFailed",
            Reason::ChecksumMismatch => "ChecksumMismatch",
            Reason::DatabaseUnavailable => "DatabaseUnavailable",
            Reason::IrreversibleMigration => "IrreversibleMigration",
            Reason::UninstallBlocked => "UninstallBlocked",
            Reason::DestructiveActionBlocked => "DestructiveActionBlocked",
            Reason::Paused => "Paused",
            Reason::Reconciled => "Reconciled",
            Reason::AdoptionRefused => "AdoptionRefused",
            Reason::Progressing => "Progressing",
            Reason::DryRun => "DryRun",
            Reason::FailureBudgetExceeded => "FailureBudgetExceeded",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::DatabaseReady => "DatabaseReady",
            ConditionType::Migrated => "Migrated",
            ConditionType::DependenciesSatisfied => "DependenciesSatisfied",
            ConditionType::LandlordMigrated => "LandlordMigrated",
            ConditionType::TenantMigrated => "TenantMigrated",
        }
    }
}

/// What a reconcile wants a condition to say; times and generations are added by `merge_conditions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    pub type_: ConditionType,
    /// `Some(true)` is True, `Some(false)` False, `None` Unknown.
    pub status: Option<bool>,
    pub reason: Reason,
    pub message: String,
}

impl DesiredCondition {
    pub fn new(
        type_: ConditionType,
        status: Option<bool>,
        reason: Reason,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }

    fn status_str(&self) -> &'static str {
        match self.status {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        }
    }
}

/// Builds the conditions to publish, in the order of `desired`. A condition keeps its `lastTransitionTime`
/// from `current` while its status is unchanged; `now` is only used for new or flipped conditions.
pub fn merge_conditions(
    current: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|want| {
            let status = want.status_str();
            let previous = current.iter().find(|c| c.type_ == want.type_.as_str());
            let last_transition_time = match previous {
                Some(prev) if prev.status == status => prev.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: want.type_.as_str().to_string(),
                status: status.to_string(),
                reason: want.reason.as_str().to_string(),
                message: want.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn ready(status: Option<bool>, reason: Reason) -> DesiredCondition {
        DesiredCondition::new(ConditionType::Ready, status, reason, "message")
    }

    #[test]
    fn new_condition_gets_now() {
        let merged = merge_conditions(
            &[],
            &[ready(Some(true), Reason::Reconciled)],
            Some(3),
            &at(100),
        );
        assert_eq!(merged[0].last_transition_time, at(100));
        assert_eq!(merged[0].observed_generation, Some(3));
        assert_eq!(merged[0].status, "True");
    }

    #[test]
    fn unchanged_status_keeps_transition_time_even_when_reason_changes() {
        let first = merge_conditions(
            &[],
            &[ready(Some(false), Reason::TenantNotReady)],
            Some(1),
            &at(100),
        );
        let second = merge_conditions(
            &first,
            &[ready(Some(false), Reason::MigrationFailed)],
            Some(2),
            &at(200),
        );
        assert_eq!(second[0].last_transition_time, at(100));
        assert_eq!(second[0].reason, "MigrationFailed");
    }

    #[test]
    fn flipped_status_moves_transition_time() {
        let first = merge_conditions(&[], &[ready(None, Reason::Progressing)], Some(1), &at(100));
        let second = merge_conditions(
            &first,
            &[ready(Some(true), Reason::Reconciled)],
            Some(1),
            &at(200),
        );
        assert_eq!(second[0].last_transition_time, at(200));
    }

    #[test]
    fn identical_input_is_identical_output() {
        let desired = [
            DesiredCondition::new(
                ConditionType::DatabaseReady,
                Some(true),
                Reason::Reconciled,
                "ok",
            ),
            ready(Some(true), Reason::Reconciled),
        ];
        let first = merge_conditions(&[], &desired, Some(1), &at(100));
        let second = merge_conditions(&first, &desired, Some(1), &at(999));
        assert_eq!(first, second);
    }
}
