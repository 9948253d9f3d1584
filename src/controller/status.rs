//! Status writes: server-side apply under one field manager per controller, and only when the computed
//! status differs from what the object already carries (every write re-triggers a reconcile).

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;

/// Applies `desired` as the object's status unless `current` already equals it (`pipeline`'s mocked
/// apiserver test proves the no-write case).
pub async fn publish_status<K, S>(
    api: &Api<K>,
    manager: &str,
    name: &str,
    current: Option<&S>,
    desired: &S,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if current == Some(desired) {
        return Ok(());
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
    Ok(())
}
