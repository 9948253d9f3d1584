//! Resyncs without database work: a restart with everything in place is decided from Landlord's records
//! and opens no session in the tenant database (counted by PostgreSQL itself, `pg_stat_database.sessions`);
//! what the records cannot see — a ledger rewritten inside the tenant database — is found by the paced
//! drift check, which visits and reports `ChecksumMismatch` as a visit always did.

mod support;

use std::time::Duration;

use kube::Api;
use kube::api::DeleteParams;
use landlord::crd::{ModuleInstallation, Tenant};
use support::kube::{
    acme_yaml, apply_yaml, client, condition, installation_yaml, namespace, wait_condition,
    wait_gone, wait_ready,
};
use support::operator::Operator;
use support::{pg, unique_slug};

/// Sessions PostgreSQL has counted in `database` (its statistics lag a session's end by moments).
async fn sessions(database: &str) -> i64 {
    let mut conn = pg::connect("postgres").await;
    sqlx::query_scalar("SELECT sessions FROM pg_catalog.pg_stat_database WHERE datname = $1")
        .bind(database)
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_restart_opens_no_tenant_session_and_the_drift_check_still_finds_a_rewritten_ledger() {
    let client = client().await;
    let ns = namespace(&client, "e2e-resync").await;
    let slug = unique_slug("resync");
    let database = format!("tenant_{slug}");
    let no_drift = [("LANDLORD_DRIFT_INTERVAL", "off")];
    let mut operator = Operator::start(&ns, &no_drift);
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(&ns, &acme_yaml(&slug));
    wait_ready(&tenants, "acme").await;
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    wait_ready(&installs, "acme-tasks").await;
    operator.stop();

    // Someone with the tenant's database rewrites the module's ledger row.
    let mut conn = pg::connect(&database).await;
    sqlx::query("UPDATE landlord_migrations.ledger SET checksum = '\\x00' WHERE module = 'tasks'")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = sessions(&database).await;

    // A restart reconciles both objects (proved by the in-place counter) without entering the database.
    let operator = Operator::start(&ns, &no_drift);
    operator.until_in_place("landlord-tenant").await;
    operator.until_in_place("landlord-moduleinstallation").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sessions(&database).await,
        before,
        "a resync opened a session in the tenant database"
    );
    let mi = installs.get("acme-tasks").await.unwrap();
    assert_eq!(
        condition(&mi, "Ready"),
        Some(("True".into(), "Reconciled".into()))
    );
    drop(operator);

    // The drift check visits every database, paced, and the visit reports what it finds.
    let operator = Operator::start(
        &ns,
        &[
            ("LANDLORD_DRIFT_INTERVAL", "2s"),
            ("LANDLORD_DRIFT_SESSIONS_PER_SECOND", "20"),
        ],
    );
    let drifted = wait_condition(
        &installs,
        "acme-tasks",
        "Ready",
        "False",
        "ChecksumMismatch",
    )
    .await;
    assert!(sessions(&database).await > before);
    assert_eq!(
        condition(&tenants.get("acme").await.unwrap(), "Ready"),
        Some(("True".into(), "Reconciled".into())),
        "the Tenant's own ledger is intact: {drifted:?}"
    );
    drop(operator);

    // Clean up with a fresh operator: the installation's ledger is put back first so it may go.
    let mut conn = pg::connect(&database).await;
    sqlx::query("DELETE FROM landlord_migrations.ledger WHERE module = 'tasks'")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let _operator = Operator::start(&ns, &no_drift);
    installs
        .delete("acme-tasks", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&installs, "acme-tasks").await;
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "acme").await;
}
