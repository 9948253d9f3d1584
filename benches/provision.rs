//! Provisioning benchmark: per tenant, CREATE ROLE + CREATE DATABASE + REVOKE + the core tenant migrations
//! (with their ledger rows) through `landlord::db`, versus the same SQL fed to one `psql` session in the
//! same run. Sequential on both sides, so the figures compare overhead, not parallelism.
//!
//!   cargo bench --bench provision            LANDLORD_BENCH_TENANTS tenants per side (default 20)
//!   cargo test --benches                     test mode: 2 tenants per side, same checks
//!
//! Needs the development PostgreSQL (`scripts/dev up`); drops every database and role it created.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use landlord::catalog::{Catalog, Migration, Scope};
use landlord::db::{self, Databases, Limits, Migrator, Password, TenantNames, TenantOwner, Track};

/// Every tenant of the benchmark belongs to one make-believe Tenant, so both sides can be dropped alike.
fn bench_owner() -> TenantOwner {
    TenantOwner {
        uid: "bench".into(),
        namespace: "bench".into(),
        name: "bench".into(),
    }
}

const LEDGER_DDL: &str = "\
CREATE SCHEMA IF NOT EXISTS landlord_migrations;
CREATE TABLE IF NOT EXISTS landlord_migrations.ledger (
    scope text NOT NULL, module text NOT NULL, version bigint NOT NULL, description text NOT NULL,
    checksum bytea NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), execution_ms bigint NOT NULL,
    PRIMARY KEY (scope, module, version));";

fn main() -> anyhow::Result<()> {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let tenants: usize = match std::env::var("LANDLORD_BENCH_TENANTS") {
        Ok(n) => n
            .parse()
            .context("LANDLORD_BENCH_TENANTS must be a number")?,
        Err(_) if bench_mode => 20,
        Err(_) => 2,
    };
    let env = dev_env();
    let admin_url = env
        .get("LANDLORD_ADMIN_DATABASE_URL")
        .context("LANDLORD_ADMIN_DATABASE_URL is not set: run `scripts/dev up` first")?
        .clone();
    let landlord_url = env
        .get("LANDLORD_DATABASE_URL")
        .context("LANDLORD_DATABASE_URL is not set")?
        .clone();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let catalog = Catalog::load(&root.join("modules"), &root.join("migrations"))
        .map_err(|e| anyhow::anyhow!("catalog: {e}"))?;

    // The machine is shared: several rounds, alternating which side goes first, and the median.
    let rounds: usize = if bench_mode { 3 } else { 1 };
    let runtime = tokio::runtime::Runtime::new()?;
    let figures = runtime.block_on(async {
        let databases = Databases::new(&admin_url, &landlord_url, Limits::default())?;
        // Tenant connections keep Landlord's copy of their ledger in the landlord database.
        let mut landlord = databases.landlord().await?;
        Migrator::new()
            .apply(
                &mut landlord,
                &Track::core(&catalog, Scope::Landlord),
                catalog.core_landlord.latest(),
            )
            .await?;
        landlord.close().await?;
        let mut figures = Vec::new();
        for round in 0..rounds {
            let names = |side: &str| -> Result<Vec<TenantNames>, db::Error> {
                (0..tenants)
                    .map(|i| {
                        TenantNames::new(&format!("bench_{}_{round}{side}{i}", std::process::id()))
                    })
                    .collect()
            };
            let (ours, psql) = (names("l")?, names("p")?);
            let result = measure(
                &databases,
                &catalog,
                &admin_url,
                &ours,
                &psql,
                round % 2 == 1,
            )
            .await;
            // Clean up whatever happened, every tenant even when one fails.
            let mut leftovers = Vec::new();
            for tenant in ours.iter().chain(&psql) {
                if let Err(e) = db::drop_tenant(&databases, tenant, &bench_owner()).await {
                    leftovers.push(format!("{}: {e}", tenant.database()));
                }
            }
            let (landlord_db, one_psql) = result?;
            if !leftovers.is_empty() {
                bail!("could not drop: {}", leftovers.join("; "));
            }
            let per = |d: Duration| d.as_secs_f64() * 1000.0 / tenants as f64;
            println!(
                "round {}: landlord::db {:7.1} ms, psql {:7.1} ms per tenant",
                round + 1,
                per(landlord_db),
                per(one_psql)
            );
            figures.push((per(landlord_db), per(one_psql)));
        }
        anyhow::Ok(figures)
    })?;

    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ours = median(figures.iter().map(|f| f.0).collect());
    let psql = median(figures.iter().map(|f| f.1).collect());
    println!(
        "provision: {tenants} tenants per side and round, {} core tenant migrations each (sequential), \
         median of {rounds} round(s)",
        catalog.core_tenant.migrations.len()
    );
    println!("  landlord::db       {ours:8.1} ms per tenant");
    println!("  psql, one session  {psql:8.1} ms per tenant");
    println!(
        "  ratio              {:8.2} (landlord::db / psql)",
        ours / psql
    );
    Ok(())
}

