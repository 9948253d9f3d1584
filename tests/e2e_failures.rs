//! What goes wrong, end to end: a failing migration, drift, an irreversible downgrade, reinstalls (and
//! production refusing them), and the database going away and coming back.

mod support;

use std::net::ToSocketAddrs;

use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use landlord::crd::{ModuleInstallation, Tenant};
use serde_json::json;
use sqlx::Connection;
use support::catalog::catalog_with;
use support::kube::{
    Conditions, acme_yaml, apply_yaml, client, condition, installation_yaml, namespace,
    wait_condition, wait_gone, wait_ready, wait_until,
};
use support::operator::Operator;
use support::proxy::Proxy;
use support::{TestEnv, pg, unique_slug};

fn ready_message<K: Conditions>(object: &K) -> String {
    object
        .conditions()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.message)
        .unwrap_or_default()
}

async fn ready_tenant(client: &kube::Client, ns: &str) -> String {
    let slug = unique_slug("fail");
    apply_yaml(ns, &acme_yaml(&slug));
    wait_ready(&Api::<Tenant>::namespaced(client.clone(), ns), "acme").await;
    format!("tenant_{slug}")
}

async fn delete_all(client: &kube::Client, ns: &str, installations: &[&str]) {
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), ns);
    for name in installations {
        installs
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        wait_gone(&installs, name).await;
    }
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), ns);
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "acme").await;
}

const BROKEN_MODULE: &str =
    "name: broken\nreleases:\n  - version: \"1.0.0\"\n    tenant: 20260101000002\n";

#[tokio::test]
async fn a_failing_migration_leaves_nothing_behind_and_touches_no_other_module() {
    let catalog = catalog_with(&[
        ("broken/module.yaml", BROKEN_MODULE),
        (
            "broken/tenant/20260101000001_create_things.up.sql",
            "CREATE TABLE broken_things (id int);\n",
        ),
        (
            "broken/tenant/20260101000001_create_things.down.sql",
            "DROP TABLE broken_things;\n",
        ),
        (
            "broken/tenant/20260101000002_fill_things.up.sql",
            "CREATE TABLE broken_more (id int);\nINSERT INTO broken_things VALUES (1);\nINSERT INTO no_such_table VALUES (1);\n",
        ),
        (
            "broken/tenant/20260101000002_fill_things.down.sql",
            "DROP TABLE broken_more;\n",
        ),
    ]);
    let client = client().await;
    let ns = namespace(&client, "e2e-broken").await;
    let modules = catalog.path().to_string_lossy().into_owned();
    let _operator = Operator::start(&ns, &[("LANDLORD_MODULES_DIR", &modules)]);
    let db = ready_tenant(&client, &ns).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    wait_ready(&installs, "acme-tasks").await;

    apply_yaml(
        &ns,
        &installation_yaml("acme-broken", "broken", "  uninstallPolicy: Rollback\n"),
    );
    let broken = wait_condition(
        &installs,
        "acme-broken",
        "Ready",
        "False",
        "MigrationFailed",
    )
    .await;
    let message = ready_message(&broken);
    assert!(
        message.contains("20260101000002_fill_things.up.sql"),
        "{message}"
    );
    assert!(
        message.contains("no_such_table") && message.contains("42P01"),
        "{message}"
    );
    assert_eq!(
        condition(&broken, "TenantMigrated"),
        Some(("False".into(), "MigrationFailed".into()))
    );

    // The first migration stays applied, the failed one left nothing; the other module is untouched.
    let tables = pg::tables(&db).await;
    assert!(
        tables.contains(&"broken_things".to_string())
            && !tables.contains(&"broken_more".to_string()),
        "{tables:?}"
    );
    assert_eq!(
        pg::strings(&db, "SELECT count(*)::text FROM broken_things").await,
        ["0"]
    );
    assert_eq!(
        condition(&installs.get("acme-tasks").await.unwrap(), "Ready"),
        Some(("True".into(), "Reconciled".into()))
    );
    let ledger = pg::strings(
        &db,
        "SELECT version::text FROM landlord_migrations.ledger WHERE module = 'broken'",
    )
    .await;
    assert_eq!(ledger, ["20260101000001"]);

    delete_all(&client, &ns, &["acme-broken", "acme-tasks"]).await;
}

