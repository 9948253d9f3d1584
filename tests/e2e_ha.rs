//! High availability and observability, end to end: two operators share a Lease, only the leader
//! reconciles, killing it mid-rollout hands the work to the other with every migration applied once;
//! the health and metrics endpoints answer.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::ListParams;
use landlord::crd::{ModuleInstallation, Tenant};
use support::kube::{apply_yaml, client, condition, lease_holder, namespace, wait_until};
use support::operator::{Operator, http_get};
use support::{pg, unique_slug};

const TENANTS: usize = 12;

fn ready_count<K: support::kube::Conditions>(items: &[K]) -> usize {
    items
        .iter()
        .filter(|o| condition(*o, "Ready") == Some(("True".into(), "Reconciled".into())))
        .count()
}

#[tokio::test]
async fn the_standby_takes_over_when_the_leader_dies_mid_rollout() {
    let client = client().await;
    let ns = namespace(&client, "e2e-ha").await;
    let mut a = Operator::start(&ns, &[("POD_NAME", "landlord-a")]);
    let mut b = Operator::start(&ns, &[("POD_NAME", "landlord-b")]);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let first = wait_for_holder(&leases, None).await;
    let (leader, standby) = if first == "landlord-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };

    let prefix = unique_slug("ha");
    let mut yaml = String::new();
    for i in 0..TENANTS {
        yaml.push_str(&format!(
            "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: t{i}}}\nspec: {{slug: {prefix}_{i}, deletionPolicy: Delete}}\n\
             ---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: t{i}-expenses}}\nspec: {{tenant: t{i}, module: expenses}}\n\
             ---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: t{i}-tasks}}\nspec: {{tenant: t{i}, module: tasks}}\n"
        ));
    }
    apply_yaml(&ns, &yaml);
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);

    // Mid-rollout: some tenants are Ready, not all of their modules are.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ready = ready_count(&tenants.list(&ListParams::default()).await.unwrap().items);
        let installed = ready_count(&installs.list(&ListParams::default()).await.unwrap().items);
        if ready >= 2 && installed < 2 * TENANTS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollout never got under way ({ready} tenants Ready)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !standby.logs().contains("leading: reconciling"),
        "the standby reconciled while the other led"
    );
    assert!(
        !standby.logs().contains("migration done"),
        "the standby ran migrations while the other led"
    );
    leader.stop(); // SIGKILL: no chance to release the Lease

    let next = wait_for_holder(&leases, Some(&first)).await;
    assert_ne!(next, first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let ready = ready_count(&installs.list(&ListParams::default()).await.unwrap().items);
        if ready == 2 * TENANTS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {ready}/{} installations Ready after failover",
            2 * TENANTS
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        ready_count(&tenants.list(&ListParams::default()).await.unwrap().items),
        TENANTS
    );

    // Every migration exactly once per tenant: the ledger of each database holds each version once, and
    // nothing failed on the way (a second run would have hit "already exists").
    for i in 0..TENANTS {
        let db = format!("tenant_{prefix}_{i}");
        let ledger = pg::strings(
            &db,
            "SELECT module || ':' || count(*) || ':' || count(DISTINCT version) FROM landlord_migrations.ledger GROUP BY module ORDER BY module",
        )
        .await;
        assert_eq!(ledger, ["core:3:3", "expenses:4:4", "tasks:2:2"], "{db}");
    }
    let logs = standby.logs();
    assert!(
        !logs.contains("MigrationFailed"),
        "a migration failed after failover:\n{logs}"
    );
    standby.stop();
    for i in 0..TENANTS {
        pg::drop_tenant(&format!("tenant_{prefix}_{i}")).await;
    }
}

