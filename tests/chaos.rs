//! The chaos suite: two operators (HA on the Lease) roll out 50 tenants × 2 modules (`expenses` brings a
//! no-transaction `CREATE INDEX CONCURRENTLY`) while the leader is SIGKILLed three times, PostgreSQL stops in
//! immediate mode and kube-apiserver restarts. Then: everything Ready, every migration in every ledger once
//! (and in Landlord's copy), every schema complete, no INVALID index, no advisory lock and no operator session
//! left. It restarts the shared environment, so it is `#[ignore]`d in the main run; `scripts/test` runs it
//! alone in an environment of its own, and `scripts/chaos` prints its recovery time.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::ListParams;
use landlord::crd::{ModuleInstallation, Tenant};
use support::kube::{apply_yaml, client, condition, lease_holder, namespace};
use support::operator::Operator;
use support::{pg, repo_root, unique_slug};

const TENANTS: usize = 50;

fn ready<K: support::kube::Conditions>(objects: &[K]) -> usize {
    objects
        .iter()
        .filter(|o| condition(*o, "Ready") == Some(("True".into(), "Reconciled".into())))
        .count()
}

/// (tenants Ready, installations Ready), reading through apiserver outages.
async fn progress(
    tenants: &Api<Tenant>,
    installs: &Api<ModuleInstallation>,
) -> Option<(usize, usize)> {
    let t = tenants.list(&ListParams::default()).await.ok()?;
    let i = installs.list(&ListParams::default()).await.ok()?;
    Some((ready(&t.items), ready(&i.items)))
}