#[tokio::test]
async fn an_applied_migration_that_changed_is_drift_and_is_never_rerun() {
    let catalog = catalog_with(&[]);
    let client = client().await;
    let ns = namespace(&client, "e2e-drift").await;
    let modules = catalog.path().to_string_lossy().into_owned();
    let mut operator = Operator::start(&ns, &[("LANDLORD_MODULES_DIR", &modules)]);
    let db = ready_tenant(&client, &ns).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    wait_ready(&installs, "acme-tasks").await;
    operator.stop();

    // Someone edits an applied migration in the catalog, then the operator restarts with it.
    let file = catalog
        .path()
        .join("tasks/tenant/20251001090000_create_tasks.up.sql");
    let edited = std::fs::read_to_string(&file).unwrap() + "\nCREATE TABLE sneaky (id int);\n";
    std::fs::write(&file, edited).unwrap();
    let _operator = Operator::start(&ns, &[("LANDLORD_MODULES_DIR", &modules)]);
    installs
        .patch(
            "acme-tasks",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"poke": "1"}}})),
        )
        .await
        .unwrap();
    let drifted = wait_condition(
        &installs,
        "acme-tasks",
        "Ready",
        "False",
        "ChecksumMismatch",
    )
    .await;
    assert!(
        ready_message(&drifted).contains("20251001090000_create_tasks.up.sql"),
        "{drifted:?}"
    );
    assert!(!pg::tables(&db).await.contains(&"sneaky".to_string()));

    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("\nCREATE TABLE sneaky (id int);\n", ""),
    )
    .unwrap();
    delete_all(&client, &ns, &["acme-tasks"]).await;
}

#[tokio::test]
async fn rolling_back_through_a_migration_without_down_is_refused_before_anything_runs() {
    let catalog = catalog_with(&[
        (
            "oneway/module.yaml",
            "name: oneway\nreleases:\n  - version: \"1.0.0\"\n    tenant: 20260201000001\n  - version: \"2.0.0\"\n    tenant: 20260201000003\n",
        ),
        (
            "oneway/tenant/20260201000001_create_a.up.sql",
            "CREATE TABLE oneway_a (id int);\n",
        ),
        (
            "oneway/tenant/20260201000001_create_a.down.sql",
            "DROP TABLE oneway_a;\n",
        ),
        (
            "oneway/tenant/20260201000002_create_b.up.sql",
            "CREATE TABLE oneway_b (id int);\n",
        ),
        (
            "oneway/tenant/20260201000002_create_b.down.sql",
            "DROP TABLE oneway_b;\n",
        ),
        (
            "oneway/tenant/20260201000003_merge_data.up.sql",
            "CREATE TABLE oneway_c (id int);\n",
        ),
    ]);
    let client = client().await;
    let ns = namespace(&client, "e2e-oneway").await;
    let modules = catalog.path().to_string_lossy().into_owned();
    let _operator = Operator::start(&ns, &[("LANDLORD_MODULES_DIR", &modules)]);
    let db = ready_tenant(&client, &ns).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(
        &ns,
        &installation_yaml("acme-oneway", "oneway", "  version: \"2.0.0\"\n"),
    );
    wait_ready(&installs, "acme-oneway").await;

    installs
        .patch(
            "acme-oneway",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"version": "1.0.0"}})),
        )
        .await
        .unwrap();
    let refused = wait_condition(
        &installs,
        "acme-oneway",
        "Ready",
        "False",
        "IrreversibleMigration",
    )
    .await;
    assert!(
        ready_message(&refused).contains("20260201000003_merge_data"),
        "{refused:?}"
    );
    let tables = pg::tables(&db).await;
    for table in ["oneway_a", "oneway_b", "oneway_c"] {
        assert!(
            tables.contains(&table.to_string()),
            "{table} must be untouched: {tables:?}"
        );
    }
    assert_eq!(
        refused.status.unwrap().installed_version.as_deref(),
        Some("2.0.0")
    );
    delete_all(&client, &ns, &["acme-oneway"]).await;
}

#[tokio::test]
async fn reinstall_starts_fresh_outside_production() {
    let client = client().await;
    let ns = namespace(&client, "e2e-reinstall").await;
    let _operator = Operator::start(&ns, &[]);
    let db = ready_tenant(&client, &ns).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    wait_ready(&installs, "acme-tasks").await;
    let mut conn = pg::connect(&db).await;
    sqlx::query("INSERT INTO tasks (title, created_by) VALUES ('old', 'u1')")
        .execute(&mut conn)
        .await
        .unwrap();

    let annotate = Patch::Merge(
        json!({"metadata": {"annotations": {"tenancy.landlord.dev/reinstall": "2026-11-23"}}}),
    );
    installs
        .patch("acme-tasks", &PatchParams::default(), &annotate)
        .await
        .unwrap();
    wait_until(&installs, "acme-tasks", "reinstalled", |mi| {
        mi.status.as_ref().and_then(|s| s.reinstalled.as_deref()) == Some("2026-11-23")
            && condition(mi, "Ready") == Some(("True".into(), "Reconciled".into()))
    })
    .await;
    assert_eq!(
        pg::strings(&db, "SELECT count(*)::text FROM tasks").await,
        ["0"]
    );

    // Whoever may write status clears status.reinstalled: the reinstall is done by Landlord's own record,
    // so the next reconcile (made to happen by a spec change) deletes nothing.
    sqlx::query("INSERT INTO tasks (title, created_by) VALUES ('kept', 'u1')")
        .execute(&mut conn)
        .await
        .unwrap();
    installs
        .patch_status(
            "acme-tasks",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"reinstalled": null}})),
        )
        .await
        .unwrap();
    let pinned = Patch::Merge(json!({"spec": {"version": "1.0.0"}}));
    let generation = installs
        .patch("acme-tasks", &PatchParams::default(), &pinned)
        .await
        .unwrap()
        .metadata
        .generation;
    wait_until(
        &installs,
        "acme-tasks",
        "reconciled at the new generation",
        |mi| {
            mi.status.as_ref().and_then(|s| s.observed_generation) == generation
                && condition(mi, "Ready") == Some(("True".into(), "Reconciled".into()))
        },
    )
    .await;
    assert_eq!(
        pg::strings(&db, "SELECT title FROM tasks").await,
        ["kept"],
        "a cleared status made the reinstall run again"
    );
    conn.close().await.unwrap(); // a superuser session would keep the tenant's database from being dropped
    delete_all(&client, &ns, &["acme-tasks"]).await;
}

