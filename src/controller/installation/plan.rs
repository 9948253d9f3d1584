//! What an installation's reconcile will do, as one value: for every scope, in the order they run, the
//! steps from what its ledger holds to the release asked for — an install, upgrade, downgrade, a fresh
//! reinstall (everything down, then up), or nothing. Pure; `check` holds it to production's rules.

use super::super::Error;
use super::super::conditions::{Stopped, stop_at};
use super::gather::{Ledgers, Records, condition_of};
use super::validate::{InstallerClaim, ValidInstallation};
use crate::catalog::Scope;
use crate::crd::{ModuleInstallation, PlanStep, is_ready_at};
use crate::db::mirror::{InstalledModule, ModuleState};
use crate::db::{self, Direction, ModuleScope, records};

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
            &ModuleScope::of(valid.module, scope),
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
                Some(_) => "remove the reinstall annotation".to_string(),
                None => "set spec.version back to the installed release".to_string(),
            };
            let message = format!(
                "Module {} would run {} in the {} scope, dropping data: refused in production; {undo}.",
                plan.valid.module.name,
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::crd::ConditionType;
    use crate::crd::ModuleInstallationSpec;
    use crate::db::{LedgerEntry, Password, TenantNames};

    pub fn catalog() -> Catalog {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        Catalog::load(&root.join("modules"), &root.join("migrations")).unwrap()
    }

    pub fn mi(module: &str, version: Option<&str>, dry_run: bool) -> ModuleInstallation {
        ModuleInstallation::new(
            "acme-x",
            ModuleInstallationSpec {
                tenant: "acme".into(),
                module: module.into(),
                version: version.map(String::from),
                dry_run,
                ..Default::default()
            },
        )
    }

    /// What the ledger of `scope` holds when `module` is at `version` (None: nothing).
    pub fn at_release(
        catalog: &Catalog,
        module: &str,
        scope: Scope,
        version: Option<&str>,
    ) -> Vec<LedgerEntry> {
        let module = catalog.module(module).unwrap();
        let target = version
            .and_then(|v| module.release(&semver::Version::parse(v).unwrap()))
            .and_then(|r| r.target(scope));
        module
            .migrations(scope)
            .migrations
            .iter()
            .filter(|m| target.is_some_and(|t| m.version <= t))
            .map(|m| LedgerEntry {
                version: m.version,
                description: m.description.clone(),
                checksum: m.checksum.to_vec(),
                applied_at: jiff::Timestamp::UNIX_EPOCH,
                execution_ms: 1,
            })
            .collect()
    }

    /// The plan for `mi` when the tenant has `module` at `installed` (both scopes managed).
    pub fn plan_for<'c>(
        catalog: &'c Catalog,
        mi: &ModuleInstallation,
        installed: Option<&str>,
        reinstall: bool,
    ) -> InstallationPlan<'c> {
        let (module, release) = super::super::validate::resolve(catalog, &mi.spec).unwrap();
        let ledger = |scope| {
            (!module.migrations(scope).is_empty())
                .then(|| at_release(catalog, &module.name, scope, installed))
        };
        let ledgers = Ledgers {
            landlord: ledger(Scope::Landlord),
            tenant: ledger(Scope::Tenant),
        };
        let valid = ValidInstallation {
            names: TenantNames::new("acme").unwrap(),
            password: Password::new("p").unwrap(),
            module,
            release,
            scopes: vec![Scope::Landlord, Scope::Tenant],
            claim: InstallerClaim::Ours,
            reinstall: reinstall.then(|| "1".to_string()),
            dependencies: "none".into(),
        };
        plan(mi, valid, &ledgers).unwrap()
    }

    fn shape(plan: &InstallationPlan<'_>) -> Vec<(Scope, Vec<String>)> {
        plan.scopes
            .iter()
            .map(|s| {
                let steps = s
                    .steps()
                    .iter()
                    .map(|st| format!("{} {}", st.version, st.direction))
                    .collect();
                (s.scope, steps)
            })
            .collect()
    }

    #[test]
    fn install_upgrade_downgrade_and_reinstall_are_one_value() {
        let catalog = catalog();
        let expenses = |v| mi("expenses", Some(v), false);
        let install = plan_for(&catalog, &expenses("1.0.0"), None, false);
        assert_eq!(
            shape(&install),
            [
                (Scope::Landlord, vec![]),
                (
                    Scope::Tenant,
                    vec!["20251005030440 up".into(), "20251005030441 up".into()]
                )
            ]
        );
        let upgrade = plan_for(&catalog, &expenses("1.1.0"), Some("1.0.0"), false);
        assert_eq!(
            shape(&upgrade)[1].1,
            ["20251101000000 up", "20251101000001 up"]
        );
        // Going down, the tenant scope runs first.
        let downgrade = plan_for(&catalog, &expenses("1.0.0"), Some("1.1.0"), false);
        assert_eq!(
            shape(&downgrade),
            [
                (
                    Scope::Tenant,
                    vec!["20251101000001 down".into(), "20251101000000 down".into()]
                ),
                (Scope::Landlord, vec![])
            ]
        );
        let reinstall = plan_for(&catalog, &expenses("1.0.0"), Some("1.0.0"), true);
        assert_eq!(
            shape(&reinstall)[0].1,
            [
                "20251005030441 down",
                "20251005030440 down",
                "20251005030440 up",
                "20251005030441 up"
            ]
        );
        let nothing = plan_for(&catalog, &expenses("1.1.0"), Some("1.1.0"), false);
        assert!(nothing.pending().is_empty());
        assert!(check(&nothing, true).is_ok());
    }

    #[test]
    fn production_refuses_every_step_down_and_blames_its_scope() {
        let catalog = catalog();
        let downgrade = plan_for(
            &catalog,
            &mi("expenses", Some("1.0.0"), false),
            Some("1.1.0"),
            false,
        );
        assert!(check(&downgrade, false).is_ok());
        let refused = check(&downgrade, true).unwrap_err();
        assert_eq!(refused.at, ConditionType::TenantMigrated);
        assert!(matches!(refused.error, Error::DestructiveActionBlocked(_)));
        assert!(
            refused
                .error
                .to_string()
                .contains("20251101000001_index_open_expenses down")
        );
        let reinstall = plan_for(
            &catalog,
            &mi("expenses", Some("1.1.0"), false),
            Some("1.1.0"),
            true,
        );
        assert!(check(&reinstall, true).is_err());
        // A dry run applies nothing: it may show what a downgrade would do.
        let dry = plan_for(
            &catalog,
            &mi("expenses", Some("1.0.0"), true),
            Some("1.1.0"),
            false,
        );
        assert!(check(&dry, true).is_ok());
    }

    #[test]
    fn only_an_installation_whose_records_stand_at_its_release_skips_the_databases() {
        use crate::crd::ModuleInstallationStatus;
        use crate::db::mirror::{InstalledModule, Installer};
        use crate::db::records::Recorded;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let catalog = catalog();
        let mut mi = mi("digital_card", None, false);
        mi.metadata.generation = Some(3);
        let planned = plan_for(&catalog, &mi, Some("1.0.0"), false);
        let valid = &planned.valid;
        let release = valid.release.version.to_string();
        let condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: "Reconciled".into(),
            message: String::new(),
            observed_generation: Some(3),
            last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
        };
        mi.status = Some(ModuleInstallationStatus {
            installed_version: Some(release.clone()),
            conditions: vec![condition],
            ..Default::default()
        });
        let recorded = |version: &str, status: &str| InstalledModule {
            module: "digital_card".into(),
            version: Some(version.into()),
            status: ModuleState::parse(status).unwrap(),
            installer: Installer {
                uid: String::new(),
                name: "acme-x".into(),
            },
            reinstalled: None,
        };
        assert!(may_be_in_place(
            &mi,
            valid,
            Some(&recorded(&release, "Installed"))
        ));
        assert!(!may_be_in_place(
            &mi,
            valid,
            Some(&recorded(&release, "Installing"))
        ));
        assert!(!may_be_in_place(
            &mi,
            valid,
            Some(&recorded("0.0.1", "Installed"))
        ));
        assert!(!may_be_in_place(&mi, valid, None));
        let mut newer_spec = mi.clone();
        newer_spec.metadata.generation = Some(4);
        assert!(!may_be_in_place(
            &newer_spec,
            valid,
            Some(&recorded(&release, "Installed"))
        ));

        let records_at = |version: Option<&str>| {
            let of = |scope| {
                Some(
                    at_release(&catalog, "digital_card", scope, version)
                        .into_iter()
                        .map(|e| Recorded {
                            version: e.version,
                            checksum: e.checksum,
                            settled: true,
                        })
                        .collect::<Vec<_>>(),
                )
            };
            Records {
                landlord: of(Scope::Landlord),
                tenant: of(Scope::Tenant),
            }
        };
        assert!(in_place(valid, &records_at(Some(&release))));
        assert!(!in_place(valid, &records_at(None)));
        let mut unsettled = records_at(Some(&release));
        if let Some(last) = unsettled.tenant.as_mut().and_then(|t| t.last_mut()) {
            last.settled = false;
        }
        assert!(!in_place(valid, &unsettled));
    }
}
