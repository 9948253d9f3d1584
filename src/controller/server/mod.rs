//! The DatabaseServer kind: where tenant databases may live. Its reconcile reads the admin URL from a Secret
//! in the operator's namespace, checks the server and its admin role, keeps this process's registry of
//! servers up to date, and reports the tenants Landlord's records place there; its deletion waits until
//! none is left (`ServerInUse`).

mod observe;
pub mod placement;
mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use kube::api::ListParams;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use tracing::{Instrument, warn};

use super::context::error_policy;
use super::status::publish_status;
use super::{Context, Error, FINALIZER, SERVER_CONTROLLER};
use crate::crd::{DEFAULT_SERVER, DatabaseServer, DatabaseServerStatus};
use crate::db::mirror;
use crate::metrics::ServerView;

/// How often a Ready server is looked at again: its tenant count and reachability in status and metrics.
const LOOK_AGAIN: Duration = Duration::from_secs(60);

pub fn controller(
    ctx: Arc<Context>,
) -> impl Stream<
    Item = Result<(ObjectRef<DatabaseServer>, Action), controller::Error<Error, watcher::Error>>,
> {
    let api: Api<DatabaseServer> = Api::all(ctx.client.clone());
    let (wake, woken) = futures::channel::mpsc::unbounded();
    ctx.servers.wake_with(Some(wake));
    Controller::new(api, watched(&ctx))
        .reconcile_on(woken)
        .with_config(controller::Config::default().concurrency(2))
        .run(reconcile, error_policy, ctx)
}

/// Registers every DatabaseServer before any Tenant is reconciled, so that the first placements of a
/// leadership see every server, not only those the server controller happened to reach first.
pub async fn prime(ctx: &Context) {
    let api: Api<DatabaseServer> = Api::all(ctx.client.clone());
    let params = match &ctx.config.server_selector {
        Some(selector) => ListParams::default().labels(selector),
        None => ListParams::default(),
    };
    match api.list(&params).await {
        Ok(servers) => {
            for server in servers.items {
                if let Err(err) = observe::observe(&server, ctx).await {
                    warn!(server = %server.name_any(), %err, "database server not usable at start");
                }
            }
        }
        Err(err) => {
            warn!(%err, "could not list DatabaseServers; placement waits for the controller")
        }
    }
}

/// The DatabaseServers that are this operator's: all, or those `LANDLORD_SERVER_SELECTOR` selects.
pub fn watched(ctx: &Context) -> watcher::Config {
    match &ctx.config.server_selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    }
}

/// `default` has no object to carry a status: it is looked at here, every `LOOK_AGAIN`, for its metrics and
/// for placement, which passes it over while it does not answer.
pub async fn look_at_default(ctx: &Context) {
    loop {
        let up = ctx.databases.admin_role().await.is_ok();
        if let Some(default) = ctx.servers.get(DEFAULT_SERVER)
            && default.rules.ready != up
        {
            let mut looked_at = (*default).clone();
            looked_at.rules.ready = up;
            ctx.servers.put(looked_at);
        }
        let tenants = mirror::tenants_on(ctx.databases.landlord_pool(), DEFAULT_SERVER).await;
        if let (Ok(tenants), Some(default)) = (tenants, ctx.servers.get(DEFAULT_SERVER)) {
            let view = ServerView {
                tenants,
                max_tenants: None,
                up,
                cordoned: default.rules.cordoned,
            };
            ctx.metrics.set_server(DEFAULT_SERVER, view);
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}

async fn reconcile(server: Arc<DatabaseServer>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::info_span!("reconcile", controller = SERVER_CONTROLLER, resource = %server.name_any());
    async move {
        let api: Api<DatabaseServer> = Api::all(ctx.client.clone());
        let uid = server.uid().unwrap_or_default();
        let started = Instant::now();
        let result = finalizer(&api, FINALIZER, server, |event| async {
            match event {
                Event::Apply(server) => apply(&server, &ctx).await,
                Event::Cleanup(server) => cleanup(&server, &ctx).await,
            }
        })
        .await
        .map_err(Error::from);
        ctx.reconciled(SERVER_CONTROLLER, &uid, started, result)
    }
    .instrument(span)
    .await
}

async fn apply(server: &DatabaseServer, ctx: &Context) -> Result<Action, Error> {
    let observed = observe::observe(server, ctx).await;
    let status = status::desired_status(server, &observed, &ctx.now());
    let result = match observed {
        Ok(found) => found.role.map(|_| Action::requeue(LOOK_AGAIN)),
        Err(err) => Err(err),
    };
    conclude(server, ctx, "Reconcile", &status, result).await
}

/// A server with tenants stays (cordoned meanwhile, so that nothing new lands on it); an empty one leaves
/// the registry and the metrics.
async fn cleanup(server: &DatabaseServer, ctx: &Context) -> Result<Action, Error> {
    let name = server.name_any();
    if let Some(known) = ctx.servers.get(&name) {
        let mut leaving = (*known).clone();
        leaving.rules.cordoned = true;
        ctx.servers.put(leaving);
    }
    let tenants = mirror::tenants_on(ctx.databases.landlord_pool(), &name).await?;
    if tenants > 0 {
        let err = Error::ServerInUse { tenants };
        let status = status::deleting(server, &err, Some(tenants), &ctx.now());
        return conclude(server, ctx, "Delete", &status, Err(err)).await;
    }
    ctx.servers.remove(&name);
    ctx.metrics.forget_server(&name);
    Ok(Action::await_change())
}

/// One status write (skipped when nothing changed) and a Warning Event for a failure worth one.
async fn conclude(
    server: &DatabaseServer,
    ctx: &Context,
    action: &str,
    status: &DatabaseServerStatus,
    result: Result<Action, Error>,
) -> Result<Action, Error> {
    let api: Api<DatabaseServer> = Api::all(ctx.client.clone());
    publish_status(
        &api,
        SERVER_CONTROLLER,
        &server.name_any(),
        server.status.as_ref(),
        status,
    )
    .await?;
    ctx.warn_of(server, action, &result).await;
    result
}
