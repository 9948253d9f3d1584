//! docs/modules.md, the module author guide, replayed as a reader would follow it: every fenced block marked
//! with a file path (```` ```sql title="modules/notes/…" ````) is written into an empty directory, in the
//! order the guide gives them (a later block of the same path replaces the file), and every ```` ```sh test ````
//! block is run there with the real `landlord` binary, its stdout compared with the ```` ```text output ````
//! block that follows it. Then the CI script of the guide runs on the result, and its GitHub Actions job is
//! parsed. A guide that stops working fails here.
//!
//! The database is the test environment's PostgreSQL, as in tests/catalog_test.rs; the commands run as a role
//! made here with `LOGIN CREATEDB` and nothing more, the role the guide tells readers to create.

mod support;

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use support::{TestEnv, pg, repo_root, unique, unique_slug};

const GUIDE: &str = "docs/modules.md";

/// One fenced code block of the guide.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence, for messages.
    line: usize,
    /// The info string's first word (`sql`, `sh`, `text`, …).
    lang: String,
    /// Its other bare words (`test`, `output`, `tree`).
    flags: Vec<String>,
    /// `title="<path>"`: a file of the walkthrough.
    title: Option<String>,
    body: String,
    /// The last non-empty line before the fence: what a reader on GitHub sees as the block's caption.
    caption: String,
}

impl Block {
    fn is(&self, lang: &str, flag: &str) -> bool {
        self.lang == lang && self.flags.iter().any(|f| f == flag)
    }
}

