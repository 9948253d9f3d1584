//! The module catalog: `modules/*/module.yaml` with their migrations, and the core migrations, loaded from
//! files and validated into a `Catalog`. No database here.
//!
//! `Catalog::load` reports every problem at once (`CatalogErrors`); `check` renders that verdict for
//! `landlord catalog check`; `graph` answers the dependency questions the controllers ask.

mod check;
mod files;
mod graph;
mod load;
mod manifest;
mod model;
mod name;
mod problem;
mod release;
mod script;
pub mod sql;
mod validate;

pub(crate) use check::relative;
pub use check::{CheckReport, MIGRATIONS_DIR_ENV, MODULES_DIR_ENV, check, check_dirs, summary};
pub use graph::{DependencyCycle, DependencyGraph, UnmetDependency};
pub use manifest::{MANIFEST_FILE, is_valid_name, is_valid_permission};
pub use model::{
    CORE_MODULE, Catalog, Dependency, Direction, Migration, MigrationScript, MigrationSet, Module,
    Release, Scope,
};
pub use name::{MAX_NAME_BYTES, NAME_PATTERN, name_problem};
pub use problem::{CatalogErrors, Problem};
pub use script::{NO_TRANSACTION_MARKER, Rerun, is_no_transaction, parse_duration, rerun};
