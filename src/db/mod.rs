//! The only code in Landlord that speaks SQL: connections, tenant provisioning, the migration engine
//! with its ledger, and module ACL registration.
//!
//! Rules kept here: every identifier formatted into SQL is an `Ident` (validated, quoted); every value is
//! a bind parameter; migrations run on dedicated connections under a per-(module, scope) advisory lock;
//! passwords never appear in errors, Debug output or logs.

mod acl;
mod connect;
mod engine;
mod error;
mod ident;
mod ledger;
pub mod mirror;
mod plan;
mod provision;
mod secret;

pub use acl::{register_module_acl, remove_module_acl};
pub use connect::{Databases, DbConnection, Limits, TenantCredentials};
pub use engine::{Executed, Migrator, Report, Status};
pub use error::{Error, MigrationFailure};
pub use ident::{Ident, MAX_IDENT_BYTES, TenantNames};
pub use ledger::{LEDGER_SCHEMA, LedgerEntry};
pub use plan::{Direction, Drift, ModuleScope, Plan, Step, drift, plan};
pub use provision::{
    Dropped, Ensured, Provisioned, TenantRequest, drop_tenant, drop_tenant_database,
    drop_tenant_role, ensure_extensions, ensure_tenant, ensure_tenant_database, ensure_tenant_role,
};
pub use secret::{PASSWORD_BYTES, Password};
