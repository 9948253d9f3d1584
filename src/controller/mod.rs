//! One reconcile pipeline per kind: gather (I/O) → validate (pure) → plan (pure) → apply (I/O) → status.

pub mod conditions;
pub mod status;

/// Field manager for status writes and reporter of Events.
pub const TENANT_CONTROLLER: &str = "landlord-tenant";
pub const INSTALLATION_CONTROLLER: &str = "landlord-moduleinstallation";
