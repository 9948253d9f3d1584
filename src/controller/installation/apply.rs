//! Carrying out an installation's plan: record this installation as the module's installer before anything
//! runs (so a concurrent uninstall elsewhere sees the module in use), migrate each scope in the plan's order
//! — the tenant scope as the tenant's own role, then its permissions and roles — and record the release.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::super::conditions::{Stopped, stop_at};
use super::super::{Context, Error};
use super::gather::{condition_of, connect};
use super::plan::{InstallationPlan, ScopeAction, describe};
use super::validate::InstallerClaim;
use crate::catalog::Scope;
use crate::crd::{ConditionType, ModuleInstallation};
use crate::db::mirror::{self, Installer, ModuleState};
use crate::db::{self, Allowed, DbConnection, Track};

#[derive(Debug, Default)]
pub struct InstallOutcome {
    pub dry_run: bool,
    /// Scopes whose steps down were skipped: the other tenants that still have the module.
    pub kept_for: BTreeMap<Scope, Vec<String>>,
}

/// `session`: the tenant database's, opened to read its ledger, used for the tenant scope.
pub async fn apply(
    mi: &ModuleInstallation,
    plan: &InstallationPlan<'_>,
    ctx: &Context,
    mut session: Option<DbConnection>,
) -> Result<InstallOutcome, Stopped> {
    if plan.dry_run {
        return Ok(InstallOutcome {
            dry_run: true,
            ..Default::default()
        });
    }
    claim(mi, plan, ctx)
        .await
        .map_err(stop_at(ConditionType::DependenciesSatisfied))?;
    let mut applied = InstallOutcome::default();
    for scope in &plan.scopes {
        if let ScopeAction::Migrate(planned) = &scope.action {
            let conn = match (scope.scope, session.take()) {
                (Scope::Tenant, Some(conn)) => conn,
                (_, kept) => {
                    // One slot at a time: the tenant's session is not held while another opens.
                    if let Some(conn) = kept {
                        conn.close().await.ok();
                    }
                    connect(
                        ctx,
                        scope.scope,
                        &plan.valid.server,
                        &plan.valid.names,
                        &plan.valid.password,
                    )
                    .await
                    .map_err(stop_at(condition_of(scope.scope)))?
                }
            };
            let report = migrate(mi, plan, scope.scope, planned, ctx, conn)
                .await
                .map_err(stop_at(condition_of(scope.scope)))?;
            if !report.kept_for.is_empty() {
                applied.kept_for.insert(scope.scope, report.kept_for);
            }
        }
    }
    let version = plan.valid.release.version.to_string();
    let uid = mi.uid().unwrap_or_default();
    mirror::record_module(
        ctx.databases.landlord_pool(),
        plan.valid.names.slug(),
        &plan.valid.module.name,
        (Some(&version), ModuleState::Installed),
        &uid,
        plan.valid.reinstall.as_deref(),
    )
    .await
    .map_err(stop_at(ConditionType::Ready))?;
    Ok(applied)
}

/// The landlord's record says who installs the module for this tenant; the race-free form of validate's
/// check: of two installations recording themselves at once, one wins and the other is refused.
async fn claim(
    mi: &ModuleInstallation,
    plan: &InstallationPlan<'_>,
    ctx: &Context,
) -> Result<(), Error> {
    let replacing = match &plan.valid.claim {
        InstallerClaim::Ours => return Ok(()),
        InstallerClaim::Free => None,
        InstallerClaim::Replace(uid) => Some(uid.as_str()),
    };
    let me = Installer {
        uid: mi.uid().unwrap_or_default(),
        name: mi.name_any(),
    };
    let module = &plan.valid.module.name;
    let needs: Vec<&str> = ctx
        .catalog
        .dependencies_of(module)
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    let pool = ctx.databases.landlord_pool();
    let slug = plan.valid.names.slug();
    let recorded = match mirror::claim_module(pool, slug, module, &me, replacing, &needs).await? {
        mirror::ModuleClaim::Recorded(recorded) => recorded,
        // Validate saw them installed; since then one began to be uninstalled (or went).
        mirror::ModuleClaim::DependenciesMissing(missing) => {
            return Err(Error::DependencyMissing {
                module: module.clone(),
                unmet: missing
                    .into_iter()
                    .map(|m| format!("{m} (being uninstalled, or not installed)"))
                    .collect(),
            });
        }
    };
    if recorded.uid == me.uid {
        Ok(())
    } else {
        Err(Error::AlreadyManaged {
            installer: recorded.name,
            module: mi.spec.module.clone(),
            tenant: mi.spec.tenant.clone(),
        })
    }
}

/// One scope on its connection: the engine runs the scope's plan under its lock (production's rule checked
/// again there; the landlord scope never goes down under other tenants), then the permissions and roles.
async fn migrate(
    mi: &ModuleInstallation,
    plan: &InstallationPlan<'_>,
    scope: Scope,
    planned: &db::Plan,
    ctx: &Context,
    mut conn: DbConnection,
) -> Result<db::Report, Error> {
    let track = Track::of(plan.valid.module, scope);
    let allowed = Allowed::in_environment(ctx.config.is_production());
    let shared_by = (scope == Scope::Landlord).then(|| plan.valid.names.slug());
    let result = async {
        let report = ctx
            .migrator
            .execute(&mut conn, &track, planned, allowed, shared_by)
            .await?;
        if scope == Scope::Tenant {
            db::register_module_acl(&mut conn, plan.valid.module).await?;
        }
        Ok::<_, db::Error>(report)
    }
    .await;
    conn.close().await.ok();
    let report = result?;
    ctx.metrics
        .migrations_applied(scope.as_str(), report.executed.len());
    if !report.executed.is_empty() {
        let steps: Vec<db::MigrationStep> =
            report.executed.iter().map(|e| e.step.clone()).collect();
        let note = format!(
            "Ran {} in the {} scope of module {}.",
            describe(&steps),
            scope,
            plan.valid.module.name
        );
        ctx.event(mi, false, "Migrated", "Migrate", note).await;
    }
    Ok(report)
}
