//! Fleet benchmark, end to end through the real operator (release build), each figure beside the raw-SQL
//! floor measured in the same run: the same DDL fed to one `psql` session as the superuser.
//!
//! - P1: Tenants applied → all Ready, with the template and without; the shipped core tenant schema and a
//!   generated 60-table one.
//! - P2: one module onto N Ready tenants (one ModuleInstallation each) → all Ready.
//! - P3: a restart with N tenants × 3 modules in place: tenant-database sessions, transactions and row
//!   writes it causes (PostgreSQL's own counters, autovacuum paused), status writes (resourceVersions), the
//!   operator's RSS.
//! - P4: P1 and P2 per tenant at every size.
//!
//! Beside each P1 and P2 figure: the CPU that PostgreSQL, kube-apiserver, etcd, the operator and the clients
//! (kubectl, psql) spent on it, from `/proc`, and the lowest ratio that CPU allows on this machine's cores;
//! beside P1, how long PostgreSQL takes for `CREATE DATABASE` alone, a part of the floor nobody can skip.
//!
//!   scripts/bench                                    (fresh environment; sizes 10, 100, 1000)
//!   LANDLORD_BENCH_SIZES=10,100 scripts/bench
//!   cargo test --benches                             (test mode: 3 tenants, same checks)
//!
//! Prints figures; asserts nothing about time.

mod shared;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use landlord::catalog::Catalog;
use landlord::crd::{ModuleInstallation, Tenant};
use shared::{
    CONCURRENCY, CONNECTIONS, Clock, Figure, Timed, apply_installations, apply_tenants, breakdown,
    created_and_dropped, drop_all, floor_scripts, operator_env, psql, slugs, wait_all_ready,
    warm_up,
};
use support::kube::{client, namespace};
use support::operator::{Operator, http_get};
use support::pg::{self, Server};
use support::repo_root;

/// Installed one per tenant through ModuleInstallations (P2); P3 adds the other two.
const MODULE: &str = "tasks";
const MORE_MODULES: [&str; 2] = ["expenses", "digital_card"];

fn main() {
    let sizes = shared::sizes(&[10, 100, 1000]);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run(&sizes));
}

async fn run(sizes: &[usize]) {
    let client = client().await;
    let shipped = repo_root().join("migrations");
    let sixty = tempfile::tempdir().expect("temp dir");
    sixty_table_core(&shipped, sixty.path());
    let largest = *sizes.iter().max().expect("a size");
    let mid = sizes.iter().copied().find(|&n| n >= 100).unwrap_or(largest);

    // A fresh PostgreSQL's first databases cost several times the later ones (166 ms per CREATE DATABASE in
    // one run's first floor, 31–42 ms later): some are made and dropped before anything is timed.
    created_and_dropped(Server::One, "bench_warm", 20, "");

    let mut figures = Vec::new();
    let mut resync = None;
    for &n in sizes {
        let (p1, p2, p3) = fleet(&client, n, n == largest).await;
        figures.push(p1);
        figures.push(p2);
        resync = p3.or(resync);
    }
    // P1 variants at one size: no template, and the 60-table core with and without it.
    figures.push(
        tenants_only(
            &client,
            mid,
            &shipped,
            false,
            "P1 shipped core, no template",
        )
        .await,
    );
    figures.push(
        tenants_only(
            &client,
            mid,
            sixty.path(),
            true,
            "P1 60-table core, template",
        )
        .await,
    );
    figures.push(
        tenants_only(
            &client,
            mid,
            sixty.path(),
            false,
            "P1 60-table core, no template",
        )
        .await,
    );

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "fleet benchmark: {cores} cores, operator concurrency {CONCURRENCY}, {CONNECTIONS} database connections"
    );
    for figure in &figures {
        println!("{}", figure.line());
        println!("{}", figure.cpu_line(cores));
    }
    if let Some(resync) = resync {
        println!("{resync}");
    }
}

/// P1 and P2 at `n` tenants (shipped core, template on), and at the largest size P3.
async fn fleet(
    client: &Client,
    n: usize,
    measure_resync: bool,
) -> (Figure, Figure, Option<String>) {
    let catalog = Catalog::load(
        &repo_root().join("modules"),
        &repo_root().join("migrations"),
    )
    .expect("catalog");
    let floor = floor(&catalog, n).await;

    let ns = namespace(client, "bench-fleet").await;
    let env = operator_env(&repo_root().join("migrations"), true);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut operator = Operator::start(&ns, &env);
    let mut slugs = slugs("fleet", n);
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let (warm, built) = warm_up(&tenants, &["first"], "").await;
    let clock = Clock::start(&operator);
    apply_tenants(&ns, &slugs, "");
    wait_all_ready(&tenants, n + 1).await;
    slugs.extend(warm);
    let mut p1 = clock.figure("P1 shipped core, template", n, floor.tenants);
    p1.create_database = Some(floor.create_database);
    p1.template_built = Some(built);
    let clock = Clock::start(&operator);
    apply_installations(&ns, n, MODULE);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_all_ready(&installs, n).await;
    let p2 = clock.figure(format!("P2 module {MODULE}"), n, floor.module);
    println!("{}", breakdown(&operator, n).await);
    let p3 = if measure_resync {
        for module in MORE_MODULES {
            apply_installations(&ns, n, module);
        }
        wait_all_ready(&installs, n * 3).await;
        operator.stop();
        Some(restart(client, &ns, &env, n).await)
    } else {
        None
    };
    operator.stop();
    p1.clone = Some(clone_template(n).await);
    drop_all(Server::One, &slugs).await;
    (p1, p2, p3)
}

