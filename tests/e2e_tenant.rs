//! The Tenant reconciler end to end: the real `landlord run`, a real kube-apiserver, a real PostgreSQL,
//! and YAML as a user writes it.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use landlord::crd::Tenant;
use serde_json::json;
use sqlx::Connection;
use support::kube::{
    apply_yaml, client, condition, events, namespace, secret_value, tenant_yaml, wait_condition,
    wait_gone, wait_ready,
};
use support::operator::Operator;
use support::{pg, unique_slug};

#[tokio::test]
async fn tenant_gets_its_database_role_secret_and_core_schema() {
    let client = client().await;
    let ns = namespace(&client, "e2e-tenant").await;
    let _operator = Operator::start(&ns, &[]);
    let slug = unique_slug("acme");
    apply_yaml(
        &ns,
        &tenant_yaml(
            "acme",
            &slug,
            "  displayName: Acme\n  extensions: [ltree]\n",
        ),
    );

    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let tenant = wait_ready(&tenants, "acme").await;
    let status = tenant.status.clone().unwrap();
    let database = format!("tenant_{slug}");
    assert_eq!(status.database.as_deref(), Some(database.as_str()));
    assert_eq!(status.core_version, Some(20250101000003));
    assert_eq!(
        condition(&tenant, "DatabaseReady"),
        Some(("True".into(), "Reconciled".into()))
    );
    assert_eq!(
        condition(&tenant, "Migrated"),
        Some(("True".into(), "Reconciled".into()))
    );
    assert_eq!(status.observed_generation, tenant.metadata.generation);

    // The Secret's credentials open the tenant's own database and see the core schema.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = secrets
        .get(status.secret_name.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(secret_value(&secret, "database"), database);
    assert_eq!(secret_value(&secret, "username"), database);
    let mut conn = sqlx::PgConnection::connect(&secret_value(&secret, "uri"))
        .await
        .unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "audit_log",
            "media",
            "permissions",
            "role_permissions",
            "roles",
            "user_roles"
        ]
    );
    let ltree: Option<String> =
        sqlx::query_scalar("SELECT extname::text FROM pg_extension WHERE extname = 'ltree'")
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    assert_eq!(ltree.as_deref(), Some("ltree"));

    // The landlord mirror records the owning resource.
    let owner: Vec<String> = pg::strings(
        "landlord",
        "SELECT resource_uid || ' ' || status FROM tenants",
    )
    .await;
    assert!(
        owner.contains(&format!("{} Ready", tenant.metadata.uid.unwrap())),
        "{owner:?}"
    );

    // Nothing secret in the events.
    let events = events(&client, &ns, "acme").await;
    assert!(
        events.iter().any(|e| e.starts_with("Normal Provisioned")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| !e.contains(&secret_value(&secret, "password")))
    );
    pg::drop_tenant(&database).await;
}

#[tokio::test]
async fn a_reconcile_that_changes_nothing_writes_nothing() {
    let client = client().await;
    let ns = namespace(&client, "e2e-noop").await;
    let operator = Operator::start(&ns, &[]);
    let slug = unique_slug("noop");
    apply_yaml(&ns, &tenant_yaml("noop", &slug, ""));
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    wait_ready(&tenants, "noop").await;

    // A metadata-only change triggers a reconcile but changes no status: no further write may follow.
    let before = operator.reconciles("landlord-tenant").await;
    let touched = tenants
        .patch(
            "noop",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap();
    let version = touched.metadata.resource_version.clone();
    let transition = touched.status.as_ref().unwrap().conditions[0]
        .last_transition_time
        .clone();
    // First proof that the operator looked at it again (a reconcile finished since the change).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while operator.reconciles("landlord-tenant").await <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconcile followed the change"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = tenants.get("noop").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, version,
        "the operator wrote to an unchanged Tenant"
    );
    assert_eq!(
        after.status.unwrap().conditions[0].last_transition_time,
        transition
    );
    pg::drop_tenant(&format!("tenant_{slug}")).await;
}

#[tokio::test]
async fn a_second_tenant_claiming_a_slug_gets_slug_conflict_and_touches_nothing() {
    let client = client().await;
    let ns = namespace(&client, "e2e-conflict").await;
    let _operator = Operator::start(&ns, &[]);
    let slug = unique_slug("shared");
    apply_yaml(
        &ns,
        &tenant_yaml("first", &slug, "  deletionPolicy: Delete\n"),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    wait_ready(&tenants, "first").await;

    apply_yaml(
        &ns,
        &tenant_yaml("second", &slug, "  deletionPolicy: Delete\n"),
    );
    let second = wait_condition(&tenants, "second", "Ready", "False", "SlugConflict").await;
    let message = second
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .message;
    assert!(message.contains(&format!("{ns}/first")), "{message}");

    // Deleting the loser (policy Delete!) must not drop the winner's database.
    tenants
        .delete("second", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "second").await;
    assert!(pg::database_exists(&format!("tenant_{slug}")).await);
    assert_eq!(
        condition(&tenants.get("first").await.unwrap(), "Ready"),
        Some(("True".into(), "Reconciled".into()))
    );

    // A refused claimant waits for no change of its own: once the holder is deleted it is woken, and the
    // slug, with a database of its own, is its (a refusal is never retried on a timer, so only the wake can
    // make it Ready).
    apply_yaml(
        &ns,
        &tenant_yaml("third", &slug, "  deletionPolicy: Delete\n"),
    );
    wait_condition(&tenants, "third", "Ready", "False", "SlugConflict").await;
    tenants
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "first").await;
    wait_ready(&tenants, "third").await;
    let owner = pg::strings(
        "landlord",
        "SELECT namespace || '/' || name FROM tenants WHERE status = 'Ready'",
    )
    .await;
    assert!(owner.contains(&format!("{ns}/third")), "{owner:?}");
    assert!(pg::database_exists(&format!("tenant_{slug}")).await);

    tenants
        .delete("third", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "third").await;
    assert!(!pg::database_exists(&format!("tenant_{slug}")).await);
}

