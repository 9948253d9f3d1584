//! The chaos suite: two operators (HA on the Lease) roll out 50 tenants × 2 modules (`expenses` brings a
//! no-transaction `CREATE INDEX CONCURRENTLY`), placed by fewest tenants over `default` and a DatabaseServer on
//! the environment's second PostgreSQL server, while the leader is SIGKILLed three times, server 1 (with the
//! landlord database) restarts in immediate mode, kube-apiserver restarts, and server 2 stops in immediate
//! mode for a while: meanwhile the tenants on `default` must finish every installation, those on server 2 not.
//! Then: everything Ready, every migration in every ledger once (and in Landlord's copy), every schema
//! complete, no INVALID index, no advisory lock and no operator session left, on both servers. It restarts the shared environment, so it is `#[ignore]`d in the main run; `scripts/test` runs it
//! alone in an environment of its own, and `scripts/chaos` prints its recovery time.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::ListParams;
use landlord::crd::{DEFAULT_SERVER, ModuleInstallation, Tenant};
use support::kube::{apply_yaml, client, condition, lease_holder, namespace};
use support::operator::{Operator, second_server};
use support::pg::{self, Server};
use support::{repo_root, unique_slug};

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

/// Each Tenant's server (`status.server`), by name; None while the API cannot be asked.
async fn placements(tenants: &Api<Tenant>) -> Option<BTreeMap<String, String>> {
    let list = tenants.list(&ListParams::default()).await.ok()?;
    Some(
        list.items
            .into_iter()
            .filter_map(|t| {
                let server = t.status?.server?;
                Some((t.metadata.name?, server))
            })
            .collect(),
    )
}

/// Each Tenant of namespace `ns` that Landlord's records place (the slug claim), with its server: a Tenant
/// placed on a server that is down has no `status.server` until it is Ready there.
async fn recorded(ns: &str) -> BTreeMap<String, String> {
    pg::strings(
        "landlord",
        "SELECT namespace || ' ' || name || ' ' || server FROM tenants",
    )
    .await
    .iter()
    .filter_map(|row| {
        let (name, server) = row.strip_prefix(ns)?.trim_start().split_once(' ')?;
        Some((name.to_string(), server.to_string()))
    })
    .collect()
}

