//! The ModuleInstallation pipeline, one way through: gather (the Tenant, the landlord's records of its slug
//! and modules, its credentials) → validate (authorisation from those records, module, release,
//! dependencies) → plan (from Landlord's records when they may show everything in place; else from the
//! ledgers of the managed scopes, read only once authorised: one value, every step of every scope in run
//! order) → check (production refuses every step down) → apply (the engine runs exactly that plan, under its
//! lock, or refuses it if a ledger moved since) → status. Deletion runs behind the finalizer (`uninstall`).

mod apply;
mod gather;
mod ledgers;
mod plan;
mod status;
mod uninstall;
mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use self::plan::InstallationPlan;
use super::cache::cached;
use super::conditions::{Stopped, stop_at};
use super::context::error_policy;
use super::pipeline::{Pipeline, reconcile};
use super::tenant::scoped;
use super::{Context, Error, INSTALLATION_CONTROLLER};
use crate::crd::{ConditionType, ModuleInstallation, ModuleInstallationStatus, Tenant};
use crate::db::DbConnection;

pub(super) use validate::resolve;

const RESYNC: Duration = Duration::from_secs(600);

pub fn controller(
    ctx: Arc<Context>,
    due: impl Stream<Item = ObjectRef<ModuleInstallation>> + Send + 'static,
) -> impl Stream<
    Item = Result<
        (ObjectRef<ModuleInstallation>, Action),
        controller::Error<Error, watcher::Error>,
    >,
> {
    let namespace = ctx.config.watch_namespace.as_deref();
    let installations: Api<ModuleInstallation> = scoped(&ctx, namespace);
    let tenants: Api<Tenant> = scoped(&ctx, namespace);
    let (store, changes) = cached(installations.clone(), watcher::Config::default());
    let controller = Controller::for_stream(changes, store.clone());
    let siblings = store.clone();
    ctx.installations.set(Some(store.clone()));
    controller
        // A Tenant becoming Ready (or going away) wakes its installations.
        .watches(tenants, watcher::Config::default(), move |tenant| {
            let ns = tenant.namespace();
            store
                .state()
                .into_iter()
                .filter(|mi| mi.namespace() == ns && mi.spec.tenant == tenant.name_any())
                .map(|mi| ObjectRef::from_obj(&*mi))
                .collect::<Vec<_>>()
        })
        // An installation changing wakes the other installations of its tenant (dependencies, blocked uninstalls).
        .watches(installations, watcher::Config::default(), move |changed| {
            let ns = changed.namespace();
            siblings
                .state()
                .into_iter()
                .filter(|mi| mi.namespace() == ns && mi.spec.tenant == changed.spec.tenant)
                .filter(|mi| mi.name_any() != changed.name_any())
                .map(|mi| ObjectRef::from_obj(&*mi))
                .collect::<Vec<_>>()
        })
        // The drift check's visits.
        .reconcile_on(due)
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency))
        .run(reconcile::<ModuleInstallation>, error_policy, ctx)
}

impl Pipeline for ModuleInstallation {
    const CONTROLLER: &'static str = INSTALLATION_CONTROLLER;
    type Status = ModuleInstallationStatus;

    fn status(&self) -> Option<&ModuleInstallationStatus> {
        self.status.as_ref()
    }

    async fn reconcile(&self, ctx: &Context) -> (ModuleInstallationStatus, Result<Action, Error>) {
        let (plan, result) = install(self, ctx).await;
        if let Err(Stopped {
            error:
                Error::Database(
                    crate::db::Error::TenantLoginRefused { .. }
                    | crate::db::Error::DatabaseMissing { .. },
                ),
            ..
        }) = &result
        {
            // The Tenant's own resync trusts its records and would not notice; its visit sets the password,
            // or finds the database gone and holds its installations (TenantNotReady) until it is back.
            if let Ok(Some(tenant)) = ctx
                .tenant(&self.namespace().unwrap_or_default(), &self.spec.tenant)
                .await
                && let Some(uid) = tenant.uid()
            {
                ctx.visits
                    .visit_tenant_now(&uid, ObjectRef::from_obj(&tenant));
            }
        }
        let status = status::desired_status(self, plan.as_ref(), &result, &ctx.now());
        let action = match &result {
            Ok(applied) if applied.dry_run => Action::await_change(),
            _ => Action::requeue(RESYNC),
        };
        (status, result.map(|_| action).map_err(|s| s.error))
    }

    async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        uninstall::cleanup(self, ctx).await
    }
}

/// The five steps in one direction: gather → validate → plan (`planned`) → check → apply, which runs that
/// very plan. The plan is returned with the result, so that status describes every scope however far it got.
async fn install<'c>(
    mi: &ModuleInstallation,
    ctx: &'c Context,
) -> (
    Option<InstallationPlan<'c>>,
    Result<apply::InstallOutcome, Stopped>,
) {
    let (plan, session) = match planned(mi, ctx).await {
        Ok(Planned::InPlace(plan)) => return (Some(plan), Ok(apply::InstallOutcome::default())),
        Ok(Planned::ToRun(plan, session)) => (plan, session),
        Err(stopped) => return (None, Err(stopped)),
    };
    if let Err(stopped) = plan::check(&plan, ctx.config.is_production()) {
        return (Some(plan), Err(stopped));
    }
    let started = Instant::now();
    let applied = apply::apply(mi, &plan, ctx, session).await;
    ctx.metrics.phase(INSTALLATION_CONTROLLER, "apply", started);
    (Some(plan), applied)
}

enum Planned<'c> {
    /// Landlord's records put every scope at the release: nothing to run, no tenant session opened.
    InPlace(InstallationPlan<'c>),
    /// The plan from the ledgers, with the tenant database's session that read them.
    ToRun(InstallationPlan<'c>, Option<DbConnection>),
}

async fn planned<'c>(mi: &ModuleInstallation, ctx: &'c Context) -> Result<Planned<'c>, Stopped> {
    let phase = |name, started| ctx.metrics.phase(INSTALLATION_CONTROLLER, name, started);
    let started = Instant::now();
    let world = gather::gather(mi, ctx)
        .await
        .map_err(stop_at(ConditionType::DependenciesSatisfied))?;
    phase("gather", started);
    let recorded = world
        .installed
        .iter()
        .find(|m| m.module == mi.spec.module)
        .cloned();
    let valid = validate::validate(mi, world, &ctx.catalog)
        .map_err(stop_at(ConditionType::DependenciesSatisfied))?;
    // A resync of what is already in place is decided from Landlord's records, without a tenant session,
    // unless the drift check made this installation due for a visit.
    let visit_due = ctx.visits.take(&mi.uid().unwrap_or_default());
    if !visit_due && plan::may_be_in_place(mi, &valid, recorded.as_ref()) {
        let started = Instant::now();
        let records = ledgers::records(&valid, ctx)
            .await
            .map_err(stop_at(ConditionType::Ready))?;
        phase("records", started);
        if plan::in_place(&valid, &records) {
            ctx.metrics.in_place(INSTALLATION_CONTROLLER);
            let ledgers = records.as_ledgers(&valid);
            return Ok(Planned::InPlace(plan::plan(mi, valid, &ledgers)?));
        }
    }
    let started = Instant::now();
    let (ledgers, session) = ledgers::ledgers(&valid, ctx).await?;
    phase("ledgers", started);
    Ok(Planned::ToRun(plan::plan(mi, valid, &ledgers)?, session))
}
