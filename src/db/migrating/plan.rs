//! Pure planning: from what the ledger says is applied and what the catalog holds, the ordered steps that
//! reach a target version. Drift and irreversible steps are refused here, before anything runs.

use std::collections::BTreeSet;

use crate::catalog::{CORE_MODULE, Catalog, Migration, MigrationSet, Module, Scope};

use crate::db::Error;
use crate::db::migrating::ledger::LedgerEntry;

/// The migrations of one module (or the core) in one scope: one track in a database's ledger.
#[derive(Clone, Copy, Debug)]
pub struct Track<'a> {
    pub module: &'a str,
    pub scope: Scope,
    pub migrations: &'a MigrationSet,
}

impl<'a> Track<'a> {
    pub fn new(module: &'a str, scope: Scope, migrations: &'a MigrationSet) -> Self {
        Track {
            module,
            scope,
            migrations,
        }
    }

    /// The core migrations of `scope`, recorded as module `core`.
    pub fn core(catalog: &'a Catalog, scope: Scope) -> Self {
        Self::new(CORE_MODULE, scope, catalog.core(scope))
    }

    pub fn of(module: &'a Module, scope: Scope) -> Self {
        Self::new(&module.name, scope, module.migrations(scope))
    }
}

pub use crate::catalog::Direction;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationStep {
    pub version: i64,
    /// `<version>_<description>`.
    pub name: String,
    pub direction: Direction,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub module: String,
    pub scope: Scope,
    /// Highest applied version before the plan runs.
    pub current: Option<i64>,
    /// None: nothing of this module in this scope.
    pub target: Option<i64>,
    /// Downs first (newest first), then ups (oldest first).
    pub steps: Vec<MigrationStep>,
    /// The ledger the plan was made from: version and checksum of every applied migration, oldest first.
    /// The engine runs the plan only if the ledger still says exactly this under its lock.
    pub basis: Vec<(i64, Vec<u8>)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether `applied` is still the ledger this plan was made from.
    pub fn stands_on(&self, applied: &[LedgerEntry]) -> bool {
        self.basis.len() == applied.len()
            && self
                .basis
                .iter()
                .zip(applied)
                .all(|((version, checksum), e)| *version == e.version && *checksum == e.checksum)
    }
}

/// An applied migration that no longer matches the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    Changed {
        version: i64,
        file: String,
        applied: Vec<u8>,
        catalog: [u8; 32],
    },
    NotInCatalog {
        version: i64,
        description: String,
    },
}

/// Every applied entry that differs from the catalog.
pub fn drift(track: &Track<'_>, applied: &[LedgerEntry]) -> Vec<Drift> {
    applied
        .iter()
        .filter_map(|entry| match track.migrations.get(entry.version) {
            None => Some(Drift::NotInCatalog {
                version: entry.version,
                description: entry.description.clone(),
            }),
            Some(m) if m.checksum[..] != entry.checksum[..] => Some(Drift::Changed {
                version: m.version,
                file: file_name(m, Direction::Up),
                applied: entry.checksum.clone(),
                catalog: m.checksum,
            }),
            Some(_) => None,
        })
        .collect()
}

/// The steps from `applied` to `target`; an error, and no plan, on drift, an unknown target or a step
/// down through a migration without a down script.
pub fn plan(
    track: &Track<'_>,
    applied: &[LedgerEntry],
    target: Option<i64>,
    database: &str,
) -> Result<Plan, Error> {
    if let Some(first) = drift(track, applied).into_iter().next() {
        return Err(drift_error(track, first, database));
    }
    if let Some(version) = target
        && track.migrations.get(version).is_none()
    {
        return Err(Error::UnknownTarget {
            module: track.module.to_string(),
            scope: track.scope,
            version,
        });
    }
    let wanted = |version: i64| target.is_some_and(|t| version <= t);
    let done: BTreeSet<i64> = applied.iter().map(|e| e.version).collect();

    let mut steps = Vec::new();
    for &version in done.iter().rev().filter(|v| !wanted(**v)) {
        // drift() above guarantees the catalog has every applied version.
        let Some(m) = track.migrations.get(version) else {
            continue;
        };
        if m.down.is_none() {
            return Err(Error::IrreversibleMigration {
                module: track.module.to_string(),
                scope: track.scope,
                file: file_name(m, Direction::Up),
            });
        }
        steps.push(step(m, Direction::Down));
    }
    steps.extend(
        track
            .migrations
            .migrations
            .iter()
            .filter(|m| wanted(m.version) && !done.contains(&m.version))
            .map(|m| step(m, Direction::Up)),
    );
    Ok(Plan {
        module: track.module.to_string(),
        scope: track.scope,
        current: done.last().copied(),
        target,
        steps,
        basis: applied
            .iter()
            .map(|e| (e.version, e.checksum.clone()))
            .collect(),
    })
}

