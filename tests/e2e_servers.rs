//! Tenants spread over two real PostgreSQL servers through DatabaseServers: placement by fewest tenants,
//! `spec.server`, `spec.serverSelector`, a `namespaceSelector` that refuses, a cordon, the last slot under
//! `maxTenants` raced for, `NoServerAvailable` until capacity appears, a deletion held by `ServerInUse`, and a
//! server stopped mid-rollout that stops only its own tenants.

mod support;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use landlord::crd::{DatabaseServer, ModuleInstallation, Tenant};
use serde_json::json;
use support::kube::{
    apply_yaml, client, condition, namespace, secret_value, wait_condition, wait_gone, wait_ready,
    wait_until,
};
use support::operator::{Operator, SERVER_OWNER_LABEL};
use support::pg::{self, Server};
use support::{unique, unique_slug};
use tokio::sync::RwLock;

/// Server 2 is stopped by one test of this binary: the others keep it running while they use it.
static SERVER2: LazyLock<RwLock<()>> = LazyLock::new(|| RwLock::new(()));

/// A test namespace with its operator (which places nothing on `default`) and an admin Secret per server.
struct Fleet {
    client: Client,
    ns: String,
    operator: Operator,
}

fn secret_of(server: Server) -> &'static str {
    match server {
        Server::One => "pg1-admin",
        Server::Two => "pg2-admin",
    }
}

fn port_of(server: Server) -> u16 {
    let url = server.admin_url();
    let host = url.rsplit_once('@').map(|(_, h)| h).unwrap();
    let port = host.split_once(':').unwrap().1.split_once('/').unwrap().0;
    port.parse().unwrap()
}

impl Fleet {
    async fn start(prefix: &str) -> Fleet {
        let client = client().await;
        let ns = namespace(&client, prefix).await;
        // The operator's namespace is the watched one here (no POD_NAMESPACE): its admin Secrets live there.
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
        for server in [Server::One, Server::Two] {
            let secret = Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some(secret_of(server).into()),
                    ..Default::default()
                },
                string_data: Some(BTreeMap::from([(
                    "uri".to_string(),
                    server.admin_url().to_string(),
                )])),
                ..Default::default()
            };
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .unwrap();
        }
        let operator = Operator::start(&ns, &[("LANDLORD_DEFAULT_SERVER_CORDONED", "true")]);
        Fleet {
            client,
            ns,
            operator,
        }
    }

    fn servers(&self) -> Api<DatabaseServer> {
        Api::all(self.client.clone())
    }

    fn tenants(&self) -> Api<Tenant> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// A DatabaseServer on `server`, given to this test's operator; waits until it is Ready.
    async fn server(&self, prefix: &str, server: Server, spec: serde_json::Value) -> String {
        let name = unique(prefix);
        let mut spec = spec;
        spec["adminSecretRef"] = json!({ "name": secret_of(server) });
        let object: DatabaseServer = serde_json::from_value(json!({
            "apiVersion": "tenancy.landlord.dev/v1alpha1",
            "kind": "DatabaseServer",
            "metadata": { "name": name, "labels": { SERVER_OWNER_LABEL: self.ns } },
            "spec": spec,
        }))
        .unwrap();
        self.servers()
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
        let ready = wait_ready(&self.servers(), &name).await;
        let status = ready.status.unwrap();
        assert!(status.server_version.unwrap().starts_with("15"));
        name
    }

    async fn patch_server(&self, name: &str, spec: serde_json::Value) {
        self.servers()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .unwrap();
        // The registry took it in once the status speaks of the new generation.
        wait_until(&self.servers(), name, "the new spec observed", |s| {
            s.status.as_ref().and_then(|s| s.observed_generation) == s.metadata.generation
        })
        .await;
    }

    /// A Tenant (deletionPolicy Delete) with `spec` lines; its slug.
    fn tenant(&self, name: &str, spec: &str) -> String {
        let slug = unique_slug(name);
        apply_yaml(&self.ns, &tenant_yaml(name, &slug, spec));
        slug
    }

    /// Waits until the Tenant is Ready; the server its status names.
    async fn placed(&self, name: &str) -> String {
        let tenant = wait_ready(&self.tenants(), name).await;
        tenant.status.unwrap().server.expect("status.server")
    }

    async fn delete_server(&self, name: &str) {
        support::operator::delete_server(&self.client, name).await;
    }

    async fn delete_tenant(&self, name: &str) {
        self.tenants()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        wait_gone(&self.tenants(), name).await;
    }
}

