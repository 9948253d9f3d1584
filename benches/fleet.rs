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

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use landlord::catalog::{Catalog, Scope};
use landlord::crd::{ModuleInstallation, Tenant};
use support::kube::{client, condition, kubectl_with_input, namespace};
use support::operator::{Operator, http_get};
use support::{TestEnv, pg, repo_root, unique_slug};

/// Installed one per tenant through ModuleInstallations (P2); P3 adds the other two.
const MODULE: &str = "tasks";
const MORE_MODULES: [&str; 2] = ["expenses", "digital_card"];
const CONCURRENCY: &str = "4";
const CONNECTIONS: &str = "8";

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = match std::env::var("LANDLORD_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("LANDLORD_BENCH_SIZES: numbers"))
            .collect(),
        Err(_) if bench_mode => vec![10, 100, 1000],
        Err(_) => vec![3],
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run(&sizes));
}

/// One measured phase: operator and floor wall times for `tenants` tenants, and the CPU each part of the
/// machine spent on them.
struct Figure {
    label: String,
    tenants: usize,
    operator: Duration,
    floor: Duration,
    operator_cpu: Cpu,
    floor_cpu: Cpu,
    /// For the tenant figures: how long PostgreSQL takes to create as many empty databases.
    create_database: Option<Timed>,
    /// With the template: how long PostgreSQL takes to clone it as many times.
    clone: Option<Timed>,
    /// With the template: how long the first Tenant, which builds it, took before the clock started.
    template_built: Option<Duration>,
}

impl Figure {
    fn line(&self) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / self.tenants as f64;
        format!(
            "  {:<44} {:>5} tenants: {:>7.1} ms/tenant | floor {:>7.1} ms/tenant | ratio {:.2}x",
            self.label,
            self.tenants,
            per(self.operator),
            per(self.floor),
            self.operator.as_secs_f64() / self.floor.as_secs_f64()
        )
    }

    /// Where the CPU went, per tenant, and the ratio the machine's cores allow at best: the operator's run
    /// cannot end sooner than its CPU spread over every core.
    fn cpu_line(&self, cores: usize) -> String {
        let per = |s: f64| s * 1000.0 / self.tenants as f64;
        let (op, fl) = (&self.operator_cpu, &self.floor_cpu);
        let bound = op.total() / cores.max(1) as f64 / self.floor.as_secs_f64();
        format!(
            "     cpu ms/tenant: postgres {:.1} (floor {:.1}), kube-apiserver {:.1}, etcd {:.1}, operator {:.1}, \
             clients {:.1} (floor {:.1}); total {:.1} (floor {:.1}); on {cores} cores the ratio is at least {bound:.2}x",
            per(op.postgres),
            per(fl.postgres),
            per(op.apiserver),
            per(op.etcd),
            per(op.operator),
            per(op.clients),
            per(fl.clients),
            per(op.total()),
            per(fl.total()),
        ) + &self.create_database.map_or(String::new(), |(wall, cpu)| {
            format!(
                "\n     PostgreSQL's part: CREATE DATABASE alone takes {:.1} ms/tenant ({:.0}% of the floor), cpu {:.1} ms/tenant",
                per(wall.as_secs_f64()),
                100.0 * wall.as_secs_f64() / self.floor.as_secs_f64(),
                per(cpu.postgres),
            )
        }) + &self.template_built.map_or(String::new(), |took| {
            format!(
                "\n     the template: built for the first Tenant, before the clock started, in {:.2} s (once per core schema)",
                took.as_secs_f64()
            )
        }) + &self.clone.map_or(String::new(), |(wall, cpu)| {
            format!(
                "\n     PostgreSQL's part: cloning the operator's template alone takes {:.1} ms/tenant ({:.0}% of the floor), cpu {:.1} ms/tenant",
                per(wall.as_secs_f64()),
                100.0 * wall.as_secs_f64() / self.floor.as_secs_f64(),
                per(cpu.postgres),
            )
        })
    }
}

/// CPU seconds (user + system) spent so far by each part of the machine, from `/proc`: PostgreSQL (the
/// postmaster, its live backends and those it reaped), kube-apiserver, etcd, the operator, and this
/// process with its reaped children (psql, kubectl).
#[derive(Clone, Copy, Default)]
struct Cpu {
    postgres: f64,
    apiserver: f64,
    etcd: f64,
    operator: f64,
    clients: f64,
}

