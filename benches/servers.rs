//! Servers benchmark: the fleet's P1 and P2 with the tenants spread over two PostgreSQL servers, end to end
//! through the real operator (release build), each figure beside the raw-SQL floor on both servers in the
//! same run: the same DDL fed to one `psql` session as the superuser per server, both sessions at once, half
//! the tenants each.
//!
//! The two servers are `default` (server 1, `LANDLORD_ADMIN_DATABASE_URL`, which also holds the landlord
//! database) and a DatabaseServer on the environment's server 2: placement by fewest tenants alternates
//! between them. One warm-up Tenant per server builds that server's template before the clock starts.
//!
//! - P1: N Tenants applied → all Ready.
//! - P2: module `tasks` on all of them through one ModuleRollout (maxParallel N, maxParallelPerServer at its
//!   default) → all Ready.
//!
//! Beside each figure, the CPU behind it (as in the fleet benchmark; PostgreSQL is both servers), and after
//! each size where the tenants ended up.
//!
//!   scripts/bench servers                            (fresh environment; sizes 10, 100)
//!   LANDLORD_BENCH_SIZES=10,100,1000 scripts/bench servers
//!   cargo test --bench servers                       (test mode: 3 tenants, same checks)
//!
//! Prints figures; asserts nothing about time.

mod shared;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client};
use landlord::catalog::Catalog;
use landlord::crd::{DEFAULT_SERVER, ModuleInstallation, ModuleRollout, Tenant};
use shared::{
    CONCURRENCY, CONNECTIONS, Clock, Figure, Timed, apply, apply_tenants, breakdown,
    created_and_dropped, drop_all, floor_scripts, operator_env, psql, slugs, wait_all_ready,
    warm_up,
};
use support::kube::{client, kubectl, namespace, wait_gone};
use support::operator::{Operator, delete_server, second_server};
use support::pg::Server;
use support::repo_root;

const MODULE: &str = "tasks";
/// The rollout's default bound on installations in flight on one server, written out to be printed.
const PER_SERVER: u32 = 5;
/// Deleted Tenants drop their databases and records, so each size starts from empty servers.
const DELETE: &str = ", deletionPolicy: Delete";

fn main() {
    let sizes = shared::sizes(&[10, 100]);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run(&sizes));
}

async fn run(sizes: &[usize]) {
    let client = client().await;
    let catalog = Catalog::load(
        &repo_root().join("modules"),
        &repo_root().join("migrations"),
    )
    .expect("catalog");
    // A fresh PostgreSQL's first databases cost several times the later ones: both servers make and drop
    // some before anything is timed.
    for server in [Server::One, Server::Two] {
        created_and_dropped(server, "bench_warm", 20, "");
    }
    let mut figures = Vec::new();
    let mut notes = Vec::new();
    for &n in sizes {
        let (p1, p2, note) = at_size(&client, &catalog, n).await;
        figures.push(p1);
        figures.push(p2);
        notes.push(note);
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "servers benchmark: {cores} cores, 2 PostgreSQL servers (default = server 1 with the landlord database, a \
         DatabaseServer on server 2), operator concurrency {CONCURRENCY}, {CONNECTIONS} database connections, \
         rollout maxParallel N and maxParallelPerServer {PER_SERVER}; floor: one psql session per server, both at once"
    );
    for figure in &figures {
        println!("{}", figure.line());
        println!("{}", figure.cpu_line(cores));
    }
    for note in notes {
        println!("{note}");
    }
}