/// P3: a restart with everything in place, until every object has been reconciled from the records.
async fn restart(client: &Client, ns: &str, env: &[(&str, &str)], n: usize) -> String {
    // Autovacuum visits the new databases on its own schedule; its transactions and rows would read as the
    // operator's. Paused for the window (the setting is reloaded, not restarted).
    autovacuum(false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = Counters::read().await;
    let versions = resource_versions(client, ns).await;
    let start = Instant::now();
    let operator = Operator::start(ns, env);
    // Every tenant with its 3 installations, and the first Tenant of the run.
    let objects = (n * 4 + 1) as u64;
    let deadline = Instant::now() + Duration::from_secs(900);
    let addr = operator.http_addr().await;
    loop {
        let (_, metrics) = http_get(&addr, "/metrics").await;
        let in_place: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("landlord_reconciles_in_place_total{"))
            .filter_map(|l| l.rsplit(" ").next()?.parse::<u64>().ok())
            .sum();
        if in_place >= objects {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "resync: {in_place}/{objects} in place after 15 min"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = start.elapsed();
    let rss = rss_kib(operator.pid());
    // PostgreSQL's statistics of a session arrive when it ends; and late reconciles would show here.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = Counters::read().await;
    autovacuum(true).await;
    let changed = resource_versions(client, ns)
        .await
        .iter()
        .filter(|(name, rv)| versions.get(*name) != Some(rv))
        .count();
    drop(operator);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  P3 restart, {n} tenants x 3 modules ({objects} objects) all in place after {:.1} s:",
        took.as_secs_f64()
    );
    let _ = write!(
        out,
        "     tenant-database sessions {}, tenant transactions {}, landlord transactions {}, rows written {} (landlord) {} (tenants), status writes {changed}, operator RSS {:.1} MiB (peak {:.1} MiB)",
        after.tenant_sessions - before.tenant_sessions,
        after.tenant_xacts - before.tenant_xacts,
        after.landlord_xacts - before.landlord_xacts,
        after.landlord_writes - before.landlord_writes,
        after.tenant_writes - before.tenant_writes,
        rss.0 as f64 / 1024.0,
        rss.1 as f64 / 1024.0,
    );
    out
}

/// P1 alone at `n` tenants with the core schema of `migrations`, template on or off.
async fn tenants_only(
    client: &Client,
    n: usize,
    migrations: &Path,
    template: bool,
    label: &str,
) -> Figure {
    let catalog = Catalog::load(&repo_root().join("modules"), migrations).expect("catalog");
    let floor = floor(&catalog, n).await;
    let ns = namespace(client, "bench-p1").await;
    let env = operator_env(migrations, template);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut operator = Operator::start(&ns, &env);
    let mut slugs = slugs("p1", n);
    let tenants = Api::<Tenant>::namespaced(client.clone(), &ns);
    let (warm, built) = warm_up(&tenants, &["first"], "").await;
    let clock = Clock::start(&operator);
    apply_tenants(&ns, &slugs, "");
    wait_all_ready(&tenants, n + 1).await;
    slugs.extend(warm);
    let mut figure = clock.figure(label, n, floor.tenants);
    figure.create_database = Some(floor.create_database);
    figure.template_built = template.then_some(built);
    operator.stop();
    if template {
        figure.clone = Some(clone_template(n).await);
    }
    drop_all(Server::One, &slugs).await;
    figure
}

/// PostgreSQL's part of a clone, which no way of cloning can skip: `CREATE DATABASE … TEMPLATE` of the
/// operator's template `n` times in one psql session (then dropped).
async fn clone_template(n: usize) -> Timed {
    let templates = pg::strings(
        "postgres",
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'landlord\\_template\\_%'",
    )
    .await;
    let [template] = templates.as_slice() else {
        panic!("one template expected, found {templates:?}");
    };
    created_and_dropped(
        Server::One,
        "bench_clone",
        n,
        &format!(" TEMPLATE \"{template}\""),
    )
}

/// The floor: role, database, REVOKE and the core tenant schema for `n` tenants in one psql session, then
/// the module's tenant schema into each; the databases are dropped before the operator's turn.
async fn floor(catalog: &Catalog, n: usize) -> Floor {
    let slugs = slugs("floor", n);
    let (tenants, module) = floor_scripts(catalog, MODULE, &slugs);
    let url = Server::One.superuser_url();
    let tenants = psql(&[(url, &tenants)]);
    let module = psql(&[(url, &module)]);
    drop_all(Server::One, &slugs).await;
    // PostgreSQL's own part, which neither the floor nor the operator can skip: the empty databases.
    let script: String = slugs
        .iter()
        .map(|slug| format!("CREATE DATABASE \"tenant_{slug}\";\n"))
        .collect();
    let create_database = psql(&[(url, &script)]);
    drop_all(Server::One, &slugs).await;
    Floor {
        tenants,
        module,
        create_database,
    }
}

/// The shipped core migrations plus one that creates 60 tables with 120 indexes.
fn sixty_table_core(shipped: &Path, into: &Path) {
    for scope in ["landlord", "tenant"] {
        std::fs::create_dir_all(into.join(scope)).expect("mkdir");
        for entry in std::fs::read_dir(shipped.join(scope)).expect("read migrations") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), into.join(scope).join(entry.file_name())).expect("copy");
        }
    }
    let mut up = String::new();
    let mut down = String::new();
    for i in 0..60 {
        let _ = writeln!(
            up,
            "CREATE TABLE bench_{i} (id bigserial PRIMARY KEY, workspace_id bigint NOT NULL, name text NOT NULL, \
             body jsonb, created_at timestamptz NOT NULL DEFAULT now());\n\
             CREATE INDEX bench_{i}_workspace ON bench_{i} (workspace_id);\n\
             CREATE INDEX bench_{i}_created ON bench_{i} (created_at);"
        );
        let _ = writeln!(down, "DROP TABLE bench_{i};");
    }
    let tenant = into.join("tenant");
    std::fs::write(tenant.join("20991231000000_bench_sixty_tables.up.sql"), up).expect("write");
    std::fs::write(
        tenant.join("20991231000000_bench_sixty_tables.down.sql"),
        down,
    )
    .expect("write");
}

