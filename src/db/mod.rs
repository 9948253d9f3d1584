//! The only code in Landlord that speaks SQL: connections, tenant provisioning, the migration engine
//! with its ledger, and module ACL registration.
//!
//! Rules kept here: every identifier formatted into SQL is an `Ident` (validated, quoted); every value is
//! a bind parameter; migrations run on dedicated connections under a per-(module, scope) advisory lock;
//! the admin role never enters a tenant database (work there runs as the tenant's own role); nothing is
//! adopted or dropped without its owner's mark; passwords never appear in errors, Debug output or logs.
//! Nothing here knows Kubernetes: what an error means for a resource is the controller's to say.

mod acl;
mod connect;
mod engine;
mod error;
mod extension;
mod ident;
mod ledger;
mod ledger_copy;
mod lock;
pub mod mirror;
mod owner;
mod plan;
mod provision;
pub mod records;
mod scratch;
mod secret;
pub mod snapshot;
mod step;
mod template;

pub use acl::{register_module_acl, remove_module_acl};
pub use connect::{Databases, DbConnection, Limits, TenantCredentials};
pub use engine::{Allowed, Executed, Migrator, Report, Status};
pub use error::{Error, MigrationFailure};
pub use extension::{available_extensions, ensure_extensions};
pub use ident::{Ident, MAX_IDENT_BYTES, TenantNames};
pub use ledger::{LEDGER_SCHEMA, LedgerEntry};
pub use owner::{Adoption, Found, TenantOwner, adoption};
pub use plan::{Direction, Drift, MigrationStep, Plan, Track, drift, plan, reinstall};
pub use provision::{
    Dropped, Ensured, Provisioned, TenantRequest, drop_tenant, ensure_tenant,
    ensure_tenant_database, ensure_tenant_role,
};
pub use scratch::{
    SCRATCH_PREFIX, create_scratch, drop_scratch, scratch_name, scratch_run_id, scratch_server,
};
pub use secret::{PASSWORD_BYTES, Password};
pub use step::Timeouts;
pub use template::{Template, Templates};

/// The longest any Landlord session waits for a lock, outside migration steps (which bring their own
/// timeouts): row, table, database and advisory locks alike, and the template build lock's try-loop. A
/// wait that runs out is `Error::LockBusy`, retried with backoff. Also set in the startup packet of every
/// session, which outranks `ALTER ROLE/DATABASE … SET`: a tenant cannot lift it for Landlord's sessions.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