/// P1 and P2 at `n` tenants over both servers, and a note of where they went and where the time went.
async fn at_size(client: &Client, catalog: &Catalog, n: usize) -> (Figure, Figure, String) {
    let floor = floor(catalog, n).await;

    let ns = namespace(client, "bench-servers").await;
    let env = operator_env(&repo_root().join("migrations"), true);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut operator = Operator::start(&ns, &env);
    let server2 = second_server(client, &ns, "bench-pg2").await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    // Equal counts, ties by name: one warm-up lands on each server, and the timed tenants alternate.
    let (warm, built) = warm_up(&tenants, &["first-a", "first-b"], DELETE).await;
    let warmed = placements(&tenants).await;
    // Placement counts every tenant Landlord records: in an environment shared with the test suite (`cargo
    // test --benches` after the tests), `default` already holds many and the warm-ups both go to server 2.
    if warmed.values().filter(|s| *s == DEFAULT_SERVER).count() != 1 {
        println!("  note: default already held tenants, so the warm-ups went {warmed:?}");
    }

    let slugs = slugs("servers", n);
    let clock = Clock::start(&operator);
    apply_tenants(&ns, &slugs, DELETE);
    wait_all_ready(&tenants, n + warm.len()).await;
    let p1 = clock.figure("P1 tenants over 2 servers", n, floor.tenants);

    let clock = Clock::start(&operator);
    // The timed tenants only (the warm-ups carry no `bench` label), every one at once as far as the
    // operator's concurrency and the per-server bound let it.
    apply(
        &ns,
        &format!(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleRollout\nmetadata: {{name: {MODULE}-all}}\n\
             spec: {{module: {MODULE}, tenantSelector: {{matchLabels: {{bench: timed}}}}, \
             strategy: {{maxParallel: {}, maxParallelPerServer: {PER_SERVER}}}}}\n",
            n.min(1000)
        ),
    );
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_all_ready(&installs, n).await;
    let p2 = clock.figure(
        format!("P2 module {MODULE} by ModuleRollout, 2 servers"),
        n,
        floor.module,
    );

    let placed = placements(&tenants).await;
    let on_default = placed
        .iter()
        .filter(|(name, server)| !warmed.contains_key(*name) && *server == DEFAULT_SERVER)
        .count();
    let note = format!(
        "  {n} tenants: {on_default} on default, {} on {server2} (server 2), plus one warm-up Tenant on each, \
         whose templates took {:.2} s before the clock started; floor {} + {} tenants\n{}",
        n - on_default,
        built.as_secs_f64(),
        n / 2,
        n - n / 2,
        breakdown(&operator, n).await
    );

    // Rollout, Tenants (dropping their databases and records) and the DatabaseServer, through the operator.
    let rollouts: Api<ModuleRollout> = Api::namespaced(client.clone(), &ns);
    let rollout = format!("{MODULE}-all");
    rollouts
        .delete(&rollout, &DeleteParams::default())
        .await
        .expect("delete the rollout");
    wait_gone(&rollouts, &rollout).await;
    let (ok, _, err) = kubectl(&["delete", "tenants", "--all", "-n", &ns, "--timeout=600s"]);
    assert!(ok, "kubectl delete tenants: {err}");
    delete_server(client, &server2).await;
    operator.stop();
    (p1, p2, note)
}

/// Each Tenant's `status.server`, by name.
async fn placements(tenants: &Api<Tenant>) -> BTreeMap<String, String> {
    tenants
        .list(&ListParams::default())
        .await
        .expect("list tenants")
        .items
        .into_iter()
        .filter_map(|t| Some((t.metadata.name?, t.status?.server?)))
        .collect()
}

/// The floor's phases for `n` tenants over both servers.
struct Floor {
    /// Role, database, REVOKE, core tenant schema.
    tenants: Timed,
    /// The module's tenant schema into each.
    module: Timed,
}

/// The floor on both servers at once, half the tenants each (server 2 the odd one); the databases are
/// dropped before the operator's turn.
async fn floor(catalog: &Catalog, n: usize) -> Floor {
    let slugs = slugs("floor", n);
    let (one, two) = slugs.split_at(n / 2);
    let (tenants_one, module_one) = floor_scripts(catalog, MODULE, one);
    let (tenants_two, module_two) = floor_scripts(catalog, MODULE, two);
    let (url_one, url_two) = (Server::One.superuser_url(), Server::Two.superuser_url());
    let tenants = psql(&[(url_one, &tenants_one), (url_two, &tenants_two)]);
    let module = psql(&[(url_one, &module_one), (url_two, &module_two)]);
    drop_all(Server::One, one).await;
    drop_all(Server::Two, two).await;
    Floor { tenants, module }
}
