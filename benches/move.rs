//! Move benchmark: one tenant of N MB moved from server 1 to server 2 by the real operator (release build),
//! beside the floor measured in the same run: the same copy by hand, `pg_dump | pg_restore` as the superuser.
//!
//! Per size, a Tenant pinned to `default` (server 1) is filled as its own role with one table of about N MB
//! (the sizes are MB; the database's real size is printed), then vacuumed so that neither copy pays for its
//! hint bits. Then:
//!
//! - floor: `CREATE DATABASE` on server 2, then `pg_dump --format=custom --compress=0` of the tenant database
//!   piped straight into `pg_restore --no-owner --exit-on-error --single-transaction` (the operator's
//!   restore flags), both as the superuser; timed from before the `CREATE DATABASE` until pg_restore exits,
//!   then the copy is dropped.
//! - operator: the Tenant annotated `tenancy.landlord.dev/move-to: <a DatabaseServer on server 2>`, timed
//!   until its `Moved` condition is True (polled every 100 ms). The operator's move also quiesces the role
//!   (LANDLORD_MOVE_GRACE_PERIOD, here 1 s), makes the role and the database on the target, verifies the copy
//!   (every table's rows counted, the ledgers compared), switches its records, waits until the Tenant is
//!   Ready on the target and drops the source: none of which the floor does. The total also waits for the
//!   Tenant's `Ready` True on server 2.
//!
//!   scripts/bench move                                (fresh environment; sizes 10, 100, 1000 MB)
//!   LANDLORD_BENCH_SIZES=10,100 scripts/bench move
//!   cargo test --bench move                           (test mode: 3 MB, same checks)
//!
//! Prints figures; asserts nothing about time, only that the move succeeded.

mod shared;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use landlord::crd::{DEFAULT_SERVER, MOVE_TO_ANNOTATION, Tenant};
use shared::{apply, created_and_dropped, operator_env};
use sqlx::Connection;
use support::kube::{Conditions, client, condition, namespace, wait_gone, wait_ready};
use support::operator::{Operator, delete_server, second_server};
use support::pg::Server;
use support::{repo_root, unique_slug};

/// The operator's grace period for the tenant's sessions; the bench holds none open during the move.
const GRACE: &str = "1s";
const MB: f64 = 1024.0 * 1024.0;
/// How often the Tenant is looked at while it moves.
const POLL: Duration = Duration::from_millis(100);
/// A move of the largest size must end within this.
const MOVE_TIMEOUT: Duration = Duration::from_secs(1800);

fn main() {
    let sizes = shared::sizes(&[10, 100, 1000]);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run(&sizes));
}

async fn run(sizes: &[usize]) {
    let client = client().await;
    // A fresh PostgreSQL's first databases cost several times the later ones: server 2, where both copies
    // go, makes and drops some before anything is timed.
    created_and_dropped(Server::Two, "bench_move_warm", 10, "");

    let ns = namespace(&client, "bench-move").await;
    let mut env = operator_env(&repo_root().join("migrations"), false);
    env.push(("LANDLORD_MOVE_GRACE_PERIOD", GRACE.into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut operator = Operator::start(&ns, &env);
    let server2 = second_server(&client, &ns, "bench-pg2").await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);

    let mut figures = Vec::new();
    for &mb in sizes {
        let figure = at_size(&tenants, &ns, &server2, mb, &operator).await;
        println!("{}", figure.lines());
        figures.push(figure);
    }

    delete_server(&client, &server2).await;
    operator.stop();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "move benchmark: {cores} cores, one tenant from default (server 1) to DatabaseServer {server2} (server 2), \
         LANDLORD_MOVE_GRACE_PERIOD {GRACE}; the operator's move includes quiescing, the target's role and \
         database, verifying (every table's rows counted, the ledgers), the switch, the Tenant Ready on the \
         target and the source dropped; floor: pg_dump -Fc -Z0 | pg_restore --no-owner --single-transaction \
         by hand as the superuser, from CREATE DATABASE until pg_restore exits"
    );
    for figure in &figures {
        println!("{}", figure.lines());
    }
}

/// One size's figures.
struct MoveFigure {
    /// What was asked, MB.
    asked: usize,
    /// pg_database_size of the tenant database once filled, bytes.
    database: i64,
    rows: i64,
    floor: Duration,
    watched: Watched,
}