#[tokio::test]
async fn paused_tenant_is_left_alone_and_says_so() {
    let client = client().await;
    let ns = namespace(&client, "e2e-paused").await;
    let _operator = Operator::start(&ns, &[]);
    let slug = unique_slug("paused");
    apply_yaml(&ns, &tenant_yaml("paused", &slug, "  paused: true\n"));
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    wait_condition(&tenants, "paused", "Ready", "False", "Paused").await;
    assert!(!pg::database_exists(&format!("tenant_{slug}")).await);

    tenants
        .patch(
            "paused",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await
        .unwrap();
    wait_ready(&tenants, "paused").await;
    assert!(pg::database_exists(&format!("tenant_{slug}")).await);
    pg::drop_tenant(&format!("tenant_{slug}")).await;
}

#[tokio::test]
async fn delete_with_retain_keeps_the_database_for_the_same_namespace_and_name() {
    let client = client().await;
    let ns = namespace(&client, "e2e-retain").await;
    let _operator = Operator::start(&ns, &[]);
    let slug = unique_slug("kept");
    let database = format!("tenant_{slug}");
    apply_yaml(&ns, &tenant_yaml("kept", &slug, ""));
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    wait_ready(&tenants, "kept").await;
    pg::connect(&database).await; // there is a database to keep
    tenants
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "kept").await;
    assert!(pg::database_exists(&database).await);
    assert!(pg::role_exists(&database).await);
    let mirrored: Vec<String> = pg::strings(
        "landlord",
        "SELECT slug || ' ' || status || ' [' || resource_uid || ']' FROM tenants",
    )
    .await;
    assert!(
        mirrored.contains(&format!("{slug} Retained []")),
        "{mirrored:?}"
    );

    // It is kept for this namespace and name: another name is refused, the same name adopts it.
    apply_yaml(&ns, &tenant_yaml("kept-again", &slug, ""));
    wait_condition(&tenants, "kept-again", "Ready", "False", "AdoptionRefused").await;
    apply_yaml(&ns, &tenant_yaml("kept", &slug, ""));
    wait_ready(&tenants, "kept").await;
    pg::drop_tenant(&database).await;
}

#[tokio::test]
async fn delete_with_delete_drops_database_role_secret_and_mirror_row() {
    let client = client().await;
    let ns = namespace(&client, "e2e-delete").await;
    let _operator = Operator::start(&ns, &[]);
    let slug = unique_slug("gone");
    let database = format!("tenant_{slug}");
    apply_yaml(
        &ns,
        &tenant_yaml("gone", &slug, "  deletionPolicy: Delete\n"),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let tenant = wait_ready(&tenants, "gone").await;
    let secret_name = tenant.status.unwrap().secret_name.unwrap();
    tenants
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "gone").await;
    assert!(!pg::database_exists(&database).await);
    assert!(!pg::role_exists(&database).await);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    assert!(secrets.get_opt(&secret_name).await.unwrap().is_none());
    let mirrored: Vec<String> = pg::strings("landlord", "SELECT slug FROM tenants").await;
    assert!(!mirrored.contains(&slug));
}

#[tokio::test]
async fn production_refuses_to_drop_a_tenant_database() {
    let client = client().await;
    let ns = namespace(&client, "e2e-prod-delete").await;
    let _operator = Operator::start(&ns, &[("LANDLORD_ENVIRONMENT", "production")]);
    let slug = unique_slug("prod");
    let database = format!("tenant_{slug}");
    apply_yaml(
        &ns,
        &tenant_yaml("prod", &slug, "  deletionPolicy: Delete\n"),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    wait_ready(&tenants, "prod").await;
    tenants
        .delete("prod", &DeleteParams::default())
        .await
        .unwrap();
    wait_condition(
        &tenants,
        "prod",
        "Ready",
        "False",
        "DestructiveActionBlocked",
    )
    .await;
    assert!(pg::database_exists(&database).await);

    // The way out that keeps the data: switch to Retain.
    tenants
        .patch(
            "prod",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"deletionPolicy": "Retain"}})),
        )
        .await
        .unwrap();
    wait_gone(&tenants, "prod").await;
    assert!(pg::database_exists(&database).await);
    pg::drop_tenant(&database).await;
}

#[tokio::test]
async fn one_tenants_credentials_cannot_open_another_tenants_database() {
    let client = client().await;
    let ns = namespace(&client, "e2e-isolation").await;
    let _operator = Operator::start(&ns, &[]);
    let (a, b) = (unique_slug("iso_a"), unique_slug("iso_b"));
    apply_yaml(&ns, &tenant_yaml("a", &a, ""));
    apply_yaml(&ns, &tenant_yaml("b", &b, ""));
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let tenant_a = wait_ready(&tenants, "a").await;
    wait_ready(&tenants, "b").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = secrets
        .get(&tenant_a.status.unwrap().secret_name.unwrap())
        .await
        .unwrap();
    let uri = secret_value(&secret, "uri");
    let (server, own) = uri.rsplit_once('/').unwrap();
    assert_eq!(own, format!("tenant_{a}"));
    let uri_to_b = format!("{server}/tenant_{b}");
    let err = sqlx::PgConnection::connect(&uri_to_b)
        .await
        .expect_err("tenant a must not reach tenant b");
    assert!(err.to_string().contains("permission denied"), "{err}");
    wait_ready(&tenants, "b").await;
    pg::drop_tenant(&format!("tenant_{a}")).await;
    pg::drop_tenant(&format!("tenant_{b}")).await;
}
