//! What every kind shares around its pipeline: the finalizer (cleanup before the resource goes), the span
//! naming the resource, one status write computed from the result, the Warning Event, metrics. Each kind
//! brings its own gather → validate → plan → apply → status; the error it returns goes to `error_policy`.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
    type Status: Serialize + PartialEq + Send + Sync;

    fn status(&self) -> Option<&Self::Status>;

    /// Bring the world to the spec: the status that says how far it got, and how the reconcile ended.
    fn reconcile(
        &self,
        ctx: &Context,
    ) -> impl Future<Output = (Self::Status, Result<Action, Error>)> + Send;

    /// Undo what the deletion policy says; an error keeps the finalizer (and the resource).
    fn cleanup(&self, ctx: &Context) -> impl Future<Output = Result<Action, Error>> + Send;

    /// The status of a deletion that cannot finish: `Ready` says what it waits for.
    fn cleanup_status(&self, error: &Error, now: &Time) -> Self::Status;
}

pub async fn reconcile<K: Pipeline>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", controller = K::CONTROLLER, resource = %object_key(&*object));
    async move {
        let api: Api<K> = ctx.api(&object.namespace().unwrap_or_default());
        let uid = object.uid().unwrap_or_default();
        let started = Instant::now();
        let result = finalizer(&api, FINALIZER, object, |event| async {
            match event {
                Event::Apply(object) => {
                    let (status, result) = object.reconcile(&ctx).await;
                    conclude(&*object, &ctx, "Reconcile", status, result).await
                }
                Event::Cleanup(object) => match object.cleanup(&ctx).await {
                    Ok(action) => Ok(action),
                    Err(err) => {
                        let status = object.cleanup_status(&err, &ctx.now());
                        conclude(&*object, &ctx, "Delete", status, Err(err)).await
                    }
                },
            }
        })
        .await
        .map_err(Error::from);
        let result = match result {
            Err(Error::Gone) => Ok(Action::await_change()),
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

/// One status write (skipped when nothing changed), a Warning Event for a failure that is not mere
/// waiting, and the result handed on unchanged.
async fn conclude<K: Pipeline>(
    object: &K,
    ctx: &Context,
    action: &str,
    status: K::Status,
    result: Result<Action, Error>,
) -> Result<Action, Error> {
    let api: Api<K> = ctx.api(&object.namespace().unwrap_or_default());
    match publish_status(
        &api,
        K::CONTROLLER,
        &object.name_any(),
        object.status(),
        &status,
    )
    .await
    {
        Err(kube::Error::Api(status)) if status.code == 404 => return Err(Error::Gone),
        other => other?,
    };
    if let Err(err) = &result
        && !err.is_waiting()
    {
        ctx.event(object, true, err.reason().as_str(), action, err.to_string())
            .await;
    }
    result
}
