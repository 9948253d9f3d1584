//! Deleting a ModuleInstallation: Retain or Rollback, never under a module that depends on it, never a
//! rollback in production.

use kube::ResourceExt;
use kube::api::ListParams;
use kube::runtime::controller::Action;

use super::status::Progress;
use super::validate::dependents;
use super::{Context, Error, publish};
use crate::catalog::Scope;
use crate::controller::context::refuse_cleanup;
use crate::crd::{
    ConditionType, DesiredCondition, InstallScope, ModuleInstallation, Reason, Tenant,
    UninstallPolicy,
};
use crate::db::{self, ModuleScope, TenantNames, mirror};

pub(super) async fn cleanup(mi: &ModuleInstallation, ctx: &Context) -> Result<Action, Error> {
    match uninstall(mi, ctx).await {
        Ok(action) => Ok(action),
        Err(err) => {
            let deleting = DesiredCondition::new(
                ConditionType::Ready,
                Some(false),
                err.reason(),
                err.to_string(),
            );
            publish(
                mi,
                ctx,
                Progress {
                    deleting: Some(deleting),
                    ..Default::default()
                },
            )
            .await?;
            refuse_cleanup(mi, ctx, "Uninstall", err).await
        }
    }
}

async fn uninstall(mi: &ModuleInstallation, ctx: &Context) -> Result<Action, Error> {
    let ns = mi.namespace().unwrap_or_default();
    let pool = ctx.databases.landlord_pool();
    let tenant = ctx.api::<Tenant>(&ns).get_opt(&mi.spec.tenant).await?;
    // Without its Tenant (or a valid slug) there is no database left to roll back.
    let Some(names) = tenant.and_then(|t| TenantNames::new(&t.slug()).ok()) else {
        return Ok(Action::await_change());
    };
    // Whatever the policy, a module others depend on stays until they are gone: removing it would turn
    // their Ready into DependencyMissing.
    let siblings = ctx
        .api::<ModuleInstallation>(&ns)
        .list(&ListParams::default())
        .await?;
    let blocking = dependents(
        &ctx.catalog,
        &mi.spec.module,
        &mi.spec.tenant,
        &siblings.items,
    );
    if !blocking.is_empty() {
        return Err(Error::refused(
            Reason::UninstallBlocked,
            format!(
                "Module {} cannot be uninstalled while installed modules depend on it: {}. Delete those first.",
                mi.spec.module,
                blocking.join(", ")
            ),
        ));
    }
    if mi.spec.uninstall_policy == UninstallPolicy::Retain {
        mirror::forget_module(pool, names.slug(), &mi.spec.module).await?;
        let note = format!(
            "Kept the tables of module {} (uninstallPolicy Retain).",
            mi.spec.module
        );
        ctx.event(mi, false, "Retained", "Uninstall", note).await;
        return Ok(Action::await_change());
    }
    if ctx.config.is_production() {
        return Err(Error::refused(
            Reason::DestructiveActionBlocked,
            "Rolling back a module drops its data and is refused in production; set uninstallPolicy: Retain to \
             let the deletion finish.",
        ));
    }
    let Some(module) = ctx.catalog.module(&mi.spec.module) else {
        mirror::forget_module(pool, names.slug(), &mi.spec.module).await?;
        return Ok(Action::await_change());
    };
    let manages = |scope| {
        mi.spec.scope == InstallScope::All
            || (mi.spec.scope == InstallScope::Tenant) == (scope == Scope::Tenant)
    };
    if manages(Scope::Tenant) {
        let mut conn = ctx.databases.tenant(&names).await?;
        let result = async {
            ctx.migrator
                .rollback(&mut conn, &ModuleScope::of(module, Scope::Tenant), None)
                .await?;
            db::remove_module_acl(&mut conn, &module.name).await
        }
        .await;
        conn.close().await.ok();
        result?;
    }
    if manages(Scope::Landlord)
        && mirror::other_tenants_with_module(pool, &module.name, names.slug())
            .await?
            .is_empty()
    {
        let mut conn = ctx.databases.landlord().await?;
        let result = ctx
            .migrator
            .rollback(&mut conn, &ModuleScope::of(module, Scope::Landlord), None)
            .await;
        conn.close().await.ok();
        result?;
    }
    mirror::forget_module(pool, names.slug(), &module.name).await?;
    let note = format!(
        "Rolled back module {} and removed its permissions and roles.",
        module.name
    );
    ctx.event(mi, false, "RolledBack", "Uninstall", note).await;
    Ok(Action::await_change())
}
