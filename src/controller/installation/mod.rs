//! The ModuleInstallation pipeline: tenant Ready → module, release, dependencies → plan per scope →
//! apply (landlord scope first going up, tenant scope first going down) → ACL → mirror → status.
//! Deletion runs behind the finalizer: Retain, or Rollback unless another installed module depends on it.

mod migrate;
mod status;
mod uninstall;
mod validate;

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use kube::api::ListParams;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};

use self::migrate::{applied_count, connect, describe, goes_down, plan_steps, run_scope};
use self::status::{Progress, desired_status};
use self::validate::{Resolved, check_dependencies, check_unique, resolve};
use super::conditions::Step;
use super::context::{conclude, error_policy};
use super::pipeline::{self, Pipeline, reconcile};
use super::tenant::scoped;
use super::{Context, Error, INSTALLATION_CONTROLLER};
use crate::catalog::Scope;
use crate::crd::{
    AppliedCounts, InstallScope, ModuleInstallation, REINSTALL_ANNOTATION, Reason, Tenant,
};
use crate::db::{self, ModuleScope, Plan, TenantNames, mirror};

const RESYNC: Duration = Duration::from_secs(600);

pub fn controller(
    ctx: Arc<Context>,
) -> impl Stream<
    Item = Result<
        (ObjectRef<ModuleInstallation>, Action),
        controller::Error<Error, watcher::Error>,
    >,
> {
    let namespace = ctx.config.watch_namespace.as_deref();
    let installations: Api<ModuleInstallation> = scoped(&ctx, namespace);
    let tenants: Api<Tenant> = scoped(&ctx, namespace);
    let controller = Controller::new(installations.clone(), watcher::Config::default());
    let store = controller.store();
    let siblings = store.clone();
    let _ = ctx.installations.set(store.clone());
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
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency))
        .run(reconcile::<ModuleInstallation>, error_policy, ctx)
}

impl Pipeline for ModuleInstallation {
    const CONTROLLER: &'static str = INSTALLATION_CONTROLLER;

    async fn apply(&self, ctx: &Context) -> Result<Action, Error> {
        apply(self, ctx).await
    }

    async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        uninstall::cleanup(self, ctx).await
    }
}

pub(super) async fn publish(
    mi: &ModuleInstallation,
    ctx: &Context,
    progress: Progress,
) -> Result<(), Error> {
    let status = desired_status(mi, progress, &ctx.now());
    pipeline::publish(ctx, mi, mi.status.as_ref(), &status).await
}

async fn apply(mi: &ModuleInstallation, ctx: &Context) -> Result<Action, Error> {
    let mut progress = Progress::default();
    let result = install(mi, ctx, &mut progress).await;
    publish(mi, ctx, progress).await?;
    match result {
        Ok(action) => Ok(action),
        Err(err) => conclude(mi, ctx, "Install", err).await,
    }
}

/// What the installation works on once its tenant, module, release and dependencies check out.
struct Target<'a> {
    names: TenantNames,
    resolved: Resolved<'a>,
    scopes: Vec<Scope>,
}

async fn gather<'a>(mi: &ModuleInstallation, ctx: &'a Context) -> Result<Target<'a>, Error> {
    let ns = mi.namespace().unwrap_or_default();
    let tenant = ctx
        .api::<Tenant>(&ns)
        .get_opt(&mi.spec.tenant)
        .await?
        .ok_or_else(|| {
            Error::refused(
                Reason::TenantNotFound,
                format!(
                    "Tenant {} does not exist in namespace {ns}; create it or fix spec.tenant.",
                    mi.spec.tenant
                ),
            )
        })?;
    if !tenant_ready(&tenant) {
        return Err(Error::refused(
            Reason::TenantNotReady,
            format!(
                "Tenant {} is not Ready yet; installing once it is.",
                mi.spec.tenant
            ),
        ));
    }
    let names = TenantNames::new(&tenant.slug())?;
    let resolved = resolve(&ctx.catalog, &mi.spec)?;
    let scopes = match mi.spec.scope {
        InstallScope::All => vec![Scope::Landlord, Scope::Tenant],
        InstallScope::Landlord => vec![Scope::Landlord],
        InstallScope::Tenant => vec![Scope::Tenant],
    };
    Ok(Target {
        names,
        resolved,
        scopes,
    })
}

