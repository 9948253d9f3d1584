//! Looking at schemas without changing anything of a tenant's: scratch databases for `catalog test` and the
//! schema snapshots compared there.
pub(crate) mod scratch;
pub mod snapshot;
