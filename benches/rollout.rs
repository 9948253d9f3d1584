//! Rollout benchmark, end to end: `kubectl apply` of N Tenants until all are Ready, then one module on all
//! of them through one ModuleInstallation each until every one is Ready, then a second module through a
//! ModuleRollout at maxParallel 1, 5 and 20 (each rolled back before the next) — through the real operator
//! (release build) — versus the raw-SQL floor: the same DDL (role, database, REVOKE, core schema, module
//! schemas) fed to one `psql` session as the superuser, in the same run, on the same PostgreSQL.
//!
//!   scripts/bench                   (fresh environment)   or, with `scripts/dev up` running:
//!   cargo bench --bench rollout     LANDLORD_BENCH_TENANTS tenants (default 50), LANDLORD_CONCURRENCY (default 4)
//!   cargo test --benches            test mode: 3 tenants, same checks

mod shared;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use kube::Api;
use kube::api::ListParams;
use landlord::catalog::{Catalog, Scope};
use landlord::crd::{ModuleInstallation, ModuleRollout, Tenant};
use support::kube::{client, condition, kubectl_with_input, namespace};
use support::operator::Operator;
use support::{TestEnv, pg, repo_root, unique_slug};

const MODULE: &str = "tasks";
/// Rolled out through a ModuleRollout; it depends on MODULE.
const ROLLED: &str = "expenses";
const PARALLEL: [u32; 3] = [1, 5, 20];

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let tenants: usize = std::env::var("LANDLORD_BENCH_TENANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if bench_mode { 50 } else { 3 });
    let concurrency = std::env::var("LANDLORD_CONCURRENCY").unwrap_or_else(|_| "4".into());
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run(tenants, &concurrency));
}

