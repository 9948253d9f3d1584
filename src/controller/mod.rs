//! One reconcile pipeline per kind: gather (I/O) → validate (pure) → plan (pure) → apply (I/O) → status.
//! Failures reach status and Events before they reach the error policy.

mod cache;
pub mod conditions;
mod context;
pub mod credentials;
pub mod drift;
mod error;
pub mod installation;
mod moves;
mod pipeline;
pub mod registry;
mod rollout;
mod run;
pub mod server;
pub mod status;
pub mod tenant;

pub use context::Context;
pub use error::Error;
pub use run::run;

/// Field manager for status and Secret writes, and the `controller` label of metrics. Events are reported
/// as `landlord`.
pub const TENANT_CONTROLLER: &str = "landlord-tenant";
pub const INSTALLATION_CONTROLLER: &str = "landlord-moduleinstallation";
pub const ROLLOUT_CONTROLLER: &str = "landlord-modulerollout";
pub const SERVER_CONTROLLER: &str = "landlord-databaseserver";
/// Finalizer on every kind: cleanup (retain, drop, roll back, delete installations) runs before the resource goes.
pub const FINALIZER: &str = "tenancy.landlord.dev/cleanup";
