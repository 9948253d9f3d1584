//! What both kinds share around their pipelines: the finalizer (cleanup before the resource goes), the
//! span naming the resource, metrics, and resetting the backoff after a success.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::context::object_key;
use super::status::publish_status;
use super::{Context, Error, FINALIZER};

pub trait Pipeline:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + DeserializeOwned
    + Serialize
    + Send
    + Sync
    + 'static
{
    /// Field manager, Event reporter and metrics label.
    const CONTROLLER: &'static str;

    /// Bring the world to the spec and publish status.
    fn apply(&self, ctx: &Context) -> impl Future<Output = Result<Action, Error>> + Send;

    /// Undo what the deletion policy says; an error keeps the finalizer (and the resource).
    fn cleanup(&self, ctx: &Context) -> impl Future<Output = Result<Action, Error>> + Send;
}

pub async fn reconcile<K: Pipeline>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", controller = K::CONTROLLER, resource = %object_key(&*object));
    async move {
        let api: Api<K> = ctx.api(&object.namespace().unwrap_or_default());
        let uid = object.uid().unwrap_or_default();
        let started = Instant::now();
        let result = finalizer(&api, FINALIZER, object, |event| async {
            match event {
                Event::Apply(object) => object.apply(&ctx).await,
                Event::Cleanup(object) => object.cleanup(&ctx).await,
            }
        })
        .await
        .map_err(Error::from);
        // Deleted while the event was queued (its finalizer already gone): nothing left to do.
        let result = match result {
            Err(Error::Kube(kube::Error::Api(status))) if status.code == 404 => {
                Ok(Action::await_change())
            }
            other => other,
        };
        ctx.metrics
            .reconciled(K::CONTROLLER, started, result.as_ref().map(drop));
        let action = result?;
        ctx.succeeded(&uid);
        Ok(action)
    }
    .instrument(span)
    .await
}

/// Writes `desired` as the object's status, under the kind's field manager, unless it already says so.
pub async fn publish<K: Pipeline, S: Serialize + PartialEq>(
    ctx: &Context,
    object: &K,
    current: Option<&S>,
    desired: &S,
) -> Result<(), Error> {
    let api: Api<K> = ctx.api(&object.namespace().unwrap_or_default());
    publish_status(&api, K::CONTROLLER, &object.name_any(), current, desired).await?;
    Ok(())
}