/// Installations (Ready, all) of the Tenants on `default` and of the others, as `placed` (by Tenant name)
/// says; installations of Tenants not in it count on neither side.
async fn split_progress(
    placed: &BTreeMap<String, String>,
    installs: &Api<ModuleInstallation>,
) -> Option<((usize, usize), (usize, usize))> {
    let list = installs.list(&ListParams::default()).await.ok()?;
    let (mut on_default, mut elsewhere) = ((0, 0), (0, 0));
    for install in &list.items {
        let side = match placed.get(&install.spec.tenant).map(String::as_str) {
            Some(DEFAULT_SERVER) => &mut on_default,
            Some(_) => &mut elsewhere,
            None => continue,
        };
        side.1 += 1;
        side.0 += ready(std::slice::from_ref(install));
    }
    Some((on_default, elsewhere))
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
    // Before any Tenant: placement by fewest tenants then spreads them over `default` and server 2.
    let server2 = second_server(&client, &ns, "chaos-pg2").await;
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
        |_, i| i >= 30,
        a_while,
    )
    .await;

    // Server 2 down while much is left to do: the tenants on `default` (those there already and those
    // placed meanwhile) must finish every installation, those on server 2 cannot. Done once Landlord's
    // records place every Tenant and each on `default` says so in its status with its installations Ready.
    let (before, _) = split_progress(&recorded(&ns).await, &installs)
        .await
        .unwrap_or_default();
    tokio::task::spawn_blocking(pg::stop_server2).await.unwrap();
    let stopped = Instant::now();
    eprintln!("chaos: PostgreSQL server 2 stopped in immediate mode");
    let deadline = stopped + Duration::from_secs(300);
    let mut last = None;
    let (on_default, on_server2) = loop {
        let records = recorded(&ns).await;
        if let Some(placed) = placements(&tenants).await
            && let Some((on_default, on_server2)) = split_progress(&records, &installs).await
        {
            let agree = records
                .iter()
                .filter(|(_, server)| *server == DEFAULT_SERVER)
                .all(|(name, _)| placed.get(name).map(String::as_str) == Some(DEFAULT_SERVER));
            if records.len() == TENANTS && agree && on_default.0 == on_default.1 {
                break (on_default, on_server2);
            }
            last = Some((records.len(), on_default, on_server2));
        }
        assert!(
            Instant::now() < deadline,
            "the tenants on default stopped while server 2 was down: (placed, default, server 2) {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(on_server2.1 > 0, "no installation on server 2");
    assert!(
        on_server2.0 < on_server2.1,
        "every installation on server 2 was Ready while it was down: {on_server2:?}"
    );
    tokio::task::spawn_blocking(pg::start_server2)
        .await
        .unwrap();
    let down_for = stopped.elapsed();
    let meanwhile = on_default.0 - before.0;
    eprintln!(
        "chaos: PostgreSQL server 2 started again after {:.1} s; meanwhile {meanwhile} installations on default became Ready \
         ({}/{} Ready there, {}/{} on server 2)",
        down_for.as_secs_f64(),
        on_default.0,
        on_default.1,
        on_server2.0,
        on_server2.1
    );

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
    let placed = placements(&tenants).await.unwrap();
    let on_default = placed.values().filter(|s| *s == DEFAULT_SERVER).count();
    println!(
        "chaos: {TENANTS} tenants x 2 modules Ready {:.1} s after the last fault (3 leader kills, 1 PostgreSQL and 1 kube-apiserver restart, server 2 down {:.1} s)",
        recovery.as_secs_f64(),
        down_for.as_secs_f64()
    );
    println!(
        "chaos: tenants on default {on_default}, on {server2} (server 2) {}; {} installations on default became Ready while server 2 was down",
        placed.len() - on_default,
        meanwhile,
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
    // Each tenant database is looked for on the server its Tenant's status names.
    let server_of = |i: usize| match placed.get(&format!("t{i}")).map(String::as_str) {
        Some(DEFAULT_SERVER) => Server::One,
        Some(name) if name == server2 => Server::Two,
        other => panic!("t{i} placed on {other:?}"),
    };
    for i in 0..TENANTS {
        let database = format!("tenant_{prefix}_{i}");
        let server = server_of(i);
        let other = if server == Server::One {
            Server::Two
        } else {
            Server::One
        };
        assert!(
            server.database_exists(&database).await && !other.database_exists(&database).await,
            "{database} is not on {server:?} alone"
        );
        let rows = server.ledger_rows(&database, "tenant").await;
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
        let tables = server.tables(&database).await;
        for table in ["tasks", "task_comments", "expense_categories", "expenses"] {
            assert!(
                tables.contains(&table.to_string()),
                "{database} lacks {table}"
            );
        }
        let valid = server
            .strings(
                &database,
            "SELECT c.relname::text || ' ' || i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE c.relname = 'expenses_open_idx' OR NOT i.indisvalid",
        )
        .await;
        assert_eq!(valid, ["expenses_open_idx true"], "{database}");
        let started = server
            .strings(&database, "SELECT module FROM landlord_migrations.started")
            .await;
        assert!(
            started.is_empty(),
            "{database}: start records left: {started:?}"
        );
    }

    // Once the operators stop, nothing of theirs is left in PostgreSQL, on either server.
    for (_, operator) in operators.iter_mut() {
        operator.stop();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for server in [Server::One, Server::Two] {
        loop {
            let left = server
                .strings(
                    "postgres",
                    "SELECT 'session ' || datname || ' ' || state FROM pg_stat_activity WHERE application_name = 'landlord'
                     UNION ALL
                     SELECT 'advisory lock ' || l.objid FROM pg_locks l WHERE l.locktype = 'advisory'",
                )
                .await;
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "left behind on {server:?}: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for i in 0..TENANTS {
        server_of(i)
            .drop_tenant(&format!("tenant_{prefix}_{i}"))
            .await;
    }
}
