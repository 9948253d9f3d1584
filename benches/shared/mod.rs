//! What the end-to-end benches share (`mod shared;` beside `mod support;`): the sizes, the operator's
//! settings, the figures and the CPU behind them, the raw-SQL floor's scripts and psql sessions, and the
//! Kubernetes side (applying Tenants and installations, waiting for them to be Ready).
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::{Api, ResourceExt};
use landlord::catalog::{Catalog, Scope};
use landlord::crd::Tenant;

use crate::support::kube::{condition, kubectl_with_input};
use crate::support::operator::{Operator, http_get};
use crate::support::pg::Server;
use crate::support::unique_slug;

pub const CONCURRENCY: &str = "4";
pub const CONNECTIONS: &str = "8";

/// The sizes to run: LANDLORD_BENCH_SIZES (`10,100`), else `benched` under `cargo bench`, else 3 (test mode,
/// `cargo test --benches`: the same checks, quickly).
pub fn sizes(benched: &[usize]) -> Vec<usize> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    match std::env::var("LANDLORD_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().expect("LANDLORD_BENCH_SIZES: numbers"))
            .collect(),
        Err(_) if bench_mode => benched.to_vec(),
        Err(_) => vec![3],
    }
}

/// One measured phase: operator and floor wall times for `tenants` tenants, and the CPU each part of the
/// machine spent on them.
/// Made by `Clock::figure`; a bench adds what PostgreSQL's own part took.
pub struct Figure {
    label: String,
    tenants: usize,
    operator: Duration,
    floor: Duration,
    operator_cpu: Cpu,
    floor_cpu: Cpu,
    /// For the tenant figures: how long PostgreSQL takes to create as many empty databases.
    pub create_database: Option<Timed>,
    /// With the template: how long PostgreSQL takes to clone it as many times.
    pub clone: Option<Timed>,
    /// With the template: how long the first Tenant, which builds it, took before the clock started.
    pub template_built: Option<Duration>,
}

/// The operator's side of a figure while it is timed: the wall clock and its CPU since the start.
pub struct Clock {
    operator: u32,
    cpu: Cpu,
    start: Instant,
}

impl Clock {
    pub fn start(operator: &Operator) -> Clock {
        Clock {
            operator: operator.pid(),
            cpu: Cpu::read(Some(operator.pid())),
            start: Instant::now(),
        }
    }

    /// The figure `label` for `tenants`, the operator's side as it stands now, beside `floor`.
    pub fn figure(&self, label: impl Into<String>, tenants: usize, floor: Timed) -> Figure {
        Figure {
            label: label.into(),
            tenants,
            operator: self.start.elapsed(),
            operator_cpu: Cpu::read(Some(self.operator)).since(self.cpu),
            floor: floor.0,
            floor_cpu: floor.1,
            create_database: None,
            clone: None,
            template_built: None,
        }
    }
}