async fn measure(
    databases: &Databases,
    catalog: &Catalog,
    admin_url: &str,
    ours: &[TenantNames],
    psql: &[TenantNames],
    psql_first: bool,
) -> anyhow::Result<(Duration, Duration)> {
    if psql_first {
        let one_psql = run_psql(admin_url, psql, &catalog.core_tenant.migrations)?;
        let landlord_db = run_landlord_db(databases, catalog, ours).await?;
        return Ok((landlord_db, one_psql));
    }
    let landlord_db = run_landlord_db(databases, catalog, ours).await?;
    let one_psql = run_psql(admin_url, psql, &catalog.core_tenant.migrations)?;
    Ok((landlord_db, one_psql))
}

async fn run_landlord_db(
    databases: &Databases,
    catalog: &Catalog,
    ours: &[TenantNames],
) -> anyhow::Result<Duration> {
    let core = Track::core(catalog, Scope::Tenant);
    let migrator = Migrator::new();
    let started = Instant::now();
    for tenant in ours {
        let password = Password::generate()?;
        let (_, mut conn) = db::ensure_tenant(
            databases,
            &db::TenantRequest {
                tenant,
                owner: &bench_owner(),
                password: &password,
                extensions: &[],
                templates: None,
                may_create_database: true,
            },
        )
        .await?;
        let report = migrator
            .apply(&mut conn, &core, catalog.core_tenant.latest())
            .await?;
        conn.close().await?;
        if report.executed.len() != catalog.core_tenant.migrations.len() {
            bail!("{}: applied {:?}", tenant.database(), report.executed);
        }
    }
    Ok(started.elapsed())
}

fn run_psql(
    admin_url: &str,
    psql: &[TenantNames],
    migrations: &[Migration],
) -> anyhow::Result<Duration> {
    let script = psql_script(psql, migrations)?;
    let started = Instant::now();
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("run psql")?;
    child
        .stdin
        .take()
        .context("psql stdin")?
        .write_all(script.as_bytes())?;
    let status = child.wait()?;
    let elapsed = started.elapsed();
    if !status.success() {
        bail!("psql failed: {status}");
    }
    Ok(elapsed)
}

/// What `landlord::db` sends, minus its look-ups and locks: the baseline.
fn psql_script(tenants: &[TenantNames], migrations: &[Migration]) -> anyhow::Result<String> {
    let mut script = String::new();
    for tenant in tenants {
        let (database, role) = (tenant.database().quoted(), tenant.role().quoted());
        let password = Password::generate()?;
        script.push_str(&format!(
            "BEGIN;\nCREATE ROLE {role} LOGIN PASSWORD '{}';\nCOMMENT ON ROLE {role} IS '{}';\nCOMMIT;\n\
             GRANT {role} TO CURRENT_USER;\n\
             CREATE DATABASE {database} OWNER {role};\n\
             REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC;\n\
             \\connect {}\nSET ROLE {role};\n{LEDGER_DDL}\n",
            password.expose(),
            bench_owner().mark(),
            tenant.database()
        ));
        for m in migrations {
            let checksum: String = m.checksum.iter().map(|b| format!("{b:02x}")).collect();
            script.push_str(&format!(
                "BEGIN;\n{}\n;\nINSERT INTO landlord_migrations.ledger \
                 (scope, module, version, description, checksum, execution_ms) \
                 VALUES ('tenant', 'core', {}, '{}', '\\x{checksum}', 0);\nCOMMIT;\n",
                m.up.sql, m.version, m.description
            ));
        }
        script.push_str("\\connect postgres\n");
    }
    Ok(script)
}

/// The process environment, else `.dev/env` as written by `scripts/dev up`.
fn dev_env() -> HashMap<String, String> {
    let dir = std::env::var("LANDLORD_DEV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".dev"));
    let mut vars: HashMap<String, String> = std::fs::read_to_string(dir.join("env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim_start_matches("export ").split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for key in ["LANDLORD_ADMIN_DATABASE_URL", "LANDLORD_DATABASE_URL"] {
        if let Ok(value) = std::env::var(key) {
            vars.insert(key.to_string(), value);
        }
    }
    vars
}