/// A fresh reinstall: every applied migration down, then up again to `target`, as one plan.
pub fn reinstall(
    track: &Track<'_>,
    applied: &[LedgerEntry],
    target: Option<i64>,
    database: &str,
) -> Result<Plan, Error> {
    let mut reinstall = plan(track, applied, None, database)?;
    let up = plan(track, &[], target, database)?;
    reinstall.steps.extend(up.steps);
    reinstall.target = target;
    Ok(reinstall)
}

pub(crate) fn drift_error(track: &Track<'_>, drift: Drift, database: &str) -> Error {
    match drift {
        Drift::Changed {
            file,
            applied,
            catalog,
            ..
        } => Error::ChecksumMismatch {
            module: track.module.to_string(),
            scope: track.scope,
            file,
            applied: hex::encode(&applied),
            catalog: hex::encode(catalog),
        },
        Drift::NotInCatalog {
            version,
            description,
        } => Error::UnknownAppliedMigration {
            module: track.module.to_string(),
            scope: track.scope,
            database: database.to_string(),
            version,
            description,
        },
    }
}

fn step(m: &Migration, direction: Direction) -> MigrationStep {
    MigrationStep {
        version: m.version,
        name: m.name(),
        direction,
    }
}

/// The script's path as loaded, or `<version>_<description>.<up|down>.sql` for sets built in code.
pub(crate) fn file_name(m: &Migration, direction: Direction) -> String {
    let script = match direction {
        Direction::Up => Some(&m.up),
        Direction::Down => m.down.as_ref(),
    };
    match script {
        Some(s) if !s.path.as_os_str().is_empty() => s.path.display().to_string(),
        _ => format!("{}.{direction}.sql", m.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::MigrationScript;
    use sha2::{Digest, Sha256};

    fn migration(version: i64, reversible: bool) -> Migration {
        let script = |sql: String| MigrationScript::new(sql, Default::default());
        let up = format!("CREATE TABLE t{version} ()");
        Migration {
            version,
            description: format!("m{version}"),
            checksum: Sha256::digest(&up).into(),
            up: script(up),
            down: reversible.then(|| script(format!("DROP TABLE t{version}"))),
        }
    }

    fn set(specs: &[(i64, bool)]) -> MigrationSet {
        MigrationSet {
            migrations: specs.iter().map(|&(v, r)| migration(v, r)).collect(),
        }
    }

    fn applied(set: &MigrationSet, versions: &[i64]) -> Vec<LedgerEntry> {
        versions
            .iter()
            .map(|&v| {
                let m = set.get(v).unwrap();
                LedgerEntry {
                    version: v,
                    description: m.description.clone(),
                    checksum: m.checksum.to_vec(),
                    applied_at: Default::default(),
                    execution_ms: 1,
                }
            })
            .collect()
    }

    #[test]
    fn a_plan_stands_only_on_the_ledger_it_was_made_from() {
        let set = set(&[(1, true), (2, true), (3, true)]);
        let track = Track::new("m", Scope::Tenant, &set);
        let at_one = applied(&set, &[1]);
        let planned = plan(&track, &at_one, Some(3), "db").unwrap();
        assert!(planned.stands_on(&at_one));
        assert!(!planned.stands_on(&applied(&set, &[1, 2])), "moved on");
        assert!(!planned.stands_on(&[]), "moved back");
        let mut rewritten = at_one.clone();
        rewritten[0].checksum = vec![0];
        assert!(
            !planned.stands_on(&rewritten),
            "same version, other checksum"
        );
    }

    #[test]
    fn a_reinstall_is_everything_down_then_up_to_the_target_in_one_plan() {
        let set = set(&[(1, true), (2, true), (3, true)]);
        let track = Track::new("m", Scope::Tenant, &set);
        let at_two = applied(&set, &[1, 2]);
        let planned = reinstall(&track, &at_two, Some(3), "db").unwrap();
        assert_eq!(
            steps(&planned),
            [
                (2, Direction::Down),
                (1, Direction::Down),
                (1, Direction::Up),
                (2, Direction::Up),
                (3, Direction::Up)
            ]
        );
        assert_eq!((planned.current, planned.target), (Some(2), Some(3)));
        assert!(planned.stands_on(&at_two));
    }

    fn steps(plan: &Plan) -> Vec<(i64, Direction)> {
        plan.steps
            .iter()
            .map(|s| (s.version, s.direction))
            .collect()
    }

    use Direction::{Down, Up};

    #[test]
    fn plans_up_to_target_in_order() {
        let set = set(&[(1, true), (2, true), (3, true)]);
        let track = Track::new("tasks", Scope::Tenant, &set);
        let plan = plan(&track, &applied(&set, &[1]), Some(3), "db").unwrap();
        assert_eq!(steps(&plan), [(2, Up), (3, Up)]);
        assert_eq!(plan.current, Some(1));
    }

    #[test]
    fn plans_down_newest_first_and_none_means_everything() {
        let set = set(&[(1, true), (2, true), (3, true)]);
        let track = Track::new("tasks", Scope::Tenant, &set);
        let plan = plan(&track, &applied(&set, &[1, 2, 3]), None, "db").unwrap();
        assert_eq!(steps(&plan), [(3, Down), (2, Down), (1, Down)]);
    }

    #[test]
    fn at_target_is_empty() {
        let set = set(&[(1, true), (2, false)]);
        let track = Track::new("tasks", Scope::Tenant, &set);
        assert!(
            plan(&track, &applied(&set, &[1, 2]), Some(2), "db")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn refuses_down_through_irreversible_migration() {
        let set = set(&[(1, true), (2, false), (3, true)]);
        let track = Track::new("tasks", Scope::Tenant, &set);
        let err = plan(&track, &applied(&set, &[1, 2, 3]), Some(1), "db").unwrap_err();
        assert!(
            matches!(err, Error::IrreversibleMigration { ref file, .. } if file == "2_m2.up.sql")
        );
    }

    #[test]
    fn refuses_unknown_target() {
        let set = set(&[(1, true)]);
        let track = Track::new("tasks", Scope::Tenant, &set);
        let err = plan(&track, &[], Some(7), "db").unwrap_err();
        assert!(matches!(err, Error::UnknownTarget { version: 7, .. }));
    }

    #[test]
    fn changed_checksum_is_drift() {
        let set = set(&[(1, true), (2, true)]);
        let track = Track::new("tasks", Scope::Tenant, &set);
        let mut entries = applied(&set, &[1]);
        entries[0].checksum[0] ^= 0xff;
        assert_eq!(drift(&track, &entries).len(), 1);
        let err = plan(&track, &entries, Some(2), "db").unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    }

    #[test]
    fn applied_version_missing_from_catalog_is_refused() {
        let full = set(&[(1, true), (2, true)]);
        let short = set(&[(1, true)]);
        let track = Track::new("tasks", Scope::Tenant, &short);
        let err = plan(&track, &applied(&full, &[1, 2]), Some(1), "db").unwrap_err();
        assert!(matches!(
            err,
            Error::UnknownAppliedMigration { version: 2, .. }
        ));
    }

    #[test]
    fn fills_gaps_below_the_current_version() {
        let set = set(&[(1, true), (2, true), (3, true)]);
        let track = Track::new("tasks", Scope::Tenant, &set);
        let plan = plan(&track, &applied(&set, &[1, 3]), Some(3), "db").unwrap();
        assert_eq!(steps(&plan), [(2, Up)]);
    }
}
