//! The validated catalog: what the migration engine and the controllers consume. Built by the loader in
//! this module from files; never touches a database.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where a migration runs: once in the shared landlord database, or in every tenant database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Landlord,
    Tenant,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Landlord => "landlord",
            Scope::Tenant => "tenant",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a migration runs: its up script, or its down script. One type for the planner, the engine and
/// the plan an installation publishes in its status (where it reads `Up` / `Down`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub enum Direction {
    Up,
    Down,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Up => "up",
            Direction::Down => "down",
        })
    }
}

/// Module name under which core migrations are recorded in a ledger.
pub const CORE_MODULE: &str = "core";

/// One SQL file of a migration (its up or its down side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationScript {
    pub sql: String,
    /// First line is `-- landlord:no-transaction`: runs outside a transaction, holds exactly one statement.
    pub no_transaction: bool,
    pub path: PathBuf,
    /// `-- landlord:lock-timeout=…`: how long a statement may wait for a lock (else the operator's default).
    pub lock_timeout: Option<Duration>,
    /// `-- landlord:statement-timeout=…`: how long a statement may run (else the operator's default).
    pub statement_timeout: Option<Duration>,
    /// A no-transaction `CREATE INDEX CONCURRENTLY IF NOT EXISTS <name>`: the index an interrupted run may have
    /// left INVALID, dropped before the statement runs again.
    pub concurrent_index: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The integer prefix of the file name; migrations run in numeric order.
    pub version: i64,
    /// The part of the file name after `<version>_`, without `.up.sql`.
    pub description: String,
    pub up: MigrationScript,
    /// None when there is no `.down.sql`: rolling back through this migration is refused.
    pub down: Option<MigrationScript>,
    /// SHA-256 of the up script's bytes; a ledger row whose checksum differs is drift.
    pub checksum: [u8; 32],
}

impl Migration {
    /// `<version>_<description>`, as in the file name and in status plans.
    pub fn name(&self) -> String {
        format!("{}_{}", self.version, self.description)
    }
}

/// The migrations of one scope of one module (or of the core), sorted by version, versions unique.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationSet {
    pub migrations: Vec<Migration>,
}

impl MigrationSet {
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }

    pub fn latest(&self) -> Option<i64> {
        self.migrations.last().map(|m| m.version)
    }

    pub fn get(&self, version: i64) -> Option<&Migration> {
        self.migrations
            .binary_search_by_key(&version, |m| m.version)
            .ok()
            .map(|i| &self.migrations[i])
    }
}

/// A named point in a module's history: per scope, the last migration it includes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub version: semver::Version,
    /// Resolved target per scope: the release's own value or, when it omits the scope, the previous
    /// release's; None when no release up to this one includes the scope.
    pub landlord: Option<i64>,
    pub tenant: Option<i64>,
}

impl Release {
    pub fn target(&self, scope: Scope) -> Option<i64> {
        match scope {
            Scope::Landlord => self.landlord,
            Scope::Tenant => self.tenant,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub module: String,
    /// None accepts any release.
    pub requirement: Option<semver::VersionReq>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// Oldest first, strictly increasing versions.
    pub releases: Vec<Release>,
    pub depends_on: Vec<Dependency>,
    /// Sorted, unique.
    pub permissions: Vec<String>,
    /// Role name → its permissions (sorted, each declared in `permissions`).
    pub roles: BTreeMap<String, Vec<String>>,
    pub landlord: MigrationSet,
    pub tenant: MigrationSet,
}

impl Module {
    pub fn migrations(&self, scope: Scope) -> &MigrationSet {
        match scope {
            Scope::Landlord => &self.landlord,
            Scope::Tenant => &self.tenant,
        }
    }

    pub fn release(&self, version: &semver::Version) -> Option<&Release> {
        self.releases.iter().find(|r| &r.version == version)
    }

    pub fn newest_release(&self) -> Option<&Release> {
        self.releases.last()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    pub core_landlord: MigrationSet,
    pub core_tenant: MigrationSet,
    /// By module name.
    pub modules: BTreeMap<String, Module>,
}

impl Catalog {
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.get(name)
    }

    pub fn core(&self, scope: Scope) -> &MigrationSet {
        match scope {
            Scope::Landlord => &self.core_landlord,
            Scope::Tenant => &self.core_tenant,
        }
    }
}