/// Every Tenant's and installation's resourceVersion: a status write changes it.
async fn resource_versions(client: &Client, ns: &str) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), ns);
    for t in tenants
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
    {
        versions.insert(
            format!("tenant/{}", t.name_any()),
            t.resource_version().unwrap_or_default(),
        );
    }
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), ns);
    for m in installs
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
    {
        versions.insert(
            format!("mi/{}", m.name_any()),
            m.resource_version().unwrap_or_default(),
        );
    }
    versions
}

async fn autovacuum(on: bool) {
    let mut conn = pg::connect("postgres").await;
    let setting = if on { "on" } else { "off" };
    for statement in [
        format!("ALTER SYSTEM SET autovacuum = {setting}"),
        "SELECT pg_catalog.pg_reload_conf()".to_string(),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .expect("set autovacuum");
    }
}

/// PostgreSQL's own counters, summed over the tenant databases and for the landlord database.
struct Counters {
    tenant_sessions: i64,
    tenant_xacts: i64,
    tenant_writes: i64,
    landlord_xacts: i64,
    landlord_writes: i64,
}

impl Counters {
    async fn read() -> Counters {
        let mut conn = pg::connect("postgres").await;
        let row: (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT
               coalesce(sum(sessions) FILTER (WHERE datname LIKE 'tenant\\_%'), 0)::bigint,
               coalesce(sum(xact_commit + xact_rollback) FILTER (WHERE datname LIKE 'tenant\\_%'), 0)::bigint,
               coalesce(sum(tup_inserted + tup_updated + tup_deleted) FILTER (WHERE datname LIKE 'tenant\\_%'), 0)::bigint,
               coalesce(sum(xact_commit + xact_rollback) FILTER (WHERE datname = 'landlord'), 0)::bigint,
               coalesce(sum(tup_inserted + tup_updated + tup_deleted) FILTER (WHERE datname = 'landlord'), 0)::bigint
             FROM pg_stat_database",
        )
        .fetch_one(&mut conn)
        .await
        .expect("read pg_stat_database");
        Counters {
            tenant_sessions: row.0,
            tenant_xacts: row.1,
            tenant_writes: row.2,
            landlord_xacts: row.3,
            landlord_writes: row.4,
        }
    }
}

/// (VmRSS, VmHWM) of a process, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The floor's phases for `n` tenants.
struct Floor {
    /// Role, database, REVOKE, core tenant schema.
    tenants: Timed,
    /// The module's tenant schema into each.
    module: Timed,
    /// `CREATE DATABASE` alone, as many times.
    create_database: Timed,
}
