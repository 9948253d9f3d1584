//! The CRDs: `crds/` in sync with the types, and the schema's validation enforced by a real kube-apiserver.

mod support;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, ResourceExt};
use landlord::crd::{
    DatabaseServer, DeletionPolicy, InstallScope, ModuleInstallation, ModuleInstallationSpec,
    Tenant, TenantSpec, UninstallPolicy,
};
use serde_json::json;
use support::kube::{client, kubectl, kubectl_with_input, namespace, rejection};

#[test]
fn crds_directory_matches_landlord_crds() {
    let generated = landlord::crd::crds_yaml().unwrap();
    let committed =
        std::fs::read_to_string(support::repo_root().join("crds/landlord.yaml")).unwrap();
    assert!(
        committed == generated,
        "crds/landlord.yaml is out of date: run `cargo run -- crds > crds/landlord.yaml`"
    );
}

#[tokio::test]
async fn crds_install_and_become_established() {
    let client = client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let params = PatchParams::apply("landlord-tests").force();
    for crd in landlord::crd::crds() {
        let name = crd.name_any();
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .unwrap();
        let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(std::time::Duration::from_secs(30), established)
            .await
            .expect("CRD established within 30s")
            .unwrap();
    }
}

fn tenant(name: &str, spec: serde_json::Value) -> Tenant {
    serde_json::from_value(json!({
        "apiVersion": "tenancy.landlord.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": { "name": name },
        "spec": spec,
    }))
    .unwrap()
}

#[tokio::test]
async fn slug_with_sql_in_it_is_rejected() {
    let client = client().await;
    let ns = namespace(&client, "crd-slug").await;
    let tenants: Api<Tenant> = Api::namespaced(client, &ns);
    let (code, message) = rejection(
        tenants
            .create(
                &PostParams::default(),
                &tenant("acme", json!({"slug": "acme;drop"})),
            )
            .await,
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.slug") && message.contains("^[a-z][a-z0-9_]*$"),
        "{message}"
    );
}

#[tokio::test]
async fn database_name_over_63_bytes_is_rejected() {
    let client = client().await;
    let ns = namespace(&client, "crd-long").await;
    let tenants: Api<Tenant> = Api::namespaced(client, &ns);

    let longest = "a".repeat(56); // tenant_ + 56 = 63 bytes: the limit itself is fine
    tenants
        .create(
            &PostParams::default(),
            &tenant("fits", json!({"slug": longest})),
        )
        .await
        .unwrap();

    let (code, message) = rejection(
        tenants
            .create(
                &PostParams::default(),
                &tenant("too-long", json!({"slug": "a".repeat(57)})),
            )
            .await,
    );
    assert_eq!(code, 422);
    assert!(message.contains("63-byte"), "{message}");

    // Without spec.slug, the name is the slug: it must be usable as one.
    let long_name = format!("t{}", "a".repeat(56));
    let (code, message) = rejection(
        tenants
            .create(&PostParams::default(), &tenant(&long_name, json!({})))
            .await,
    );
    assert_eq!(code, 422);
    assert!(message.contains("set spec.slug"), "{message}");
    let (_, message) = rejection(
        tenants
            .create(&PostParams::default(), &tenant("dotted.name", json!({})))
            .await,
    );
    assert!(message.contains("set spec.slug"), "{message}");
}

#[tokio::test]
async fn valid_tenant_round_trips_with_defaults() {
    let client = client().await;
    let ns = namespace(&client, "crd-roundtrip").await;
    let tenants: Api<Tenant> = Api::namespaced(client, &ns);

    let created = tenants
        .create(
            &PostParams::default(),
            &tenant(
                "acme-corp",
                json!({"displayName": "Acme Corp", "extensions": ["ltree", "btree_gin"]}),
            ),
        )
        .await
        .unwrap();
    let fetched = tenants.get("acme-corp").await.unwrap();
    assert_eq!(fetched.spec, created.spec);
    assert_eq!(
        fetched.spec,
        TenantSpec {
            slug: None,
            display_name: Some("Acme Corp".into()),
            extensions: vec!["ltree".into(), "btree_gin".into()],
            deletion_policy: DeletionPolicy::Retain,
            paused: false,
            server: None,
            server_selector: None,
        }
    );
    assert_eq!(fetched.database_name(), "tenant_acme_corp");

    let (code, message) = rejection(
        tenants
            .create(
                &PostParams::default(),
                &tenant("dup-ext", json!({"extensions": ["ltree", "ltree"]})),
            )
            .await,
    );
    assert_eq!(code, 422, "{message}");

    let yaml = format!(
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: bad-policy, namespace: {ns}}}\nspec: {{deletionPolicy: Purge}}\n"
    );
    let (ok, _, err) = kubectl_with_input(&["apply", "-f", "-"], &yaml);
    assert!(!ok);
    assert!(
        err.contains("spec.deletionPolicy") && err.contains("Unsupported value: \"Purge\""),
        "{err}"
    );
}

#[tokio::test]
async fn slug_is_immutable() {
    let client = client().await;
    let ns = namespace(&client, "crd-immutable").await;
    let tenants: Api<Tenant> = Api::namespaced(client, &ns);
    tenants
        .create(
            &PostParams::default(),
            &tenant("acme", json!({"slug": "acme"})),
        )
        .await
        .unwrap();
    tenants
        .create(&PostParams::default(), &tenant("beta", json!({})))
        .await
        .unwrap();

    let change = Patch::Merge(json!({"spec": {"slug": "other"}}));
    let (code, message) = rejection(
        tenants
            .patch("acme", &PatchParams::default(), &change)
            .await,
    );
    assert_eq!(code, 422);
    assert!(message.contains("spec.slug is immutable"), "{message}");

    let (_, message) = rejection(
        tenants
            .patch("beta", &PatchParams::default(), &change)
            .await,
    );
    assert!(message.contains("cannot be added or removed"), "{message}");

    // Other fields stay editable.
    let paused = Patch::Merge(json!({"spec": {"paused": true}}));
    let patched = tenants
        .patch("acme", &PatchParams::default(), &paused)
        .await
        .unwrap();
    assert!(patched.spec.paused);
}

