//! The one error type of the database layer. Every variant knows whether trying again later can help; what
//! it means for a resource is the controller's business. Messages never hold a password or a database URL.

use std::fmt;
use std::time::Duration;

use crate::catalog::Scope;

use crate::db::LOCK_WAIT;
use crate::db::migrating::plan::Direction;
use crate::db::provisioning::owner::Found;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Rejected before any SQL runs.
    #[error("invalid name {name}: it {reason}")]
    InvalidIdent { name: String, reason: &'static str },
    #[error("invalid password: it {0}")]
    InvalidPassword(&'static str),
    #[error("refusing to quote a literal that {0}")]
    InvalidLiteral(&'static str),
    #[error("the {which} database URL is invalid: {source}")]
    InvalidUrl {
        which: &'static str,
        source: sqlx::Error,
    },
    #[error("could not read random bytes from the operating system: {0}")]
    Randomness(String),

    // The server or the connection.
    #[error("could not connect to database {database}: {source}")]
    Connect {
        database: String,
        source: sqlx::Error,
    },
    #[error("gave up connecting to database {database} after {seconds}s")]
    ConnectTimeout { database: String, seconds: u64 },
    #[error(
        "{action}: waited {} for {lock} in database {database}, held by another session; retrying",
        seconds(*waited_ms)
    )]
    LockBusy {
        action: String,
        /// What was waited for: "the template build lock", or "a lock" a statement needed.
        lock: String,
        database: String,
        waited_ms: u64,
    },
    #[error("{action} in database {database} failed: {source}")]
    Sql {
        action: String,
        database: String,
        source: sqlx::Error,
    },

    #[error(
        "database {database} is not on the server, which answers: it was dropped or lost outside Landlord"
    )]
    DatabaseMissing { database: String },

    // Provisioning.
    #[error(
        "{object} {name} already exists and {found}: Landlord leaves it untouched. Remove or rename it, \
         or give this Tenant another slug"
    )]
    AdoptionRefused {
        object: &'static str,
        name: String,
        found: Found,
    },
    #[error(
        "the password in the tenant's Secret does not open database {database} as its role, even after \
         setting the role to it"
    )]
    TenantLoginRefused { database: String },
    #[error("extension {extension} cannot be created in database {database}: {message}")]
    ExtensionUnavailable {
        extension: String,
        database: String,
        message: String,
    },
    #[error(
        "extension {extension} is not trusted by PostgreSQL, so the tenant's own role cannot create it in \
         database {database}; remove it from spec.extensions or have a DBA install it"
    )]
    ExtensionUntrusted { extension: String, database: String },

    // The migration engine.
    #[error(
        "another process has been migrating module {module} ({scope} scope) in database {database} \
         for more than {seconds}s"
    )]
    LockTimeout {
        module: String,
        scope: Scope,
        database: String,
        seconds: u64,
    },
    #[error(
        "migration {file} of module {module} ({scope} scope) waited {waited_ms} ms for a lock{} held by \
         another session and gave up, so that the application's queries are not queued behind it; it will \
         be retried",
        on_tables(tables)
    )]
    LockNotAvailable {
        module: String,
        scope: Scope,
        file: String,
        tables: Vec<String>,
        waited_ms: u64,
    },
    #[error(
        "the ledger of module {module} ({scope} scope) in database {database} changed since the plan was made \
         (another process migrated it); nothing ran, and the plan is made again"
    )]
    PlanOutdated {
        module: String,
        scope: Scope,
        database: String,
    },
    #[error("module {module} has no {scope} migration with version {version}")]
    UnknownTarget {
        module: String,
        scope: Scope,
        version: i64,
    },
    #[error(
        "migration {file} of module {module} ({scope} scope) was changed after it was applied: \
         the ledger records checksum {applied}, the catalog has {catalog}"
    )]
    ChecksumMismatch {
        module: String,
        scope: Scope,
        file: String,
        applied: String,
        catalog: String,
    },
    #[error(
        "the ledger of database {database} records migration {version}_{description} of module {module} \
         ({scope} scope) as applied, but the catalog does not have it"
    )]
    UnknownAppliedMigration {
        module: String,
        scope: Scope,
        database: String,
        version: i64,
        description: String,
    },
    #[error(
        "the ledger in database {database} no longer matches Landlord's record of module {module}: \
         {differences}. Nothing was run; restore the ledger rows (table landlord_migrations.ledger) as recorded"
    )]
    LedgerMismatch {
        database: String,
        module: String,
        differences: String,
    },
    #[error(
        "cannot roll back migration {file} of module {module} ({scope} scope): it has no down migration"
    )]
    IrreversibleMigration {
        module: String,
        scope: Scope,
        file: String,
    },
    #[error(
        "{operation} of module {module} ({scope} scope) would run {step} {direction}: not allowed"
    )]
    WrongDirection {
        operation: &'static str,
        module: String,
        scope: Scope,
        step: String,
        direction: Direction,
    },
    #[error("{0}")]
    MigrationFailed(Box<MigrationFailure>),
    #[error("migration {file} of module {module} ({scope} scope) was interrupted: {source}")]
    MigrationInterrupted {
        module: String,
        scope: Scope,
        file: String,
        source: sqlx::Error,
    },

    // Moving a tenant database to another server.
    #[error("could not start {tool} ({path}): {problem}")]
    ToolUnavailable {
        tool: &'static str,
        path: String,
        problem: String,
    },
    #[error("copying database {database} failed: {problem}")]
    CopyFailed { database: String, problem: String },
    #[error("the copy of database {database} differs from its source: {}", differences.join("; "))]
    CopyDiffers {
        database: String,
        differences: Vec<String>,
    },
}

