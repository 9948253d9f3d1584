//! `landlord catalog check [DIR]`: the loader's verdict as text for a module author or a CI job.

use std::fmt;
use std::path::{Path, PathBuf};

use super::model::{Catalog, Scope};
use super::problem::CatalogErrors;

pub const MODULES_DIR_ENV: &str = "LANDLORD_MODULES_DIR";
pub const MIGRATIONS_DIR_ENV: &str = "LANDLORD_MIGRATIONS_DIR";

/// The modules and core migrations directories to check: DIR, else `LANDLORD_MODULES_DIR`, else
/// `./modules`; `LANDLORD_MIGRATIONS_DIR`, else `./migrations` (the development layout, not the image's).
pub fn check_dirs(dir: Option<PathBuf>) -> (PathBuf, PathBuf) {
    let from_env = |name: &str, default: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let modules_dir = dir.unwrap_or_else(|| from_env(MODULES_DIR_ENV, "modules"));
    (modules_dir, from_env(MIGRATIONS_DIR_ENV, "migrations"))
}

/// What `catalog check` prints: a one-line summary, or every problem as `<file>: <reason>` (sorted) and
/// their count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    pub lines: Vec<String>,
    pub problem_count: usize,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problem_count == 0
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.lines.iter().try_for_each(|line| writeln!(f, "{line}"))
    }
}

/// Loads the catalog and renders the verdict, with paths relative to the current directory when they lie
/// under it.
pub fn check(modules_dir: &Path, migrations_dir: &Path) -> CheckReport {
    let cwd = std::env::current_dir().ok();
    report(Catalog::load(modules_dir, migrations_dir), cwd.as_deref())
}

fn report(result: Result<Catalog, CatalogErrors>, cwd: Option<&Path>) -> CheckReport {
    match result {
        Ok(catalog) => CheckReport {
            lines: vec![summary(&catalog)],
            problem_count: 0,
        },
        Err(errors) => {
            let mut lines: Vec<(String, &str)> = errors
                .problems
                .iter()
                .map(|p| (relative(&p.file, cwd), p.reason.as_str()))
                .collect();
            lines.sort();
            let count = lines.len();
            let mut lines: Vec<String> = lines
                .into_iter()
                .map(|(file, reason)| format!("{file}: {reason}"))
                .collect();
            lines.push(format!("{count} problem(s) found"));
            CheckReport {
                lines,
                problem_count: count,
            }
        }
    }
}

pub(crate) fn relative(path: &Path, cwd: Option<&Path>) -> String {
    let shown = cwd
        .filter(|_| path.is_absolute())
        .and_then(|cwd| path.strip_prefix(cwd).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(path);
    shown.display().to_string()
}

/// `catalog ok: 3 modules (digital_card, expenses, tasks); migrations: core landlord 2, core tenant 3, ...`
pub fn summary(catalog: &Catalog) -> String {
    let names: Vec<&str> = catalog.modules.keys().map(String::as_str).collect();
    let module_count = |scope: Scope| -> usize {
        catalog
            .modules
            .values()
            .map(|m| m.migrations(scope).migrations.len())
            .sum()
    };
    format!(
        "catalog ok: {} module(s) ({}); migrations: core landlord {}, core tenant {}, module landlord {}, module tenant {}",
        names.len(),
        names.join(", "),
        catalog.core(Scope::Landlord).migrations.len(),
        catalog.core(Scope::Tenant).migrations.len(),
        module_count(Scope::Landlord),
        module_count(Scope::Tenant),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::problem::Problem;

    #[test]
    fn problems_are_relative_sorted_and_counted() {
        let errors = CatalogErrors::new(vec![
            Problem::new("/work/x/modules/b/module.yaml", "second"),
            Problem::new("/elsewhere/a.up.sql", "outside"),
            Problem::new("/work/x/modules/a/module.yaml", "first"),
            Problem::new("modules/c", "already relative"),
        ]);
        let report = report(Err(errors), Some(Path::new("/work/x")));
        assert_eq!(report.problem_count, 4);
        assert!(!report.is_clean());
        assert_eq!(
            report.to_string(),
            "/elsewhere/a.up.sql: outside\n\
             modules/a/module.yaml: first\n\
             modules/b/module.yaml: second\n\
             modules/c: already relative\n\
             4 problem(s) found\n"
        );
    }

    #[test]
    fn a_clean_catalog_is_one_line() {
        let report = report(Ok(Catalog::default()), None);
        assert!(report.is_clean());
        assert_eq!(report.lines.len(), 1);
        assert!(
            report.lines[0].starts_with("catalog ok: 0 module(s)"),
            "{report}"
        );
    }
}