impl Cpu {
    fn read(operator: Option<u32>) -> Cpu {
        let dev = std::path::PathBuf::from(std::env::var("LANDLORD_DEV_DIR").unwrap_or_default());
        let pid_in = |file: &str| -> Option<u32> {
            std::fs::read_to_string(dev.join(file))
                .ok()?
                .lines()
                .next()?
                .trim()
                .parse()
                .ok()
        };
        let postmaster = pid_in("pg/data/postmaster.pid");
        let backends: f64 = postmaster.map_or(0.0, |pm| {
            std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(proc_stat)
                .filter(|stat| stat.parent == pm)
                .map(|stat| stat.own)
                .sum()
        });
        let whole = |pid: Option<u32>| pid.and_then(proc_stat).map_or(0.0, |s| s.own + s.children);
        Cpu {
            postgres: whole(postmaster) + backends,
            apiserver: whole(pid_in("kube/pid")),
            etcd: whole(pid_in("etcd/pid")),
            operator: whole(operator),
            clients: whole(Some(std::process::id())),
        }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            postgres: self.postgres - before.postgres,
            apiserver: self.apiserver - before.apiserver,
            etcd: self.etcd - before.etcd,
            operator: self.operator - before.operator,
            clients: self.clients - before.clients,
        }
    }

    fn total(&self) -> f64 {
        self.postgres + self.apiserver + self.etcd + self.operator + self.clients
    }
}

struct ProcStat {
    parent: u32,
    /// utime + stime, seconds.
    own: f64,
    /// cutime + cstime: children waited for, seconds.
    children: f64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    let hz = clock_ticks();
    Some(ProcStat {
        parent: fields.get(1)?.parse().ok()?,
        own: (ticks(11)? + ticks(12)?) / hz,
        children: (ticks(13)? + ticks(14)?) / hz,
    })
}

fn clock_ticks() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
            .unwrap_or(100.0)
    })
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
    created_and_dropped("bench_warm", 20, "");

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
    let (warm, built) = first_tenant(&tenants).await;
    let cpu = Cpu::read(Some(operator.pid()));
    let start = Instant::now();
    apply_tenants(&ns, &slugs);
    wait_all_ready(&tenants, n + 1).await;
    slugs.push(warm);
    let mut p1 = Figure {
        label: "P1 shipped core, template".into(),
        tenants: n,
        operator: start.elapsed(),
        operator_cpu: Cpu::read(Some(operator.pid())).since(cpu),
        floor: floor.tenants.0,
        floor_cpu: floor.tenants.1,
        create_database: Some(floor.create_database),
        clone: None,
        template_built: Some(built),
    };
    let cpu = Cpu::read(Some(operator.pid()));
    let start = Instant::now();
    apply_installations(&ns, n, MODULE);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_all_ready(&installs, n).await;
    let p2 = Figure {
        label: format!("P2 module {MODULE}"),
        tenants: n,
        operator: start.elapsed(),
        operator_cpu: Cpu::read(Some(operator.pid())).since(cpu),
        floor: floor.module.0,
        floor_cpu: floor.module.1,
        create_database: None,
        clone: None,
        template_built: None,
    };
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
    drop_all(&slugs).await;
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

