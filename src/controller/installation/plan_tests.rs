//! Table tests of the installation plan: scopes in run order, reinstalls, production's refusal, in-place.
use super::*;
use crate::catalog::Catalog;
use crate::crd::ConditionType;
use crate::crd::ModuleInstallationSpec;
use crate::db::{LedgerEntry, Password, TenantNames};

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
        server: "default".into(),
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
    let catalog = Catalog::shipped();
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
    let catalog = Catalog::shipped();
    let downgrade = plan_for(
        &catalog,
        &mi("expenses", Some("1.0.0"), false),
        Some("1.1.0"),
        false,
    );
    assert!(check(&downgrade, false).is_ok());
    let refused = check(&downgrade, true).unwrap_err();
    assert_eq!(refused.at, ConditionType::TenantMigrated);
    assert!(matches!(
        refused.error,
        Error::StepDownRefusedInProduction { .. }
    ));
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
    let catalog = Catalog::shipped();
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
