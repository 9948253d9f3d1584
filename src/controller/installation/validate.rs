//! Pure checks of a ModuleInstallation against what gather found. Authorisation comes from the landlord's
//! records alone: the tenant's slug must be claimed by this Tenant's UID and provisioned, and the module
//! recorded as installed by this installation (or by nobody, or by one that is gone) — never from a status
//! field that anyone with `status` rights could write.

use std::collections::BTreeMap;

use kube::ResourceExt;

use super::super::Error;
use super::super::tenant::validate_spec;
use super::gather::InstallationFacts;
use crate::catalog::{Catalog, Module, Release, Scope};
use crate::crd::{InstallScope, ModuleInstallation, ModuleInstallationSpec, REINSTALL_ANNOTATION};
use crate::db::mirror::{Installer, ModuleState};
use crate::db::{Password, TenantNames};

/// An installation that may act on its tenant, with everything it acts with.
#[derive(Debug)]
pub struct ValidInstallation<'c> {
    pub names: TenantNames,
    pub password: Password,
    /// The server Landlord's records place the tenant's database on.
    pub server: String,
    pub module: &'c Module,
    pub release: &'c Release,
    /// The scopes this installation manages, in the catalog's order.
    pub scopes: Vec<Scope>,
    pub claim: InstallerClaim,
    /// A new value of the reinstall annotation, to carry out.
    pub reinstall: Option<String>,
    /// The DependenciesSatisfied message.
    pub dependencies: String,
}

/// This installation's standing in the landlord's record of the tenant's modules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstallerClaim {
    /// Recorded as the installer already.
    Ours,
    /// Nobody is recorded: record this installation before anything runs.
    Free,
    /// The recorded installer no longer exists: take its record over.
    Replace(String),
}

pub fn validate<'c>(
    mi: &ModuleInstallation,
    world: InstallationFacts,
    catalog: &'c Catalog,
) -> Result<ValidInstallation<'c>, Error> {
    let namespace = mi.namespace().unwrap_or_default();
    let tenant_name = &mi.spec.tenant;
    let Some(tenant) = world.tenant else {
        return Err(Error::TenantNotFound {
            tenant: tenant_name.clone(),
            namespace,
        });
    };
    let not_ready = || Error::TenantNotReady {
        tenant: tenant_name.clone(),
    };
    // A paused Tenant pauses its installations too (its spec, which its owner controls; not its status).
    if tenant.spec.paused {
        return Err(not_ready());
    }
    let tenant = validate_spec(&tenant).map_err(|_| not_ready())?;
    let Some(server) = world
        .slug
        .as_ref()
        .filter(|record| record.is_ready_for(&tenant.owner.uid))
        .map(|record| record.server.clone())
    else {
        return Err(not_ready());
    };
    let password = world.password.ok_or_else(not_ready)?;
    let (module, release) = resolve(catalog, &mi.spec)?;

    let uid = mi.uid().unwrap_or_default();
    let record = world.installed.iter().find(|m| m.module == module.name);
    let recorded = record.map(|m| &m.installer);
    let claim = match recorded {
        None => InstallerClaim::Free,
        Some(installer) if installer.uid == uid => InstallerClaim::Ours,
        Some(installer) if !world.installer_exists => {
            InstallerClaim::Replace(installer.uid.clone())
        }
        Some(installer) => return Err(already_managed(installer, mi)),
    };

    let installed: BTreeMap<String, semver::Version> = world
        .installed
        .iter()
        .filter(|m| m.status == ModuleState::Installed && m.module != module.name)
        .filter_map(|m| {
            Some((
                m.module.clone(),
                semver::Version::parse(m.version.as_deref()?).ok()?,
            ))
        })
        .collect();
    let unmet = catalog.unmet_dependencies(&module.name, &installed);
    if !unmet.is_empty() {
        return Err(Error::DependencyMissing {
            module: module.name.clone(),
            unmet: unmet.iter().map(ToString::to_string).collect(),
        });
    }
    let met: Vec<String> = catalog
        .dependencies_of(&module.name)
        .iter()
        .filter_map(|m| installed.get(&m.name).map(|v| format!("{} {v}", m.name)))
        .collect();
    let dependencies = if met.is_empty() {
        format!("Module {} has no dependencies.", module.name)
    } else {
        format!("Dependencies installed: {}.", met.join(", "))
    };

    let token = mi.annotations().get(REINSTALL_ANNOTATION).cloned();
    // Which reinstall is done, from Landlord's record of this installation. Status is read only for a
    // reinstall done before Landlord recorded them (no record yet), and can then only skip one, never
    // cause one.
    let done = match (&claim, record) {
        (InstallerClaim::Ours, Some(record)) => record
            .reinstalled
            .clone()
            .or_else(|| mi.status.as_ref().and_then(|s| s.reinstalled.clone())),
        _ => None,
    };
    Ok(ValidInstallation {
        names: tenant.names,
        password,
        server,
        module,
        release,
        scopes: match mi.spec.scope {
            InstallScope::All => vec![Scope::Landlord, Scope::Tenant],
            InstallScope::Landlord => vec![Scope::Landlord],
            InstallScope::Tenant => vec![Scope::Tenant],
        },
        claim,
        reinstall: token.filter(|token| Some(token) != done.as_ref()),
        dependencies,
    })
}