impl MoveFigure {
    fn lines(&self) -> String {
        let secs = |d: Duration| d.as_secs_f64();
        let phases = |phases: &[(String, Duration)]| {
            phases
                .iter()
                .map(|(phase, at)| format!("{phase} {:.1}", secs(*at)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let w = &self.watched;
        let (copied, took) = copied(&w.message);
        format!(
            "  {:>5} MB (database {:>7.1} MB, {} rows): operator move {:>6.2} s | floor {:>6.2} s | ratio {:>5.2}x | \
             operator total {:.2} s (Ready on server 2 after {})\n     \
             the Moved message: {copied} copied in {took}; phases, s after the annotation (polled every {} ms): \
             Landlord's record {}; the Tenant's Moved condition {}",
            self.asked,
            self.database as f64 / MB,
            self.rows,
            secs(w.moved),
            secs(self.floor),
            secs(w.moved) / secs(self.floor),
            secs(w.total),
            w.ready
                .map_or("never seen".to_string(), |d| format!("{:.2} s", secs(d))),
            POLL.as_millis(),
            phases(&w.recorded),
            phases(&w.shown),
        )
    }
}

async fn at_size(
    tenants: &Api<Tenant>,
    ns: &str,
    server2: &str,
    mb: usize,
    operator: &Operator,
) -> MoveFigure {
    let name = format!("move-{mb}mb");
    let slug = unique_slug("move");
    let database = format!("tenant_{slug}");
    apply(
        ns,
        &format!(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}}}\n\
             spec: {{slug: {slug}, server: {DEFAULT_SERVER}, deletionPolicy: Delete}}\n"
        ),
    );
    wait_ready(tenants, &name).await;
    let (size, rows) = fill(&database, mb).await;

    let floor = floor(&database).await;

    let watched = moved(tenants, &name, server2, operator, &slug).await;

    tenants
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete the Tenant");
    wait_gone(tenants, &name).await;
    MoveFigure {
        asked: mb,
        database: size,
        rows,
        floor,
        watched,
    }
}

/// Fills `database` on server 1 with one table of the tenant's own, `bench_rows`, until the database has
/// grown by about `mb` MB; vacuums it. The database's size then, and the rows.
async fn fill(database: &str, mb: usize) -> (i64, i64) {
    let mut conn = Server::One.connect(database).await;
    let size = async |conn: &mut sqlx::PgConnection| -> i64 {
        sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(conn)
            .await
            .expect("pg_database_size")
    };
    let exec = async |conn: &mut sqlx::PgConnection, sql: String| {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(conn)
            .await
            .expect("fill the tenant database");
    };
    // As the tenant's role (`tenant_<slug>`, the database's name too): the table is the tenant's, as the
    // move copies it.
    exec(
        &mut conn,
        format!(
            "SET ROLE \"{database}\"; CREATE TABLE bench_rows (id bigint PRIMARY KEY, payload text)"
        ),
    )
    .await;
    let start = size(&mut conn).await;
    let wanted = (mb as f64 * MB) as i64;
    let mut rows = 0i64;
    // A row of 224 characters with its index entry takes about 290 bytes; after the first batch the
    // measured figure decides the rest.
    let mut per_row = 290.0;
    for _ in 0..4 {
        let left = wanted - (size(&mut conn).await - start);
        if left < wanted / 50 {
            break;
        }
        let batch = ((left as f64 / per_row) as i64).max(100);
        exec(
            &mut conn,
            format!(
                "INSERT INTO bench_rows SELECT g, repeat(md5(g::text), 7) \
                 FROM generate_series({}, {}) g",
                rows + 1,
                rows + batch
            ),
        )
        .await;
        rows += batch;
        per_row = (size(&mut conn).await - start) as f64 / rows as f64;
    }
    exec(&mut conn, "RESET ROLE".into()).await;
    exec(&mut conn, "VACUUM (FREEZE, ANALYZE) bench_rows".into()).await;
    let total = size(&mut conn).await;
    conn.close().await.ok();
    (total, rows)
}

/// The floor: an empty database on server 2, then pg_dump of `database` on server 1 piped into pg_restore,
/// as the superuser; the copy is dropped afterwards.
async fn floor(database: &str) -> Duration {
    let copy = format!("bench_floor_{}", database.trim_start_matches("tenant_"));
    let started = Instant::now();
    Server::Two
        .superuser_exec("postgres", format!("CREATE DATABASE \"{copy}\""))
        .await;
    let (host1, port1, user1, password1) = login(Server::One);
    let (host2, port2, user2, password2) = login(Server::Two);
    let mut dump = Command::new(tool("pg_dump"))
        .args(["--format=custom", "--compress=0", "--no-password"])
        .args(["--host", &host1, "--port", &port1, "--username", &user1])
        .args(["--dbname", database])
        .env("PGPASSWORD", password1)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run pg_dump");
    let dumped = dump.stdout.take().expect("pg_dump's output");
    let mut restore = Command::new(tool("pg_restore"))
        .args([
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
        ])
        .args(["--host", &host2, "--port", &port2, "--username", &user2])
        .args(["--dbname", &copy])
        .env("PGPASSWORD", password2)
        .stdin(Stdio::from(dumped))
        .spawn()
        .expect("run pg_restore");
    let (dumped, restored) = tokio::task::spawn_blocking(move || {
        let restored = restore.wait().expect("wait for pg_restore");
        (dump.wait().expect("wait for pg_dump"), restored)
    })
    .await
    .expect("the copy's thread");
    let took = started.elapsed();
    assert!(dumped.success(), "pg_dump {dumped}");
    assert!(restored.success(), "pg_restore {restored}");
    Server::Two.drop_database(&copy).await;
    took
}

/// Where the environment keeps pg_dump and pg_restore (LANDLORD_PG_BIN_DIR), else PATH.
fn tool(name: &str) -> PathBuf {
    match std::env::var_os("LANDLORD_PG_BIN_DIR") {
        Some(dir) => PathBuf::from(dir).join(name),
        None => PathBuf::from(name),
    }
}

