//! What a Tenant's move annotations ask, judged against Landlord's records and the servers before anything
//! is written: start, go on, wait, refuse, or show how the last move ended; and the `Moved` condition that
//! says so. Pure.

use std::time::Duration;

use kube::ResourceExt;

use super::super::super::Error;
use crate::crd::{
    ConditionType, DesiredCondition, MOVE_APPROVED_ANNOTATION, MOVE_TO_ANNOTATION, Reason, Tenant,
};
use crate::db::mirror::{MovePhase, MoveRecord, SlugRecord, TenantState};

/// The annotations, trimmed; empty is absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ask {
    pub to: Option<String>,
    pub approved: Option<String>,
}

impl Ask {
    pub fn of(tenant: &Tenant) -> Ask {
        let get = |key: &str| {
            tenant
                .annotations()
                .get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Ask {
            to: get(MOVE_TO_ANNOTATION),
            approved: get(MOVE_APPROVED_ANNOTATION),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Decision {
    /// No move asked, none to show.
    Nothing,
    /// The annotation is gone after a failed move: the failure is forgotten, so asking again retries.
    ForgetFailure,
    /// The last move, over, as the annotation still asks.
    Show(MoveRecord),
    /// Not as asked; the tenant serves where it is (`Moved` says why).
    Refuse(Refusal),
    /// May start once this is over; the tenant serves where it is.
    Wait(String),
    Start {
        target: String,
    },
    /// Under way: the mover drives it.
    Drive(MoveRecord),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The server asked for is unknown, not Ready, cordoned, or does not admit the namespace.
    Unfit {
        target: String,
        from: String,
        why: String,
    },
    /// Production, and the approval does not name the same server.
    Unapproved { target: String },
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Error {
        match refusal {
            Refusal::Unfit { target, from, why } => Error::MoveRefused { target, from, why },
            Refusal::Unapproved { target } => Error::MoveRefusedInProduction { target },
        }
    }
}

/// The one rule. `target` judges the server asked for (Ready, uncordoned, admitting the namespace);
/// `in_flight` names the Tenant's installations with work under way.
pub fn decide(
    ask: &Ask,
    production: bool,
    slug: &SlugRecord,
    record: Option<&MoveRecord>,
    target: impl FnOnce(&str) -> Result<(), String>,
    in_flight: &[String],
) -> Decision {
    if let Some(record) = record.filter(|r| r.phase.active()) {
        return Decision::Drive(record.clone());
    }
    // Without the annotation a finished move's record stays (it says how the tenant reached its server),
    // but the Tenant no longer shows it.
    let Some(to) = ask.to.as_deref() else {
        return match record {
            Some(r) if r.phase == MovePhase::Failed => Decision::ForgetFailure,
            _ => Decision::Nothing,
        };
    };
    // A finished move to the server asked stays on show; a failed one is not tried again until the
    // annotation changes.
    if let Some(record) = record.filter(|r| r.target == to) {
        return Decision::Show(record.clone());
    }
    if to == slug.server {
        return Decision::Nothing;
    }
    if let Err(why) = target(to) {
        return Decision::Refuse(Refusal::Unfit {
            target: to.to_string(),
            from: slug.server.clone(),
            why,
        });
    }
    if production && ask.approved.as_deref() != Some(to) {
        return Decision::Refuse(Refusal::Unapproved {
            target: to.to_string(),
        });
    }
    if slug.status != TenantState::Ready {
        return Decision::Wait(format!(
            "The move to {to} waits until the tenant is Ready on {} (Landlord's records say {}).",
            slug.server, slug.status
        ));
    }
    if !in_flight.is_empty() {
        return Decision::Wait(format!(
            "The move to {to} waits for ModuleInstallation {} to finish its work.",
            in_flight.join(", ")
        ));
    }
    Decision::Start {
        target: to.to_string(),
    }
}

/// What a running move reported last: a few words, bytes copied, time since it started here.
pub type Progress = (String, u64, Duration);

/// The `Moved` condition for a move's record (and, while it runs here, its progress).
pub fn moved_condition(record: &MoveRecord, progress: Option<Progress>) -> DesiredCondition {
    let (from, to) = (&record.source, &record.target);
    let problem = record.problem.as_deref().unwrap_or("no reason recorded");
    let (status, reason, message) = match record.phase {
        MovePhase::Done => (
            Some(true),
            Reason::Reconciled,
            format!(
                "Moved from server {from} to {to}: {} copied in {}.",
                size(record.bytes.max(0) as u64),
                took(record.took_ms)
            ),
        ),
        MovePhase::Failed => (
            Some(false),
            Reason::MoveFailed,
            format!(
                "Moving to server {to} failed: {problem}. The copy on {to} was dropped and {from} serves \
                 again. Remove annotation {MOVE_TO_ANNOTATION}, or name another server, to try again."
            ),
        ),
        MovePhase::RollingBack => (
            Some(false),
            Reason::MoveFailed,
            format!(
                "Moving to server {to} failed: {problem}. Rolling back: {from} serves again once its role is \
                 open, and the copy on {to} is dropped."
            ),
        ),
        MovePhase::Switched | MovePhase::Dropping => (
            Some(false),
            Reason::Moving,
            format!(
                "Switched from server {from} to {to} after copying {}; the copy on {from} goes once the \
                 Tenant is Ready on {to}.",
                size(record.bytes.max(0) as u64)
            ),
        ),
        MovePhase::Quiescing | MovePhase::Copying | MovePhase::Verifying => (
            Some(false),
            Reason::Moving,
            moving_message(record, progress),
        ),
    };
    DesiredCondition::new(ConditionType::Moved, status, reason, message)
}

/// The sentence of a move before its switch: phase, what the mover says, bytes and time.
pub fn moving_message(record: &MoveRecord, progress: Option<Progress>) -> String {
    let (from, to, phase) = (&record.source, &record.target, record.phase);
    match progress {
        Some((note, bytes, elapsed)) => format!(
            "Moving from server {from} to {to}, {phase}: {note}; {} copied, {} s elapsed. New sessions are \
             refused until it serves from {to}.",
            size(bytes),
            elapsed.as_secs()
        ),
        None => format!(
            "Moving from server {from} to {to}, {phase}: the mover resumes from Landlord's records. New \
             sessions are refused until it serves from {to}."
        ),
    }
}

fn size(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    if bytes < 1024 * 1024 {
        format!("{:.1} kB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MB", bytes as f64 / MB)
    }
}

fn took(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
        None => "an unrecorded time".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::TenantOwner;

    fn slug(server: &str, status: TenantState) -> SlugRecord {
        SlugRecord {
            owner: TenantOwner {
                uid: "u1".into(),
                namespace: "ns".into(),
                name: "acme".into(),
            },
            status,
            credentials_version: None,
            database_made: true,
            recreated: None,
            server: server.into(),
        }
    }

    fn record(target: &str, phase: MovePhase) -> MoveRecord {
        MoveRecord {
            slug: "acme".into(),
            source: "default".into(),
            target: target.into(),
            phase,
            connection_limit: Some(-1),
            bytes: 3 * 1024 * 1024,
            problem: Some("table public.a has 9 rows, not 10".into()),
            started_at: jiff::Timestamp::UNIX_EPOCH,
            took_ms: Some(2500),
        }
    }

    fn ask(to: Option<&str>, approved: Option<&str>) -> Ask {
        Ask {
            to: to.map(String::from),
            approved: approved.map(String::from),
        }
    }

    fn fits(_: &str) -> Result<(), String> {
        Ok(())
    }

    #[test]
    fn the_annotation_against_the_records() {
        let ready = slug("default", TenantState::Ready);
        let copying = record("second", MovePhase::Copying);
        let done = record("second", MovePhase::Done);
        let failed = record("second", MovePhase::Failed);
        let start = Decision::Start {
            target: "second".into(),
        };
        // (annotation, record, installations in flight) → decision
        let cases: Vec<(Ask, Option<&MoveRecord>, Vec<String>, Decision)> = vec![
            (ask(None, None), None, vec![], Decision::Nothing),
            (ask(Some("default"), None), None, vec![], Decision::Nothing),
            (ask(Some("second"), None), None, vec![], start),
            // Under way, whatever the annotation now says.
            (ask(None, None), Some(&copying), vec![], Decision::Drive(copying.clone())),
            (ask(Some("third"), None), Some(&copying), vec![], Decision::Drive(copying.clone())),
            (ask(Some("second"), None), Some(&done), vec![], Decision::Show(done.clone())),
            // A failed move is not tried again until the annotation changes.
            (ask(Some("second"), None), Some(&failed), vec![], Decision::Show(failed.clone())),
            (ask(None, None), Some(&failed), vec![], Decision::ForgetFailure),
            (ask(None, None), Some(&done), vec![], Decision::Nothing),
            (
                ask(Some("second"), None),
                None,
                vec!["acme-tasks".into()],
                Decision::Wait(
                    "The move to second waits for ModuleInstallation acme-tasks to finish its work.".into(),
                ),
            ),
        ];
        for (asked, found, in_flight, expected) in cases {
            let decided = decide(&asked, false, &ready, found, fits, &in_flight);
            assert_eq!(decided, expected, "{asked:?} {found:?}");
        }
    }

    #[test]
    fn refusals_leave_the_tenant_where_it_is() {
        let ready = slug("default", TenantState::Ready);
        let cordoned = |_: &str| Err("is cordoned".to_string());
        let refused = decide(
            &ask(Some("second"), None),
            false,
            &ready,
            None,
            cordoned,
            &[],
        );
        let Decision::Refuse(refusal) = refused else {
            panic!("{refused:?}")
        };
        let err = Error::from(refusal);
        assert_eq!(err.reason(), Reason::InvalidSpec);
        assert!(err.to_string().contains("it is cordoned"), "{err}");
        // Production: only with the approval naming the same server.
        for approved in [None, Some("third")] {
            let decided = decide(
                &ask(Some("second"), approved),
                true,
                &ready,
                None,
                fits,
                &[],
            );
            let Decision::Refuse(refusal) = decided else {
                panic!("{decided:?}")
            };
            assert_eq!(
                Error::from(refusal).reason(),
                Reason::DestructiveActionBlocked
            );
        }
        assert_eq!(
            decide(
                &ask(Some("second"), Some("second")),
                true,
                &ready,
                None,
                fits,
                &[]
            ),
            Decision::Start {
                target: "second".into()
            }
        );
        let provisioning = slug("default", TenantState::Provisioning);
        assert!(matches!(
            decide(
                &ask(Some("second"), None),
                false,
                &provisioning,
                None,
                fits,
                &[]
            ),
            Decision::Wait(_)
        ));
    }

    #[test]
    fn the_moved_condition_follows_the_phase() {
        let cases = [
            (MovePhase::Quiescing, "False", Reason::Moving),
            (MovePhase::Copying, "False", Reason::Moving),
            (MovePhase::Verifying, "False", Reason::Moving),
            (MovePhase::Switched, "False", Reason::Moving),
            (MovePhase::Dropping, "False", Reason::Moving),
            (MovePhase::Done, "True", Reason::Reconciled),
            (MovePhase::RollingBack, "False", Reason::MoveFailed),
            (MovePhase::Failed, "False", Reason::MoveFailed),
        ];
        for (phase, status, reason) in cases {
            let condition = moved_condition(&record("second", phase), None);
            let shown = match condition.status {
                Some(true) => "True",
                Some(false) => "False",
                None => "Unknown",
            };
            assert_eq!((shown, condition.reason), (status, reason), "{phase}");
        }
        let done = moved_condition(&record("second", MovePhase::Done), None);
        assert_eq!(
            done.message,
            "Moved from server default to second: 3.0 MB copied in 2.5 s."
        );
        let progress = (
            "copying".to_string(),
            5 * 1024 * 1024,
            Duration::from_secs(7),
        );
        let copying = moved_condition(&record("second", MovePhase::Copying), Some(progress));
        assert!(
            copying
                .message
                .starts_with("Moving from server default to second, Copying: copying; 5.0 MB copied, 7 s elapsed."),
            "{}",
            copying.message
        );
    }
}