fn tenant_yaml(name: &str, slug: &str, spec: &str) -> String {
    format!(
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}}}\nspec:\n  slug: {slug}\n  deletionPolicy: Delete\n{spec}"
    )
}

/// Which physical server holds `tenant_<slug>`: exactly one must.
async fn holder(slug: &str) -> Server {
    let database = format!("tenant_{slug}");
    let on = (
        Server::One.database_exists(&database).await,
        Server::Two.database_exists(&database).await,
    );
    match on {
        (true, false) => Server::One,
        (false, true) => Server::Two,
        other => panic!("{database} on (server 1, server 2): {other:?}"),
    }
}

#[tokio::test]
async fn tenants_go_to_the_fewest_or_where_spec_and_selectors_say() {
    let _server2 = SERVER2.read().await;
    let fleet = Fleet::start("servers-place").await;
    // a on server 1, reached by applications as `localhost`; b on server 2; names sort a before b.
    let endpoint = json!({ "host": "localhost", "port": port_of(Server::One) });
    let a = fleet
        .server(
            "a",
            Server::One,
            json!({ "tenantEndpoint": endpoint, "maxTenants": 10 }),
        )
        .await;
    let b = fleet.server("b", Server::Two, json!({})).await;
    fleet
        .servers()
        .patch(
            &a,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "disk": "ssd" } } })),
        )
        .await
        .unwrap();

    // Fewest tenants first, ties by name: a, b, a, b.
    let mut placed = Vec::new();
    for name in ["t1", "t2", "t3", "t4"] {
        let slug = fleet.tenant(name, "");
        let server = fleet.placed(name).await;
        let physical = holder(&slug).await;
        assert_eq!(
            physical,
            if server == a {
                Server::One
            } else {
                Server::Two
            }
        );
        placed.push(server);
    }
    assert_eq!(placed, [&a, &b, &a, &b].map(String::clone));

    // Each server clones from a template of its own, built there.
    let templates = Server::Two
        .strings(
            "postgres",
            "SELECT datname FROM pg_database WHERE datname LIKE 'landlord_template_%'",
        )
        .await;
    assert_eq!(templates.len(), 1, "{templates:?}");
    wait_until(&fleet.servers(), &b, "its template in status", |s| {
        s.status.as_ref().and_then(|s| s.template.as_ref()) == Some(&templates[0])
    })
    .await;

    // The Secret carries the server's tenantEndpoint, and its URI logs in.
    let secret: Secret = Api::namespaced(fleet.client.clone(), &fleet.ns)
        .get("t1-db")
        .await
        .unwrap();
    assert_eq!(secret_value(&secret, "host"), "localhost");
    pg::until_login_works(&secret_value(&secret, "uri"), "t1 through its endpoint").await;
    let on_b: Secret = Api::namespaced(fleet.client.clone(), &fleet.ns)
        .get("t2-db")
        .await
        .unwrap();
    assert_eq!(
        secret_value(&on_b, "port"),
        port_of(Server::Two).to_string()
    );

    // spec.server wins over the count; a selector narrows the choice to a.
    fleet.tenant("t5", &format!("  server: {b}\n"));
    assert_eq!(fleet.placed("t5").await, b);
    fleet.tenant("t6", "  serverSelector: {matchLabels: {disk: ssd}}\n");
    assert_eq!(fleet.placed("t6").await, a);

    // Cordoned a takes nothing new, though it has no more tenants than b.
    fleet.patch_server(&a, json!({ "cordoned": true })).await;
    fleet.tenant("t7", "");
    assert_eq!(fleet.placed("t7").await, b);
    // Nothing left for a selector that only a matches: the Tenant waits, and is placed once a is uncordoned.
    fleet.tenant("t8", "  serverSelector: {matchLabels: {disk: ssd}}\n");
    let waiting = wait_condition(
        &fleet.tenants(),
        "t8",
        "Ready",
        "False",
        "NoServerAvailable",
    )
    .await;
    let message = waiting.status.unwrap().conditions[0].message.clone();
    assert!(message.contains("is cordoned"), "{message}");
    fleet.patch_server(&a, json!({ "cordoned": false })).await;
    assert_eq!(fleet.placed("t8").await, a);

    // kubectl get dbs: the tenants per server, from Landlord's records (a: t1 t3 t6 t8, b: t2 t4 t5 t7).
    for (server, count) in [(&a, 4), (&b, 4)] {
        wait_until(&fleet.servers(), server, "the count of its tenants", |s| {
            s.status.as_ref().and_then(|s| s.tenants) == Some(count)
        })
        .await;
    }
    let (ok, out, err) = support::kube::kubectl(&["get", "dbs", &a, &b]);
    assert!(ok, "{err}");
    assert!(out.contains("TENANTS") && out.contains("CORDONED"), "{out}");

    // A server whose namespaceSelector leaves this namespace out is refused by name, and nothing is made.
    let reserved = fleet
        .server(
            "c",
            Server::Two,
            json!({ "namespaceSelector": { "matchLabels": { "team": "payments" } } }),
        )
        .await;
    let slug = fleet.tenant("t9", &format!("  server: {reserved}\n"));
    let refused = wait_condition(&fleet.tenants(), "t9", "Ready", "False", "InvalidSpec").await;
    let message = refused.status.unwrap().conditions[0].message.clone();
    assert!(message.contains("namespaceSelector"), "{message}");
    assert!(!Server::One.database_exists(&format!("tenant_{slug}")).await);
    assert!(!Server::Two.database_exists(&format!("tenant_{slug}")).await);
    assert!(fleet.operator.reconciles("landlord-databaseserver").await > 0);

    for name in ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"] {
        fleet.delete_tenant(name).await;
    }
    for server in [&a, &b, &reserved] {
        fleet.delete_server(server).await;
    }
}

