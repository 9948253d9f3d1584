//! Reading a catalog from disk: the core migrations and every `modules/<name>/`, collecting every problem
//! before deciding whether the catalog is usable.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::files::{load_scope, sorted_entries};
use super::manifest::{self, MANIFEST_FILE};
use super::model::{Catalog, MigrationSet, Scope};
use super::problem::{CatalogErrors, Problems};
use super::validate::{LoadedModule, check_catalog};

const SCOPES: [Scope; 2] = [Scope::Landlord, Scope::Tenant];

impl Catalog {
    /// The repository's own catalog (`modules/`, `migrations/`), for unit tests.
    #[cfg(test)]
    pub(crate) fn shipped() -> Catalog {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        match Catalog::load(&root.join("modules"), &root.join("migrations")) {
            Ok(catalog) => catalog,
            Err(errors) => panic!("the shipped catalog does not load: {errors}"),
        }
    }

    /// Loads and validates the modules under `modules_dir` and the core migrations under `migrations_dir`
    /// (`landlord/` and `tenant/`). Every problem is reported, not just the first.
    pub fn load(modules_dir: &Path, migrations_dir: &Path) -> Result<Catalog, CatalogErrors> {
        let mut problems = Problems::default();
        let (core_landlord, core_tenant) = load_core(migrations_dir, &mut problems);

        let mut modules: BTreeMap<String, LoadedModule> = BTreeMap::new();
        let mut broken = BTreeSet::new();
        if require_dir(
            modules_dir,
            "the modules directory does not exist; pass DIR to `landlord catalog check` or set LANDLORD_MODULES_DIR",
            &mut problems,
        ) {
            for loaded in load_modules(modules_dir, &mut broken, &mut problems) {
                match modules.get(&loaded.module.name) {
                    Some(first) => problems.push(
                        &loaded.manifest,
                        format!(
                            "module name `{}` is already used by {}; module names must be unique",
                            loaded.module.name,
                            first.manifest.display()
                        ),
                    ),
                    None => {
                        modules.insert(loaded.module.name.clone(), loaded);
                    }
                }
            }
        }
        check_catalog(&modules, &broken, &mut problems);

        if !problems.is_empty() {
            return Err(problems.into_errors());
        }
        Ok(Catalog {
            core_landlord,
            core_tenant,
            modules: modules
                .into_iter()
                .map(|(name, loaded)| (name, loaded.module))
                .collect(),
        })
    }
}

/// True when `dir` is a directory; otherwise reports `missing` (or that it is a file) against it.
fn require_dir(dir: &Path, missing: &str, problems: &mut Problems) -> bool {
    if dir.is_dir() {
        return true;
    }
    if dir.exists() {
        problems.push(dir, "is not a directory; expected a directory here");
    } else {
        problems.push(dir, missing);
    }
    false
}

fn load_core(migrations_dir: &Path, problems: &mut Problems) -> (MigrationSet, MigrationSet) {
    let mut sets = (MigrationSet::default(), MigrationSet::default());
    if !require_dir(
        migrations_dir,
        "the core migrations directory does not exist; set LANDLORD_MIGRATIONS_DIR to the directory holding landlord/ and tenant/",
        problems,
    ) {
        return sets;
    }
    for scope in SCOPES {
        let dir = migrations_dir.join(scope.as_str());
        let missing = format!(
            "the core {scope} migrations directory does not exist; the core migrations need both landlord/ and tenant/"
        );
        if require_dir(&dir, &missing, problems) {
            let set = load_scope(&dir, problems);
            match scope {
                Scope::Landlord => sets.0 = set,
                Scope::Tenant => sets.1 = set,
            }
        }
    }
    sets
}

fn load_modules(
    modules_dir: &Path,
    broken: &mut BTreeSet<String>,
    problems: &mut Problems,
) -> Vec<LoadedModule> {
    let entries = match sorted_entries(modules_dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(modules_dir, format!("cannot be read: {err}"));
            return Vec::new();
        }
    };
    let mut modules = Vec::new();
    for (name, path, is_file) in entries {
        if is_file {
            // Documentation may sit next to the modules.
            if !name.ends_with(".md") {
                problems.push(&path, "is not a module directory; the modules directory holds one directory per module");
            }
            continue;
        }
        match load_module(&path, &name, problems) {
            Some(loaded) => modules.push(loaded),
            None => {
                broken.insert(name);
            }
        }
    }
    modules
}

/// One module directory; None when its manifest cannot be read (its migrations are still checked).
fn load_module(dir: &Path, dir_name: &str, problems: &mut Problems) -> Option<LoadedModule> {
    match sorted_entries(dir) {
        Ok(entries) => {
            for (name, path, is_file) in entries {
                let reason = match name.as_str() {
                    MANIFEST_FILE if is_file => continue,
                    "landlord" | "tenant" if !is_file => continue,
                    _ if is_file && name.ends_with(".md") => continue,
                    "landlord" | "tenant" => {
                        format!("is a file; {name}/ must be a directory of migration files")
                    }
                    _ => format!(
                        "is not part of a module; a module directory holds {MANIFEST_FILE}, landlord/ and tenant/ (and documentation in *.md)"
                    ),
                };
                problems.push(&path, reason);
            }
        }
        Err(err) => {
            problems.push(dir, format!("cannot be read: {err}"));
            return None;
        }
    }

    let mut sets = (MigrationSet::default(), MigrationSet::default());
    for scope in SCOPES {
        let scope_dir = dir.join(scope.as_str());
        if scope_dir.is_dir() {
            let set = load_scope(&scope_dir, problems);
            match scope {
                Scope::Landlord => sets.0 = set,
                Scope::Tenant => sets.1 = set,
            }
        }
    }

    let manifest_path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&manifest_path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            problems.push(&manifest_path, format!(
                "is missing; every module directory needs a {MANIFEST_FILE} with name and releases"
            ));
            return None;
        }
        Err(err) => {
            problems.push(&manifest_path, format!("cannot be read: {err}"));
            return None;
        }
    };
    let manifest = match manifest::parse(&text) {
        Ok(manifest) => manifest,
        Err(reason) => {
            problems.push(&manifest_path, reason);
            return None;
        }
    };
    let module =
        manifest::build_module(manifest, dir_name, &manifest_path, sets.0, sets.1, problems);
    Some(LoadedModule {
        module,
        manifest: manifest_path,
    })
}
