//! One track (a module or the core, in one scope) through its checkpoints: for each, up to it one
//! migration at a time, down to the previous checkpoint, up again. The schema after the down must equal the
//! schema before the up, and the schema after the second up the one after the first. The first problem
//! stops the track: what follows would only repeat it.
//!
//! Every step goes through the operator's own engine (`Migrator::migrate`), so it runs exactly as an
//! installation would: the same plan, transaction, ledger row, timeouts and no-transaction handling.

use std::path::{Path, PathBuf};

use crate::catalog::Migration;
use crate::db::snapshot::{Difference, Snapshot, condensed, snapshot};
use crate::db::{self, DbConnection, Migrator, Track};

use super::Error;
use super::report::Findings;

/// How many differences one problem line lists before it says how many more there are.
const SHOWN_DIFFERENCES: usize = 5;

/// A point a track is tested at: a release of a module, or every core migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// `1.1.0` for a release, the version for a core migration.
    pub label: String,
    pub target: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walked {
    /// At the last checkpoint, nothing wrong (notes aside).
    Clean,
    /// A problem was found; the database is in whatever state it left.
    Stopped,
}

/// Tests `track` from where the database is now through `checkpoints` (oldest first).
pub(crate) async fn walk(
    conn: &mut DbConnection,
    migrator: &Migrator,
    track: &Track<'_>,
    checkpoints: &[Checkpoint],
    findings: &mut Findings,
) -> Result<Walked, Error> {
    let mut walk = Walk {
        conn,
        migrator,
        track,
        findings,
    };
    let mut current = snapshot(walk.conn).await?;
    let mut previous: Option<&Checkpoint> = None;
    for checkpoint in checkpoints {
        let from = previous.map(|p| p.target);
        let steps: Vec<&Migration> = track
            .migrations
            .migrations
            .iter()
            .filter(|m| from.is_none_or(|f| m.version > f) && m.version <= checkpoint.target)
            .collect();
        if steps.is_empty() {
            continue;
        }
        let what = Transition {
            module: track.module,
            scope: track.scope,
            to: checkpoint,
            from: previous,
        };
        match walk.checkpoint(&what, &steps, current).await? {
            Some(installed) => current = installed,
            None => return Ok(Walked::Stopped),
        }
        previous = Some(checkpoint);
    }
    Ok(Walked::Clean)
}

/// Going from one checkpoint to the next, for messages.
struct Transition<'a> {
    module: &'a str,
    scope: crate::catalog::Scope,
    to: &'a Checkpoint,
    from: Option<&'a Checkpoint>,
}

impl Transition<'_> {
    /// `expenses 1.1.0 (tenant scope)`.
    fn target(&self) -> String {
        format!("{} {} ({} scope)", self.module, self.to.label, self.scope)
    }

    /// `expenses 1.1.0 to 1.0.0 (tenant scope)`.
    fn rollback(&self) -> String {
        let to = self.from.map_or("nothing", |p| p.label.as_str());
        format!(
            "{} {} to {to} ({} scope)",
            self.module, self.to.label, self.scope
        )
    }
}

struct Walk<'w, 'c> {
    conn: &'w mut DbConnection,
    migrator: &'w Migrator,
    track: &'w Track<'c>,
    findings: &'w mut Findings,
}

impl Walk<'_, '_> {
    /// Up, down, up through `steps`, starting from schema `before`. The schema at the checkpoint, or
    /// None when a problem was found.
    async fn checkpoint(
        &mut self,
        what: &Transition<'_>,
        steps: &[&Migration],
        before: Snapshot,
    ) -> Result<Option<Snapshot>, Error> {
        // Schema before each step's up; the last entry is the schema at the checkpoint.
        let mut schemas = vec![before];
        for m in steps {
            if !self
                .up(m, || format!("up failed installing {}", what.target()))
                .await?
            {
                return Ok(None);
            }
            schemas.push(snapshot(self.conn).await?);
        }
        let installed = schemas[steps.len()].clone();

        if let Some(m) = steps.iter().find(|m| m.down.is_none()) {
            self.findings.note(
                &m.up.path,
                format!(
                    "has no down migration, so {} cannot be rolled back; its down migrations were not tested",
                    what.target()
                ),
            );
            return Ok(Some(installed));
        }

        // Down one step at a time, so that a difference is blamed on the down that made it.
        let mut after_down = vec![Snapshot::default(); steps.len()];
        for (i, m) in steps.iter().enumerate().rev() {
            let target = match i {
                0 => what.from.map(|p| p.target),
                _ => Some(steps[i - 1].version),
            };
            let context = || format!("down failed rolling back {}", what.rollback());
            if !self.step(m, target, Side::Down, context).await? {
                return Ok(None);
            }
            after_down[i] = snapshot(self.conn).await?;
        }
        if after_down[0] != schemas[0] {
            // Some down left its own step's schema wrong, or the end state would be right.
            let i = (0..steps.len())
                .rev()
                .find(|&i| after_down[i] != schemas[i])
                .unwrap_or(0);
            let differences = schemas[i].differences(&after_down[i]);
            self.findings.problem(
                down_path(steps[i]),
                format!(
                    "rolling back {} does not restore the schema: {}",
                    what.rollback(),
                    listing(&differences)
                ),
            );
            return Ok(None);
        }

        for (i, m) in steps.iter().enumerate() {
            let context = || {
                format!(
                    "up failed installing {} again after its down migration",
                    what.target()
                )
            };
            if !self.up(m, context).await? {
                return Ok(None);
            }
            let again = snapshot(self.conn).await?;
            if again != schemas[i + 1] {
                self.findings.problem(
                    &m.up.path,
                    format!(
                        "installing {} again after its down migration makes a different schema: {}",
                        what.target(),
                        listing(&schemas[i + 1].differences(&again))
                    ),
                );
                return Ok(None);
            }
        }
        self.findings.tested(steps.len());
        Ok(Some(installed))
    }

