//! Pure checks of a ModuleInstallation against the catalog and its sibling installations.

use kube::ResourceExt;

use super::super::Error;
use crate::catalog::{Catalog, Module, Release};
use crate::crd::{ModuleInstallation, ModuleInstallationSpec, Reason};

/// The module and release an installation asks for.
#[derive(Debug)]
pub struct Resolved<'a> {
    pub module: &'a Module,
    pub release: &'a Release,
}

pub fn resolve<'a>(
    catalog: &'a Catalog,
    spec: &ModuleInstallationSpec,
) -> Result<Resolved<'a>, Error> {
    let Some(module) = catalog.module(&spec.module) else {
        let known: Vec<&str> = catalog.modules.keys().map(String::as_str).collect();
        return Err(Error::refused(
            Reason::ModuleNotFound,
            format!(
                "Module {} is not in the catalog; available modules: {}.",
                spec.module,
                known.join(", ")
            ),
        ));
    };
    let releases = || {
        module
            .releases
            .iter()
            .map(|r| r.version.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let release = match &spec.version {
        None => module.newest_release(),
        Some(wanted) => semver::Version::parse(wanted)
            .ok()
            .and_then(|v| module.release(&v)),
    };
    let release = release.ok_or_else(|| {
        Error::refused(
            Reason::VersionNotFound,
            format!(
                "Module {} has no release {}; releases: {}.",
                module.name,
                spec.version.as_deref().unwrap_or("(newest)"),
                releases()
            ),
        )
    })?;
    Ok(Resolved { module, release })
}

/// Two installations of one module for one tenant would fight over the same ledger: the older one owns it.
pub fn check_unique(
    mi: &ModuleInstallation,
    installations: &[ModuleInstallation],
) -> Result<(), Error> {
    let key = |m: &ModuleInstallation| {
        (
            m.metadata.creation_timestamp.clone().map(|t| t.0),
            m.name_any(),
        )
    };
    let owner = installations
        .iter()
        .filter(|other| other.spec.tenant == mi.spec.tenant && other.spec.module == mi.spec.module)
        .filter(|other| other.metadata.uid != mi.metadata.uid)
        .find(|other| key(other) < key(mi));
    match owner {
        Some(owner) => Err(Error::refused(
            Reason::InvalidSpec,
            format!(
                "ModuleInstallation {} already manages module {} for tenant {}; delete this one or that one.",
                owner.name_any(),
                mi.spec.module,
                mi.spec.tenant
            ),
        )),
        None => Ok(()),
    }
}

/// Ready for its current generation, as a dependency must be.
pub fn is_ready(mi: &ModuleInstallation) -> bool {
    let Some(status) = &mi.status else {
        return false;
    };
    status.conditions.iter().any(|c| {
        c.type_ == "Ready" && c.status == "True" && c.observed_generation == mi.metadata.generation
    })
}

/// Every dependency of `module` must be installed for the same tenant, Ready, at an acceptable release.
pub fn check_dependencies(
    module: &Module,
    tenant: &str,
    installations: &[ModuleInstallation],
) -> Result<String, Error> {
    let mut unmet = Vec::new();
    let mut met = Vec::new();
    for dep in &module.depends_on {
        let wanted = match &dep.requirement {
            Some(req) => format!("{} {}", dep.module, req),
            None => dep.module.clone(),
        };
        let found = installations
            .iter()
            .find(|mi| mi.spec.tenant == tenant && mi.spec.module == dep.module);
        let Some(found) = found else {
            unmet.push(format!("{wanted} (no ModuleInstallation for this tenant)"));
            continue;
        };
        let version = found
            .status
            .as_ref()
            .and_then(|s| s.installed_version.clone());
        let acceptable = version
            .as_deref()
            .and_then(|v| semver::Version::parse(v).ok())
            .is_some_and(|v| dep.requirement.as_ref().is_none_or(|req| req.matches(&v)));
        // A dependency being deleted stays installed: its uninstall waits for this module (see `dependents`).
        let deleting = found.metadata.deletion_timestamp.is_some();
        if !is_ready(found) && !deleting {
            unmet.push(format!("{wanted} ({} is not Ready)", found.name_any()));
        } else if !acceptable {
            unmet.push(format!(
                "{wanted} ({} is at {})",
                found.name_any(),
                version.as_deref().unwrap_or("no release")
            ));
        } else {
            met.push(format!("{} {}", dep.module, version.unwrap_or_default()));
        }
    }
    if !unmet.is_empty() {
        unmet.sort();
        return Err(Error::refused(
            Reason::DependencyMissing,
            format!(
                "Module {} needs, for this tenant: {}.",
                module.name,
                unmet.join("; ")
            ),
        ));
    }
    met.sort();
    Ok(if met.is_empty() {
        format!("Module {} has no dependencies.", module.name)
    } else {
        format!("Dependencies installed and Ready: {}.", met.join(", "))
    })
}

/// Installations of the same tenant whose module depends on `module`: they block its rollback.
pub fn dependents(
    catalog: &Catalog,
    module: &str,
    tenant: &str,
    installations: &[ModuleInstallation],
) -> Vec<String> {
    let mut names: Vec<String> = installations
        .iter()
        .filter(|mi| {
            mi.spec.tenant == tenant
                && mi.spec.module != module
                && mi.metadata.deletion_timestamp.is_none()
        })
        .filter(|mi| {
            catalog
                .module(&mi.spec.module)
                .is_some_and(|m| m.depends_on.iter().any(|d| d.module == module))
        })
        .map(|mi| mi.name_any())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn mi(
        name: &str,
        uid: &str,
        created: i64,
        module: &str,
        version: Option<&str>,
        ready: bool,
    ) -> ModuleInstallation {
        let mut mi = ModuleInstallation::new(
            name,
            ModuleInstallationSpec {
                tenant: "acme".into(),
                module: module.into(),
                ..Default::default()
            },
        );
        mi.metadata.uid = Some(uid.into());
        mi.metadata.generation = Some(1);
        mi.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(created).unwrap()));
        let condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            reason: "Reconciled".into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(jiff::Timestamp::from_second(created).unwrap()),
        };
        mi.status = Some(crate::crd::ModuleInstallationStatus {
            installed_version: version.map(String::from),
            conditions: vec![condition],
            ..Default::default()
        });
        mi
    }

    fn catalog() -> Catalog {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        Catalog::load(&root.join("modules"), &root.join("migrations")).unwrap()
    }

    #[test]
    fn the_older_of_two_installations_of_a_module_wins() {
        let first = mi("first", "u1", 10, "tasks", None, false);
        let second = mi("second", "u2", 20, "tasks", None, false);
        let all = [first.clone(), second.clone()];
        assert!(check_unique(&first, &all).is_ok());
        let err = check_unique(&second, &all).unwrap_err();
        assert_eq!(err.reason(), Reason::InvalidSpec);
        assert!(err.to_string().contains("first"));
    }

    #[test]
    fn dependencies_need_a_ready_installation_at_an_acceptable_release() {
        let catalog = catalog();
        let expenses = catalog.module("expenses").unwrap();
        let err = check_dependencies(expenses, "acme", &[]).unwrap_err();
        assert_eq!(err.reason(), Reason::DependencyMissing);
        assert!(
            err.to_string()
                .contains("tasks >=1.0.0 (no ModuleInstallation"),
            "{err}"
        );

        let not_ready = mi("acme-tasks", "u1", 1, "tasks", Some("1.0.0"), false);
        assert!(
            check_dependencies(expenses, "acme", &[not_ready])
                .unwrap_err()
                .to_string()
                .contains("not Ready")
        );

        let ready = mi("acme-tasks", "u1", 1, "tasks", Some("1.0.0"), true);
        let met = check_dependencies(expenses, "acme", std::slice::from_ref(&ready)).unwrap();
        assert_eq!(met, "Dependencies installed and Ready: tasks 1.0.0.");

        // Being deleted (and so blocked by this module) still counts as installed.
        let mut deleting = mi("acme-tasks", "u1", 1, "tasks", Some("1.0.0"), false);
        deleting.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::from_second(5).unwrap()));
        assert!(check_dependencies(expenses, "acme", &[deleting]).is_ok());

        // Another tenant's installation does not count.
        let mut elsewhere = ready;
        elsewhere.spec.tenant = "other".into();
        assert!(check_dependencies(expenses, "acme", &[elsewhere]).is_err());
    }

    #[test]
    fn dependents_block_a_rollback_unless_they_are_leaving_too() {
        let catalog = catalog();
        let tasks = mi("acme-tasks", "u1", 1, "tasks", Some("1.0.0"), true);
        let mut expenses = mi("acme-expenses", "u2", 2, "expenses", Some("1.1.0"), true);
        let all = [tasks.clone(), expenses.clone()];
        assert_eq!(
            dependents(&catalog, "tasks", "acme", &all),
            ["acme-expenses"]
        );
        assert!(dependents(&catalog, "expenses", "acme", &all).is_empty());
        expenses.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::from_second(5).unwrap()));
        assert!(dependents(&catalog, "tasks", "acme", &[tasks, expenses]).is_empty());
    }

    #[test]
    fn unknown_module_and_release_name_what_exists() {
        let catalog = catalog();
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
        assert_eq!(
            resolve(&catalog, &spec("expenses", None))
                .unwrap()
                .release
                .version
                .to_string(),
            "1.1.0"
        );
    }
}