/// `10 s`, `0.5 s`: how long a wait lasted, for a person to read.
fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn on_tables(tables: &[String]) -> String {
    match tables {
        [] => String::new(),
        [one] => format!(" on table {one}"),
        more => format!(" on tables {}", more.join(", ")),
    }
}

/// PostgreSQL refused a migration's SQL; its transaction was rolled back.
#[derive(Debug)]
pub struct MigrationFailure {
    pub module: String,
    pub scope: Scope,
    /// The script's path as the catalog loaded it.
    pub file: String,
    pub direction: Direction,
    pub message: String,
    pub sqlstate: String,
    /// 1-based character position in the script, as PostgreSQL reports it.
    pub position: Option<usize>,
    /// 1-based line of `position` in the script.
    pub line: Option<usize>,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for MigrationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "migration {} of module {} ({} scope, {}) failed: {} (SQLSTATE {}",
            self.file, self.module, self.scope, self.direction, self.message, self.sqlstate
        )?;
        if let (Some(line), Some(position)) = (self.line, self.position) {
            write!(f, ", line {line}, position {position}")?;
        }
        f.write_str(")")?;
        if let Some(detail) = &self.detail {
            write!(f, "; {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl Error {
    /// Whether the same call can succeed later without a change of spec or catalog.
    pub fn is_retryable(&self) -> bool {
        use Error::*;
        match self {
            Randomness(_) | Connect { .. } | ConnectTimeout { .. } | Sql { .. } => true,
            // An image without the client tools gets them by a new image, not by waiting.
            ToolUnavailable { .. } | CopyFailed { .. } | CopyDiffers { .. } => false,
            MigrationInterrupted { .. } | LockTimeout { .. } | LockNotAvailable { .. } => true,
            LockBusy { .. } | PlanOutdated { .. } => true,
            // The Tenant's next reconcile sets the role's password to the one in its Secret.
            TenantLoginRefused { .. } => true,
            // The server may get the extension's package installed without the spec changing.
            ExtensionUnavailable { .. } => true,
            MigrationFailed(failure) => is_transient_sqlstate(&failure.sqlstate),
            InvalidIdent { .. }
            | InvalidPassword(_)
            | InvalidLiteral(_)
            | InvalidUrl { .. }
            | AdoptionRefused { .. }
            | DatabaseMissing { .. }
            | ExtensionUntrusted { .. }
            | LedgerMismatch { .. }
            | UnknownTarget { .. }
            | ChecksumMismatch { .. }
            | UnknownAppliedMigration { .. }
            | IrreversibleMigration { .. }
            | WrongDirection { .. } => false,
        }
    }

    /// The SQLSTATE PostgreSQL reported, if this error carries one.
    pub fn sqlstate(&self) -> Option<String> {
        match self {
            Error::MigrationFailed(failure) => Some(failure.sqlstate.clone()),
            Error::Connect { source, .. }
            | Error::Sql { source, .. }
            | Error::MigrationInterrupted { source, .. } => sqlstate(source),
            _ => None,
        }
    }

    /// A failed statement. One that gave up waiting for a lock (`lock_timeout`, which every Landlord
    /// session has set to `LOCK_WAIT`) is `LockBusy`, so that the wait is what the message says.
    pub(crate) fn sql(action: impl Into<String>, database: &str, source: sqlx::Error) -> Error {
        if sqlstate(&source).as_deref() == Some(LOCK_NOT_AVAILABLE) {
            return Error::LockBusy {
                action: action.into(),
                lock: "a lock".into(),
                database: database.to_string(),
                waited_ms: millis(LOCK_WAIT),
            };
        }
        Error::Sql {
            action: action.into(),
            database: database.to_string(),
            source,
        }
    }
}

/// Serialization failures, deadlocks, lock and statement timeouts, a server shutting down, too many
/// connections: the same SQL can succeed on another attempt.
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("40")
        || code.starts_with("08")
        || code.starts_with("53")
        // A server shutting down or restarting; not a statement cancelled (57014: its statement timeout or a
        // DBA), which would run just as long again: looked at again slowly, like other failures.
        || (code.starts_with("57") && code != QUERY_CANCELED)
        || code == LOCK_NOT_AVAILABLE
}