#[tokio::test]
async fn module_installation_validates_and_keeps_its_identity() {
    let client = client().await;
    let ns = namespace(&client, "crd-mi").await;
    let installations: Api<ModuleInstallation> = Api::namespaced(client, &ns);
    let spec = ModuleInstallationSpec {
        tenant: "acme".into(),
        module: "expenses".into(),
        version: Some("1.1.0".into()),
        ..Default::default()
    };
    installations
        .create(
            &PostParams::default(),
            &ModuleInstallation::new("acme-expenses", spec),
        )
        .await
        .unwrap();
    let fetched = installations.get("acme-expenses").await.unwrap();
    assert_eq!(fetched.spec.scope, InstallScope::All);
    assert_eq!(fetched.spec.uninstall_policy, UninstallPolicy::Retain);

    let retarget = Patch::Merge(json!({"spec": {"tenant": "other"}}));
    let (_, message) = rejection(
        installations
            .patch("acme-expenses", &PatchParams::default(), &retarget)
            .await,
    );
    assert!(message.contains("spec.tenant is immutable"), "{message}");

    let bad = ModuleInstallation::new(
        "bad",
        ModuleInstallationSpec {
            tenant: "acme".into(),
            module: "Expenses; DROP".into(),
            ..Default::default()
        },
    );
    let (code, _) = rejection(installations.create(&PostParams::default(), &bad).await);
    assert_eq!(code, 422);
    let bad_version = ModuleInstallation::new(
        "bad-version",
        ModuleInstallationSpec {
            tenant: "acme".into(),
            module: "expenses".into(),
            version: Some("latest".into()),
            ..Default::default()
        },
    );
    let (code, _) = rejection(
        installations
            .create(&PostParams::default(), &bad_version)
            .await,
    );
    assert_eq!(code, 422);
}

#[tokio::test]
async fn kubectl_get_shows_the_printer_columns() {
    let client = client().await;
    let ns = namespace(&client, "crd-columns").await;
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    tenants
        .create(
            &PostParams::default(),
            &tenant("acme", json!({"slug": "acme_slug"})),
        )
        .await
        .unwrap();
    let installations: Api<ModuleInstallation> = Api::namespaced(client, &ns);
    let spec = ModuleInstallationSpec {
        tenant: "acme".into(),
        module: "tasks".into(),
        ..Default::default()
    };
    installations
        .create(
            &PostParams::default(),
            &ModuleInstallation::new("acme-tasks", spec),
        )
        .await
        .unwrap();

    // Slug is the effective one, which the operator writes to status (also when defaulted from the name).
    let (ok, out, err) = kubectl(&["get", "tn", "-n", &ns]);
    assert!(ok, "{err}");
    assert!(!out.contains("acme_slug"), "read from the spec: {out}");
    tenants
        .patch_status(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"slug": "acme_slug"}})),
        )
        .await
        .unwrap();
    let (ok, out, err) = kubectl(&["get", "tn", "-n", &ns]);
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "SLUG", "DATABASE", "SERVER", "READY", "AGE"]
    );
    assert!(out.lines().nth(1).unwrap().starts_with("acme "), "{out}");
    assert!(out.contains("acme_slug"), "{out}");

    let (ok, out, err) = kubectl(&["get", "moduleinstallations", "-n", &ns]);
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "TENANT", "MODULE", "VERSION", "READY", "AGE"]
    );
    assert!(out.contains("acme-tasks") && out.contains("tasks"), "{out}");
}

/// Deletes a cluster-scoped DatabaseServer when the test ends, even when it fails: every operator of a later test
/// would otherwise reconcile it.
struct ServerGuard(String);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = kubectl(&["delete", "databaseserver", &self.0, "--ignore-not-found"]);
    }
}

#[tokio::test]
async fn database_servers_show_their_columns_and_refuse_the_name_default() {
    let client = client().await;
    let servers: Api<DatabaseServer> = Api::all(client);
    let server = |name: &str| -> DatabaseServer {
        serde_json::from_value(json!({
            "apiVersion": "tenancy.landlord.dev/v1alpha1",
            "kind": "DatabaseServer",
            "metadata": {"name": name},
            "spec": {"adminSecretRef": {"name": "landlord-server-x"}, "maxTenants": 7, "cordoned": true},
        }))
        .unwrap()
    };
    // `default` is the server of LANDLORD_ADMIN_DATABASE_URL in Landlord's records.
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let (code, message) = rejection(servers.create(&dry_run, &server("default")).await);
    assert_eq!(code, 422);
    assert!(message.contains("the name default is taken"), "{message}");

    // No operator runs here: nothing adds a finalizer, and the guard's delete is immediate.
    let name = support::unique("crd-dbs");
    let _guard = ServerGuard(name.clone());
    let created = servers
        .create(&PostParams::default(), &server(&name))
        .await
        .unwrap();
    assert_eq!(
        created.spec.admin_secret_ref.key, "uri",
        "key defaults to uri"
    );
    let (ok, out, err) = kubectl(&["get", "dbs", &name]);
    assert!(ok, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "TENANTS", "MAX", "CORDONED", "VERSION", "READY", "AGE"
        ]
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..3], [name.as_str(), "7", "true"], "{out}");
}
