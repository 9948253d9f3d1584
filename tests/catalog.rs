//! The module catalog from files: the shipped `modules/` and `migrations/` load cleanly, and every broken
//! fixture under `tests/fixtures/catalog/` is reported with the exact file and reason, by the library and by
//! `landlord catalog check`.

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;

use landlord::catalog::{Catalog, CatalogErrors, Problem, Scope};
use sha2::{Digest, Sha256};
use support::catalog::copy_dir;

fn repo() -> PathBuf {
    support::repo_root()
}

fn fixture(case: &str) -> PathBuf {
    repo().join("tests/fixtures/catalog").join(case)
}

/// A fixture's modules and core migrations directories: the repository's core migrations unless the
/// fixture brings its own.
fn fixture_dirs(case: &str) -> (PathBuf, PathBuf) {
    let root = fixture(case);
    if root.join("migrations").is_dir() {
        (root.join("modules"), root.join("migrations"))
    } else {
        (root, repo().join("migrations"))
    }
}

fn load_fixture(case: &str) -> CatalogErrors {
    let (modules, migrations) = fixture_dirs(case);
    match Catalog::load(&modules, &migrations) {
        Ok(catalog) => panic!(
            "fixture {case} loaded without problems: {:?}",
            catalog.modules.keys()
        ),
        Err(errors) => errors,
    }
}

