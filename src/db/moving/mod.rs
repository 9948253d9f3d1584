//! Moving a tenant database to another server, one step at a time, each idempotent and driven from
//! Landlord's record of the move (`mirror::moves`): closing the tenant's role on the source (`quiesce`), a
//! per-move login that is a member of the tenant's role alone (`mover`), `pg_dump | pg_restore` through the
//! operator (`copy`), and the comparison of both sides (`verify`).
//!
//! Who runs what: the admin role, from the maintenance database only, creates and drops roles and databases,
//! sets connection limits and ends sessions; everything inside a tenant database (the dump, the restore, the
//! counts) runs as the mover acting as the tenant's role, so nothing the tenant planted there runs with more
//! than the tenant's own privileges, and every object restored on the target is the tenant's.

mod copy;
mod mover;
mod quiesce;
mod verify;

pub use copy::{PgTools, copy_database};
pub use mover::{Mover, drop_mover, ensure_mover, mark_moved};
pub use quiesce::{
    Sessions, close_tenant_role, connection_limit, drop_copy, end_sessions, lock_move,
    open_tenant_role, sessions,
};
pub use verify::{Snapshot, differences, ledger_copy_differences, snapshot};