impl Figure {
    pub fn line(&self) -> String {
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
    pub fn cpu_line(&self, cores: usize) -> String {
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

/// CPU seconds (user + system) spent so far by each part of the machine, from `/proc`: PostgreSQL (both
/// servers' postmasters, their live backends and those they reaped), kube-apiserver, etcd, the operator,
/// and this process with its reaped children (psql, kubectl).
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub postgres: f64,
    pub apiserver: f64,
    pub etcd: f64,
    pub operator: f64,
    pub clients: f64,
}

impl Cpu {
    pub fn read(operator: Option<u32>) -> Cpu {
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
        // Server 2 idles unless tenants are placed there; its CPU then counts as PostgreSQL's too.
        let postmasters: Vec<u32> = ["pg/data/postmaster.pid", "pg2/data/postmaster.pid"]
            .into_iter()
            .filter_map(pid_in)
            .collect();
        let backends: f64 = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(proc_stat)
            .filter(|stat| postmasters.contains(&stat.parent))
            .map(|stat| stat.own)
            .sum();
        let whole = |pid: Option<u32>| pid.and_then(proc_stat).map_or(0.0, |s| s.own + s.children);
        Cpu {
            postgres: postmasters.iter().map(|&pm| whole(Some(pm))).sum::<f64>() + backends,
            apiserver: whole(pid_in("kube/pid")),
            etcd: whole(pid_in("etcd/pid")),
            operator: whole(operator),
            clients: whole(Some(std::process::id())),
        }
    }

    pub fn since(self, before: Cpu) -> Cpu {
        Cpu {
            postgres: self.postgres - before.postgres,
            apiserver: self.apiserver - before.apiserver,
            etcd: self.etcd - before.etcd,
            operator: self.operator - before.operator,
            clients: self.clients - before.clients,
        }
    }

    pub fn total(&self) -> f64 {
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

/// Where the operator's time went so far, from its own metrics: per controller, reconciles per tenant and
/// the mean time of each phase of a reconcile (summed over the reconciles, per tenant).
pub async fn breakdown(operator: &Operator, n: usize) -> String {
    let (_, metrics) = http_get(&operator.http_addr().await, "/metrics").await;
    let value = |line: &str| line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
    let label = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        Some(line[start..].split('"').next()?.to_string())
    };
    // A metric's values for `controller` (and `phase`, when given), summed over its other labels.
    let sum = |metric: &str, controller: &str, phase: Option<&str>| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .filter(|l| {
                label(l, "controller").as_deref() == Some(controller)
                    && phase.is_none_or(|p| label(l, "phase").as_deref() == Some(p))
            })
            .filter_map(value)
            .sum()
    };
    let per = |total: f64| total / n as f64;
    let mut out = format!("  breakdown after {n} tenants (ms per tenant, summed over reconciles):");
    for controller in ["landlord-tenant", "landlord-moduleinstallation"] {
        let reconciles = sum("landlord_reconciles_total", controller, None);
        let _ = write!(
            out,
            "\n     {controller}: {:.1} reconciles/tenant",
            per(reconciles)
        );
        for phase in ["gather", "records", "ledgers", "apply", "status"] {
            let took = sum(
                "landlord_reconcile_phase_duration_seconds_sum",
                controller,
                Some(phase),
            );
            if took > 0.0 {
                let _ = write!(out, ", {phase} {:.1}", per(took * 1000.0));
            }
        }
        let total = sum("landlord_reconcile_duration_seconds_sum", controller, None);
        let _ = write!(out, ", whole reconcile {:.1}", per(total * 1000.0));
    }
    out
}

/// `CREATE DATABASE <prefix>_<i><options>` `n` times in one psql session on `server`, timed, then the
/// databases dropped.
pub fn created_and_dropped(server: Server, prefix: &str, n: usize, options: &str) -> Timed {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}_{i}")).collect();
    let script: String = names
        .iter()
        .map(|name| format!("CREATE DATABASE \"{name}\"{options};\n"))
        .collect();
    let url = server.superuser_url();
    let created = psql(&[(url, &script)]);
    let script: String = names
        .iter()
        .map(|name| format!("DROP DATABASE \"{name}\";\n"))
        .collect();
    psql(&[(url, &script)]);
    created
}

pub fn operator_env(migrations: &Path, template: bool) -> Vec<(&'static str, String)> {
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

/// Tenants `names`, one after the other, before the clock starts: the first of a run on a server builds the
/// template there (once per core schema, not per tenant), which would otherwise be spread over the timed
/// tenants (at 10 tenants, most of their time). `spec` adds to each spec (`, key: value`). Their slugs, and
/// how long they took.
pub async fn warm_up(tenants: &Api<Tenant>, names: &[&str], spec: &str) -> (Vec<String>, Duration) {
    let slugs = slugs("first", names.len());
    let ns = tenants.namespace().map(str::to_string).unwrap_or_default();
    let start = Instant::now();
    for (i, (name, slug)) in names.iter().zip(&slugs).enumerate() {
        apply(
            &ns,
            &format!(
                "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}}}\nspec: {{slug: {slug}{spec}}}\n"
            ),
        );
        wait_all_ready(tenants, i + 1).await;
    }
    (slugs, start.elapsed())
}

pub fn slugs(prefix: &str, n: usize) -> Vec<String> {
    let prefix = unique_slug(prefix);
    (0..n).map(|i| format!("{prefix}_{i}")).collect()
}

/// Tenants `t<i>` labelled `bench: timed` (what a rollout selects), `spec` added to each (`, key: value`).
pub fn apply_tenants(ns: &str, slugs: &[String], spec: &str) {
    let yaml: String = slugs
        .iter()
        .enumerate()
        .map(|(i, slug)| {
            format!(
                "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t{i}, labels: {{bench: timed}}}}\nspec: {{slug: {slug}{spec}}}\n"
            )
        })
        .collect();
    apply(ns, &yaml);
}

pub fn apply_installations(ns: &str, n: usize, module: &str) {
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

pub fn apply(ns: &str, yaml: &str) {
    let (ok, _, err) = kubectl_with_input(&["apply", "--server-side", "-n", ns, "-f", "-"], yaml);
    assert!(ok, "kubectl apply: {err}");
}

/// Follows a watch (not repeated lists, whose cost on the API server would be charged to the operator's run)
/// until `expected` objects say Ready.
pub async fn wait_all_ready<K>(api: &Api<K>, expected: usize)
where
    K: kube::Resource<DynamicType = ()>
        + crate::support::kube::Conditions
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

/// Drops the tenant databases and roles of `slugs` on `server`.
pub async fn drop_all(server: Server, slugs: &[String]) {
    for slug in slugs {
        server.drop_tenant(&format!("tenant_{slug}")).await;
    }
}

/// A wall time and the CPU spent in it.
pub type Timed = (Duration, Cpu);

/// The floor's scripts for `slugs`: role, database, REVOKE and the core tenant schema of each, in one
/// session; then the tenant schema of `module` into each.
pub fn floor_scripts(catalog: &Catalog, module: &str, slugs: &[String]) -> (String, String) {
    let joined = |scripts: Vec<&str>| scripts.join("\n");
    let core = joined(
        catalog
            .core(Scope::Tenant)
            .migrations
            .iter()
            .map(|m| m.up.sql.as_str())
            .collect(),
    );
    let module = catalog.module(module).expect("module in catalog");
    let module = joined(
        module
            .tenant
            .migrations
            .iter()
            .map(|m| m.up.sql.as_str())
            .collect(),
    );
    let mut tenants = String::from("\\set ON_ERROR_STOP on\n");
    let mut modules = tenants.clone();
    for slug in slugs {
        let db = format!("tenant_{slug}");
        let _ = write!(
            tenants,
            "CREATE ROLE \"{db}\" LOGIN PASSWORD 'bench';\nCREATE DATABASE \"{db}\" OWNER \"{db}\";\n\
             REVOKE CONNECT, TEMPORARY ON DATABASE \"{db}\" FROM PUBLIC;\n\\c \"{db}\"\nSET ROLE \"{db}\";\n{core}\n\\c postgres\n"
        );
        let _ = write!(modules, "\\c \"{db}\"\nSET ROLE \"{db}\";\n{module}\n");
    }
    (tenants, modules)
}

/// Runs each `(superuser URL, script)` in a psql session of its own, all at once; returns the wall time until
/// the last ends and the CPU spent meanwhile.
pub fn psql(sessions: &[(&str, &str)]) -> Timed {
    let cpu = Cpu::read(None);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let running: Vec<_> = sessions
            .iter()
            .map(|&(url, script)| scope.spawn(move || psql_session(url, script)))
            .collect();
        for session in running {
            session.join().expect("psql thread");
        }
    });
    (start.elapsed(), Cpu::read(None).since(cpu))
}

fn psql_session(url: &str, script: &str) {
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-d", url])
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
}