/// Host, port, user and password of `server`'s superuser, for libpq's tools (the password goes in
/// PGPASSWORD, not on a command line).
fn login(server: Server) -> (String, String, String, String) {
    let options = server.options("postgres");
    let password = server
        .superuser_url()
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password.to_string())
        .unwrap_or_default();
    (
        options.get_host().to_string(),
        options.get_port().to_string(),
        options.get_username().to_string(),
        password,
    )
}

/// What the bench saw of one move, timed from the annotation.
struct Watched {
    /// `Moved` True.
    moved: Duration,
    /// `Ready` True on the target, first seen.
    ready: Option<Duration>,
    /// Both.
    total: Duration,
    /// `Moved`'s message at the end.
    message: String,
    /// Each phase the `Moved` condition showed, first seen.
    shown: Vec<(String, Duration)>,
    /// Each phase of Landlord's record of the move (`tenant_moves`), first seen.
    recorded: Vec<(String, Duration)>,
}

/// Annotates the Tenant `name` to move to `server2`, then watches it every 100 ms: until `Moved` is True,
/// until `Ready` is True on server 2, until both; and beside the Tenant, Landlord's record of the move,
/// whose phases change as the mover goes while the Tenant's status shows them at its reconciles. Panics,
/// with the message and the operator's log, if the move fails.
async fn moved(
    tenants: &Api<Tenant>,
    name: &str,
    server2: &str,
    operator: &Operator,
    slug: &str,
) -> Watched {
    let mut landlord = Server::One.connect("landlord").await;
    let patch =
        serde_json::json!({ "metadata": { "annotations": { MOVE_TO_ANNOTATION: server2 } } });
    let started = Instant::now();
    tenants
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate the Tenant");
    let mut moved = None;
    let mut ready = None;
    let mut shown: Vec<(String, Duration)> = Vec::new();
    let mut recorded: Vec<(String, Duration)> = Vec::new();
    let seen = |phases: &mut Vec<(String, Duration)>, phase: String, at: Duration| {
        if phases.last().is_none_or(|(last, _)| *last != phase) {
            phases.push((phase, at));
        }
    };
    loop {
        let record: Option<String> =
            sqlx::query_scalar("SELECT phase FROM tenant_moves WHERE tenant_slug = $1")
                .bind(slug)
                .fetch_optional(&mut landlord)
                .await
                .expect("read tenant_moves");
        if let Some(phase) = record {
            seen(&mut recorded, phase, started.elapsed());
        }
        let tenant = tenants.get(name).await.expect("get the Tenant");
        let at = started.elapsed();
        let move_condition = tenant.conditions().into_iter().find(|c| c.type_ == "Moved");
        if let Some(c) = &move_condition {
            seen(&mut shown, phase_of(&c.status, &c.message), at);
            assert!(
                c.reason != "MoveFailed",
                "the move of tenant_{slug} failed: {}\noperator log {}:\n{}",
                c.message,
                operator.log.display(),
                tail(&operator.logs(), 60)
            );
            if c.status == "True" && c.reason == "Reconciled" && moved.is_none() {
                moved = Some(at);
            }
        }
        let on_target = tenant
            .status
            .as_ref()
            .and_then(|s| s.server.as_deref())
            .is_some_and(|s| s == server2);
        let is_ready = condition(&tenant, "Ready") == Some(("True".into(), "Reconciled".into()));
        if on_target && is_ready && ready.is_none() {
            ready = Some(at);
        }
        if let Some(moved) = moved
            && on_target
            && is_ready
        {
            landlord.close().await.ok();
            return Watched {
                moved,
                ready,
                total: at,
                message: move_condition.map(|c| c.message).unwrap_or_default(),
                shown,
                recorded,
            };
        }
        assert!(
            at < MOVE_TIMEOUT,
            "the move of tenant_{slug} did not end in {} s; Moved: {move_condition:?}\noperator log {}:\n{}",
            MOVE_TIMEOUT.as_secs(),
            operator.log.display(),
            tail(&operator.logs(), 60)
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A phase's name from the `Moved` condition: the word after the servers while it moves, Switched after the
/// switch, Done once True.
fn phase_of(status: &str, message: &str) -> String {
    if status == "True" {
        return "Done".into();
    }
    if let Some(rest) = message.strip_prefix("Moving from server ")
        && let Some((_, phase)) = rest.split_once(", ")
        && let Some((phase, _)) = phase.split_once(':')
    {
        return phase.to_string();
    }
    message
        .split_whitespace()
        .next()
        .unwrap_or("no message")
        .to_string()
}

/// "… 12.3 MB copied in 4.5 s." → ("12.3 MB", "4.5 s").
fn copied(message: &str) -> (String, String) {
    let copied = message
        .rsplit_once(": ")
        .and_then(|(_, rest)| rest.split_once(" copied in "));
    match copied {
        Some((bytes, took)) => (bytes.to_string(), took.trim_end_matches('.').to_string()),
        None => (format!("(not in {message:?})"), "?".into()),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
