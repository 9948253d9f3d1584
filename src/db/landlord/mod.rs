//! Landlord's own records in the landlord database: the mirror of tenants and their modules (who owns what),
//! and the records a resync reads instead of visiting a tenant database.
pub mod mirror;
pub mod records;
