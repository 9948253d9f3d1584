//! The module catalog: `modules/*/module.yaml` with their migrations, and the core migrations, loaded from
//! files and validated into a `Catalog`. No database here.

mod model;

pub use model::{
    CORE_MODULE, Catalog, Dependency, Migration, MigrationScript, MigrationSet, Module, Release, Scope,
};