#[tokio::test]
async fn the_last_slot_goes_to_one_tenant_and_the_other_waits_for_capacity() {
    let _server2 = SERVER2.read().await;
    let fleet = Fleet::start("servers-cap").await;
    let s = fleet
        .server("s", Server::Two, json!({ "maxTenants": 1 }))
        .await;
    // Both at once, in one apply: the placement lock lets one take the slot.
    let (one, two) = (unique_slug("race"), unique_slug("race"));
    let both = format!(
        "{}---\n{}",
        tenant_yaml("r1", &one, &format!("  server: {s}\n")),
        tenant_yaml("r2", &two, &format!("  server: {s}\n"))
    );
    apply_yaml(&fleet.ns, &both);
    let settled = |t: &Tenant| {
        condition(t, "Ready")
            .is_some_and(|(status, reason)| status == "True" || reason == "NoServerAvailable")
    };
    let r1 = wait_until(&fleet.tenants(), "r1", "placed or waiting", settled).await;
    let r2 = wait_until(&fleet.tenants(), "r2", "placed or waiting", settled).await;
    let reasons = [&r1, &r2].map(|t| condition(t, "Ready").unwrap().1);
    let mut sorted = reasons.clone();
    sorted.sort();
    assert_eq!(sorted, ["NoServerAvailable", "Reconciled"], "{reasons:?}");
    let (waiting, waiting_slug) = if reasons[0] == "NoServerAvailable" {
        ("r1", &one)
    } else {
        ("r2", &two)
    };
    let message = [&r1, &r2]
        .into_iter()
        .find(|t| t.metadata.name.as_deref() == Some(waiting))
        .and_then(|t| t.status.as_ref())
        .map(|s| s.conditions[0].message.clone())
        .unwrap();
    assert!(message.contains("is full (maxTenants 1)"), "{message}");
    assert!(
        !Server::Two
            .database_exists(&format!("tenant_{waiting_slug}"))
            .await
    );

    // Capacity appears: the waiting Tenant is placed, woken by the server's change.
    fleet.patch_server(&s, json!({ "maxTenants": 2 })).await;
    assert_eq!(fleet.placed(waiting).await, s);
    assert_eq!(holder(waiting_slug).await, Server::Two);

    for name in ["r1", "r2"] {
        fleet.delete_tenant(name).await;
    }
    fleet.delete_server(&s).await;
}

