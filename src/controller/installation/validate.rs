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