async fn wait_for_holder(leases: &Api<Lease>, not: Option<&str>) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(holder) = lease_holder(leases).await
            && Some(holder.as_str()) != not
        {
            return holder;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no (new) lease holder after 60s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let client = client().await;
    let ns = namespace(&client, "e2e-metrics").await;
    let operator = Operator::start(&ns, &[]);
    let addr = operator.http_addr().await;
    assert_eq!(http_get(&addr, "/healthz").await.0, "HTTP/1.1 200 OK");
    wait_until(
        &Api::<Lease>::namespaced(client.clone(), &ns),
        "landlord",
        "a leader",
        |lease| {
            lease
                .spec
                .as_ref()
                .is_some_and(|spec| spec.holder_identity.is_some())
        },
    )
    .await;
    assert_eq!(http_get(&addr, "/readyz").await.0, "HTTP/1.1 200 OK");

    let slug = unique_slug("metrics");
    apply_yaml(
        &ns,
        &format!(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: acme}}\nspec: {{slug: {slug}, deletionPolicy: Delete}}\n\
             ---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: acme-payroll}}\nspec: {{tenant: acme, module: payroll}}\n"
        ),
    );
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    support::kube::wait_condition(
        &installs,
        "acme-payroll",
        "Ready",
        "False",
        "ModuleNotFound",
    )
    .await;
    // The gauges count the controllers' caches and the counters move once a reconcile returns: a moment
    // after the status a user sees.
    let expected = [
        r#"landlord_leader 1"#,
        r#"landlord_public_can_connect_to_landlord_database 0"#,
        r#"landlord_tenant_databases_created_total{from="template"} 1"#,
        r#"landlord_resources{controller="landlord-tenant",state="Reconciled"} 1"#,
        r#"landlord_resources{controller="landlord-moduleinstallation",state="ModuleNotFound"} 1"#,
        // Refusals count as failures, by reason (a status write may wake one more reconcile: any count).
        r#"landlord_reconcile_failures_total{controller="landlord-moduleinstallation",reason="ModuleNotFound"} "#,
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, metrics) = http_get(&addr, "/metrics").await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|line| !metrics.contains(line))
            .collect();
        if missing.is_empty() {
            break metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing:?} missing from:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        metrics.contains(r#"landlord_reconciles_total{controller="landlord-tenant"}"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains("acme"),
        "object names must not become labels:\n{metrics}"
    );
    assert_eq!(http_get(&addr, "/nope").await.0, "HTTP/1.1 404 Not Found");
    pg::drop_tenant(&format!("tenant_{slug}")).await;
}