    async fn up(&mut self, m: &Migration, context: impl FnOnce() -> String) -> Result<bool, Error> {
        self.step(m, Some(m.version), Side::Up, context).await
    }

    /// Migrates the track to `target`, which is one step away through `m`. False when that failed (the
    /// problem is recorded against the script that ran).
    async fn step(
        &mut self,
        m: &Migration,
        target: Option<i64>,
        side: Side,
        context: impl FnOnce() -> String,
    ) -> Result<bool, Error> {
        match self.migrator.migrate(self.conn, self.track, target).await {
            Ok(_) => Ok(true),
            Err(e) if is_finding(&e) => {
                let file = match side {
                    Side::Up => m.up.path.as_path(),
                    Side::Down => down_path(m),
                };
                self.findings.problem(file, failure(&context(), &e));
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(Clone, Copy)]
enum Side {
    Up,
    Down,
}

fn down_path(m: &Migration) -> &Path {
    m.down
        .as_ref()
        .map_or(m.up.path.as_path(), |d| d.path.as_path())
}

/// Failures of the catalog's SQL (or of what it did to the ledger); the others are the server's.
pub(super) fn is_finding(e: &db::Error) -> bool {
    use db::Error::*;
    matches!(
        e,
        MigrationFailed(_)
            | MigrationInterrupted { .. }
            | LockNotAvailable { .. }
            | IrreversibleMigration { .. }
            | ChecksumMismatch { .. }
            | UnknownTarget { .. }
            | UnknownAppliedMigration { .. }
            | WrongDirection { .. }
            | LedgerMismatch { .. }
    )
}

/// The script a failure names, when it names one.
pub(super) fn failed_file(e: &db::Error) -> Option<PathBuf> {
    use db::Error::*;
    match e {
        MigrationFailed(f) => Some(PathBuf::from(&f.file)),
        MigrationInterrupted { file, .. }
        | LockNotAvailable { file, .. }
        | IrreversibleMigration { file, .. }
        | ChecksumMismatch { file, .. } => Some(PathBuf::from(file)),
        _ => None,
    }
}

/// `<context>: <PostgreSQL's message> (SQLSTATE …, line …); <detail>; hint: <hint>`; the file is already
/// the line's subject, so PostgreSQL's words come without the engine's preamble.
pub(super) fn failure(context: &str, e: &db::Error) -> String {
    let db::Error::MigrationFailed(f) = e else {
        return format!("{context}: {e}");
    };
    let mut text = format!("{context}: {} (SQLSTATE {}", f.message, f.sqlstate);
    if let Some(line) = f.line {
        text.push_str(&format!(", line {line}"));
    }
    text.push(')');
    if let Some(detail) = &f.detail {
        text.push_str(&format!("; {detail}"));
    }
    if let Some(hint) = &f.hint {
        text.push_str(&format!("; hint: {hint}"));
    }
    text
}

/// The first few differences (a missing or left-over table without its parts), then how many more.
fn listing(differences: &[Difference]) -> String {
    let differences = condensed(differences);
    let mut shown: Vec<String> = differences
        .iter()
        .take(SHOWN_DIFFERENCES)
        .map(ToString::to_string)
        .collect();
    if differences.len() > SHOWN_DIFFERENCES {
        shown.push(format!(
            "and {} more",
            differences.len() - SHOWN_DIFFERENCES
        ));
    }
    shown.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_caps_the_differences() {
        let differences: Vec<Difference> = (0..7)
            .map(|i| Difference::Extra(format!("table public.t{i}")))
            .collect();
        let text = listing(&differences);
        assert!(text.starts_with("table public.t0 is left over; "), "{text}");
        assert!(
            text.ends_with("table public.t4 is left over; and 2 more"),
            "{text}"
        );
        assert_eq!(listing(&differences[..1]), "table public.t0 is left over");
    }

    #[test]
    fn rollback_to_nothing_is_named() {
        let to = Checkpoint {
            label: "1.0.0".into(),
            target: 1,
        };
        let what = Transition {
            module: "tasks",
            scope: crate::catalog::Scope::Tenant,
            to: &to,
            from: None,
        };
        assert_eq!(what.rollback(), "tasks 1.0.0 to nothing (tenant scope)");
        assert_eq!(what.target(), "tasks 1.0.0 (tenant scope)");
    }
}