/// Every top-level fenced block (```` ``` ```` fences) of `markdown`, in order.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines().enumerate();
    let mut caption = String::new();
    while let Some((index, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            if !line.trim().is_empty() {
                caption = line.to_string();
            }
            continue;
        };
        let mut words = info.split_whitespace();
        let lang = words.next().unwrap_or_default().to_string();
        let mut flags = Vec::new();
        let mut title = None;
        for word in words {
            match word.strip_prefix("title=") {
                Some(value) => title = Some(value.trim_matches('"').to_string()),
                None => flags.push(word.to_string()),
            }
        }
        let mut body = String::new();
        let mut closed = false;
        for (_, line) in lines.by_ref() {
            if line == "```" {
                closed = true;
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        assert!(
            closed,
            "{GUIDE}:{}: a code block that is never closed",
            index + 1
        );
        blocks.push(Block {
            line: index + 1,
            lang,
            flags,
            title,
            body,
            caption: std::mem::take(&mut caption),
        });
    }
    blocks
}

/// A role like the one the guide has readers create (`LOGIN CREATEDB`, no superuser, no CREATEROLE), on the
/// test environment's server; dropped, with any scratch database it still owns, when the test ends.
struct CiRole {
    name: String,
    url: String,
}

impl CiRole {
    fn create() -> CiRole {
        let name = unique_slug("docs_ci");
        let password = unique("pw");
        let server = PgConnectOptions::from_str(TestEnv::get().superuser_url()).expect("URL");
        let url = format!(
            "postgres://{name}:{password}@{}:{}/postgres",
            server.get_host(),
            server.get_port()
        );
        // The test server revokes PUBLIC's CONNECT on `postgres`, as docs/operations.md advises; the
        // guide's CI server (a fresh container) keeps PostgreSQL's default.
        superuser(&[
            format!(
                "CREATE ROLE {name} LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD '{password}'"
            ),
            format!("GRANT CONNECT ON DATABASE postgres TO {name}"),
        ]);
        CiRole { name, url }
    }

    /// Scratch databases `landlord catalog test` made as this role and left behind.
    fn scratch_databases(&self) -> Vec<String> {
        runtime().block_on(async {
            let mut conn = pg::connect("postgres").await;
            sqlx::query_scalar(
                "SELECT d.datname::text FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
                 WHERE r.rolname = $1 ORDER BY 1",
            )
            .bind(&self.name)
            .fetch_all(&mut conn)
            .await
            .expect("list databases")
        })
    }
}

impl Drop for CiRole {
    fn drop(&mut self) {
        let mut statements: Vec<String> = self
            .scratch_databases()
            .iter()
            .map(|db| format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
            .collect();
        statements.push(format!(
            "REVOKE CONNECT ON DATABASE postgres FROM {}",
            self.name
        ));
        statements.push(format!("DROP ROLE IF EXISTS {}", self.name));
        superuser(&statements);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn superuser(statements: &[String]) {
    runtime().block_on(async {
        let mut conn = pg::connect("postgres").await;
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    });
}

/// The walkthrough's directory and the environment a reader has set up by then: `landlord` from the guide's
/// Landlord checkout (here: this build and this repository's core migrations) and `DATABASE_URL`.
struct Reader<'a> {
    dir: &'a Path,
    role: &'a CiRole,
}

impl Reader<'_> {
    fn write(&self, block: &Block, path: &str) {
        let relative = Path::new(path);
        assert!(
            relative
                .components()
                .all(|c| matches!(c, Component::Normal(_))),
            "{GUIDE}:{}: title {path:?} must be a relative path inside the walkthrough directory",
            block.line
        );
        assert!(
            block.caption.contains(&format!("`{path}`")),
            "{GUIDE}:{}: the line before the block must name its file as `{path}`, for readers on GitHub \
             (which does not show the title); it says: {}",
            block.line,
            block.caption
        );
        let file = self.dir.join(relative);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        std::fs::write(&file, &block.body).expect("write");
    }

    /// Runs the one `landlord …` command of a `sh test` block.
    fn run(&self, block: &Block) -> Output {
        let lines: Vec<&str> = block
            .body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        let [command] = lines[..] else {
            panic!(
                "{GUIDE}:{}: a `sh test` block holds exactly one command",
                block.line
            );
        };
        assert!(
            !command.contains(['"', '\'', '$', '|', '>', '<', ';', '&', '#']),
            "{GUIDE}:{}: a `sh test` command is split on spaces here, so no quoting or shell syntax: {command}",
            block.line
        );
        let mut words = command.split_whitespace();
        assert_eq!(
            words.next(),
            Some("landlord"),
            "{GUIDE}:{}: a `sh test` block runs landlord",
            block.line
        );
        Command::new(env!("CARGO_BIN_EXE_landlord"))
            .args(words)
            .current_dir(self.dir)
            .env("LANDLORD_MIGRATIONS_DIR", repo_root().join("migrations"))
            .env("DATABASE_URL", &self.role.url)
            .env_remove("LANDLORD_MODULES_DIR")
            .output()
            .expect("run landlord")
    }
}

/// A run's duration (`… in 1.2s` at the end of `catalog test ok: …`) differs every time.
fn without_duration(line: &str) -> String {
    if let Some((head, tail)) = line.rsplit_once(" in ")
        && let Some(seconds) = tail.strip_suffix('s')
        && seconds.parse::<f64>().is_ok()
    {
        return format!("{head} in …s");
    }
    line.to_string()
}

fn lines_of(text: &str) -> Vec<String> {
    text.lines().map(without_duration).collect()
}

/// The file paths a `text tree` block draws (`├── name`, four columns per level), relative to its root.
fn tree_files(tree: &str) -> BTreeSet<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut files = BTreeSet::new();
    for line in tree.lines().skip(1) {
        let Some(at) = line.find("── ") else {
            continue;
        };
        let depth = line[..at].chars().count() / 4;
        let name = &line[at + "── ".len()..];
        stack.truncate(depth);
        match name.strip_suffix('/') {
            Some(dir) => stack.push(dir.to_string()),
            None => {
                let mut path = stack.join("/");
                path.push('/');
                path.push_str(name);
                files.insert(path);
            }
        }
    }
    files
}

#[test]
fn the_module_guide_walkthrough_works_as_written() {
    let guide = std::fs::read_to_string(repo_root().join(GUIDE)).expect("read the guide");
    let blocks = blocks(&guide);
    let dir = tempfile::tempdir().expect("tempdir");
    let role = CiRole::create();
    let reader = Reader {
        dir: dir.path(),
        role: &role,
    };

    let mut written = BTreeSet::new();
    let (mut commands, mut outputs) = (0, 0);
    let mut index = 0;
    while index < blocks.len() {
        let block = &blocks[index];
        index += 1;
        if let Some(path) = &block.title {
            reader.write(block, path);
            written.insert(path.clone());
            continue;
        }
        assert!(
            !block.is("text", "output"),
            "{GUIDE}:{}: an output block must follow a `sh test` block directly",
            block.line
        );
        if !block.is("sh", "test") {
            continue;
        }
        commands += 1;
        let run = reader.run(block);
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        let expected = blocks.get(index).filter(|b| b.is("text", "output"));
        let want_code = match expected {
            Some(output) => {
                index += 1;
                outputs += 1;
                assert_eq!(
                    lines_of(&stdout),
                    lines_of(&output.body),
                    "{GUIDE}:{}: `{}` printed something else than the guide shows (stderr: {stderr})",
                    output.line,
                    block.body.trim()
                );
                if output.body.trim_end().ends_with("problem(s) found") {
                    1
                } else {
                    0
                }
            }
            None => 0,
        };
        assert_eq!(
            run.status.code(),
            Some(want_code),
            "{GUIDE}:{}: `{}` exited otherwise than the guide says\n{stdout}{stderr}",
            block.line,
            block.body.trim()
        );
    }
    assert!(
        commands >= 4 && outputs >= 4 && written.len() >= 6,
        "the walkthrough lost its marked blocks: {} files, {commands} commands, {outputs} outputs",
        written.len()
    );
    assert_eq!(
        role.scratch_databases(),
        Vec::<String>::new(),
        "catalog test left scratch databases behind"
    );

    // The tree the guide draws is the catalog the walkthrough wrote.
    let trees: Vec<&Block> = blocks.iter().filter(|b| b.is("text", "tree")).collect();
    let [tree] = trees[..] else {
        panic!("{GUIDE}: one `text tree` block draws the walkthrough's catalog");
    };
    let catalog: BTreeSet<String> = written
        .iter()
        .filter(|p| p.starts_with("modules/"))
        .cloned()
        .collect();
    assert_eq!(
        tree_files(&tree.body),
        catalog,
        "{GUIDE}:{}: the tree",
        tree.line
    );

    ci_script_checks_and_tests_the_catalog(&reader, &blocks);
    github_job_runs_the_same_commands(&blocks);
}

/// `ci/modules.sh` on the walkthrough's catalog, with the Landlord release it would build already in place
/// (`LANDLORD_HOME`: this build's binary and this repository's core migrations).
fn ci_script_checks_and_tests_the_catalog(reader: &Reader<'_>, blocks: &[Block]) {
    let script = blocks
        .iter()
        .find(|b| b.title.as_deref() == Some("ci/modules.sh"))
        .expect("the guide's ci/modules.sh");
    let home: PathBuf = reader.dir.join("landlord-home");
    std::fs::create_dir_all(home.join("bin")).expect("mkdir");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_landlord"), home.join("bin/landlord"))
        .expect("symlink");
    std::os::unix::fs::symlink(repo_root().join("migrations"), home.join("migrations"))
        .expect("symlink");
    let run = Command::new("bash")
        .arg("ci/modules.sh")
        .current_dir(reader.dir)
        .env("LANDLORD_HOME", &home)
        .env("LANDLORD_REF", "docs-test")
        .env("DATABASE_URL", &reader.role.url)
        .env_remove("LANDLORD_REPO")
        .env_remove("LANDLORD_MIGRATIONS_DIR")
        .env_remove("LANDLORD_MODULES_DIR")
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{GUIDE}:{}: ci/modules.sh failed\n{stdout}{stderr}",
        script.line
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines.len() == 2
            && lines[0].starts_with("catalog ok: 2 module(s)")
            && lines[1].starts_with("catalog test ok: 2 module(s)"),
        "{GUIDE}:{}: ci/modules.sh printed\n{stdout}{stderr}",
        script.line
    );
    assert_eq!(
        reader.role.scratch_databases(),
        Vec::<String>::new(),
        "left behind"
    );
}

