//! Running migrations: the pure planner, the engine under its advisory lock, each step with its ledger row,
//! Landlord's copy of every tenant ledger, and the module ACL rows an installation registers.
pub(crate) mod acl;
pub(crate) mod engine;
pub(crate) mod ledger;
pub(crate) mod ledger_copy;
pub(crate) mod plan;
pub(crate) mod step;
