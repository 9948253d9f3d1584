//! `module.yaml`: its shape (fixed by the design) and the checks that need only the module itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;

use super::model::{CORE_MODULE, Dependency, MigrationSet, Module};
use super::problem::Problems;
use super::release::{self, DeclaredRelease};

/// The file every module directory holds.
pub const MANIFEST_FILE: &str = "module.yaml";

// Unknown fields are refused so that a typo (`depends_on`) is reported instead of silently ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Manifest {
    pub name: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub releases: Vec<ManifestRelease>,
    #[serde(default)]
    pub depends_on: Vec<ManifestDependency>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestRelease {
    pub version: String,
    pub landlord: Option<i64>,
    pub tenant: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestDependency {
    pub module: String,
    pub version: Option<String>,
}

/// Parses `module.yaml`; the error is the reason to report, with serde_yaml's line and column.
pub(crate) fn parse(text: &str) -> Result<Manifest, String> {
    serde_yaml::from_str(text).map_err(|err| {
        format!("is not a valid module manifest: {err}; see the module.yaml shape in DESIGN.md")
    })
}

/// Module and role names follow the one name rule (`NAME_PATTERN`, at most 63 bytes).
pub fn is_valid_name(name: &str) -> bool {
    super::name_problem(name).is_none()
}

/// `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`: permission names such as `expenses.view`.
pub fn is_valid_permission(permission: &str) -> bool {
    let mut parts = permission.split('.');
    let first_ok = parts.next().is_some_and(is_valid_name);
    let mut rest = parts.peekable();
    first_ok && rest.peek().is_some() && rest.all(is_valid_name)
}

/// Builds the module from its manifest and migrations, reporting every mistake the module makes on its own
/// (cross-module checks such as `dependsOn` targets live in `validate`). `dir_name` is the module directory.
pub(crate) fn build_module(
    manifest: Manifest,
    dir_name: &str,
    path: &Path,
    landlord: MigrationSet,
    tenant: MigrationSet,
    problems: &mut Problems,
) -> Module {
    check_name(&manifest.name, dir_name, path, problems);

    let mut declared = Vec::new();
    for entry in &manifest.releases {
        match semver::Version::parse(&entry.version) {
            Ok(version) => declared.push(DeclaredRelease {
                version,
                landlord: entry.landlord,
                tenant: entry.tenant,
            }),
            Err(err) => problems.push(
                path,
                format!(
                    "release `{}` is not a semantic version ({err}); write it like \"1.2.0\"",
                    entry.version
                ),
            ),
        }
    }
    if manifest.releases.is_empty() {
        problems.push(path, "declares no releases, so it can never be installed; add a release naming the last migration of each scope");
    }
    release::check(path, &declared, &landlord, &tenant, problems);

    Module {
        name: manifest.name,
        display_name: manifest.display_name,
        description: manifest.description,
        releases: release::resolve(&declared),
        depends_on: dependencies(&manifest.depends_on, path, problems),
        permissions: permissions(&manifest.permissions, path, problems),
        roles: roles(&manifest.roles, &manifest.permissions, path, problems),
        landlord,
        tenant,
    }
}

fn check_name(name: &str, dir_name: &str, path: &Path, problems: &mut Problems) {
    if !is_valid_name(name) {
        problems.push(path, format!(
            "module name `{name}` is not lowercase letters, digits and underscores starting with a letter"
        ));
    }
    if name != dir_name {
        problems.push(path, format!(
            "module name `{name}` does not match its directory `{dir_name}`; rename one so they agree"
        ));
    }
    if name == CORE_MODULE {
        problems.push(path, format!(
            "module name `{CORE_MODULE}` is reserved for the core migrations; choose another name"
        ));
    }
}

fn dependencies(
    entries: &[ManifestDependency],
    path: &Path,
    problems: &mut Problems,
) -> Vec<Dependency> {
    let mut seen = BTreeSet::new();
    let mut dependencies = Vec::new();
    for entry in entries {
        if !seen.insert(entry.module.as_str()) {
            problems.push(path, format!(
                "dependsOn lists module `{}` more than once; keep one entry with one version requirement",
                entry.module
            ));
            continue;
        }
        let requirement = entry.version.as_deref().and_then(|req| {
            semver::VersionReq::parse(req)
                .map_err(|err| problems.push(path, format!(
                    "dependsOn `{}` has version requirement `{req}` that is not a valid semver requirement ({err}); write it like \">=1.0.0\"",
                    entry.module
                )))
                .ok()
        });
        dependencies.push(Dependency {
            module: entry.module.clone(),
            requirement,
        });
    }
    dependencies
}

fn permissions(declared: &[String], path: &Path, problems: &mut Problems) -> Vec<String> {
    let mut unique = BTreeSet::new();
    for permission in declared {
        if !is_valid_permission(permission) {
            problems.push(path, format!(
                "permission `{permission}` is not named like `expenses.view` (lowercase words joined by dots)"
            ));
        }
        if !unique.insert(permission.clone()) {
            problems.push(
                path,
                format!("permission `{permission}` is declared more than once; list it once"),
            );
        }
    }
    unique.into_iter().collect()
}

fn roles(
    declared: &BTreeMap<String, Vec<String>>,
    permissions: &[String],
    path: &Path,
    problems: &mut Problems,
) -> BTreeMap<String, Vec<String>> {
    let mut roles = BTreeMap::new();
    for (role, granted) in declared {
        if !is_valid_name(role) {
            problems.push(path, format!(
                "role name `{role}` is not lowercase letters, digits and underscores starting with a letter"
            ));
        }
        let mut unique = BTreeSet::new();
        for permission in granted {
            if !permissions.contains(permission) {
                problems.push(path, format!(
                    "role `{role}` grants permission `{permission}`, which the module does not declare; add it to permissions or remove it from the role"
                ));
            }
            if !unique.insert(permission.clone()) {
                problems.push(
                    path,
                    format!(
                        "role `{role}` lists permission `{permission}` more than once; list it once"
                    ),
                );
            }
        }
        roles.insert(role.clone(), unique.into_iter().collect());
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_permissions() {
        for ok in ["tasks", "digital_card", "a1"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "Tasks", "1tasks", "_tasks", "digital-card", "tâches"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        for ok in ["expenses.view", "digital_card.templates.edit", "a.b"] {
            assert!(is_valid_permission(ok), "{ok}");
        }
        for bad in [
            "expenses",
            "expenses.",
            ".view",
            "Expenses.view",
            "expenses..view",
            "expenses.view-all",
        ] {
            assert!(!is_valid_permission(bad), "{bad}");
        }
    }

    #[test]
    fn parse_errors_carry_the_line() {
        let reason = parse("name: x\nreleases:\n  - version: \"1.0.0\"\n    tennant: 1\n")
            .expect_err("typo");
        assert!(reason.contains("unknown field `tennant`"), "{reason}");
        assert!(reason.contains("line 4"), "{reason}");
    }
}
