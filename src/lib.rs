//! Landlord: a Kubernetes operator that gives every tenant its own PostgreSQL database and installs,
//! upgrades and removes feature modules in it.
//!
//! Layers, from the outside in: `crd` (resource types), `catalog` (module manifests, no I/O beyond reading
//! files), `db` (the only code that speaks SQL), `controller` (one reconcile pipeline per kind); `testbed` runs
//! a catalog's migrations up, down and up in scratch databases for `landlord catalog test`; `docs` generates
//! the API reference from the types.

pub mod catalog;
pub mod config;
pub mod controller;
pub mod crd;
pub mod db;
pub mod docs;
pub mod metrics;
pub mod serve;
pub mod telemetry;
pub mod testbed;