/// Installations of the namespace from the controller's cache (the API when the cache is not there yet).
/// Only for decisions a stale read merely delays; cleanup reads the API.
async fn installations_of(ctx: &Context, ns: &str) -> Result<Vec<ModuleInstallation>, Error> {
    match ctx.installations.get() {
        Some(store) => Ok(store
            .state()
            .into_iter()
            .filter(|mi| mi.namespace().as_deref() == Some(ns))
            .map(|mi| (*mi).clone())
            .collect()),
        None => Ok(ctx
            .api::<ModuleInstallation>(ns)
            .list(&ListParams::default())
            .await?
            .items),
    }
}

fn tenant_ready(tenant: &Tenant) -> bool {
    tenant.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == "Ready"
                && c.status == "True"
                && c.observed_generation == tenant.metadata.generation
        })
    })
}

async fn install(
    mi: &ModuleInstallation,
    ctx: &Context,
    progress: &mut Progress,
) -> Result<Action, Error> {
    let target = gather(mi, ctx)
        .await
        .inspect_err(|e| progress.dependencies = Some(Step::failed(e)))?;
    let module = target.resolved.module;
    let release = target.resolved.release;
    let siblings = installations_of(ctx, &mi.namespace().unwrap_or_default()).await?;
    check_unique(mi, &siblings).inspect_err(|e| progress.dependencies = Some(Step::failed(e)))?;
    let deps = check_dependencies(module, &mi.spec.tenant, &siblings)
        .inspect_err(|e| progress.dependencies = Some(Step::failed(e)))?;
    progress.dependencies = Some(Step::Done(deps));

    let token = mi.annotations().get(REINSTALL_ANNOTATION).cloned();
    let current_token = mi.status.as_ref().and_then(|s| s.reinstalled.clone());
    let reinstall = token.is_some() && token != current_token;
    if reinstall && ctx.config.is_production() {
        let err = Error::refused(
            Reason::DestructiveActionBlocked,
            format!(
                "A fresh reinstall (annotation {REINSTALL_ANNOTATION}) drops the module's data and is refused in production."
            ),
        );
        progress.tenant = Some(Step::failed(&err));
        progress.landlord = Some(Step::failed(&err));
        return Err(err);
    }

    let mut plans = plan_scopes(ctx, &target, reinstall, progress).await?;
    progress.plan = plans.iter().flat_map(plan_steps).collect();

    if mi.spec.dry_run {
        for plan in &plans {
            let message = if plan.is_empty() {
                "Dry run: nothing to apply.".to_string()
            } else {
                format!(
                    "Dry run: would run {}; nothing was applied.",
                    describe(plan)
                )
            };
            *scope_step(progress, plan.scope) = Some(Step::Failed(Reason::DryRun, message));
        }
        return Ok(Action::await_change());
    }

    // Going up, the landlord scope first (tenant tables may refer to it); going down, the tenant scope first.
    if plans.iter().any(goes_down) {
        plans.reverse();
    }
    for plan in &plans {
        let scope = plan.scope;
        let ran = run_scope(
            ctx,
            &target.names,
            module,
            scope,
            release.target(scope),
            reinstall,
        )
        .await
        .inspect_err(|e| *scope_step(progress, scope) = Some(Step::failed(e)))?;
        ctx.metrics.migrations_applied(scope.as_str(), ran);
        if ran > 0 {
            let note = format!(
                "Ran {} in the {scope} scope of module {}.",
                describe(plan),
                module.name
            );
            ctx.event(mi, false, "Migrated", "Migrate", note).await;
        }
        let message = match release.target(scope) {
            Some(version) => format!(
                "The {scope} scope of module {} is at migration {version}.",
                module.name
            ),
            None => format!("Release {} has no {scope} migrations.", release.version),
        };
        *scope_step(progress, scope) = Some(Step::Done(message));
    }

    let version = release.version.to_string();
    let recorded = mirror::record_module(
        ctx.databases.landlord_pool(),
        target.names.slug(),
        &module.name,
        Some(&version),
        "Installed",
        &mi.uid().unwrap_or_default(),
    )
    .await;
    recorded
        .map_err(Error::from)
        .inspect_err(|e| progress.tenant = Some(Step::failed(e)))?;
    progress.plan.clear();
    progress.installed_version = Some(version);
    progress.applied = Some(AppliedCounts {
        landlord: applied_count(
            module,
            Scope::Landlord,
            release.target(Scope::Landlord),
            &target.scopes,
        ),
        tenant: applied_count(
            module,
            Scope::Tenant,
            release.target(Scope::Tenant),
            &target.scopes,
        ),
    });
    if reinstall {
        progress.reinstalled = token;
    }
    Ok(Action::requeue(RESYNC))
}

