//! The states the landlord database records for tenants and their modules: one vocabulary, in Rust here and
//! in SQL as the CHECK constraints of migrations `20250101000006` and `20250101000008` (a test ties the two).

use std::fmt;

use crate::db::Error;
use crate::db::landlord::mirror::DATABASE;

/// `tenants.status`: written by the operator alone, read by applications and by installations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantState {
    /// Claimed; the database is being made or migrated.
    Provisioning,
    /// Provisioned and migrated: installations may act on it.
    Ready,
    /// A core tenant migration failed.
    Failed,
    /// Deleted with `deletionPolicy: Retain`: kept for a Tenant of the same namespace and name.
    Retained,
    /// Made by Landlord, and gone from a server that answers (`DatabaseMissing`).
    Missing,
    /// Being moved to another server (`tenant_moves`): closed to new sessions until the target serves.
    Moving,
}

/// `tenant_modules.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleState {
    /// Claimed by its installer; the first install is under way.
    Installing,
    /// At the release recorded with it.
    Installed,
    /// Its installation is being deleted: never a dependency again.
    Uninstalling,
}

impl TenantState {
    pub const ALL: [TenantState; 6] = [
        TenantState::Provisioning,
        TenantState::Ready,
        TenantState::Failed,
        TenantState::Retained,
        TenantState::Missing,
        TenantState::Moving,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Provisioning => "Provisioning",
            TenantState::Ready => "Ready",
            TenantState::Failed => "Failed",
            TenantState::Retained => "Retained",
            TenantState::Missing => "Missing",
            TenantState::Moving => "Moving",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<TenantState, Error> {
        parse(&Self::ALL, Self::as_str, text, "tenant")
    }
}

impl ModuleState {
    pub const ALL: [ModuleState; 3] = [
        ModuleState::Installing,
        ModuleState::Installed,
        ModuleState::Uninstalling,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ModuleState::Installing => "Installing",
            ModuleState::Installed => "Installed",
            ModuleState::Uninstalling => "Uninstalling",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<ModuleState, Error> {
        parse(&Self::ALL, Self::as_str, text, "module")
    }
}

impl fmt::Display for TenantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for ModuleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CHECK constraint keeps anything else out; an older database read by a newer Landlord would not.
fn parse<S: Copy>(
    all: &[S],
    name: fn(S) -> &'static str,
    text: &str,
    what: &str,
) -> Result<S, Error> {
    all.iter()
        .copied()
        .find(|s| name(*s) == text)
        .ok_or_else(|| {
            let unknown = format!("unknown {what} state {text:?} in the mirror");
            Error::sql(
                "reading the mirror",
                DATABASE,
                sqlx::Error::Decode(unknown.into()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each state is allowed by the CHECK constraint of its column, and the constraint allows nothing else.
    #[test]
    fn the_sql_constraints_list_exactly_these_states() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/landlord");
        let read = |file: &str| std::fs::read_to_string(root.join(file)).unwrap();
        // The latest migration to set each constraint.
        let sql = read("20250101000006_record_made_databases_and_known_states.up.sql")
            + &read("20250101000008_record_tenant_moves.up.sql");
        let listed = |constraint: &str| -> Vec<String> {
            let start = sql.rfind(&format!("ADD CONSTRAINT {constraint}")).unwrap();
            let list = &sql[start..];
            let list = &list[list.find("IN (").unwrap() + 4..];
            let list = &list[..list.find(')').unwrap()];
            list.split(',')
                .map(|s| s.trim().trim_matches('\'').to_string())
                .collect()
        };
        let tenant: Vec<&str> = TenantState::ALL.iter().map(|s| s.as_str()).collect();
        let module: Vec<&str> = ModuleState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(listed("tenants_status_known"), tenant);
        assert_eq!(listed("tenant_modules_status_known"), module);
        for state in TenantState::ALL {
            assert_eq!(TenantState::parse(state.as_str()).unwrap(), state);
        }
        assert!(ModuleState::parse("Gone").is_err());
    }
}