#[tokio::test]
async fn an_admin_url_that_is_missing_or_a_superusers_is_refused() {
    let _server2 = SERVER2.read().await;
    let fleet = Fleet::start("servers-unfit").await;
    let secrets: Api<Secret> = Api::namespaced(fleet.client.clone(), &fleet.ns);
    let superuser = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("pg2-superuser".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(
            "url".to_string(),
            Server::Two.superuser_url().to_string(),
        )])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &superuser)
        .await
        .unwrap();
    for (prefix, secret_ref, expected) in [
        (
            "su",
            json!({ "name": "pg2-superuser", "key": "url" }),
            "is a superuser",
        ),
        (
            "nokey",
            json!({ "name": "pg2-superuser" }),
            "has no key uri",
        ),
        ("nosecret", json!({ "name": "nowhere" }), "does not exist"),
    ] {
        let name = unique(prefix);
        let object: DatabaseServer = serde_json::from_value(json!({
            "apiVersion": "tenancy.landlord.dev/v1alpha1",
            "kind": "DatabaseServer",
            "metadata": { "name": name, "labels": { SERVER_OWNER_LABEL: fleet.ns } },
            "spec": { "adminSecretRef": secret_ref },
        }))
        .unwrap();
        fleet
            .servers()
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
        let refused =
            wait_condition(&fleet.servers(), &name, "Ready", "False", "InvalidSpec").await;
        let message = refused.status.unwrap().conditions[0].message.clone();
        assert!(message.contains(expected), "{prefix}: {message}");
        assert!(!message.contains(Server::Two.superuser_url()), "{message}");
        // Nothing is placed on it.
        let tenant = format!("{prefix}-tenant");
        fleet.tenant(&tenant, &format!("  server: {name}\n"));
        wait_condition(
            &fleet.tenants(),
            &tenant,
            "Ready",
            "False",
            "NoServerAvailable",
        )
        .await;
        fleet.delete_tenant(&tenant).await;
        fleet.delete_server(&name).await;
    }
}

#[tokio::test]
async fn a_server_with_tenants_is_deleted_only_once_they_are_gone() {
    let _server2 = SERVER2.read().await;
    let fleet = Fleet::start("servers-inuse").await;
    let d = fleet.server("d", Server::Two, json!({})).await;
    let slug = fleet.tenant("held", &format!("  server: {d}\n"));
    assert_eq!(fleet.placed("held").await, d);

    fleet
        .servers()
        .delete(&d, &DeleteParams::default())
        .await
        .unwrap();
    let blocked = wait_condition(&fleet.servers(), &d, "Ready", "False", "ServerInUse").await;
    let message = blocked.status.unwrap().conditions[0].message.clone();
    assert!(message.contains("1 tenant database"), "{message}");
    // Its tenant keeps working meanwhile, and nothing new is placed there.
    assert!(Server::Two.database_exists(&format!("tenant_{slug}")).await);

    fleet.delete_tenant("held").await;
    assert!(!Server::Two.database_exists(&format!("tenant_{slug}")).await);
    wait_gone(&fleet.servers(), &d).await;
}