fn listing(problems: &[&Problem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// Each expected (file under `root`, phrase of the reason) matches its own problem, and nothing else is
/// reported.
fn assert_problems(errors: &CatalogErrors, root: &Path, expected: &[(&str, &str)]) {
    let mut left: Vec<&Problem> = errors.problems.iter().collect();
    for (file, phrase) in expected {
        let file = root.join(file);
        let Some(i) = left
            .iter()
            .position(|p| p.file == file && p.reason.contains(phrase))
        else {
            panic!(
                "expected a problem on {} containing {phrase:?}; reported:{}",
                file.display(),
                listing(&errors.problems.iter().collect::<Vec<_>>())
            );
        };
        left.remove(i);
    }
    assert!(left.is_empty(), "unexpected problems:{}", listing(&left));
}

fn check_case(case: &str, expected: &[(&str, &str)]) {
    let errors = load_fixture(case);
    let (modules, _) = fixture_dirs(case);
    assert_problems(&errors, &modules, expected);
}

#[test]
fn shipped_catalog_loads_cleanly() {
    let catalog = match Catalog::load(&repo().join("modules"), &repo().join("migrations")) {
        Ok(catalog) => catalog,
        Err(errors) => panic!(
            "{errors}:{}",
            listing(&errors.problems.iter().collect::<Vec<_>>())
        ),
    };
    assert_eq!(
        catalog.modules.keys().collect::<Vec<_>>(),
        ["digital_card", "expenses", "tasks"]
    );
    assert_eq!(catalog.core(Scope::Landlord).migrations.len(), 8);
    assert_eq!(catalog.core(Scope::Tenant).migrations.len(), 3);

    let expenses = catalog.module("expenses").expect("expenses");
    let versions: Vec<String> = expenses
        .releases
        .iter()
        .map(|r| r.version.to_string())
        .collect();
    assert_eq!(versions, ["1.0.0", "1.1.0"]);
    // An upgrade has migrations to run: 1.1.0 reaches further than 1.0.0 in the tenant scope.
    let (old, new) = (&expenses.releases[0], &expenses.releases[1]);
    assert!(old.target(Scope::Tenant) < new.target(Scope::Tenant));
    assert_eq!(new.target(Scope::Tenant), expenses.tenant.latest());
    assert_eq!(new.target(Scope::Landlord), None);
    assert!(expenses.landlord.is_empty());
    assert_eq!(expenses.depends_on[0].module, "tasks");
    assert_eq!(
        expenses.permissions,
        [
            "expenses.create",
            "expenses.delete",
            "expenses.edit",
            "expenses.view"
        ]
    );
    assert_eq!(expenses.roles["expenses_manager"].len(), 4);

    // Every shipped migration can be rolled back, and the file-level facts match the files.
    for module in catalog.modules.values() {
        for scope in [Scope::Landlord, Scope::Tenant] {
            for migration in &module.migrations(scope).migrations {
                let bytes = std::fs::read(&migration.up.path).expect("read up file");
                assert_eq!(migration.checksum, <[u8; 32]>::from(Sha256::digest(&bytes)));
                assert!(
                    migration.down.is_some(),
                    "{} has no down file",
                    migration.up.path.display()
                );
                let first_line = String::from_utf8(bytes)
                    .expect("utf-8")
                    .lines()
                    .next()
                    .map(str::to_owned);
                assert_eq!(
                    migration.up.no_transaction,
                    first_line.as_deref() == Some("-- landlord:no-transaction"),
                    "{}",
                    migration.up.path.display()
                );
            }
        }
    }
    // The sample exercises a no-transaction migration in both directions.
    let index = expenses
        .tenant
        .migrations
        .last()
        .expect("expenses migrations");
    assert!(index.up.no_transaction);
    assert!(index.down.as_ref().is_some_and(|d| d.no_transaction));

    let digital_card = catalog.module("digital_card").expect("digital_card");
    let release = digital_card.newest_release().expect("a release");
    assert_eq!(
        release.target(Scope::Landlord),
        digital_card.landlord.latest()
    );
    assert_eq!(release.target(Scope::Tenant), digital_card.tenant.latest());

    assert_eq!(
        catalog.topological_order(),
        Ok(vec!["digital_card", "tasks", "expenses"])
    );
    assert_eq!(
        catalog.dependents("tasks", ["expenses", "digital_card"]),
        ["expenses"]
    );
}

#[test]
fn bad_file_names() {
    check_case(
        "bad_file_names",
        &[
            (
                "notes/tenant/create_notes_v2.up.sql",
                "version `create` that is not an integer",
            ),
            (
                "notes/tenant/20250301000002_Add-Title.up.sql",
                "rename it like `20250301000002_add_title.up.sql`",
            ),
            ("notes/tenant/README.txt", "is not a migration file"),
            ("notes/tenant/old", "is a directory"),
        ],
    );
}

#[test]
fn duplicate_versions() {
    check_case(
        "duplicate_versions",
        &[
            (
                "dup/tenant/20250301000001_create_dup_a.up.sql",
                "shares version 20250301000001 with 020250301000001_create_dup_b.up.sql",
            ),
            (
                "dup/tenant/020250301000001_create_dup_b.up.sql",
                "shares version 20250301000001 with 20250301000001_create_dup_a.up.sql",
            ),
        ],
    );
}

#[test]
fn down_without_up() {
    check_case(
        "down_without_up",
        &[
            (
                "m/tenant/20250301000002_add_x.down.sql",
                "down migration without its up migration",
            ),
            (
                "m/tenant/20250301000001_create_other.down.sql",
                "add `20250301000001_create_other.up.sql`",
            ),
        ],
    );
}

#[test]
fn unparseable_manifest() {
    // `consumer` depends on both broken modules: that is not reported again as an unknown module.
    check_case(
        "unparseable_manifest",
        &[
            ("bad_yaml/module.yaml", "at line 4 column"),
            ("typo/module.yaml", "unknown field `depends_on`"),
        ],
    );
}

#[test]
fn bad_module_names() {
    check_case(
        "bad_module_names",
        &[
            (
                "billing/module.yaml",
                "module name `invoices` does not match its directory `billing`",
            ),
            (
                "Bad-Name/module.yaml",
                "module name `Bad-Name` is not lowercase",
            ),
            ("core/module.yaml", "`core` is reserved"),
        ],
    );
}

#[test]
fn release_order() {
    check_case(
        "release_order",
        &[
            (
                "m/module.yaml",
                "release 1.0.0 is listed after release 1.1.0 but is not newer",
            ),
            ("m/module.yaml", "release `2.0` is not a semantic version"),
        ],
    );
}

#[test]
fn release_unknown_migration() {
    check_case(
        "release_unknown_migration",
        &[
            (
                "m/module.yaml",
                "names tenant migration 20250301000009, which does not exist",
            ),
            (
                "m/module.yaml",
                "names landlord migration 20250301000001, which does not exist in landlord/ (the module has no landlord migrations)",
            ),
        ],
    );
}

#[test]
fn release_backwards() {
    check_case(
        "release_backwards",
        &[(
            "m/module.yaml",
            "release 1.1.0 moves the tenant target back from 20250301000002 to 20250301000001",
        )],
    );
}

#[test]
fn unreleased_migration() {
    check_case(
        "unreleased_migration",
        &[
            (
                "m/tenant/20250301000002_create_m2.up.sql",
                "is not part of any release",
            ),
            (
                "m/landlord/20250301000001_create_m_settings.up.sql",
                "no release includes the landlord scope",
            ),
        ],
    );
}

#[test]
fn unknown_dependency() {
    check_case(
        "unknown_dependency",
        &[(
            "m/module.yaml",
            "dependsOn names module `payroll`, which is not in the catalog",
        )],
    );
}

#[test]
fn dependency_cycle() {
    // `d` depends on the cycle without being part of it: one problem per cycle, none for `d`.
    check_case(
        "dependency_cycle",
        &[
            ("a/module.yaml", "cycle: a -> b -> a;"),
            ("c/module.yaml", "cycle: c -> c;"),
        ],
    );
}

#[test]
fn unsatisfiable_dependency() {
    check_case(
        "unsatisfiable_dependency",
        &[(
            "consumer/module.yaml",
            "requires `base` at `>=2.0.0`, which no release satisfies (its releases are 1.0.0, 1.1.0)",
        )],
    );
}

#[test]
fn malformed_requirement() {
    check_case(
        "malformed_requirement",
        &[(
            "consumer/module.yaml",
            "requirement `>>1` that is not a valid semver requirement",
        )],
    );
}

#[test]
fn no_transaction_statements() {
    // The dollar-quoted DO block and the commented down file hold one statement each: not reported.
    check_case(
        "no_transaction_statements",
        &[
            (
                "m/tenant/20250301000002_index_m.up.sql",
                "holds 2 statements",
            ),
            // One statement, but nothing says it can run again after a crash.
            (
                "m/tenant/20250301000003_vacuum_m.up.sql",
                "may not be run again safely after a crash",
            ),
        ],
    );
}

#[test]
fn unsafe_no_transaction() {
    check_case(
        "unsafe_no_transaction",
        &[
            (
                "m/tenant/20250301000002_index_m.up.sql",
                "without IF NOT EXISTS",
            ),
            (
                "m/tenant/20250301000002_index_m.up.sql",
                "`-- landlord:lock-timeout=soon`: `soon` is not a number",
            ),
            (
                "m/tenant/20250301000002_index_m.down.sql",
                "may not be run again safely after a crash",
            ),
            (
                "m/tenant/20250301000003_add_b.up.sql",
                "unknown header `-- landlord:retries`",
            ),
        ],
    );
}

#[test]
fn misplaced_no_transaction_marker() {
    check_case(
        "misplaced_no_transaction_marker",
        &[(
            "m/tenant/20250301000002_index_m.up.sql",
            "not as its exact first line",
        )],
    );
}

#[test]
fn empty_migration() {
    check_case(
        "empty_migration",
        &[
            ("m/tenant/20250301000002_add_nothing.up.sql", "is empty"),
            ("m/tenant/20250301000002_add_nothing.down.sql", "is empty"),
        ],
    );
}

#[test]
fn role_undeclared_permission() {
    check_case(
        "role_undeclared_permission",
        &[(
            "m/module.yaml",
            "role `m_manager` grants permission `m.approve`, which the module does not declare",
        )],
    );
}

#[test]
fn duplicate_permissions() {
    check_case(
        "duplicate_permissions",
        &[
            (
                "m/module.yaml",
                "permission `m.view` is declared more than once",
            ),
            (
                "m/module.yaml",
                "role `m_viewer` lists permission `m.view` more than once",
            ),
        ],
    );
}

#[test]
fn bad_permission_names() {
    check_case(
        "bad_permission_names",
        &[
            (
                "m/module.yaml",
                "permission `View` is not named like `expenses.view`",
            ),
            ("m/module.yaml", "permission `m` is not named like"),
            ("m/module.yaml", "permission `m.Edit` is not named like"),
        ],
    );
}

#[test]
fn no_releases() {
    // Its migration is not also reported as unreleased: the missing release says it all.
    check_case("no_releases", &[("m/module.yaml", "declares no releases")]);
}

#[test]
fn missing_manifest() {
    check_case(
        "missing_manifest",
        &[
            ("m/module.yaml", "is missing"),
            (
                "m/tenant/2025_Bad.up.sql",
                "rename it like `2025_bad.up.sql`",
            ),
        ],
    );
}

#[test]
fn shared_names() {
    check_case(
        "shared_names",
        &[
            (
                "one/module.yaml",
                "permission `shared.view` is also declared by module two",
            ),
            (
                "two/module.yaml",
                "permission `shared.view` is also declared by module one",
            ),
            (
                "one/module.yaml",
                "role `shared_admin` is also declared by module two",
            ),
            (
                "two/module.yaml",
                "role `shared_admin` is also declared by module one",
            ),
        ],
    );
}

#[test]
fn stray_entries() {
    check_case(
        "stray_entries",
        &[
            ("README.txt", "is not a module directory"),
            ("m/migrations", "is not part of a module"),
            ("m/landlord", "landlord/ must be a directory"),
        ],
    );
}

#[test]
fn core_problems() {
    let errors = load_fixture("core_problems");
    assert_problems(
        &errors,
        &fixture("core_problems/migrations"),
        &[
            (
                "landlord/20250101000002_Create_Modules.up.sql",
                "rename it like",
            ),
            (
                "tenant",
                "the core tenant migrations directory does not exist",
            ),
        ],
    );
}

#[test]
fn every_fixture_is_tested() {
    let mut cases: Vec<String> = std::fs::read_dir(repo().join("tests/fixtures/catalog"))
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    let source = include_str!("catalog.rs");
    for case in cases {
        assert!(
            source.contains(&format!("\"{case}\"")),
            "fixture {case} has no test"
        );
        // And every fixture is broken: a clean one would test nothing.
        load_fixture(&case);
    }
}

// Fixtures built in a temporary directory from the shipped catalog.

fn shipped_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo().join("modules"), &dir.path().join("modules"));
    copy_dir(&repo().join("migrations"), &dir.path().join("migrations"));
    dir
}