#[tokio::test]
async fn production_refuses_reinstall_and_rollback() {
    let client = client().await;
    let ns = namespace(&client, "e2e-prod").await;
    let _operator = Operator::start(&ns, &[("LANDLORD_ENVIRONMENT", "production")]);
    let db = ready_tenant(&client, &ns).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(
        &ns,
        &installation_yaml("acme-tasks", "tasks", "  uninstallPolicy: Rollback\n"),
    );
    wait_ready(&installs, "acme-tasks").await;
    let mut conn = pg::connect(&db).await;
    sqlx::query("INSERT INTO tasks (title, created_by) VALUES ('keep me', 'u1')")
        .execute(&mut conn)
        .await
        .unwrap();

    let annotate = Patch::Merge(
        json!({"metadata": {"annotations": {"tenancy.landlord.dev/reinstall": "now"}}}),
    );
    installs
        .patch("acme-tasks", &PatchParams::default(), &annotate)
        .await
        .unwrap();
    wait_condition(
        &installs,
        "acme-tasks",
        "Ready",
        "False",
        "DestructiveActionBlocked",
    )
    .await;
    assert_eq!(
        pg::strings(&db, "SELECT title FROM tasks").await,
        ["keep me"]
    );

    installs
        .delete("acme-tasks", &DeleteParams::default())
        .await
        .unwrap();
    wait_until(&installs, "acme-tasks", "rollback refused", |mi| {
        condition(mi, "Ready") == Some(("False".into(), "DestructiveActionBlocked".into()))
            && ready_message(mi).contains("uninstallPolicy: Retain")
    })
    .await;
    assert_eq!(
        pg::strings(&db, "SELECT title FROM tasks").await,
        ["keep me"]
    );
    installs
        .patch(
            "acme-tasks",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"uninstallPolicy": "Retain"}})),
        )
        .await
        .unwrap();
    wait_gone(&installs, "acme-tasks").await;
    assert_eq!(
        pg::strings(&db, "SELECT title FROM tasks").await,
        ["keep me"]
    );

    // Production also keeps the tenant database: Retain it, then clean up as the test.
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"deletionPolicy": "Retain"}})),
        )
        .await
        .unwrap();
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "acme").await;
    conn.close().await.unwrap();
    pg::drop_tenant(&db).await;
}

/// Points a database URL at the proxy instead of PostgreSQL.
fn via(url: &str, proxy: &Proxy) -> String {
    let (head, tail) = url.rsplit_once('@').unwrap();
    let (_, path) = tail.split_once('/').unwrap();
    format!("{head}@127.0.0.1:{}/{path}", proxy.port)
}

#[tokio::test]
async fn the_database_going_away_is_reported_and_recovers_by_itself() {
    let env = TestEnv::get();
    let server = env
        .admin_url()
        .rsplit_once('@')
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .0
        .to_string();
    let upstream = server.to_socket_addrs().unwrap().next().unwrap();
    let proxy = Proxy::start(upstream).await;
    let client = client().await;
    let ns = namespace(&client, "e2e-outage").await;
    let admin = via(env.admin_url(), &proxy);
    let landlord = via(env.landlord_url(), &proxy);
    let _operator = Operator::start(
        &ns,
        &[
            ("LANDLORD_ADMIN_DATABASE_URL", &admin),
            ("LANDLORD_DATABASE_URL", &landlord),
        ],
    );
    let db = ready_tenant(&client, &ns).await;

    proxy.cut().await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    tenants
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"extensions": ["btree_gin"]}})),
        )
        .await
        .unwrap();
    let down = wait_condition(&tenants, "acme", "Ready", "False", "DatabaseUnavailable").await;
    // The outage may hit any step (a reconcile can be under way when it starts): the step it hit says so.
    let steps = [
        condition(&down, "DatabaseReady"),
        condition(&down, "Migrated"),
    ];
    assert!(
        steps.contains(&Some(("False".into(), "DatabaseUnavailable".into()))),
        "{steps:?}"
    );

    proxy.restore().await;
    wait_ready(&tenants, "acme").await;
    let extensions = pg::strings(&db, "SELECT extname::text FROM pg_extension ORDER BY 1").await;
    assert!(
        extensions.contains(&"btree_gin".to_string()),
        "{extensions:?}"
    );
    delete_all(&client, &ns, &[]).await;
}