/// Where the operator's time went so far, from its own metrics: per controller, reconciles per tenant and
/// the mean time of each phase of a reconcile (summed over the reconciles, per tenant).
async fn breakdown(operator: &Operator, n: usize) -> String {
    let (_, metrics) = http_get(&operator.http_addr().await, "/metrics").await;
    let value = |line: &str| line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
    let label = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        Some(line[start..].split('"').next()?.to_string())
    };
    let mut out = format!("  breakdown after {n} tenants (ms per tenant, summed over reconciles):");
    for controller in ["landlord-tenant", "landlord-moduleinstallation"] {
        let reconciles: f64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("landlord_reconciles_total{")
                    && label(l, "controller").as_deref() == Some(controller)
            })
            .filter_map(value)
            .sum();
        let _ = write!(
            out,
            "\n     {controller}: {:.1} reconciles/tenant",
            reconciles / n as f64
        );
        for phase in ["gather", "records", "ledgers", "apply", "status"] {
            let sum: f64 = metrics
                .lines()
                .filter(|l| l.starts_with("landlord_reconcile_phase_duration_seconds_sum{"))
                .filter(|l| {
                    label(l, "controller").as_deref() == Some(controller)
                        && label(l, "phase").as_deref() == Some(phase)
                })
                .filter_map(value)
                .sum();
            if sum > 0.0 {
                let _ = write!(out, ", {phase} {:.1}", sum * 1000.0 / n as f64);
            }
        }
        let total: f64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("landlord_reconcile_duration_seconds_sum{")
                    && label(l, "controller").as_deref() == Some(controller)
            })
            .filter_map(value)
            .sum();
        let _ = write!(out, ", whole reconcile {:.1}", total * 1000.0 / n as f64);
    }
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
    let (warm, built) = first_tenant(&tenants).await;
    let cpu = Cpu::read(Some(operator.pid()));
    let start = Instant::now();
    apply_tenants(&ns, &slugs);
    wait_all_ready(&tenants, n + 1).await;
    slugs.push(warm);
    let mut figure = Figure {
        label: label.into(),
        tenants: n,
        operator: start.elapsed(),
        operator_cpu: Cpu::read(Some(operator.pid())).since(cpu),
        floor: floor.tenants.0,
        floor_cpu: floor.tenants.1,
        create_database: Some(floor.create_database),
        clone: None,
        template_built: template.then_some(built),
    };
    operator.stop();
    if template {
        figure.clone = Some(clone_template(n).await);
    }
    drop_all(&slugs).await;
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
    created_and_dropped("bench_clone", n, &format!(" TEMPLATE \"{template}\""))
}

/// `CREATE DATABASE <prefix>_<i><options>` `n` times in one psql session, timed, then the databases dropped.
fn created_and_dropped(prefix: &str, n: usize, options: &str) -> Timed {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}_{i}")).collect();
    let script: String = names
        .iter()
        .map(|name| format!("CREATE DATABASE \"{name}\"{options};\n"))
        .collect();
    let created = psql(&script);
    let script: String = names
        .iter()
        .map(|name| format!("DROP DATABASE \"{name}\";\n"))
        .collect();
    psql(&script);
    created
}

fn operator_env(migrations: &Path, template: bool) -> Vec<(&'static str, String)> {
    vec![
        ("LANDLORD_CONCURRENCY", CONCURRENCY.into()),
        ("LANDLORD_MAX_DB_CONNECTIONS", CONNECTIONS.into()),
        ("LANDLORD_MIGRATIONS_DIR", migrations.display().to_string()),
        (
            "LANDLORD_TENANT_TEMPLATE",
            if template { "on" } else { "off" }.into(),
        ),
        ("LANDLORD_DRIFT_INTERVAL", "off".into()),
        ("RUST_LOG", "warn,landlord::serve=info".into()),
    ]
}

/// The floor: role, database, REVOKE and the core tenant schema for `n` tenants in one psql session, then
/// the module's tenant schema into each; the databases are dropped before the operator's turn.
async fn floor(catalog: &Catalog, n: usize) -> Floor {
    let joined = |scripts: Vec<&str>| scripts.join("\n");
    let core = joined(
        catalog
            .core(Scope::Tenant)
            .migrations
            .iter()
            .map(|m| m.up.sql.as_str())
            .collect(),
    );
    let module = catalog.module(MODULE).expect("module in catalog");
    let module = joined(
        module
            .tenant
            .migrations
            .iter()
            .map(|m| m.up.sql.as_str())
            .collect(),
    );
    let slugs = slugs("floor", n);
    let mut script = String::from("\\set ON_ERROR_STOP on\n");
    for slug in &slugs {
        let db = format!("tenant_{slug}");
        let _ = write!(
            script,
            "CREATE ROLE \"{db}\" LOGIN PASSWORD 'bench';\nCREATE DATABASE \"{db}\" OWNER \"{db}\";\n\
             REVOKE CONNECT, TEMPORARY ON DATABASE \"{db}\" FROM PUBLIC;\n\\c \"{db}\"\nSET ROLE \"{db}\";\n{core}\n\\c postgres\n"
        );
    }
    let tenants = psql(&script);
    let mut script = String::from("\\set ON_ERROR_STOP on\n");
    for slug in &slugs {
        let _ = write!(
            script,
            "\\c \"tenant_{slug}\"\nSET ROLE \"tenant_{slug}\";\n{module}\n"
        );
    }
    let module = psql(&script);
    drop_all(&slugs).await;
    // PostgreSQL's own part, which neither the floor nor the operator can skip: the empty databases.
    let script: String = slugs
        .iter()
        .map(|slug| format!("CREATE DATABASE \"tenant_{slug}\";\n"))
        .collect();
    let create_database = psql(&script);
    drop_all(&slugs).await;
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

/// One Tenant before the clock starts: the first of a run builds the template (once per core schema, not per
/// tenant), which would otherwise be spread over the timed tenants (at 10 tenants, most of their time).
async fn first_tenant(tenants: &Api<Tenant>) -> (String, Duration) {
    let slug = slugs("first", 1).remove(0);
    let ns = tenants.namespace().map(str::to_string).unwrap_or_default();
    let start = Instant::now();
    apply(
        &ns,
        &format!(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: first}}\nspec: {{slug: {slug}}}\n"
        ),
    );
    wait_all_ready(tenants, 1).await;
    (slug, start.elapsed())
}