fn load_copy(dir: &Path) -> CatalogErrors {
    Catalog::load(&dir.join("modules"), &dir.join("migrations")).expect_err("a broken catalog")
}

#[test]
fn removing_a_dependency_is_reported_on_its_dependent() {
    let dir = shipped_copy();
    std::fs::remove_dir_all(dir.path().join("modules/tasks")).expect("remove tasks");
    let errors = load_copy(dir.path());
    assert_problems(
        &errors,
        &dir.path().join("modules"),
        &[(
            "expenses/module.yaml",
            "dependsOn names module `tasks`, which is not in the catalog",
        )],
    );
}

#[test]
fn dropping_a_release_leaves_its_migrations_unreleased() {
    let dir = shipped_copy();
    let manifest = dir.path().join("modules/expenses/module.yaml");
    let text = std::fs::read_to_string(&manifest).expect("read manifest");
    let start = text
        .find("  - version: \"1.1.0\"")
        .expect("release 1.1.0 in the sample");
    let end = text.find("dependsOn:").expect("dependsOn in the sample");
    std::fs::write(&manifest, format!("{}{}", &text[..start], &text[end..]))
        .expect("write manifest");

    let errors = load_copy(dir.path());
    let expenses = tenant_up_files(dir.path(), "expenses", "2025110");
    assert_eq!(expenses.len(), 2, "the sample's 1.1.0 migrations");
    let expected: Vec<(&str, &str)> = expenses
        .iter()
        .map(|f| (f.as_str(), "is not part of any release"))
        .collect();
    assert_problems(&errors, &dir.path().join("modules"), &expected);
}

