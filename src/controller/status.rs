//! Status writes: server-side apply under one field manager per controller, and only when the computed
//! status differs from what the object already carries (every write re-triggers a reconcile).

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;

use super::Error;

/// Applies `desired` as the object's status unless `current` already equals it (`pipeline`'s mocked
/// apiserver test proves the no-write case). An object deleted meanwhile is `Error::Gone`.
pub async fn publish_status<K, S>(
    api: &Api<K>,
    manager: &str,
    name: &str,
    current: Option<&S>,
    desired: &S,
) -> Result<(), Error>
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
    let written = api
        .patch_status(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&patch),
        )
        .await;
    match written {
        Err(kube::Error::Api(status)) if status.code == 404 => Err(Error::Gone),
        other => other.map(drop).map_err(Error::from),
    }
}