async fn wait_progress(
    tenants: &Api<Tenant>,
    installs: &Api<ModuleInstallation>,
    what: &str,
    done: impl Fn(usize, usize) -> bool,
    within: Duration,
) -> (usize, usize) {
    let deadline = Instant::now() + within;
    let mut last = (0, 0);
    loop {
        if let Some((t, i)) = progress(tenants, installs).await {
            last = (t, i);
            if done(t, i) {
                return last;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{what}: only {last:?} Ready after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// SIGKILLs whichever operator holds the Lease and starts a replacement under a new name, as a Deployment
/// replaces a pod: the standby or the replacement takes over once the Lease expires.
async fn kill_leader(
    ns: &str,
    operators: &mut [(String, Operator)],
    leases: &Api<Lease>,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        if let Some(h) = lease_holder(leases).await
            && operators.iter().any(|(name, _)| *name == h)
        {
            break h;
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (name, operator) in operators.iter_mut() {
        if *name == leader {
            operator.stop();
            *name = format!("{leader}x");
            *operator = Operator::start(ns, &[("POD_NAME", name.as_str())]);
        }
    }
    leader
}

fn restart(part: &str) {
    let status = Command::new(repo_root().join("scripts/dev"))
        .args(["restart", part])
        .status()
        .expect("run scripts/dev restart");
    assert!(status.success(), "scripts/dev restart {part} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "restarts PostgreSQL and kube-apiserver: scripts/test runs it alone in an environment of its own"]
async fn a_rollout_survives_killed_leaders_and_restarted_databases_and_apiservers() {
    let client = client().await;
    let ns = namespace(&client, "chaos").await;
    let mut operators: Vec<(String, Operator)> = ["landlord-a", "landlord-b"]
        .into_iter()
        .map(|name| {
            (
                name.to_string(),
                Operator::start(&ns, &[("POD_NAME", name)]),
            )
        })
        .collect();
    let prefix = unique_slug("chaos");
    let mut yaml = String::new();
    for i in 0..TENANTS {
        yaml.push_str(&format!(
            "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t{i}}}\nspec: {{slug: {prefix}_{i}, deletionPolicy: Delete}}\n\
             ---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: t{i}-tasks}}\nspec: {{tenant: t{i}, module: tasks}}\n\
             ---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: t{i}-expenses}}\nspec: {{tenant: t{i}, module: expenses}}\n"
        ));
    }
    apply_yaml(&ns, &yaml);
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let a_while = Duration::from_secs(120);
    let all = 2 * TENANTS;

    // Faults while the rollout is under way, each once it has made some progress since the last.
    wait_progress(&tenants, &installs, "first tenants", |t, _| t >= 5, a_while).await;
    let killed = kill_leader(&ns, &mut operators, &leases).await;
    eprintln!("chaos: SIGKILLed leader {killed}");
    wait_progress(
        &tenants,
        &installs,
        "after the first kill",
        |t, _| t >= 15,
        a_while,
    )
    .await;
    restart("postgres");
    eprintln!("chaos: PostgreSQL restarted in immediate mode");
    wait_progress(
        &tenants,
        &installs,
        "after PostgreSQL",
        |t, i| t >= 25 && i >= 5,
        a_while,
    )
    .await;
    let killed = kill_leader(&ns, &mut operators, &leases).await;
    eprintln!("chaos: SIGKILLed leader {killed}");
    wait_progress(
        &tenants,
        &installs,
        "after the second kill",
        |_, i| i >= 20,
        a_while,
    )
    .await;
    restart("apiserver");
    eprintln!("chaos: kube-apiserver restarted");
    wait_progress(
        &tenants,
        &installs,
        "after kube-apiserver",
        |_, i| i >= 40,
        a_while,
    )
    .await;
    let killed = kill_leader(&ns, &mut operators, &leases).await;
    eprintln!("chaos: SIGKILLed leader {killed}");
    let last_fault = Instant::now();

    wait_progress(
        &tenants,
        &installs,
        "everything",
        |t, i| t == TENANTS && i == all,
        Duration::from_secs(300),
    )
    .await;
    let recovery = last_fault.elapsed();
    println!(
        "chaos: {TENANTS} tenants x 2 modules Ready {:.1} s after the last fault (3 leader kills, 1 PostgreSQL and 1 kube-apiserver restart)",
        recovery.as_secs_f64()
    );

    // Every ledger holds every migration once, and Landlord's copy says the same.
    let catalog = landlord::catalog::Catalog::load(
        &repo_root().join("modules"),
        &repo_root().join("migrations"),
    )
    .unwrap();
    let expected = |module: &str| match module {
        "core" => catalog.core_tenant.migrations.len(),
        name => catalog.module(name).unwrap().tenant.migrations.len(),
    };
    let copy = pg::strings(
        "landlord",
        "SELECT tenant_slug || ' ' || count(*) FILTER (WHERE state = 'applied') || '/' || count(*)
           FROM tenant_ledger GROUP BY tenant_slug",
    )
    .await;
    for i in 0..TENANTS {
        let database = format!("tenant_{prefix}_{i}");
        let rows = pg::ledger_rows(&database, "tenant").await;
        for module in ["core", "tasks", "expenses"] {
            let n = rows.iter().filter(|(m, _)| m == module).count();
            assert_eq!(
                n,
                expected(module),
                "{database}: {module} applied {n} times: {rows:?}"
            );
        }
        let total = rows.len();
        assert!(
            copy.contains(&format!("{prefix}_{i} {total}/{total}")),
            "Landlord's copy of {database} differs from its ledger"
        );
        let tables = pg::tables(&database).await;
        for table in ["tasks", "task_comments", "expense_categories", "expenses"] {
            assert!(
                tables.contains(&table.to_string()),
                "{database} lacks {table}"
            );
        }
        let valid = pg::strings(
            &database,
            "SELECT c.relname::text || ' ' || i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE c.relname = 'expenses_open_idx' OR NOT i.indisvalid",
        )
        .await;
        assert_eq!(valid, ["expenses_open_idx true"], "{database}");
        let started =
            pg::strings(&database, "SELECT module FROM landlord_migrations.started").await;
        assert!(
            started.is_empty(),
            "{database}: start records left: {started:?}"
        );
    }

    // Once the operators stop, nothing of theirs is left in PostgreSQL.
    for (_, operator) in operators.iter_mut() {
        operator.stop();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = pg::strings(
            "postgres",
            "SELECT 'session ' || datname || ' ' || state FROM pg_stat_activity WHERE application_name = 'landlord'
             UNION ALL
             SELECT 'advisory lock ' || l.objid FROM pg_locks l WHERE l.locktype = 'advisory'",
        )
        .await;
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 0..TENANTS {
        pg::drop_tenant(&format!("tenant_{prefix}_{i}")).await;
    }
}
