//! The Tenant pipeline: gather (the landlord's record of the slug, the credentials Secret) → validate (spec,
//! slug claim, Secret ownership) → plan (password, Secret, core target) → apply (claim, role and database,
//! Secret, core tenant migrations, mirror) → status. Deletion runs behind the finalizer (`cleanup`).

mod apply;
mod cleanup;
mod gather;
mod moving;
mod plan;
mod status;
mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};

use super::cache::cached;
use super::conditions::{Stopped, stop_at};
use super::context::error_policy;
use super::credentials::MANAGED_BY;
use super::pipeline::{Pipeline, reconcile};
use super::{Context, Error, TENANT_CONTROLLER};
use crate::catalog::{CORE_MODULE, Scope};
use crate::crd::{
    ConditionType, DatabaseServer, ModuleInstallation, Reason, Tenant, TenantStatus, find_condition,
};
use crate::db::{Track, records};

pub(super) use validate::validate_spec;

const RESYNC: Duration = Duration::from_secs(300);
/// While a move finishes after its switch, the Tenant looks again this soon to show it.
const MOVE_RESYNC: Duration = Duration::from_secs(2);

pub fn controller(
    ctx: Arc<Context>,
    due: impl Stream<Item = ObjectRef<Tenant>> + Send + 'static,
) -> impl Stream<Item = Result<(ObjectRef<Tenant>, Action), controller::Error<Error, watcher::Error>>>
{
    let namespace = ctx.config.watch_namespace.as_deref();
    let tenants: Api<Tenant> = scoped(&ctx, namespace);
    let secrets: Api<Secret> = scoped(&ctx, namespace);
    let installations: Api<ModuleInstallation> = scoped(&ctx, namespace);
    let managed = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let (store, changes) = cached(tenants, watcher::Config::default());
    let controller = Controller::for_stream(changes, store.clone());
    ctx.tenants.set(Some(store.clone()));
    let waiting = store.clone();
    // Landlord's Secrets, cached for every reconcile that needs a tenant's password.
    let (secret_store, secrets) = cached(secrets, watcher::Config::default().labels(&managed));
    ctx.secrets.set(Some(secret_store));
    controller
        // A hand-edited or deleted Secret is put right at once.
        .owns_stream(secrets)
        // A deleted installation may unblock its tenant's deletion; other installation changes (every status
        // write of a fleet's installations) are no business of a Tenant that is not being deleted.
        .watches(installations, watcher::Config::default(), move |mi| {
            let tenant = ObjectRef::new(&mi.spec.tenant).within(&mi.namespace()?);
            store
                .get(&tenant)
                .filter(|t| t.metadata.deletion_timestamp.is_some())
                .map(|_| tenant)
        })
        // A server that changes (its status follows every change the registry took in) may take the
        // Tenants that found none.
        .watches(
            Api::<DatabaseServer>::all(ctx.client.clone()),
            super::server::watched(&ctx),
            move |_| waiting_for_a_server(&waiting.state()),
        )
        // The drift check's visits.
        .reconcile_on(due)
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency))
        .run(reconcile::<Tenant>, error_policy, ctx)
}

/// Tenants whose Ready says `NoServerAvailable`.
fn waiting_for_a_server(tenants: &[Arc<Tenant>]) -> Vec<ObjectRef<Tenant>> {
    tenants
        .iter()
        .filter(|t| {
            t.status.as_ref().is_some_and(|s| {
                find_condition(&s.conditions, ConditionType::Ready)
                    .is_some_and(|c| c.reason == Reason::NoServerAvailable.as_str())
            })
        })
        .map(|t| ObjectRef::from_obj(&**t))
        .collect()
}

pub(super) fn scoped<K>(ctx: &Context, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    }
}

impl Pipeline for Tenant {
    const CONTROLLER: &'static str = TENANT_CONTROLLER;
    type Status = TenantStatus;

    fn status(&self) -> Option<&TenantStatus> {
        self.status.as_ref()
    }

    async fn reconcile(&self, ctx: &Context) -> (TenantStatus, Result<Action, Error>) {
        if self.spec.paused {
            return (status::paused(self, &ctx.now()), Ok(Action::await_change()));
        }
        let (steer, result) = provision(self, ctx).await;
        let status = status::desired_status(self, &result, steer.moved, &ctx.now());
        let resync = if steer.soon { MOVE_RESYNC } else { RESYNC };
        (
            status,
            result.map(|_| Action::requeue(resync)).map_err(|s| s.error),
        )
    }

    async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        cleanup::cleanup(self, ctx).await
    }
}

/// The Tenant's move, if any, and its provisioning (which a move before its switch holds).
async fn provision(
    tenant: &Tenant,
    ctx: &Context,
) -> (moving::Steer, Result<apply::TenantOutcome, Stopped>) {
    let mut steer = moving::Steer::default();
    let result = steer_and_provision(tenant, ctx, &mut steer).await;
    (steer, result)
}

async fn steer_and_provision(
    tenant: &Tenant,
    ctx: &Context,
    steer: &mut moving::Steer,
) -> Result<apply::TenantOutcome, Stopped> {
    let phase = |name, started| ctx.metrics.phase(TENANT_CONTROLLER, name, started);
    let started = Instant::now();
    let world = gather::gather(tenant, ctx)
        .await
        .map_err(stop_at(ConditionType::DatabaseReady))?;
    phase("gather", started);
    let (valid, placement) =
        validate::validate(tenant, &world).map_err(stop_at(ConditionType::DatabaseReady))?;
    *steer = moving::steer(tenant, &valid, &world, ctx)
        .await
        .map_err(stop_at(ConditionType::Ready))?;
    if let Some(hold) = steer.hold.take() {
        return Err(stop_at(ConditionType::Ready)(hold));
    }
    let slug = world.slug.clone();
    let plan = plan::plan(tenant, &valid, placement, world, &ctx.catalog);
    // A resync of what is already in place is decided from Landlord's records, without a tenant session,
    // unless the drift check made this Tenant due for a visit.
    let visit_due = ctx.visits.take(&valid.owner.uid);
    if !visit_due && plan::may_be_in_place(tenant, &valid, slug.as_ref(), &plan) {
        let pool = ctx.databases.landlord_pool();
        let started = Instant::now();
        let records = records::tenant_records(pool, valid.names.slug(), CORE_MODULE)
            .await
            .map_err(stop_at(ConditionType::Ready))?;
        phase("records", started);
        let core = Track::core(&ctx.catalog, Scope::Tenant);
        if records::in_place(&core, plan.core_target, &records) {
            ctx.metrics.in_place(TENANT_CONTROLLER);
            return Ok(apply::TenantOutcome {
                core_version: plan.core_target,
                server: slug.map(|s| s.server).unwrap_or_default(),
            });
        }
    }
    let started = Instant::now();
    let applied = apply::apply(tenant, &valid, plan, ctx).await;
    phase("apply", started);
    applied
}