/// Plans every managed scope before anything runs, so that a missing down file or drift in one scope
/// refuses the whole change. The landlord scope is shared by every tenant with the module: it is never
/// rolled back under the others.
async fn plan_scopes(
    ctx: &Context,
    target: &Target<'_>,
    reinstall: bool,
    progress: &mut Progress,
) -> Result<Vec<Plan>, Error> {
    let module = target.resolved.module;
    let release = target.resolved.release;
    let mut plans = Vec::new();
    for scope in [Scope::Landlord, Scope::Tenant] {
        if !target.scopes.contains(&scope) {
            let message =
                format!("The {scope} scope is not managed by this installation (spec.scope).");
            *scope_step(progress, scope) = Some(Step::Done(message));
            continue;
        }
        if module.migrations(scope).is_empty() {
            let message = format!("Module {} has no {scope} migrations.", module.name);
            *scope_step(progress, scope) = Some(Step::Done(message));
            continue;
        }
        let wanted = release.target(scope);
        let mut conn = connect(ctx, scope, &target.names)
            .await
            .inspect_err(|e| *scope_step(progress, scope) = Some(Step::failed(e)))?;
        let track = ModuleScope::of(module, scope);
        let planned = async {
            let mut plan = ctx.migrator.plan(&mut conn, &track, wanted).await?;
            if reinstall {
                let down = ctx.migrator.plan(&mut conn, &track, None).await?;
                let mut steps = down.steps;
                steps.extend(
                    module
                        .migrations(scope)
                        .migrations
                        .iter()
                        .filter(|m| wanted.is_some_and(|t| m.version <= t))
                        .map(|m| db::Step {
                            version: m.version,
                            name: m.name(),
                            direction: db::Direction::Up,
                        }),
                );
                plan.steps = steps;
            }
            Ok::<_, db::Error>(plan)
        }
        .await;
        conn.close().await.ok();
        let plan = planned
            .map_err(Error::from)
            .inspect_err(|e| *scope_step(progress, scope) = Some(Step::failed(e)))?;
        plans.push(plan);
    }
    let landlord_down = plans
        .iter()
        .any(|p| p.scope == Scope::Landlord && goes_down(p));
    let shared_with = if landlord_down {
        mirror::other_tenants_with_module(
            ctx.databases.landlord_pool(),
            &module.name,
            target.names.slug(),
        )
        .await
        .map_err(Error::from)
        .inspect_err(|e| progress.landlord = Some(Step::failed(e)))?
    } else {
        Vec::new()
    };
    plans.retain(|plan| {
        let keep = !(plan.scope == Scope::Landlord && goes_down(plan) && !shared_with.is_empty());
        if !keep {
            progress.landlord = Some(Step::Done(format!(
                "The landlord scope stays at {}: tenants {} still use module {}.",
                plan.current.map(|v| v.to_string()).unwrap_or_default(),
                shared_with.join(", "),
                module.name
            )));
        }
        keep
    });
    Ok(plans)
}

fn scope_step(progress: &mut Progress, scope: Scope) -> &mut Option<Step> {
    match scope {
        Scope::Landlord => &mut progress.landlord,
        Scope::Tenant => &mut progress.tenant,
    }
}
