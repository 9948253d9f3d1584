//! Faults a running operator meets, end to end: an application holding a lock the upgrade needs. (The
//! chaos suite, which restarts the environment, is `tests/chaos.rs`.)

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use landlord::crd::ModuleInstallation;
use sqlx::Connection;
use support::kube::{
    acme_yaml, apply_yaml, client, installation_yaml, namespace, secret_value, wait_ready,
    wait_until,
};
use support::operator::Operator;
use support::{pg, unique_slug};

#[tokio::test]
async fn an_upgrade_waits_for_an_applications_lock_visibly_and_boundedly_then_finishes() {
    let client = client().await;
    let ns = namespace(&client, "e2e-lockwait").await;
    let _operator = Operator::start(&ns, &[("LANDLORD_LOCK_TIMEOUT", "1s")]);
    let slug = unique_slug("lockwait");
    apply_yaml(&ns, &acme_yaml(&slug));
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    apply_yaml(
        &ns,
        &installation_yaml("acme-expenses", "expenses", "  version: \"1.0.0\"\n"),
    );
    let installations: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_ready(&installations, "acme-expenses").await;

    // The application reads expenses in a transaction it keeps open: ALTER TABLE must wait for it.
    let secret = Api::<Secret>::namespaced(client.clone(), &ns)
        .get("acme-db")
        .await
        .unwrap();
    let uri = secret_value(&secret, "uri");
    let mut app = sqlx::PgConnection::connect(&uri).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM expenses;")
        .execute(&mut app)
        .await
        .unwrap();
    apply_yaml(
        &ns,
        &installation_yaml("acme-expenses", "expenses", "  version: \"1.1.0\"\n"),
    );
    let waiting = wait_until(
        &installations,
        "acme-expenses",
        "a visible lock wait",
        |mi| {
            mi.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "TenantMigrated"
                        && c.status == "False"
                        && c.message.contains("lock on table expenses")
                })
            })
        },
    )
    .await;
    let message = &waiting.status.unwrap().conditions[2].message;
    assert!(message.contains("will be retried"), "{message}");

    // Other queries on the table are never queued behind the migration for longer than its lock timeout.
    let mut reader = sqlx::PgConnection::connect(&uri).await.unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        let _: i64 = sqlx::query_scalar("SELECT count(*) FROM expenses")
            .fetch_one(&mut reader)
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a reader queued {:?} behind the migration",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Once the application commits, the retried upgrade goes through.
    sqlx::raw_sql("COMMIT").execute(&mut app).await.unwrap();
    let upgraded = wait_until(&installations, "acme-expenses", "1.1.0 installed", |mi| {
        mi.status
            .as_ref()
            .is_some_and(|s| s.installed_version.as_deref() == Some("1.1.0"))
    })
    .await;
    assert!(
        upgraded
            .status
            .unwrap()
            .conditions
            .iter()
            .all(|c| c.status == "True")
    );
    let database = format!("tenant_{slug}");
    assert!(
        pg::columns(&database, "expenses")
            .await
            .contains(&"reimbursed_at".to_string())
    );
    pg::drop_tenant(&database).await;
}
