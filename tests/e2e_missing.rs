//! A tenant database that vanished outside Landlord (a DBA's `DROP DATABASE`, a restore gone wrong): deleting
//! its installations and its Tenant completes with a Warning Event instead of retrying forever; a live
//! Tenant reports `DatabaseMissing` and is never given an empty database behind the user's back, until a
//! restore (adopted) or the annotation `tenancy.landlord.dev/recreate-database` (once per value); a server
//! that does not answer is still `DatabaseUnavailable` and finalizes nothing.

mod support;

use std::net::ToSocketAddrs;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use landlord::crd::{ModuleInstallation, Tenant};
use serde_json::json;
use support::kube::{
    acme_yaml, apply_yaml, client, condition, events, installation_yaml, namespace, wait_condition,
    wait_gone, wait_ready,
};
use support::operator::{Operator, http_get};
use support::proxy::Proxy;
use support::{TestEnv, pg, unique_slug};

/// A deletion that must complete: bounded by the minute the issue allows, as a person would wait.
async fn gone_within_a_minute<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while api.get_opt(name).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} was not deleted within a minute: {:#?}",
            api.get_opt(name).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tenant_yaml(name: &str, slug: &str, policy: &str) -> String {
    format!(
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}}}\nspec: {{slug: {slug}, deletionPolicy: {policy}}}\n"
    )
}

fn tasks_of(tenant: &str, policy: &str) -> String {
    format!(
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: {tenant}-tasks}}\nspec: {{tenant: {tenant}, module: tasks, uninstallPolicy: {policy}}}\n"
    )
}

async fn has_event(client: &Client, ns: &str, name: &str, wanted: &str) -> Vec<String> {
    let found = events(client, ns, name).await;
    assert!(
        found.iter().any(|e| e.starts_with(wanted)),
        "no {wanted:?} event on {name}: {found:#?}"
    );
    found
}

