//! `landlord catalog test` as a module author's CI runs it: the real binary against the real PostgreSQL
//! (the admin role of the test environment, which has CREATEDB), on the shipped catalog and on catalogs
//! written here with one mistake per module. Each run must leave no scratch database behind; the runs are
//! serialised so that "none left" cannot be confused by another run's databases.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use support::{TestEnv, pg, repo_root};

static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Held while a run may have scratch databases: another test's failure does not poison the rest.
fn one_run_at_a_time() -> MutexGuard<'static, ()> {
    ONE_RUN_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `landlord catalog test modules --database-url <admin URL> <extra>` in `dir`, with the repository's core
/// migrations.
fn command(dir: &Path, url: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_landlord"));
    command
        .args(["catalog", "test", "modules", "--database-url", url])
        .args(extra)
        .current_dir(dir)
        .env("LANDLORD_MIGRATIONS_DIR", repo_root().join("migrations"))
        .env_remove("LANDLORD_MODULES_DIR")
        .env_remove("DATABASE_URL");
    command
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn finished(output: Output) -> Run {
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

/// Runs the test on `dir`'s `modules/` and checks that no scratch database is left afterwards.
fn catalog_test(dir: &Path) -> Run {
    let _one = one_run_at_a_time();
    let started = Instant::now();
    let run = finished(
        command(dir, TestEnv::get().admin_url(), &[])
            .output()
            .expect("run landlord"),
    );
    eprintln!(
        "catalog test of {} took {:.1}s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(scratch_databases(), Vec::<String>::new(), "left behind");
    run
}

fn scratch_databases() -> Vec<String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(pg::strings(
            "postgres",
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'landlord\\_test\\_%' ORDER BY 1",
        ))
}

/// A catalog under a temporary directory: `modules/<name>/...` files written by the test.
struct Catalog {
    dir: tempfile::TempDir,
}

impl Catalog {
    fn new() -> Catalog {
        Catalog {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `modules/<file>`.
    fn file(&self, file: &str, text: &str) -> &Catalog {
        let path: PathBuf = self.path().join("modules").join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        self
    }
}

#[test]
fn the_shipped_catalog_passes() {
    let run = catalog_test(&repo_root());
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("catalog test ok: 3 module(s) (digital_card, expenses, tasks); "),
        "{}",
        run.stdout
    );
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
}

/// One mistake per module, every kind the command must catch, in one run: each module is tested in its
/// own scratch database, so one module's mistake does not hide another's.
#[test]
fn every_broken_module_is_reported_with_its_file_and_reason() {
    let catalog = Catalog::new();
    // 1.1.0 adds two columns; the older one's down forgets its column (the newer one's runs first and is
    // right), so the blame must go to 2_add_color.down.sql.
    catalog
        .file(
            "a_forgets_column/module.yaml",
            "name: a_forgets_column\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n  - {version: \"1.1.0\", tenant: 3}\n",
        )
        .file(
            "a_forgets_column/tenant/1_create_items.up.sql",
            "CREATE TABLE a_items (id bigint PRIMARY KEY);\n",
        )
        .file(
            "a_forgets_column/tenant/1_create_items.down.sql",
            "DROP TABLE a_items;\n",
        )
        .file(
            "a_forgets_column/tenant/2_add_color.up.sql",
            "ALTER TABLE a_items ADD COLUMN color text;\nCREATE INDEX a_items_color_idx ON a_items (color);\n",
        )
        .file(
            "a_forgets_column/tenant/2_add_color.down.sql",
            "DROP INDEX a_items_color_idx;\n",
        )
        .file(
            "a_forgets_column/tenant/3_add_size.up.sql",
            "ALTER TABLE a_items ADD COLUMN size integer;\n",
        )
        .file(
            "a_forgets_column/tenant/3_add_size.down.sql",
            "ALTER TABLE a_items DROP COLUMN size;\n",
        );
    catalog
        .file(
            "b_forgets_table/module.yaml",
            "name: b_forgets_table\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n",
        )
        .file(
            "b_forgets_table/tenant/1_create_tables.up.sql",
            "CREATE TABLE b_one (id bigint);\nCREATE TABLE b_two (id bigint PRIMARY KEY);\n",
        )
        .file(
            "b_forgets_table/tenant/1_create_tables.down.sql",
            "DROP TABLE b_one;\n",
        );
    catalog
        .file(
            "c_up_fails/module.yaml",
            "name: c_up_fails\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n",
        )
        .file(
            "c_up_fails/tenant/1_create_items.up.sql",
            "CREATE TABLE c_items (id bigint);\nINSERT INTO c_missing VALUES (1);\n",
        )
        .file(
            "c_up_fails/tenant/1_create_items.down.sql",
            "DROP TABLE c_items;\n",
        );
    catalog
        .file(
            "d_down_fails/module.yaml",
            "name: d_down_fails\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n",
        )
        .file(
            "d_down_fails/tenant/1_create_items.up.sql",
            "CREATE TABLE d_items (id bigint);\n",
        )
        .file(
            "d_down_fails/tenant/1_create_items.down.sql",
            "DROP TABLE d_missing;\n",
        );
    // Outside a transaction, as the operator runs it; the down names the wrong index.
    catalog
        .file(
            "e_concurrent_index/module.yaml",
            "name: e_concurrent_index\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n  - {version: \"1.1.0\", tenant: 2}\n",
        )
        .file(
            "e_concurrent_index/tenant/1_create_items.up.sql",
            "CREATE TABLE e_items (id bigint, name text);\n",
        )
        .file(
            "e_concurrent_index/tenant/1_create_items.down.sql",
            "DROP TABLE e_items;\n",
        )
        .file(
            "e_concurrent_index/tenant/2_index_name.up.sql",
            "-- landlord:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS e_items_name_idx ON e_items (name);\n",
        )
        .file(
            "e_concurrent_index/tenant/2_index_name.down.sql",
            "-- landlord:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS e_items_nam_idx;\n",
        );
    // A row in the core ACL tables that the down leaves there.
    catalog
        .file(
            "f_seeds/module.yaml",
            "name: f_seeds\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n",
        )
        .file(
            "f_seeds/tenant/1_seed_permission.up.sql",
            "INSERT INTO permissions (name, module) VALUES ('f_seeds.view', 'f_seeds');\n",
        )
        .file("f_seeds/tenant/1_seed_permission.down.sql", "SELECT 1;\n");
    // The landlord scope is tested in a scratch landlord database.
    catalog
        .file(
            "g_landlord/module.yaml",
            "name: g_landlord\nreleases:\n  - {version: \"1.0.0\", landlord: 1}\n  - {version: \"1.1.0\", landlord: 2}\n",
        )
        .file(
            "g_landlord/landlord/1_create_settings.up.sql",
            "CREATE TABLE g_settings (key text NOT NULL, value text);\n",
        )
        .file(
            "g_landlord/landlord/1_create_settings.down.sql",
            "DROP TABLE g_settings;\n",
        )
        .file(
            "g_landlord/landlord/2_index_key.up.sql",
            "CREATE UNIQUE INDEX g_settings_key_idx ON g_settings (key);\n",
        )
        .file("g_landlord/landlord/2_index_key.down.sql", "SELECT 1;\n");
    // No down script: a note, not a problem.
    catalog
        .file(
            "h_irreversible/module.yaml",
            "name: h_irreversible\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n",
        )
        .file(
            "h_irreversible/tenant/1_create_items.up.sql",
            "CREATE TABLE h_items (id bigint);\n",
        );
    // The snapshot does not see collations; running the up again after the down does.
    catalog
        .file(
            "k_collation/module.yaml",
            "name: k_collation\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n  - {version: \"1.1.0\", tenant: 2}\n",
        )
        .file(
            "k_collation/tenant/1_create_names.up.sql",
            "CREATE TABLE k_names (body text);\n",
        )
        .file(
            "k_collation/tenant/1_create_names.down.sql",
            "DROP TABLE k_names;\n",
        )
        .file(
            "k_collation/tenant/2_create_collation.up.sql",
            "CREATE COLLATION k_names FROM \"C\";\n",
        )
        .file("k_collation/tenant/2_create_collation.down.sql", "SELECT 1;\n");
    // Needs j_base's table: passes only if j_base is installed first, although it sorts after it.
    catalog
        .file(
            "i_depends/module.yaml",
            "name: i_depends\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\ndependsOn:\n  - {module: j_base, version: \">=1.0.0\"}\n",
        )
        .file(
            "i_depends/tenant/1_create_refs.up.sql",
            "CREATE TABLE i_refs (thing_id bigint REFERENCES j_things (id));\n",
        )
        .file(
            "i_depends/tenant/1_create_refs.down.sql",
            "DROP TABLE i_refs;\n",
        );
    catalog
        .file(
            "j_base/module.yaml",
            "name: j_base\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n",
        )
        .file(
            "j_base/tenant/1_create_things.up.sql",
            "CREATE TABLE j_things (id bigint PRIMARY KEY);\n",
        )
        .file(
            "j_base/tenant/1_create_things.down.sql",
            "DROP TABLE j_things;\n",
        );

    let run = catalog_test(catalog.path());
    let expected = [
        "modules/a_forgets_column/tenant/2_add_color.down.sql: rolling back a_forgets_column 1.1.0 to 1.0.0 (tenant scope) does not restore the schema: column public.a_items.color is left over",
        "modules/b_forgets_table/tenant/1_create_tables.down.sql: rolling back b_forgets_table 1.0.0 to nothing (tenant scope) does not restore the schema: index public.b_two_pkey is left over; table public.b_two is left over",
        "modules/c_up_fails/tenant/1_create_items.up.sql: up failed installing c_up_fails 1.0.0 (tenant scope): relation \"c_missing\" does not exist (SQLSTATE 42P01, line 2)",
        "modules/d_down_fails/tenant/1_create_items.down.sql: down failed rolling back d_down_fails 1.0.0 to nothing (tenant scope): table \"d_missing\" does not exist (SQLSTATE 42P01)",
        "modules/e_concurrent_index/tenant/2_index_name.down.sql: rolling back e_concurrent_index 1.1.0 to 1.0.0 (tenant scope) does not restore the schema: index public.e_items_name_idx is left over",
        "modules/f_seeds/tenant/1_seed_permission.down.sql: rolling back f_seeds 1.0.0 to nothing (tenant scope) does not restore the schema: row count of public.permissions differs (expected `0`, found `1`)",
        "modules/g_landlord/landlord/2_index_key.down.sql: rolling back g_landlord 1.1.0 to 1.0.0 (landlord scope) does not restore the schema: index public.g_settings_key_idx is left over",
        "modules/k_collation/tenant/2_create_collation.up.sql: up failed installing k_collation 1.1.0 (tenant scope) again after its down migration: collation \"k_names\" already exists (SQLSTATE 42710)",
        "modules/h_irreversible/tenant/1_create_items.up.sql: note: has no down migration, so h_irreversible 1.0.0 (tenant scope) cannot be rolled back; its down migrations were not tested",
        "8 problem(s) found",
    ];
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        expected,
        "stderr: {}",
        run.stderr
    );
    assert_eq!(run.code, Some(1));
}

#[test]
fn a_clean_catalog_with_a_dependency_and_an_irreversible_migration_passes() {
    let catalog = Catalog::new();
    catalog
        .file(
            "a_needs_base/module.yaml",
            "name: a_needs_base\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\ndependsOn:\n  - {module: base}\n",
        )
        .file(
            "a_needs_base/tenant/1_create_refs.up.sql",
            "CREATE TABLE a_refs (thing_id bigint REFERENCES things (id));\n",
        )
        .file(
            "a_needs_base/tenant/1_create_refs.down.sql",
            "DROP TABLE a_refs;\n",
        )
        .file(
            "base/module.yaml",
            "name: base\nreleases:\n  - {version: \"1.0.0\", tenant: 1}\n  - {version: \"2.0.0\", tenant: 2}\n",
        )
        .file(
            "base/tenant/1_create_things.up.sql",
            "CREATE TABLE things (id bigint PRIMARY KEY);\n",
        )
        .file("base/tenant/1_create_things.down.sql", "DROP TABLE things;\n")
        .file(
            "base/tenant/2_drop_legacy.up.sql",
            "CREATE TABLE legacy (id bigint);\nDROP TABLE legacy;\n",
        );
    let run = catalog_test(catalog.path());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert_eq!(
        lines[0],
        "modules/base/tenant/2_drop_legacy.up.sql: note: has no down migration, so base 2.0.0 (tenant scope) cannot be rolled back; its down migrations were not tested"
    );
    assert!(
        lines[1].starts_with("catalog test ok: 2 module(s) (a_needs_base, base); "),
        "{}",
        lines[1]
    );
}

#[test]
fn a_catalog_that_does_not_load_gets_the_verdict_of_catalog_check() {
    let catalog = Catalog::new();
    catalog.file(
        "broken/module.yaml",
        "name: broken\nreleases:\n  - {version: \"1.0.0\", tenant: 7}\n",
    );
    let run = catalog_test(catalog.path());
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .starts_with("modules/broken/module.yaml: release 1.0.0 names tenant migration 7"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("problem(s) found\n"), "{}", run.stdout);
}

#[test]
fn a_server_it_cannot_reach_exits_2() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("postgres://nobody:secret-pw@127.0.0.1:{port}/postgres");
    let run = finished(
        command(&repo_root(), &url, &[])
            .output()
            .expect("run landlord"),
    );
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("could not connect to database postgres"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("secret-pw"), "{}", run.stderr);
}

#[test]
fn an_extension_the_server_lacks_exits_2_and_drops_what_it_made() {
    let _one = one_run_at_a_time();
    let run = finished(
        command(
            &repo_root(),
            TestEnv::get().admin_url(),
            &["--extension", "no_such_extension"],
        )
        .output()
        .expect("run landlord"),
    );
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("no_such_extension"), "{}", run.stderr);
    assert_eq!(scratch_databases(), Vec::<String>::new(), "left behind");
}