fn already_managed(installer: &Installer, mi: &ModuleInstallation) -> Error {
    Error::AlreadyManaged {
        installer: installer.name.clone(),
        module: mi.spec.module.clone(),
        tenant: mi.spec.tenant.clone(),
    }
}

/// The module and release an installation asks for.
pub fn resolve<'c>(
    catalog: &'c Catalog,
    spec: &ModuleInstallationSpec,
) -> Result<(&'c Module, &'c Release), Error> {
    let Some(module) = catalog.module(&spec.module) else {
        let known: Vec<&str> = catalog.modules.keys().map(String::as_str).collect();
        return Err(Error::ModuleNotFound {
            module: spec.module.clone(),
            available: known.into_iter().map(String::from).collect(),
        });
    };
    let release = match &spec.version {
        None => module.newest_release(),
        Some(wanted) => semver::Version::parse(wanted)
            .ok()
            .and_then(|v| module.release(&v)),
    };
    let release = release.ok_or_else(|| {
        let releases: Vec<String> = module
            .releases
            .iter()
            .map(|r| r.version.to_string())
            .collect();
        Error::VersionNotFound {
            module: module.name.clone(),
            version: spec.version.clone(),
            releases,
        }
    })?;
    Ok((module, release))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ModuleInstallationSpec, Reason, Tenant, TenantSpec};
    use crate::db::TenantOwner;
    use crate::db::mirror::{InstalledModule, SlugRecord, TenantState};

    fn mi(module: &str, uid: &str) -> ModuleInstallation {
        let mut mi = ModuleInstallation::new(
            &format!("acme-{module}"),
            ModuleInstallationSpec {
                tenant: "acme".into(),
                module: module.into(),
                ..Default::default()
            },
        );
        mi.metadata.namespace = Some("ns".into());
        mi.metadata.uid = Some(uid.into());
        mi
    }

    fn tenant() -> Tenant {
        let mut tenant = Tenant::new("acme", TenantSpec::default());
        tenant.metadata.namespace = Some("ns".into());
        tenant.metadata.uid = Some("t1".into());
        tenant
    }

    fn slug(uid: &str, status: &str) -> SlugRecord {
        SlugRecord {
            owner: TenantOwner {
                uid: uid.into(),
                namespace: "ns".into(),
                name: "acme".into(),
            },
            status: TenantState::parse(status).unwrap(),
            credentials_version: None,
            database_made: true,
            recreated: None,
            server: "default".into(),
        }
    }

    fn installed(module: &str, version: &str, uid: &str) -> InstalledModule {
        InstalledModule {
            module: module.into(),
            version: Some(version.into()),
            status: ModuleState::Installed,
            installer: Installer {
                uid: uid.into(),
                name: format!("acme-{module}"),
            },
            reinstalled: None,
        }
    }

    fn world(slug_record: Option<SlugRecord>, modules: Vec<InstalledModule>) -> InstallationFacts {
        InstallationFacts {
            tenant: Some(tenant()),
            slug: slug_record,
            installed: modules,
            installer_exists: true,
            password: Some(Password::new("p").unwrap()),
        }
    }

    fn reason(result: Result<ValidInstallation<'_>, Error>) -> Option<Reason> {
        result.err().map(|e| e.reason())
    }

    #[test]
    fn the_tenant_must_own_its_slug_by_the_landlords_record() {
        let catalog = Catalog::shipped();
        let ok = world(Some(slug("t1", "Ready")), vec![]);
        assert_eq!(reason(validate(&mi("tasks", "m1"), ok, &catalog)), None);
        for record in [
            None,
            Some(slug("t1", "Provisioning")),
            Some(slug("other", "Ready")),
        ] {
            let w = world(record.clone(), vec![]);
            assert_eq!(
                reason(validate(&mi("tasks", "m1"), w, &catalog)),
                Some(Reason::TenantNotReady),
                "{record:?}"
            );
        }
        let mut gone = world(Some(slug("t1", "Ready")), vec![]);
        gone.tenant = None;
        assert_eq!(
            reason(validate(&mi("tasks", "m1"), gone, &catalog)),
            Some(Reason::TenantNotFound)
        );
        let mut paused = world(Some(slug("t1", "Ready")), vec![]);
        if let Some(tenant) = paused.tenant.as_mut() {
            tenant.spec.paused = true;
        }
        assert_eq!(
            reason(validate(&mi("tasks", "m1"), paused, &catalog)),
            Some(Reason::TenantNotReady)
        );
        let mut no_secret = world(Some(slug("t1", "Ready")), vec![]);
        no_secret.password = None;
        assert_eq!(
            reason(validate(&mi("tasks", "m1"), no_secret, &catalog)),
            Some(Reason::TenantNotReady)
        );
    }

    #[test]
    fn a_reinstall_is_done_by_the_landlords_record_not_by_status() {
        let catalog = Catalog::shipped();
        // (recorded reinstall, status.reinstalled, annotation) → the reinstall still to carry out.
        let cases = [
            (None, None, Some("1"), Some("1")),
            (Some("1"), None, Some("1"), None), // status cleared: the record says it is done
            (Some("1"), Some("2"), Some("2"), Some("2")), // status cannot claim a reinstall the record lacks
            (None, Some("1"), Some("1"), None), // done before reinstalls were recorded: status only skips
            (Some("1"), Some("1"), None, None),
        ];
        for (recorded, status, annotation, expected) in cases {
            let mut installation = mi("tasks", "m1");
            if let Some(token) = annotation {
                installation.metadata.annotations =
                    Some([(REINSTALL_ANNOTATION.to_string(), token.to_string())].into());
            }
            installation.status = Some(crate::crd::ModuleInstallationStatus {
                reinstalled: status.map(Into::into),
                ..Default::default()
            });
            let mut record = installed("tasks", "1.0.0", "m1");
            record.reinstalled = recorded.map(Into::into);
            let w = world(Some(slug("t1", "Ready")), vec![record]);
            let valid = validate(&installation, w, &catalog).unwrap();
            assert_eq!(
                valid.reinstall.as_deref(),
                expected,
                "{recorded:?} {status:?} {annotation:?}"
            );
        }
    }

    #[test]
    fn the_recorded_installer_owns_the_module() {
        let catalog = Catalog::shipped();
        let claim = |w| validate(&mi("tasks", "m1"), w, &catalog).map(|v| v.claim);
        let mine = world(
            Some(slug("t1", "Ready")),
            vec![installed("tasks", "1.0.0", "m1")],
        );
        assert_eq!(claim(mine).unwrap(), InstallerClaim::Ours);
        let theirs = world(
            Some(slug("t1", "Ready")),
            vec![installed("tasks", "1.0.0", "m0")],
        );
        let err = claim(theirs).unwrap_err();
        assert_eq!(err.reason(), Reason::InvalidSpec);
        assert!(
            err.to_string().contains("acme-tasks already manages"),
            "{err}"
        );
        let mut stale = world(
            Some(slug("t1", "Ready")),
            vec![installed("tasks", "1.0.0", "m0")],
        );
        stale.installer_exists = false;
        assert_eq!(claim(stale).unwrap(), InstallerClaim::Replace("m0".into()));
    }

    #[test]
    fn dependencies_come_from_the_landlords_record() {
        let catalog = Catalog::shipped();
        let missing = world(Some(slug("t1", "Ready")), vec![]);
        let err = validate(&mi("expenses", "m2"), missing, &catalog).unwrap_err();
        assert_eq!(err.reason(), Reason::DependencyMissing);
        assert!(
            err.to_string().contains("tasks >=1.0.0 (not installed)"),
            "{err}"
        );
        // Being installed, or being uninstalled (its record marked before anything is rolled back).
        for status in ["Installing", "Uninstalling"] {
            let mut recorded = installed("tasks", "1.0.0", "m1");
            recorded.status = ModuleState::parse(status).unwrap();
            let w = world(Some(slug("t1", "Ready")), vec![recorded]);
            assert!(matches!(
                validate(&mi("expenses", "m2"), w, &catalog),
                Err(Error::DependencyMissing { .. })
            ));
        }
        let w = world(
            Some(slug("t1", "Ready")),
            vec![installed("tasks", "1.0.0", "m1")],
        );
        let valid = validate(&mi("expenses", "m2"), w, &catalog).unwrap();
        assert_eq!(valid.dependencies, "Dependencies installed: tasks 1.0.0.");
    }

    #[test]
    fn unknown_module_and_release_name_what_exists() {
        let catalog = Catalog::shipped();
        let spec = |module: &str, version: Option<&str>| ModuleInstallationSpec {
            tenant: "acme".into(),
            module: module.into(),
            version: version.map(String::from),
            ..Default::default()
        };
        let err = resolve(&catalog, &spec("payroll", None)).unwrap_err();
        assert_eq!(err.reason(), Reason::ModuleNotFound);
        assert!(
            err.to_string().contains("digital_card, expenses, tasks"),
            "{err}"
        );
        let err = resolve(&catalog, &spec("expenses", Some("2.0.0"))).unwrap_err();
        assert_eq!(err.reason(), Reason::VersionNotFound);
        assert!(err.to_string().contains("1.0.0, 1.1.0"), "{err}");
        let (_, release) = resolve(&catalog, &spec("expenses", None)).unwrap();
        assert_eq!(release.version.to_string(), "1.1.0");
    }
}