/// The GitHub Actions job: valid YAML, PostgreSQL 15 as a service, shell steps that parse, and the same two
/// landlord commands as the script.
fn github_job_runs_the_same_commands(blocks: &[Block]) {
    let workflow = blocks
        .iter()
        .find(|b| b.title.as_deref() == Some(".github/workflows/modules.yaml"))
        .expect("the guide's GitHub Actions workflow");
    let at = format!("{GUIDE}:{}", workflow.line);
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&workflow.body).unwrap_or_else(|e| panic!("{at}: {e}"));
    let job = &yaml["jobs"]["catalog"];
    assert_eq!(
        job["services"]["postgres"]["image"].as_str(),
        Some("postgres:15"),
        "{at}"
    );
    let runs: Vec<&str> = job["steps"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{at}: no steps"))
        .iter()
        .filter_map(|step| step["run"].as_str())
        .collect();
    for run in &runs {
        let syntax = Command::new("bash")
            .args(["-n", "-c", run])
            .output()
            .expect("bash -n");
        assert!(
            syntax.status.success(),
            "{at}: {run}: {}",
            String::from_utf8_lossy(&syntax.stderr)
        );
    }
    let script = blocks
        .iter()
        .find(|b| b.title.as_deref() == Some("ci/modules.sh"))
        .expect("the guide's ci/modules.sh");
    let script_commands: Vec<String> = script
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("\"$home/bin/landlord\" "))
        .map(|rest| format!("landlord {rest}"))
        .collect();
    let job_commands: Vec<String> = runs
        .iter()
        .filter(|r| r.starts_with("landlord "))
        .map(|r| r.trim().to_string())
        .collect();
    assert_eq!(job_commands, script_commands, "{at}");
    assert_eq!(job_commands.len(), 2, "{at}");
}