#[tokio::test]
async fn losing_the_lease_stops_reconciling_and_logs_are_json_with_the_resource() {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use kube::api::{Patch, PatchParams};

    let client = client().await;
    let ns = namespace(&client, "e2e-lease").await;
    let operator = Operator::start(
        &ns,
        &[("POD_NAME", "landlord-a"), ("LANDLORD_LOG_FORMAT", "json")],
    );
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    assert_eq!(wait_for_holder(&leases, None).await, "landlord-a");
    let slug = unique_slug("lease");
    apply_yaml(&ns, &support::kube::acme_yaml(&slug));
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let acme = support::kube::wait_ready(&tenants, "acme").await;

    // Another replica takes the Lease (as after a partition): this one must stop reconciling.
    let now = MicroTime(jiff::Timestamp::now());
    let stolen = LeaseSpec {
        holder_identity: Some("intruder".into()),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        lease_duration_seconds: Some(3600),
        ..Default::default()
    };
    leases
        .patch(
            "landlord",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": stolen })),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !operator.logs().contains("lost the leader lease") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the operator never noticed:\n{}",
            operator.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    apply_yaml(
        &ns,
        &support::kube::acme_yaml(&unique_slug("ignored")).replace("name: acme", "name: beta"),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let beta = tenants.get("beta").await.unwrap();
    assert!(
        // Only the CRD's default status (observedGeneration 0): nothing the operator wrote.
        beta.status
            == Some(landlord::crd::TenantStatus {
                observed_generation: Some(0),
                ..Default::default()
            })
            && beta.metadata.finalizers.is_none(),
        "reconciled without the lease: {beta:?}"
    );
    // The control: once the intruder's Lease has expired, the same operator takes it and reconciles beta.
    let long_ago = MicroTime(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(600));
    let expired = LeaseSpec {
        holder_identity: Some("intruder".into()),
        acquire_time: Some(long_ago.clone()),
        renew_time: Some(long_ago),
        lease_duration_seconds: Some(1),
        ..Default::default()
    };
    leases
        .patch(
            "landlord",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": expired })),
        )
        .await
        .unwrap();
    assert_eq!(
        wait_for_holder(&leases, Some("intruder")).await,
        "landlord-a"
    );
    support::kube::wait_ready(&tenants, "beta").await;
    // The caches of this leadership are the ones read: a password edited now is seen and made to work
    // (the first leadership's Secret cache, whose watch stopped, still holds the old one).
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret_name = acme.status.clone().unwrap().secret_name.unwrap();
    let acme_secret = secrets.get(&secret_name).await.unwrap();
    let edit = serde_json::json!({"stringData": {"password": "chosen-after-a-handover-7"}});
    secrets
        .patch(&secret_name, &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    let edited = wait_until(
        &secrets,
        &secret_name,
        "the uri follows the password",
        |s| support::kube::secret_value(s, "uri").contains(":chosen-after-a-handover-7@"),
    )
    .await;
    pg::until_login_works(
        &support::kube::secret_value(&edited, "uri"),
        "the password edited after the handover",
    )
    .await;
    // An installation reads the Tenant's Secret from the cache: the edited password, not the one a
    // stopped cache still holds.
    apply_yaml(
        &ns,
        &support::kube::installation_yaml("acme-tasks", "tasks", ""),
    );
    let installations: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    support::kube::wait_ready(&installations, "acme-tasks").await;

    // Logs: one JSON object per line; reconcile lines name their resource; no password anywhere.
    let logs = operator.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let resource = format!("{ns}/acme");
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["resource"] == resource.as_str()),
        "no log line names {resource}:\n{logs}"
    );
    for password in [
        String::from_utf8(acme_secret.data.unwrap()["password"].0.clone()).unwrap(),
        "chosen-after-a-handover-7".to_string(),
    ] {
        assert!(
            !logs.contains(&password),
            "the tenant's password reached the logs"
        );
    }
    pg::drop_tenant(&format!("tenant_{slug}")).await;
}

#[tokio::test]
async fn a_landlord_database_that_cannot_be_migrated_is_a_counted_failure() {
    let client = client().await;
    let ns = namespace(&client, "e2e-core-fails").await;
    // The core migrations and one more landlord migration that PostgreSQL refuses (as after rolling the image
    // forward with a broken release): the leader holds the Lease and reconciles nothing until it applies.
    let migrations = tempfile::tempdir().unwrap();
    for scope in ["landlord", "tenant"] {
        let to = migrations.path().join(scope);
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(support::repo_root().join("migrations").join(scope)).unwrap()
        {
            let file = file.unwrap();
            std::fs::copy(file.path(), to.join(file.file_name())).unwrap();
        }
    }
    let broken = migrations.path().join("landlord/20990101000000_broken");
    std::fs::write(broken.with_extension("up.sql"), "SELEC 1;\n").unwrap();
    std::fs::write(broken.with_extension("down.sql"), "SELECT 1;\n").unwrap();
    let operator = Operator::start(
        &ns,
        &[(
            "LANDLORD_MIGRATIONS_DIR",
            migrations.path().to_str().unwrap(),
        )],
    );
    let addr = operator.http_addr().await;
    let expected = [
        "landlord_leader 1",
        r#"landlord_reconcile_failures_total{controller="landlord-database",reason="MigrationFailed"} "#,
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = http_get(&addr, "/metrics").await.1;
        if expected.iter().all(|line| metrics.contains(line)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failing landlord migration is not counted:\n{metrics}\n{}",
            operator.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
