//! Checks across modules: `dependsOn` targets and requirements, cycles, and names that must be unique in a
//! tenant (permissions and roles land in one ACL table per tenant).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::graph::DependencyGraph;
use super::model::Module;
use super::problem::Problems;

/// A loaded module and the `module.yaml` its problems point at.
pub(crate) struct LoadedModule {
    pub module: Module,
    pub manifest: PathBuf,
}

/// `broken` names module directories whose manifest could not be read: depending on them is not reported
/// again as an unknown module.
pub(crate) fn check_catalog(
    modules: &BTreeMap<String, LoadedModule>,
    broken: &BTreeSet<String>,
    problems: &mut Problems,
) {
    for loaded in modules.values() {
        check_dependencies(loaded, modules, broken, problems);
    }

    let graph = DependencyGraph::new(modules.values().map(|l| {
        let dependencies = l
            .module
            .depends_on
            .iter()
            .map(|d| d.module.as_str())
            .collect();
        (l.module.name.as_str(), dependencies)
    }));
    for cycle in graph.cycles() {
        if let Some(first) = cycle.modules.first().and_then(|m| modules.get(m)) {
            problems.push(&first.manifest, format!(
                "dependsOn forms a cycle: {}; modules must not depend on each other in a circle, so remove one of these dependencies",
                cycle.path()
            ));
        }
    }

    check_unique(
        modules,
        "permission",
        |m| m.permissions.iter().cloned().collect(),
        problems,
    );
    check_unique(
        modules,
        "role",
        |m| m.roles.keys().cloned().collect(),
        problems,
    );
}

fn check_dependencies(
    loaded: &LoadedModule,
    modules: &BTreeMap<String, LoadedModule>,
    broken: &BTreeSet<String>,
    problems: &mut Problems,
) {
    let path: &Path = &loaded.manifest;
    for dependency in &loaded.module.depends_on {
        let Some(target) = modules.get(&dependency.module) else {
            if !broken.contains(&dependency.module) {
                problems.push(path, format!(
                    "dependsOn names module `{}`, which is not in the catalog; add the module or remove the dependency",
                    dependency.module
                ));
            }
            continue;
        };
        let Some(requirement) = &dependency.requirement else {
            continue;
        };
        let releases = &target.module.releases;
        if !releases.iter().any(|r| requirement.matches(&r.version)) {
            let available: Vec<String> = releases.iter().map(|r| r.version.to_string()).collect();
            let available = if available.is_empty() {
                "it has no releases".to_string()
            } else {
                format!("its releases are {}", available.join(", "))
            };
            problems.push(path, format!(
                "dependsOn requires `{}` at `{requirement}`, which no release satisfies ({available}); relax the requirement or release the dependency",
                dependency.module
            ));
        }
    }
}

/// Reports a name declared by more than one module, on each of those modules.
fn check_unique(
    modules: &BTreeMap<String, LoadedModule>,
    what: &str,
    names: impl Fn(&Module) -> BTreeSet<String>,
    problems: &mut Problems,
) {
    let mut owners: BTreeMap<String, Vec<&LoadedModule>> = BTreeMap::new();
    for loaded in modules.values() {
        for name in names(&loaded.module) {
            owners.entry(name).or_default().push(loaded);
        }
    }
    for (name, owners) in owners.iter().filter(|(_, o)| o.len() > 1) {
        for owner in owners {
            let others: Vec<&str> = owners
                .iter()
                .filter(|o| o.module.name != owner.module.name)
                .map(|o| o.module.name.as_str())
                .collect();
            problems.push(&owner.manifest, format!(
                "{what} `{name}` is also declared by module {}; {what}s share one table per tenant, so give it a name prefixed by this module",
                others.join(", ")
            ));
        }
    }
}
