//! What an installation's reconcile will do, as one value: for every scope, in the order they run, the
//! steps from what its ledger holds to the release asked for — an install, upgrade, downgrade, a fresh
//! reinstall (everything down, then up), or nothing. Pure; `check` holds it to production's rules.

use super::super::Error;
use super::super::conditions::{Stopped, stop_at};
use super::gather::{Ledgers, condition_of};
use super::validate::{InstallerClaim, ValidInstallation};
use crate::catalog::{Module, Release, Scope};
use crate::crd::{ModuleInstallation, PlanStep};
use crate::db::{self, Direction, ModuleScope, Password, TenantNames};

#[derive(Debug)]
pub struct InstallationPlan<'c> {
    pub names: TenantNames,
    pub password: Password,
    pub module: &'c Module,
    pub release: &'c Release,
    pub claim: InstallerClaim,
    /// The DependenciesSatisfied message.
    pub dependencies: String,
    /// Every scope, in the order they run: the landlord scope first going up (tenant tables may refer to
    /// it), the tenant scope first going down.
    pub scopes: Vec<ScopePlan>,
    pub reinstall: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug)]
pub struct ScopePlan {
    pub scope: Scope,
    pub action: ScopeAction,
}

#[derive(Debug)]
pub enum ScopeAction {
    /// spec.scope leaves it to another installation.
    NotManaged,
    /// The module has no migrations in this scope.
    Empty,
    /// Bring the scope's track to `target` (after a full rollback when `reinstall`); `steps` is what the
    /// ledger says that takes now (the engine plans again under its lock).
    Migrate {
        target: Option<i64>,
        reinstall: bool,
        steps: Vec<db::Step>,
    },
}

pub fn plan<'c>(
    mi: &ModuleInstallation,
    valid: ValidInstallation<'c>,
    ledgers: &Ledgers,
) -> Result<InstallationPlan<'c>, Stopped> {
    let reinstall = valid.reinstall.is_some();
    let mut scopes = Vec::new();
    for scope in [Scope::Landlord, Scope::Tenant] {
        let action = match ledgers.of(scope) {
            _ if !valid.scopes.contains(&scope) => ScopeAction::NotManaged,
            None => ScopeAction::Empty,
            Some(applied) => {
                let track = ModuleScope::of(valid.module, scope);
                let target = valid.release.target(scope);
                let database = match scope {
                    Scope::Landlord => "landlord",
                    Scope::Tenant => valid.names.database().as_str(),
                };
                let blame = |e: db::Error| Stopped {
                    at: condition_of(scope),
                    error: e.into(),
                };
                let steps = if reinstall {
                    let down = db::plan(&track, applied, None, database).map_err(blame)?;
                    let up = db::plan(&track, &[], target, database).map_err(blame)?;
                    down.steps.into_iter().chain(up.steps).collect()
                } else {
                    db::plan(&track, applied, target, database)
                        .map_err(blame)?
                        .steps
                };
                ScopeAction::Migrate {
                    target,
                    reinstall,
                    steps,
                }
            }
        };
        scopes.push(ScopePlan { scope, action });
    }
    if scopes.iter().any(|s| s.goes_down()) {
        scopes.reverse();
    }
    Ok(InstallationPlan {
        names: valid.names,
        password: valid.password,
        module: valid.module,
        release: valid.release,
        claim: valid.claim,
        dependencies: valid.dependencies,
        scopes,
        reinstall: valid.reinstall,
        dry_run: mi.spec.dry_run,
    })
}

/// Production refuses every step down — a downgrade, a release that leaves out a scope, a reinstall — before
/// anything runs, blaming the first scope that would go down.
pub fn check(plan: &InstallationPlan<'_>, production: bool) -> Result<(), Stopped> {
    if !production || plan.dry_run {
        return Ok(());
    }
    match plan.scopes.iter().find(|s| s.goes_down()) {
        None => Ok(()),
        Some(scope) => {
            let undo = match plan.reinstall {
                Some(_) => "remove the reinstall annotation".to_string(),
                None => "set spec.version back to the installed release".to_string(),
            };
            let message = format!(
                "Module {} would run {} in the {} scope, dropping data: refused in production; {undo}.",
                plan.module.name,
                describe(scope.steps()),
                scope.scope
            );
            Err(stop_at(condition_of(scope.scope))(
                Error::DestructiveActionBlocked(message),
            ))
        }
    }
}

impl ScopePlan {
    pub fn steps(&self) -> &[db::Step] {
        match &self.action {
            ScopeAction::Migrate { steps, .. } => steps,
            _ => &[],
        }
    }

    pub fn goes_down(&self) -> bool {
        self.steps().iter().any(|s| s.direction == Direction::Down)
    }
}

impl InstallationPlan<'_> {
    /// Every pending step, as status shows it.
    pub fn pending(&self) -> Vec<PlanStep> {
        let mut ordered: Vec<&ScopePlan> = self.scopes.iter().collect();
        ordered.sort_by_key(|s| s.scope);
        ordered
            .into_iter()
            .flat_map(|s| {
                s.steps().iter().map(move |step| PlanStep {
                    scope: match s.scope {
                        Scope::Landlord => "Landlord".into(),
                        Scope::Tenant => "Tenant".into(),
                    },
                    migration: step.name.clone(),
                    direction: match step.direction {
                        Direction::Up => crate::crd::Direction::Up,
                        Direction::Down => crate::crd::Direction::Down,
                    },
                })
            })
            .collect()
    }
}

/// `20250101_x up, 20250102_y down`.
pub fn describe(steps: &[db::Step]) -> String {
    let steps: Vec<String> = steps
        .iter()
        .map(|s| format!("{} {}", s.name, s.direction))
        .collect();
    steps.join(", ")
}
