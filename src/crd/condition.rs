//! Conditions are computed, not accumulated: each reconcile builds the full desired list in a fixed order and
//! `merge_conditions` keeps `lastTransitionTime` unless a status flipped, so an unchanged world yields an
//! identical status (and no write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::fmt;

use strum::{IntoStaticStr, VariantArray};

#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray, IntoStaticStr)]
pub enum ConditionType {
    Ready,
    DatabaseReady,
    Migrated,
    DependenciesSatisfied,
    LandlordMigrated,
    TenantMigrated,
    /// Tenant: the last move to another server (absent when none was asked).
    Moved,
    /// kstatus: work is under way and will go on by itself.
    Reconciling,
    /// kstatus: a refusal waits for a person to act.
    Stalled,
}

/// Every reason a kind reports, declared once: `ALL`, `as_str`, the API reference, the docs' tests and the
/// GitOps health tests read this list. The first block is fixed by the design contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray, IntoStaticStr)]
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
    /// Landlord's records say the tenant database was made, the server answers, and it is not there.
    DatabaseMissing,
    /// Work is under way or waits on an earlier step.
    Progressing,
    /// A dry run published its plan and applied nothing.
    DryRun,
    /// A rollout halted: more installations failed than its failure budget allows.
    FailureBudgetExceeded,
    /// No DatabaseServer may take the Tenant now (all full, cordoned, not Ready or not admitting it).
    NoServerAvailable,
    /// A DatabaseServer still holds tenants: its deletion waits.
    ServerInUse,
    /// A tenant is being moved to another server, or its move waits for installations in flight.
    Moving,
    /// A move failed before the switch: the target was dropped and the source serves again.
    MoveFailed,
}

impl Reason {
    /// Every reason, in declaration order.
    pub const ALL: &[Reason] = <Reason as VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Reason {
    /// What kstatus (Flux) should read from a `Ready` that is not True for this reason: work under way
    /// (`Reconciling`), a refusal a person must fix (`Stalled`), or neither (done, paused, a dry run).
    pub fn kstatus(self) -> Option<ConditionType> {
        use Reason::*;
        match self {
            Progressing | TenantNotReady | TenantNotFound | DependencyMissing
            | UninstallBlocked | DatabaseUnavailable | NoServerAvailable | ServerInUse | Moving => {
                Some(ConditionType::Reconciling)
            }
            InvalidSpec
            | SlugConflict
            | AdoptionRefused
            | DatabaseMissing
            | ModuleNotFound
            | VersionNotFound
            | MigrationFailed
            | ChecksumMismatch
            | IrreversibleMigration
            | DestructiveActionBlocked
            | FailureBudgetExceeded
            | MoveFailed => Some(ConditionType::Stalled),
            Reconciled | Paused | DryRun => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ConditionType {
    /// Every condition type, in declaration order.
    pub const ALL: &[ConditionType] = <ConditionType as VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The condition of `type_` among `conditions`, if there is one.
pub fn find_condition(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// `Ready` is True and speaks of `generation` (the spec as it is now, not an older one).
pub fn is_ready_at(conditions: &[Condition], generation: Option<i64>) -> bool {
    find_condition(conditions, ConditionType::Ready).is_some_and(|c| {
        c.status == "True" && c.observed_generation.is_some() && c.observed_generation == generation
    })
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

/// Builds the conditions to publish, in the order of `desired`, followed by what kstatus (Flux) reads: a
/// `Ready` that is not True adds `Reconciling` (work under way) or `Stalled` (a person must act), with its
/// reason and message; both are absent otherwise. A condition keeps its `lastTransitionTime` from `current`
/// while its status is unchanged; `now` is only used for new or flipped conditions.
pub fn merge_conditions(
    current: &[Condition],
    desired: &[DesiredCondition],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let kstatus = desired
        .iter()
        .filter(|c| c.type_ == ConditionType::Ready && c.status != Some(true))
        .filter_map(|ready| {
            let type_ = ready.reason.kstatus()?;
            Some(DesiredCondition::new(
                type_,
                Some(true),
                ready.reason,
                ready.message.clone(),
            ))
        })
        .collect::<Vec<_>>();
    desired
        .iter()
        .chain(&kstatus)
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
    fn kstatus_follows_ready() {
        let types = |conditions: Vec<Condition>| -> Vec<(String, String)> {
            conditions
                .into_iter()
                .map(|c| (c.type_, c.reason))
                .collect()
        };
        let pair = |t: &str, r: &str| (t.to_string(), r.to_string());
        let merged = |status, reason| {
            types(merge_conditions(
                &[],
                &[ready(status, reason)],
                Some(1),
                &at(1),
            ))
        };
        assert_eq!(
            merged(Some(true), Reason::Reconciled),
            [pair("Ready", "Reconciled")]
        );
        assert_eq!(
            merged(None, Reason::Progressing),
            [
                pair("Ready", "Progressing"),
                pair("Reconciling", "Progressing")
            ]
        );
        assert_eq!(
            merged(Some(false), Reason::SlugConflict),
            [
                pair("Ready", "SlugConflict"),
                pair("Stalled", "SlugConflict")
            ]
        );
        assert_eq!(
            merged(Some(false), Reason::Paused),
            [pair("Ready", "Paused")]
        );
        assert_eq!(
            merged(Some(false), Reason::DryRun),
            [pair("Ready", "DryRun")]
        );
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
    fn the_vocabulary_is_the_declaration() {
        // Derived from the enums: every variant once, in declaration order, named as declared.
        assert_eq!(Reason::ALL.len(), 24);
        assert!(
            Reason::ALL
                .iter()
                .enumerate()
                .all(|(i, r)| *r as usize == i)
        );
        assert_eq!(Reason::DatabaseMissing.as_str(), "DatabaseMissing");
        assert_eq!(ConditionType::ALL.len(), 9);
        assert_eq!(ConditionType::DatabaseReady.as_str(), "DatabaseReady");
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
