//! The only code in Landlord that speaks SQL, in rooms: `provisioning` (roles, databases, the template,
//! extensions), `migrating` (planner, engine, steps, ledgers, module ACLs), `landlord` (Landlord's own
//! records), `inspection` (scratch databases, schema snapshots); beside them what all share: connections,
//! errors, identifiers, locks, passwords.
//!
//! Rules kept here: every identifier formatted into SQL is an `Ident` (validated, quoted); every value is
//! a bind parameter; migrations run on dedicated connections under a per-(module, scope) advisory lock;
//! the admin role never enters a tenant database (work there runs as the tenant's own role); nothing is
//! adopted or dropped without its owner's mark; passwords never appear in errors, Debug output or logs.
//! Nothing here knows Kubernetes: what an error means for a resource is the controller's to say.

mod connect;
mod credentials;
mod error;
mod ident;
mod inspection;
mod landlord;
mod lock;
mod migrating;
pub mod moving;
mod provisioning;
mod secret;

pub use connect::{AdminRole, Databases, DbConnection, Limits, ServerAccess};
pub use credentials::TenantCredentials;
pub use error::{Error, MigrationFailure};
pub use ident::{Ident, MAX_IDENT_BYTES, TenantNames};
pub use inspection::scratch::{
    SCRATCH_PREFIX, create_scratch, drop_scratch, scratch_name, scratch_run_id, scratch_server,
};
pub use inspection::snapshot;
pub use landlord::{mirror, records};
pub use migrating::acl::{register_module_acl, remove_module_acl};
pub use migrating::engine::{Allowed, Executed, Migrator, Report, Status};
pub use migrating::ledger::{LEDGER_SCHEMA, LedgerEntry};
pub use migrating::plan::{Direction, Drift, MigrationStep, Plan, Track, drift, plan, reinstall};
pub use migrating::step::Timeouts;
pub use provisioning::extension::{available_extensions, ensure_extensions};
pub use provisioning::owner::{Adoption, Found, TenantOwner, adoption};
pub use provisioning::provision::{
    Dropped, Ensured, Provisioned, TenantRequest, drop_tenant, ensure_tenant,
    ensure_tenant_database, ensure_tenant_role,
};
pub use provisioning::template::{Template, Templates};
pub use secret::{PASSWORD_BYTES, Password};

/// The longest any Landlord session waits for a lock, outside migration steps (which bring their own
/// timeouts): row, table, database and advisory locks alike, and the template build lock's try-loop. A
/// wait that runs out is `Error::LockBusy`, retried with backoff. Also set in the startup packet of every
/// session, which outranks `ALTER ROLE/DATABASE … SET`: a tenant cannot lift it for Landlord's sessions.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
