//! Making and dropping tenants: roles, databases (with Landlord's template of the core schema), extensions, and the
//! owner's mark that decides what Landlord may adopt.
pub(crate) mod extension;
pub(crate) mod owner;
pub(crate) mod provision;
pub(crate) mod template;