async fn run(tenants: usize, concurrency: &str) {
    let catalog = Catalog::load(
        &repo_root().join("modules"),
        &repo_root().join("migrations"),
    )
    .expect("catalog");
    let client = client().await;
    let ns = namespace(&client, "bench-rollout").await;
    let mut operator = Operator::start(
        &ns,
        &[("LANDLORD_CONCURRENCY", concurrency), ("RUST_LOG", "warn")],
    );
    let prefix = unique_slug("bench");
    let slugs: Vec<String> = (0..tenants).map(|i| format!("{prefix}_{i}")).collect();

    let start = Instant::now();
    shared::apply_tenants(&ns, &slugs, ", deletionPolicy: Delete");
    let tenants_api: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    wait_all_ready(&tenants_api, tenants).await;
    let tenant_time = start.elapsed();

    let yaml: String = (0..tenants)
        .map(|i| {
            format!(
                "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: t{i}-{MODULE}}}\nspec: {{tenant: t{i}, module: {MODULE}}}\n"
            )
        })
        .collect();
    let start = Instant::now();
    apply(&ns, &yaml);
    let installs_api: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_all_ready(&installs_api, tenants).await;
    let module_time = start.elapsed();

    let rollouts: Api<ModuleRollout> = Api::namespaced(client.clone(), &ns);
    let mut rollout_times = Vec::new();
    for parallel in PARALLEL {
        let yaml = format!(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleRollout\nmetadata: {{name: {ROLLED}-all}}\nspec: {{module: {ROLLED}, uninstallPolicy: Rollback, strategy: {{maxParallel: {parallel}}}}}\n"
        );
        let start = Instant::now();
        apply(&ns, &yaml);
        wait_all_ready(&rollouts, 1).await;
        rollout_times.push((parallel, start.elapsed()));
        rollouts
            .delete(&format!("{ROLLED}-all"), &Default::default())
            .await
            .expect("delete the rollout");
        support::kube::wait_gone(&rollouts, &format!("{ROLLED}-all")).await;
    }
    operator.stop();
    for slug in &slugs {
        pg::drop_tenant(&format!("tenant_{slug}")).await;
    }

    // The floor: the same DDL, one psql session, no Kubernetes, no ledger, no locks.
    let floor_prefix = unique_slug("floor");
    let floor_slugs: Vec<String> = (0..tenants)
        .map(|i| format!("{floor_prefix}_{i}"))
        .collect();
    let core_sql = scope_sql(
        catalog
            .core(Scope::Tenant)
            .migrations
            .iter()
            .map(|m| m.up.sql.as_str()),
    );
    let module = catalog.module(MODULE).expect("module in catalog");
    let module_sql = scope_sql(module.tenant.migrations.iter().map(|m| m.up.sql.as_str()));
    let mut script = String::from("\\set ON_ERROR_STOP on\n");
    for slug in &floor_slugs {
        let db = format!("tenant_{slug}");
        script.push_str(&format!(
            "CREATE ROLE \"{db}\" LOGIN PASSWORD 'bench';\nCREATE DATABASE \"{db}\" OWNER \"{db}\";\n\
             REVOKE CONNECT, TEMPORARY ON DATABASE \"{db}\" FROM PUBLIC;\n\\c \"{db}\"\nSET ROLE \"{db}\";\n{core_sql}\n\\c postgres\n"
        ));
    }
    let floor_tenants = psql(&script);
    let mut script = String::from("\\set ON_ERROR_STOP on\n");
    for slug in &floor_slugs {
        script.push_str(&format!(
            "\\c \"tenant_{slug}\"\nSET ROLE \"tenant_{slug}\";\n{module_sql}\n"
        ));
    }
    let floor_module = psql(&script);
    let rolled = catalog.module(ROLLED).expect("rolled module in catalog");
    let rolled_sql = scope_sql(rolled.tenant.migrations.iter().map(|m| m.up.sql.as_str()));
    let mut script = String::from("\\set ON_ERROR_STOP on\n");
    for slug in &floor_slugs {
        script.push_str(&format!(
            "\\c \"tenant_{slug}\"\nSET ROLE \"tenant_{slug}\";\n{rolled_sql}\n"
        ));
    }
    let floor_rolled = psql(&script);
    for slug in &floor_slugs {
        pg::drop_tenant(&format!("tenant_{slug}")).await;
    }

    let per = |d: Duration| d.as_secs_f64() * 1000.0 / tenants as f64;
    println!(
        "rollout benchmark: {tenants} tenants, operator concurrency {concurrency}, module {MODULE}"
    );
    println!(
        "  tenants  apply → all Ready : {:>8.0} ms total, {:>6.1} ms/tenant | psql floor {:>6.1} ms/tenant | ratio {:.2}x",
        tenant_time.as_secs_f64() * 1000.0,
        per(tenant_time),
        per(floor_tenants),
        tenant_time.as_secs_f64() / floor_tenants.as_secs_f64()
    );
    println!(
        "  module   apply → all Ready : {:>8.0} ms total, {:>6.1} ms/tenant | psql floor {:>6.1} ms/tenant | ratio {:.2}x",
        module_time.as_secs_f64() * 1000.0,
        per(module_time),
        per(floor_module),
        module_time.as_secs_f64() / floor_module.as_secs_f64()
    );
    for (parallel, time) in rollout_times {
        println!(
            "  rollout  {ROLLED}, maxParallel {parallel:>2}: {:>8.0} ms total, {:>6.1} ms/tenant | psql floor {:>6.1} ms/tenant | ratio {:.2}x",
            time.as_secs_f64() * 1000.0,
            per(time),
            per(floor_rolled),
            time.as_secs_f64() / floor_rolled.as_secs_f64()
        );
    }
}

fn scope_sql<'a>(scripts: impl Iterator<Item = &'a str>) -> String {
    scripts.collect::<Vec<_>>().join("\n")
}

fn apply(ns: &str, yaml: &str) {
    let (ok, _, err) = kubectl_with_input(&["apply", "-n", ns, "-f", "-"], yaml);
    assert!(ok, "kubectl apply: {err}");
}

async fn wait_all_ready<K>(api: &Api<K>, expected: usize)
where
    K: kube::Resource
        + support::kube::Conditions
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let items = api.list(&ListParams::default()).await.expect("list").items;
        let ready = items
            .iter()
            .filter(|o| condition(*o, "Ready") == Some(("True".into(), "Reconciled".into())))
            .count();
        if ready == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready}/{expected} Ready after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `script` in one psql session as the superuser; returns the wall time.
fn psql(script: &str) -> Duration {
    shared::psql(&[(TestEnv::get().superuser_url(), script)]).0
}
