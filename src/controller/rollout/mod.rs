//! The ModuleRollout pipeline: gather (the namespace's Tenants and installations, from the API) → validate
//! (module, release, selectors) → plan (which installations start, which go, counts) → apply → status. It
//! owns one ModuleInstallation per matching Tenant; deletion deletes them and finishes when they are gone.

mod apply;
mod gather;
mod plan;
mod status;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use self::plan::State;
use super::cache::cached;
use super::context::error_policy;
use super::pipeline::{Pipeline, reconcile};
use super::tenant::scoped;
use super::{Context, Error, ROLLOUT_CONTROLLER};
use crate::crd::{
    ConditionType, ModuleInstallation, ModuleRollout, ModuleRolloutStatus, ROLLOUT_LABEL, Tenant,
    find_condition,
};

const RESYNC: Duration = Duration::from_secs(300);
const RETRY_REFUSED: Duration = Duration::from_secs(30);

pub fn controller(
    ctx: Arc<Context>,
) -> impl Stream<
    Item = Result<(ObjectRef<ModuleRollout>, Action), controller::Error<Error, watcher::Error>>,
> {
    let namespace = ctx.config.watch_namespace.as_deref();
    let rollouts: Api<ModuleRollout> = scoped(&ctx, namespace);
    let installations: Api<ModuleInstallation> = scoped(&ctx, namespace);
    let tenants: Api<Tenant> = scoped(&ctx, namespace);
    let (store, changes) = cached(rollouts, watcher::Config::default());
    let controller = Controller::for_stream(changes, store.clone());
    controller
        // Its installations becoming Ready (or failing, or going away) move it on.
        .owns(
            installations,
            watcher::Config::default().labels(ROLLOUT_LABEL),
        )
        // A Tenant created, relabelled or deleted may start or stop matching.
        .watches(tenants, watcher::Config::default(), move |tenant| {
            let ns = tenant.namespace();
            store
                .state()
                .into_iter()
                .filter(|r| r.namespace() == ns)
                .map(|r| ObjectRef::from_obj(&*r))
                .collect::<Vec<_>>()
        })
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency))
        .run(reconcile::<ModuleRollout>, error_policy, ctx)
}

impl Pipeline for ModuleRollout {
    const CONTROLLER: &'static str = ROLLOUT_CONTROLLER;
    type Status = ModuleRolloutStatus;

    fn status(&self) -> Option<&ModuleRolloutStatus> {
        self.status.as_ref()
    }

    async fn reconcile(&self, ctx: &Context) -> (ModuleRolloutStatus, Result<Action, Error>) {
        let result = async {
            let world = gather::gather(self, ctx).await?;
            let valid = validate::validate(self, &ctx.catalog)?;
            let mut plan = plan::plan(self, &valid, &world);
            let refused = apply::apply(self, &plan, ctx).await?;
            plan.refused(refused);
            Ok((valid, plan))
        }
        .await;
        let outcome = result.as_ref().map(|(valid, plan)| (valid, plan));
        let status = status::desired_status(self, &outcome, &ctx.now());
        if let Ok((_, plan)) = &result {
            ctx.metrics.rollout_progress(
                (&self.namespace().unwrap_or_default(), &self.name_any()),
                plan.ready,
                plan.failed.len() as u32,
                plan.tenants
                    .saturating_sub(plan.ready + plan.failed.len() as u32),
            );
            self.announce(ctx, plan).await;
        }
        // A tenant whose installation the API refused is tried again soon, not at the next resync.
        let retry = match &result {
            Ok((_, plan)) if plan.any_refused => RETRY_REFUSED,
            _ => RESYNC,
        };
        (status, result.map(|_| Action::requeue(retry)))
    }

    async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        let api = ctx.api::<ModuleInstallation>(&self.namespace().unwrap_or_default());
        let world = gather::gather(self, ctx).await?;
        let mut remaining: Vec<String> = world
            .installations
            .iter()
            .filter(|mi| plan::owned_by(mi, self))
            .map(|mi| mi.name_any())
            .collect();
        if remaining.is_empty() {
            ctx.metrics
                .forget_rollout((&self.namespace().unwrap_or_default(), &self.name_any()));
            return Ok(Action::await_change());
        }
        for name in &remaining {
            apply::delete(&api, name).await?;
        }
        remaining.sort();
        Err(Error::RolloutInstallationsRemain {
            installations: remaining,
        })
    }
}

impl ModuleRollout {
    /// Events when the rollout halts or completes (not on every reconcile: only when it gets there).
    async fn announce(&self, ctx: &Context, plan: &plan::RolloutPlan) {
        let before = self
            .status
            .as_ref()
            .and_then(|s| find_condition(&s.conditions, ConditionType::Ready))
            .map(|c| c.reason.clone());
        match plan.state {
            State::Halted if before.as_deref() != Some("FailureBudgetExceeded") => {
                let tenants: Vec<&str> = plan.failed.iter().map(|f| f.tenant.as_str()).collect();
                let note = format!(
                    "Halted: {} installations failed (spec.strategy.maxFailures {}): {}.",
                    plan.failed.len(),
                    self.spec.strategy.max_failures,
                    tenants.join(", ")
                );
                ctx.event(self, true, "FailureBudgetExceeded", "Rollout", note)
                    .await;
            }
            State::Complete if before.as_deref() != Some("Reconciled") => {
                let note = format!(
                    "Module {} is on all {} matching tenants.",
                    self.spec.module, plan.ready
                );
                ctx.event(self, false, "Completed", "Rollout", note).await;
            }
            _ => {}
        }
    }
}
