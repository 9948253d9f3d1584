//! What an installation's reconcile will do, as one value: for every scope, in the order they run, the
//! steps from what its ledger holds to the release asked for — an install, upgrade, downgrade, a fresh
//! reinstall (everything down, then up), or nothing. Pure; `check` holds it to production's rules.

use super::super::Error;
use super::super::conditions::{Stopped, stop_at};
use super::gather::condition_of;
use super::ledgers::{Ledgers, Records};
use super::validate::{InstallerClaim, ValidInstallation};
use crate::catalog::Scope;
use crate::crd::{ModuleInstallation, PlanStep, is_ready_at};
use crate::db::mirror::{InstalledModule, ModuleState};
use crate::db::{self, Direction, Track, records};

#[derive(Debug)]
pub struct InstallationPlan<'c> {
    /// Who acts on what: the tenant, its credentials, module and release, the installer record.
    pub valid: ValidInstallation<'c>,
    /// Every scope, in the order they run: the landlord scope first going up (tenant tables may refer to
    /// it), the tenant scope first going down.
    pub scopes: Vec<ScopePlan>,
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
    /// Run `plan`: the steps from what the ledger holds to the release (after a full rollback for a
    /// reinstall). The engine runs exactly this plan, under its lock, or refuses it if the ledger moved.
    Migrate(db::Plan),
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
                let track = Track::of(valid.module, scope);
                let target = valid.release.target(scope);
                let database = match scope {
                    Scope::Landlord => "landlord",
                    Scope::Tenant => valid.names.database().as_str(),
                };
                let blame = |e: db::Error| Stopped {
                    at: condition_of(scope),
                    error: e.into(),
                };
                let plan = if reinstall {
                    db::reinstall(&track, applied, target, database)
                } else {
                    db::plan(&track, applied, target, database)
                };
                ScopeAction::Migrate(plan.map_err(blame)?)
            }
        };
        scopes.push(ScopePlan { scope, action });
    }
    if scopes.iter().any(|s| s.goes_down()) {
        scopes.reverse();
    }
    Ok(InstallationPlan {
        valid,
        scopes,
        dry_run: mi.spec.dry_run,
    })
}

/// Whether the installation may already stand where its spec asks, judged before reading any record: Ready
/// for this generation at this release, no reinstall asked, and the landlord recording it as the
/// installer of this release.
pub fn may_be_in_place(
    mi: &ModuleInstallation,
    valid: &ValidInstallation<'_>,
    recorded: Option<&InstalledModule>,
) -> bool {
    let release = valid.release.version.to_string();
    let status = mi.status.as_ref();
    let ready = status.is_some_and(|s| {
        s.installed_version.as_deref() == Some(release.as_str())
            && is_ready_at(&s.conditions, mi.metadata.generation)
    });
    let recorded = recorded.is_some_and(|r| {
        r.status == ModuleState::Installed
            && r.version.as_deref() == Some(release.as_str())
            && valid.claim == InstallerClaim::Ours
    });
    ready && recorded && valid.reinstall.is_none() && !mi.spec.dry_run
}

/// Whether Landlord's records put every managed scope exactly at the release: then nothing would run, and
/// no database needs a visit.
pub fn in_place(valid: &ValidInstallation<'_>, records: &Records) -> bool {
    valid.scopes.iter().all(|&scope| match records.of(scope) {
        None => valid.module.migrations(scope).is_empty(),
        Some(recorded) => records::in_place(
            &Track::of(valid.module, scope),
            valid.release.target(scope),
            recorded,
        ),
    })
}

/// Production refuses every step down — a downgrade, a release that leaves out a scope, a reinstall — before
/// anything runs, blaming the first scope that would go down.
pub fn check(plan: &InstallationPlan<'_>, production: bool) -> Result<(), Stopped> {
    if plan.dry_run {
        return Ok(());
    }
    let allowed = db::Allowed::in_environment(production);
    match plan
        .scopes
        .iter()
        .find(|s| allowed.refused(s.steps()).is_some())
    {
        None => Ok(()),
        Some(scope) => {
            let undo = match plan.valid.reinstall {
                Some(_) => "remove the reinstall annotation",
                None => "set spec.version back to the installed release",
            };
            Err(stop_at(condition_of(scope.scope))(
                Error::StepDownRefusedInProduction {
                    module: plan.valid.module.name.clone(),
                    steps: describe(scope.steps()),
                    scope: scope.scope,
                    undo,
                },
            ))
        }
    }
}

impl ScopePlan {
    pub fn steps(&self) -> &[db::MigrationStep] {
        match &self.action {
            ScopeAction::Migrate(plan) => &plan.steps,
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
                    direction: step.direction,
                })
            })
            .collect()
    }
}

/// `20250101_x up, 20250102_y down`.
pub fn describe(steps: &[db::MigrationStep]) -> String {
    let steps: Vec<String> = steps
        .iter()
        .map(|s| format!("{} {}", s.name, s.direction))
        .collect();
    steps.join(", ")
}

#[cfg(test)]
#[path = "plan_tests.rs"]
pub(super) mod tests;
