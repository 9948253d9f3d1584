//! Documents generated from the code: the API reference (`landlord api-reference`, `docs/api.md`), built
//! from the CRD schemas and the condition vocabulary of `crd`. Nothing here is read by the operator.

mod conditions;
mod markdown;
mod reference;
mod validation;

pub use reference::reference_markdown;
