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

use super::conditions::{ConditionedStatus, deleting_status};
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
    type Status: Serialize + PartialEq + Send + Sync + ConditionedStatus;

    fn status(&self) -> Option<&Self::Status>;

    /// Bring the world to the spec: the status that says how far it got, and how the reconcile ended.
    fn reconcile(
        &self,
        ctx: &Context,
    ) -> impl Future<Output = (Self::Status, Result<Action, Error>)> + Send;

    /// Undo what the deletion policy says; an error keeps the finalizer (and the resource).
    fn cleanup(&self, ctx: &Context) -> impl Future<Output = Result<Action, Error>> + Send;

    /// The status of a deletion that cannot finish: `Ready` says what it waits for.
    fn cleanup_status(&self, error: &Error, now: &Time) -> Self::Status {
        deleting_status(self.status(), self.meta().generation, error, now)
    }
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
        ctx.reconciled(K::CONTROLLER, &uid, started, result)
    }
    .instrument(span)
    .await
}

/// One status write (skipped when nothing changed), a Warning Event for a failure worth one, and the result
/// handed on unchanged.
async fn conclude<K: Pipeline>(
    object: &K,
    ctx: &Context,
    action: &str,
    status: K::Status,
    result: Result<Action, Error>,
) -> Result<Action, Error> {
    let api: Api<K> = ctx.api(&object.namespace().unwrap_or_default());
    let started = Instant::now();
    let published = publish_status(
        &api,
        K::CONTROLLER,
        &object.name_any(),
        object.status(),
        &status,
    )
    .await;
    ctx.metrics.phase(K::CONTROLLER, "status", started);
    published?;
    ctx.warn_of(object, action, &result).await;
    result
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{Method, Request, Response};
    use kube::client::Body;

    use super::*;
    use crate::catalog::Catalog;
    use crate::config::Config;
    use crate::crd::{Tenant, TenantSpec, TenantStatus};
    use crate::db::{Databases, Limits};
    use crate::metrics::Metrics;

    /// A Context whose apiserver is `client` and whose databases are never reached (nothing listens there).
    fn context(client: kube::Client) -> Arc<Context> {
        let config = Config::from_lookup(|name| match name {
            "LANDLORD_ADMIN_DATABASE_URL" => Some("postgres://admin:x@127.0.0.1:1/postgres".into()),
            "LANDLORD_DATABASE_URL" => Some("postgres://landlord:x@127.0.0.1:1/landlord".into()),
            _ => None,
        })
        .unwrap();
        let databases = Databases::new(
            &config.admin_database_url,
            &config.database_url,
            Limits::default(),
        )
        .unwrap();
        Arc::new(Context::new(
            client,
            Catalog::default(),
            databases,
            config,
            Arc::new(Metrics::default()),
        ))
    }

    fn paused_tenant() -> Tenant {
        let mut tenant = Tenant::new(
            "acme",
            TenantSpec {
                paused: true,
                ..Default::default()
            },
        );
        tenant.metadata.namespace = Some("ns".into());
        tenant.metadata.uid = Some("u1".into());
        tenant.metadata.generation = Some(1);
        tenant.metadata.finalizers = Some(vec![FINALIZER.into()]);
        tenant
    }

    #[tokio::test]
    async fn a_stale_status_is_one_patch_and_an_up_to_date_object_sends_nothing() {
        let (service, mut apiserver) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let ctx = context(kube::Client::new(service, "default"));

        // Stale: exactly one request, the status patch under the controller's field manager.
        let stale = paused_tenant();
        let reconciling = tokio::spawn(reconcile(Arc::new(stale.clone()), ctx.clone()));
        let (request, respond) = apiserver.next_request().await.expect("a status patch");
        assert_eq!(request.method(), Method::PATCH);
        assert_eq!(
            request.uri().path(),
            "/apis/tenancy.landlord.dev/v1alpha1/namespaces/ns/tenants/acme/status"
        );
        assert!(
            request
                .uri()
                .query()
                .unwrap_or_default()
                .contains("fieldManager=landlord-tenant"),
            "{}",
            request.uri()
        );
        let body = request.into_body().collect_bytes().await.unwrap();
        let patch: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let status: TenantStatus = serde_json::from_value(patch["status"].clone()).unwrap();
        assert!(status.conditions.iter().all(|c| c.reason == "Paused"));
        let mut written = stale.clone();
        written.status = Some(status);
        respond.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&written).unwrap()))
                .unwrap(),
        );
        assert!(reconciling.await.unwrap().is_ok());

        // Up to date: the reconcile finishes without a single request.
        let result = tokio::time::timeout(
            Duration::from_secs(5),
            reconcile(Arc::new(written), ctx.clone()),
        )
        .await
        .expect("a reconcile that sends nothing cannot wait for an answer");
        assert!(result.is_ok());
        assert!(
            futures::poll!(Box::pin(apiserver.next_request())).is_pending(),
            "nothing was sent"
        );
    }
}