/// Up files of a module's tenant scope whose name starts with `prefix`, relative to the modules dir.
fn tenant_up_files(root: &Path, module: &str, prefix: &str) -> Vec<String> {
    let mut files: Vec<String> =
        std::fs::read_dir(root.join("modules").join(module).join("tenant"))
            .expect("read tenant dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix) && n.ends_with(".up.sql"))
            .map(|n| format!("{module}/tenant/{n}"))
            .collect();
    files.sort();
    files
}

#[test]
fn missing_directories_are_problems() {
    let dir = tempfile::tempdir().expect("tempdir");
    let errors = Catalog::load(
        &dir.path().join("no_modules"),
        &dir.path().join("no_migrations"),
    )
    .expect_err("nothing there");
    assert_problems(
        &errors,
        dir.path(),
        &[
            ("no_modules", "the modules directory does not exist"),
            (
                "no_migrations",
                "the core migrations directory does not exist",
            ),
        ],
    );
}

// The binary, as a module author or CI runs it.

fn landlord(args: &[&str], envs: &[(&str, &Path)]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_landlord"));
    command
        .args(args)
        .current_dir(repo())
        .env_remove("LANDLORD_MODULES_DIR")
        .env_remove("LANDLORD_MIGRATIONS_DIR");
    for (name, value) in envs {
        command.env(name, value);
    }
    let output = command.output().expect("run landlord");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 stdout");
    (output.status.code().expect("exit code"), stdout)
}

#[test]
fn check_prints_every_problem_and_fails() {
    let case = "tests/fixtures/catalog/several_problems";
    let (code, stdout) = landlord(&["catalog", "check", case], &[]);
    assert_eq!(code, 1, "{stdout}");

    let expected = [
        (
            "alpha/module.yaml",
            "dependsOn forms a cycle: alpha -> beta -> alpha",
        ),
        (
            "alpha/module.yaml",
            "dependsOn names module `ghost`, which is not in the catalog",
        ),
        (
            "alpha/module.yaml",
            "role `alpha_admin` grants permission `alpha.edit`",
        ),
        (
            "alpha/tenant/20250301000002_drop_thing.down.sql",
            "down migration without its up migration",
        ),
        (
            "beta/tenant/2025-03-01_fix.up.sql",
            "version `2025-03-01` that is not an integer",
        ),
        (
            "beta/tenant/20250301000002_index_beta.up.sql",
            "holds 2 statements",
        ),
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    for (file, phrase) in expected {
        let prefix = format!("{case}/{file}: ");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains(phrase)),
            "missing `{prefix}…{phrase}…` in:\n{stdout}"
        );
    }
    assert_eq!(
        lines.last(),
        Some(&format!("{} problem(s) found", expected.len()).as_str()),
        "{stdout}"
    );
    assert_eq!(lines.len(), expected.len() + 1, "{stdout}");
    let mut problem_lines = lines[..expected.len()].to_vec();
    problem_lines.sort();
    assert_eq!(
        problem_lines,
        lines[..expected.len()],
        "problems are printed sorted"
    );

    // The binary reports exactly what the library finds.
    let errors = load_fixture("several_problems");
    assert_eq!(errors.problems.len(), expected.len());
}

#[test]
fn check_passes_on_the_shipped_catalog() {
    let (code, stdout) = landlord(&["catalog", "check"], &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.starts_with("catalog ok: 3 module(s) (digital_card, expenses, tasks)"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn check_reads_its_directories_from_the_environment() {
    let modules = fixture("unknown_dependency");
    let (code, stdout) = landlord(&["catalog", "check"], &[("LANDLORD_MODULES_DIR", &modules)]);
    assert_eq!(code, 1, "{stdout}");
    // An absolute path under the current directory is printed relative to it.
    assert!(
        stdout.contains("tests/fixtures/catalog/unknown_dependency/m/module.yaml: dependsOn names module `payroll`"),
        "{stdout}"
    );
    assert!(!stdout.contains(&repo().display().to_string()), "{stdout}");

    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    let (code, stdout) = landlord(
        &["catalog", "check", "modules"],
        &[("LANDLORD_MIGRATIONS_DIR", &missing)],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}: the core migrations directory does not exist",
            missing.display()
        )),
        "{stdout}"
    );
    assert!(stdout.ends_with("1 problem(s) found\n"), "{stdout}");
}