#[tokio::test]
async fn deleting_installations_and_tenants_whose_database_vanished_completes() {
    let client = client().await;
    let ns = namespace(&client, "e2e-vanished").await;
    let _operator = Operator::start(&ns, &[("LANDLORD_DRIFT_INTERVAL", "off")]);
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    // acme: Delete with a Rollback installation; beta: Retain with a Retain installation.
    let (acme, beta) = (unique_slug("gone_a"), unique_slug("gone_b"));
    apply_yaml(&ns, &tenant_yaml("acme", &acme, "Delete"));
    apply_yaml(&ns, &tenant_yaml("beta", &beta, "Retain"));
    apply_yaml(&ns, &tasks_of("acme", "Rollback"));
    apply_yaml(&ns, &tasks_of("beta", "Retain"));
    for name in ["acme-tasks", "beta-tasks"] {
        wait_ready(&installs, name).await;
    }
    let (acme_db, beta_db) = (format!("tenant_{acme}"), format!("tenant_{beta}"));
    pg::drop_database(&acme_db).await;
    pg::drop_database(&beta_db).await;

    for name in ["acme-tasks", "beta-tasks"] {
        installs
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["acme", "beta"] {
        tenants
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in ["acme-tasks", "beta-tasks"] {
        gone_within_a_minute(&installs, name).await;
    }
    gone_within_a_minute(&tenants, "acme").await;
    gone_within_a_minute(&tenants, "beta").await;

    // The Rollback found nothing to roll back and said so; both Tenants said their database was gone.
    has_event(&client, &ns, "acme-tasks", "Warning DatabaseMissing").await;
    has_event(&client, &ns, "acme", "Warning DatabaseMissing").await;
    has_event(&client, &ns, "beta", "Warning DatabaseMissing").await;
    // Delete dropped the role Landlord made; Retain kept it. Neither made a database again.
    assert!(!pg::role_exists(&acme_db).await, "acme's role was kept");
    assert!(pg::role_exists(&beta_db).await, "beta's role was dropped");
    assert!(!pg::database_exists(&acme_db).await && !pg::database_exists(&beta_db).await);
    pg::drop_tenant(&beta_db).await;
}

/// `landlord_drift_visits_total`, from `/metrics`: proof that the drift check went on looking.
async fn drift_visits(operator: &Operator) -> u64 {
    let (_, metrics) = http_get(&operator.http_addr().await, "/metrics").await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("landlord_drift_visits_total "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Waits until the drift check has sent `more` visits beyond what it had sent when called.
async fn more_drift_visits(operator: &Operator, more: u64) {
    let start = drift_visits(operator).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while drift_visits(operator).await < start + more {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the drift check stopped visiting"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn task_titles(database: &str) -> Vec<String> {
    pg::strings(database, "SELECT title FROM tasks ORDER BY id").await
}

#[tokio::test]
async fn a_live_tenant_whose_database_vanished_is_never_given_an_empty_one_behind_its_back() {
    let client = client().await;
    let ns = namespace(&client, "e2e-missing").await;
    let operator = Operator::start(
        &ns,
        &[
            ("LANDLORD_DRIFT_INTERVAL", "2s"),
            ("LANDLORD_DRIFT_SESSIONS_PER_SECOND", "20"),
        ],
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    let slug = unique_slug("missing");
    let database = format!("tenant_{slug}");
    apply_yaml(&ns, &acme_yaml(&slug));
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    wait_ready(&installs, "acme-tasks").await;
    let ready = wait_ready(&tenants, "acme").await;
    assert_eq!(
        ready.status.as_ref().and_then(|s| s.slug.as_deref()),
        Some(slug.as_str()),
        "the effective slug is in status (the Slug column)"
    );
    let mut conn = pg::connect(&database).await;
    sqlx::query("INSERT INTO tasks (title, created_by) VALUES ('kept in the backup', 'u1')")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let backup = tempfile::NamedTempFile::new().unwrap();
    let path = backup.path().to_str().unwrap().to_string();
    pg::superuser_tool("pg_dump", &database, &["-Fc", "-f", &path]);

    // Dropped outside Landlord: the drift check finds it, the installation waits behind its Tenant.
    pg::drop_database(&database).await;
    let missing = wait_condition(&tenants, "acme", "Ready", "False", "DatabaseMissing").await;
    assert_eq!(
        condition(&missing, "DatabaseReady"),
        Some(("False".into(), "DatabaseMissing".into()))
    );
    assert_eq!(
        condition(&missing, "Stalled"),
        Some(("True".into(), "DatabaseMissing".into()))
    );
    wait_condition(&installs, "acme-tasks", "Ready", "False", "TenantNotReady").await;
    // It stays so while the drift check keeps visiting: nobody gets an empty database in its place.
    more_drift_visits(&operator, 4).await;
    assert!(
        !pg::database_exists(&database).await,
        "an empty database was made"
    );
    let still = tenants.get("acme").await.unwrap();
    assert_eq!(
        condition(&still, "Ready"),
        Some(("False".into(), "DatabaseMissing".into()))
    );

    // Restored under its name, owned by the role that carries the Tenant's mark: adopted, data and all.
    let mut admin = pg::connect("postgres").await;
    let create = format!("CREATE DATABASE \"{database}\" OWNER \"{database}\" TEMPLATE template0");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut admin)
        .await
        .unwrap();
    pg::superuser_tool("pg_restore", &database, &[&path]);
    // The next look (any change of the Tenant makes one at once) adopts it.
    let touch = json!({"metadata": {"annotations": {"e2e/restored": "1"}}});
    tenants
        .patch("acme", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .unwrap();
    wait_ready(&tenants, "acme").await;
    wait_ready(&installs, "acme-tasks").await;
    assert_eq!(task_titles(&database).await, ["kept in the backup"]);

    // Lost again, with nothing to restore: a person asks for a new, empty database, once.
    pg::drop_database(&database).await;
    wait_condition(&tenants, "acme", "Ready", "False", "DatabaseMissing").await;
    wait_condition(&installs, "acme-tasks", "Ready", "False", "TenantNotReady").await;
    let recreate = json!({"metadata": {"annotations": {"tenancy.landlord.dev/recreate-database": "2026-12-04"}}});
    tenants
        .patch("acme", &PatchParams::default(), &Patch::Merge(&recreate))
        .await
        .unwrap();
    wait_ready(&tenants, "acme").await;
    // Its installation installs the module again into the new database.
    wait_ready(&installs, "acme-tasks").await;
    let tables = pg::tables(&database).await;
    assert!(tables.contains(&"tasks".to_string()), "{tables:?}");
    assert!(
        task_titles(&database).await.is_empty(),
        "the new one is empty"
    );
    has_event(&client, &ns, "acme", "Normal Recreated").await;

    // The same value asks for nothing more: a third loss is reported, not papered over.
    pg::drop_database(&database).await;
    wait_condition(&tenants, "acme", "Ready", "False", "DatabaseMissing").await;
    more_drift_visits(&operator, 4).await;
    assert!(
        !pg::database_exists(&database).await,
        "the same annotation value re-created it twice"
    );

    // Deleting both completes, though there is nothing left to roll back or drop.
    installs
        .delete("acme-tasks", &DeleteParams::default())
        .await
        .unwrap();
    gone_within_a_minute(&installs, "acme-tasks").await;
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    gone_within_a_minute(&tenants, "acme").await;
    assert!(!pg::role_exists(&database).await);
}

/// Points a database URL at the proxy instead of PostgreSQL.
fn via(url: &str, proxy: &Proxy) -> String {
    let (head, tail) = url.rsplit_once('@').unwrap();
    let (_, path) = tail.split_once('/').unwrap();
    format!("{head}@127.0.0.1:{}/{path}", proxy.port)
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_unavailable_and_finalizes_nothing() {
    let env = TestEnv::get();
    let server = env.admin_url().rsplit_once('@').unwrap().1;
    let server = server.split_once('/').unwrap().0;
    let upstream = server.to_socket_addrs().unwrap().next().unwrap();
    let proxy = Proxy::start(upstream).await;
    let client = client().await;
    let ns = namespace(&client, "e2e-unanswered").await;
    let (admin, landlord) = (
        via(env.admin_url(), &proxy),
        via(env.landlord_url(), &proxy),
    );
    let _operator = Operator::start(
        &ns,
        &[
            ("LANDLORD_ADMIN_DATABASE_URL", &admin),
            ("LANDLORD_DATABASE_URL", &landlord),
            ("LANDLORD_DRIFT_INTERVAL", "off"),
        ],
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    let slug = unique_slug("unanswered");
    let database = format!("tenant_{slug}");
    apply_yaml(&ns, &acme_yaml(&slug));
    apply_yaml(
        &ns,
        &installation_yaml("acme-tasks", "tasks", "  uninstallPolicy: Rollback\n"),
    );
    wait_ready(&installs, "acme-tasks").await;

    proxy.cut().await;
    installs
        .delete("acme-tasks", &DeleteParams::default())
        .await
        .unwrap();
    let waiting = wait_condition(
        &installs,
        "acme-tasks",
        "Ready",
        "False",
        "DatabaseUnavailable",
    )
    .await;
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert!(pg::database_exists(&database).await);
    let tables = pg::tables(&database).await;
    assert!(
        tables.contains(&"tasks".to_string()),
        "rolled back while unreachable: {tables:?}"
    );

    // Back: the rollback runs for real, then everything goes.
    proxy.restore().await;
    wait_gone(&installs, "acme-tasks").await;
    let tables = pg::tables(&database).await;
    assert!(!tables.contains(&"tasks".to_string()), "{tables:?}");
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "acme").await;
    assert!(!pg::database_exists(&database).await);
}
