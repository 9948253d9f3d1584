//! Status writes: server-side apply under one field manager per controller, and only when the computed
//! status differs from what the object already carries (every write re-triggers a reconcile).

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;

/// What `publish_status` did; tests assert on it to prove a no-op reconcile writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    Unchanged,
    Written,
}

/// Applies `desired` as the object's status unless `current` already equals it.
pub async fn publish_status<K, S>(
    api: &Api<K>,
    manager: &str,
    name: &str,
    current: Option<&S>,
    desired: &S,
) -> Result<StatusWrite, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if current == Some(desired) {
        return Ok(StatusWrite::Unchanged);
    }
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": desired,
    });
    api.patch_status(
        name,
        &PatchParams::apply(manager).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(StatusWrite::Written)
}