const QUERY_CANCELED: &str = "57014";
/// `lock_not_available`: a lock timeout ran out (or a NOWAIT lock was taken).
const LOCK_NOT_AVAILABLE: &str = "55P03";

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(sqlstate: &str) -> Error {
        Error::MigrationFailed(Box::new(MigrationFailure {
            module: "expenses".into(),
            scope: Scope::Tenant,
            file: "modules/expenses/tenant/1_init.up.sql".into(),
            direction: Direction::Up,
            message: "relation \"nope\" does not exist".into(),
            sqlstate: sqlstate.into(),
            position: Some(42),
            line: Some(3),
            detail: None,
            hint: Some("check the name".into()),
        }))
    }

    #[test]
    fn migration_failure_names_file_module_scope_and_position() {
        let text = failure("42P01").to_string();
        for part in [
            "modules/expenses/tenant/1_init.up.sql",
            "module expenses",
            "tenant scope",
            "relation \"nope\" does not exist",
            "SQLSTATE 42P01",
            "line 3, position 42",
            "hint: check the name",
        ] {
            assert!(text.contains(part), "{part:?} missing in {text}");
        }
    }

    #[test]
    fn transient_failures_are_retryable_and_others_not() {
        assert!(failure("40P01").is_retryable());
        assert!(failure("55P03").is_retryable());
        assert!(failure("57P01").is_retryable());
        assert!(!failure("42P01").is_retryable());
        assert!(!failure("57014").is_retryable());
    }

    #[test]
    fn a_lock_wait_says_how_long_and_what_for_and_is_retried() {
        let busy = Error::LockBusy {
            action: "building the tenant template".into(),
            lock: "the template build lock".into(),
            database: "landlord".into(),
            waited_ms: 10_000,
        };
        assert!(busy.is_retryable());
        assert_eq!(
            busy.to_string(),
            "building the tenant template: waited 10 s for the template build lock in database landlord, \
             held by another session; retrying"
        );
        assert_eq!(seconds(2500), "2.5 s");
    }
}