fn slugs(prefix: &str, n: usize) -> Vec<String> {
    let prefix = unique_slug(prefix);
    (0..n).map(|i| format!("{prefix}_{i}")).collect()
}

fn apply_tenants(ns: &str, slugs: &[String]) {
    let yaml: String = slugs
        .iter()
        .enumerate()
        .map(|(i, slug)| {
            format!(
                "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t{i}}}\nspec: {{slug: {slug}}}\n"
            )
        })
        .collect();
    apply(ns, &yaml);
}

fn apply_installations(ns: &str, n: usize, module: &str) {
    let name = module.replace('_', "-");
    let yaml: String = (0..n)
        .map(|i| {
            format!(
                "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: t{i}-{name}}}\nspec: {{tenant: t{i}, module: {module}}}\n"
            )
        })
        .collect();
    apply(ns, &yaml);
}

fn apply(ns: &str, yaml: &str) {
    let (ok, _, err) = kubectl_with_input(&["apply", "--server-side", "-n", ns, "-f", "-"], yaml);
    assert!(ok, "kubectl apply: {err}");
}

/// Follows a watch (not repeated lists, whose cost on the API server would be charged to the operator's run)
/// until `expected` objects say Ready.
async fn wait_all_ready<K>(api: &Api<K>, expected: usize)
where
    K: kube::Resource<DynamicType = ()>
        + support::kube::Conditions
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    use futures::TryStreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let mut ready = std::collections::BTreeSet::new();
    let changes = watcher(api.clone(), watcher::Config::default()).applied_objects();
    let mut changes = std::pin::pin!(changes);
    let wait = async {
        while let Some(object) = changes.try_next().await.expect("watch") {
            if condition(&object, "Ready") == Some(("True".into(), "Reconciled".into())) {
                ready.insert(object.name_any());
            } else {
                ready.remove(&object.name_any());
            }
            if ready.len() == expected {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1800), wait)
        .await
        .unwrap_or_else(|_| panic!("only {}/{expected} Ready after 30 minutes", ready.len()));
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

async fn drop_all(slugs: &[String]) {
    for slug in slugs {
        pg::drop_tenant(&format!("tenant_{slug}")).await;
    }
}

/// A wall time and the CPU spent in it.
type Timed = (Duration, Cpu);

/// The floor's phases for `n` tenants.
struct Floor {
    /// Role, database, REVOKE, core tenant schema.
    tenants: Timed,
    /// The module's tenant schema into each.
    module: Timed,
    /// `CREATE DATABASE` alone, as many times.
    create_database: Timed,
}

/// Runs `script` in one psql session as the superuser; returns the wall time and CPU.
fn psql(script: &str) -> Timed {
    let cpu = Cpu::read(None);
    let start = Instant::now();
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-d", TestEnv::get().superuser_url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run psql");
    child
        .stdin
        .take()
        .expect("psql stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let status = child.wait().expect("wait for psql");
    assert!(status.success(), "psql failed");
    (start.elapsed(), Cpu::read(None).since(cpu))
}