#[test]
fn ctrl_c_stops_the_run_and_drops_its_scratch_databases() {
    let _one = one_run_at_a_time();
    let child = command(&repo_root(), TestEnv::get().admin_url(), &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start landlord");
    let deadline = Instant::now() + Duration::from_secs(30);
    while scratch_databases().is_empty() {
        assert!(Instant::now() < deadline, "no scratch database appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    // What a terminal's Ctrl-C sends.
    let interrupted = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    let run = finished(child.wait_with_output().expect("wait"));
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("interrupted"), "{}", run.stderr);
    assert_eq!(scratch_databases(), Vec::<String>::new(), "left behind");
}

#[test]
fn a_role_without_createdb_exits_2() {
    // The landlord role of the test environment owns its database but may not create one.
    let run = finished(
        command(&repo_root(), TestEnv::get().landlord_url(), &[])
            .output()
            .expect("run landlord"),
    );
    assert_eq!(run.code, Some(2), "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("permission denied to create database"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_core_down_that_forgets_a_table_is_reported_and_modules_skip_that_scope() {
    let catalog = Catalog::new();
    let core = catalog.path().join("migrations");
    for (file, text) in [
        (
            "landlord/1_create_platform.up.sql",
            "CREATE TABLE platform (id bigint);\n",
        ),
        (
            "landlord/1_create_platform.down.sql",
            "DROP TABLE platform;\n",
        ),
        (
            "tenant/1_create_base.up.sql",
            "CREATE TABLE base (id bigint);\nCREATE TABLE extra (id bigint);\n",
        ),
        ("tenant/1_create_base.down.sql", "DROP TABLE base;\n"),
    ] {
        let path = core.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    catalog
        .file(
            "both/module.yaml",
            "name: both\nreleases:\n  - {version: \"1.0.0\", landlord: 10, tenant: 10}\n",
        )
        .file(
            "both/landlord/10_create_settings.up.sql",
            "CREATE TABLE both_settings (platform_id bigint);\n",
        )
        .file(
            "both/landlord/10_create_settings.down.sql",
            "DROP TABLE both_settings;\n",
        )
        .file(
            "both/tenant/10_create_items.up.sql",
            "CREATE TABLE both_items (id bigint);\n",
        )
        .file(
            "both/tenant/10_create_items.down.sql",
            "DROP TABLE both_items;\n",
        );
    let _one = one_run_at_a_time();
    let run = finished(
        command(catalog.path(), TestEnv::get().admin_url(), &[])
            .env("LANDLORD_MIGRATIONS_DIR", "migrations")
            .output()
            .expect("run landlord"),
    );
    assert_eq!(scratch_databases(), Vec::<String>::new(), "left behind");
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        [
            "migrations/tenant/1_create_base.down.sql: rolling back core 1 to nothing (tenant scope) does not restore the schema: table public.extra is left over",
            "modules/both/tenant: note: not tested: the core tenant migrations failed",
            "1 problem(s) found",
        ],
        "stderr: {}",
        run.stderr
    );
    assert_eq!(run.code, Some(1));
}