#[tokio::test]
async fn a_retained_database_is_adopted_again_on_the_server_it_is_on() {
    let _server2 = SERVER2.read().await;
    let fleet = Fleet::start("servers-retain").await;
    let a = fleet.server("a", Server::One, json!({})).await;
    let b = fleet.server("b", Server::Two, json!({})).await;
    let slug = unique_slug("kept");
    let kept = |spec: &str| {
        format!(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: kept}}\nspec:\n  slug: {slug}\n{spec}"
        )
    };
    apply_yaml(
        &fleet.ns,
        &kept(&format!("  server: {b}\n  deletionPolicy: Retain\n")),
    );
    assert_eq!(fleet.placed("kept").await, b);
    let database = format!("tenant_{slug}");
    Server::Two
        .superuser_exec(&database, "CREATE TABLE kept_row AS SELECT 1 AS n")
        .await;
    fleet.delete_tenant("kept").await;
    assert_eq!(holder(&slug).await, Server::Two, "kept by Retain");

    // Applied again without spec.server while a has fewer tenants: back to b, where its database is.
    apply_yaml(&fleet.ns, &kept("  deletionPolicy: Delete\n"));
    assert_eq!(fleet.placed("kept").await, b);
    assert_eq!(holder(&slug).await, Server::Two);
    let tables = Server::Two.tables(&database).await;
    assert!(
        tables.contains(&"kept_row".to_string()),
        "the same database, not a new one: {tables:?}"
    );
    let events = support::kube::events(&fleet.client, &fleet.ns, "kept").await;
    let created = events
        .iter()
        .filter(|e| e.starts_with("Normal Provisioned"))
        .count();
    assert_eq!(created, 1, "{events:#?}");
    fleet.delete_tenant("kept").await;
    assert!(!Server::Two.database_exists(&format!("tenant_{slug}")).await);
    for server in [&a, &b] {
        fleet.delete_server(server).await;
    }
}

#[tokio::test]
async fn a_server_down_mid_rollout_stops_only_its_own_tenants() {
    let _server2 = SERVER2.write().await;
    let fleet = Fleet::start("servers-down").await;
    let a = fleet.server("a", Server::One, json!({})).await;
    let b = fleet.server("b", Server::Two, json!({})).await;
    for (name, server) in [("a1", &a), ("a2", &a), ("b1", &b), ("b2", &b)] {
        fleet.tenant(name, &format!("  server: {server}\n"));
    }
    for name in ["a1", "a2", "b1", "b2"] {
        fleet.placed(name).await;
    }

    tokio::task::spawn_blocking(pg::stop_server2).await.unwrap();
    let rollout = "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleRollout\nmetadata: {name: tasks-all}\nspec:\n  module: tasks\n  strategy: {maxParallel: 4, maxFailures: 0}\n";
    apply_yaml(&fleet.ns, rollout);
    let installs: Api<ModuleInstallation> = Api::namespaced(fleet.client.clone(), &fleet.ns);
    let on_a = async {
        for name in ["a1-tasks", "a2-tasks"] {
            wait_ready(&installs, name).await;
        }
    };
    let on_b = async {
        for name in ["b1-tasks", "b2-tasks"] {
            wait_condition(&installs, name, "Ready", "False", "DatabaseUnavailable").await;
        }
    };
    let ((), ()) = tokio::join!(on_a, on_b);
    // An outage is not a failure: the rollout's budget of 0 is not spent.
    let rollouts: Api<landlord::crd::ModuleRollout> =
        Api::namespaced(fleet.client.clone(), &fleet.ns);
    let halted = rollouts.get("tasks-all").await.unwrap();
    assert_ne!(
        condition(&halted, "Ready")
            .map(|(_, reason)| reason)
            .as_deref(),
        Some("FailureBudgetExceeded")
    );
    let down = wait_condition(
        &fleet.servers(),
        &b,
        "Ready",
        "False",
        "DatabaseUnavailable",
    )
    .await;
    assert!(down.status.is_some());

    tokio::task::spawn_blocking(pg::start_server2)
        .await
        .unwrap();
    for name in ["b1-tasks", "b2-tasks"] {
        wait_ready(&installs, name).await;
    }
    wait_ready(&rollouts, "tasks-all").await;
    wait_ready(&fleet.servers(), &b).await;
}
