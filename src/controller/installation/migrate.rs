//! Running one scope of a module, and describing plans for status and Events.

use super::{Context, Error};
use crate::catalog::{Module, Scope};
use crate::crd::{Direction, PlanStep};
use crate::db::{self, DbConnection, ModuleScope, Plan, TenantNames};

pub(super) async fn connect(
    ctx: &Context,
    scope: Scope,
    names: &TenantNames,
) -> Result<DbConnection, Error> {
    Ok(match scope {
        Scope::Landlord => ctx.databases.landlord().await?,
        Scope::Tenant => ctx.databases.tenant(names).await?,
    })
}

/// Migrates one scope to `target` (after a full rollback when reinstalling); the tenant scope also
/// registers the module's permissions and roles. Returns how many migrations ran.
pub(super) async fn run_scope(
    ctx: &Context,
    names: &TenantNames,
    module: &Module,
    scope: Scope,
    target: Option<i64>,
    reinstall: bool,
) -> Result<usize, Error> {
    let track = ModuleScope::of(module, scope);
    let mut conn = connect(ctx, scope, names).await?;
    let result = async {
        let mut ran = 0;
        if reinstall {
            ran += ctx
                .migrator
                .rollback(&mut conn, &track, None)
                .await?
                .executed
                .len();
        }
        ran += ctx
            .migrator
            .migrate(&mut conn, &track, target)
            .await?
            .executed
            .len();
        if scope == Scope::Tenant {
            db::register_module_acl(&mut conn, module).await?;
        }
        Ok::<_, db::Error>(ran)
    }
    .await;
    conn.close().await.ok();
    Ok(result?)
}

pub(super) fn goes_down(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|s| s.direction == db::Direction::Down)
}

pub(super) fn plan_steps(plan: &Plan) -> Vec<PlanStep> {
    plan.steps
        .iter()
        .map(|s| PlanStep {
            scope: match plan.scope {
                Scope::Landlord => "Landlord".into(),
                Scope::Tenant => "Tenant".into(),
            },
            migration: s.name.clone(),
            direction: match s.direction {
                db::Direction::Up => Direction::Up,
                db::Direction::Down => Direction::Down,
            },
        })
        .collect()
}

pub(super) fn describe(plan: &Plan) -> String {
    let steps: Vec<String> = plan
        .steps
        .iter()
        .map(|s| format!("{} {}", s.name, s.direction))
        .collect();
    steps.join(", ")
}

pub(super) fn applied_count(
    module: &Module,
    scope: Scope,
    target: Option<i64>,
    managed: &[Scope],
) -> u32 {
    if !managed.contains(&scope) {
        return 0;
    }
    let count = module
        .migrations(scope)
        .migrations
        .iter()
        .filter(|m| target.is_some_and(|t| m.version <= t))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}
