//! Windows that issue 20 found between a check and the act it allowed, and names refused only half-way: each
//! test drives the real apiserver, PostgreSQL or `landlord run` into the window and proves it is closed.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Resource, ResourceExt};
use landlord::controller::credentials;
use landlord::crd::{ModuleInstallation, ModuleRollout, ROLLOUT_LABEL, Tenant, TenantSpec};
use landlord::db::mirror::{self, Installer, ModuleClaim, ModuleState, TenantRecord, Uninstalling};
use support::db::{databases, landlord_schema, owner};
use support::kube::{
    apply_yaml, client, kubectl_with_input, namespace, rejection, tenant_yaml, wait_condition,
    wait_gone, wait_until,
};
use support::operator::Operator;
use support::{pg, unique, unique_slug};

#[tokio::test]
async fn a_tenant_name_its_secret_cannot_carry_is_refused_before_anything_exists() {
    let client = client().await;
    let ns = namespace(&client, "e2e-longname").await;
    let slug = unique_slug("longname");
    // A slug of its own, so only the name is too long: the tenant label on its Secret cannot hold it.
    let name = format!(
        "{}-{}",
        "a".repeat(60),
        &slug[slug.len() - 9..].replace('_', "-")
    );
    assert_eq!(name.len(), 70);
    let mut tenant = Tenant::new(
        &name,
        TenantSpec {
            slug: Some(slug.clone()),
            ..Default::default()
        },
    );
    tenant.metadata.namespace = Some(ns.clone());
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let (code, message) = rejection(tenants.create(&PostParams::default(), &tenant).await);
    assert_eq!(code, 422, "{message}");
    assert!(message.contains("at most 63 characters"), "{message}");
    let database = format!("tenant_{slug}");
    assert!(!pg::database_exists(&database).await);
    assert!(!pg::role_exists(&database).await);
}

#[tokio::test]
async fn an_untrusted_extension_is_refused_before_role_and_database_exist() {
    let client = client().await;
    let ns = namespace(&client, "e2e-untrusted").await;
    let _operator = Operator::start(&ns, &[]);
    let slug = unique_slug("untrusted");
    apply_yaml(
        &ns,
        &tenant_yaml("acme", &slug, "  extensions: [file_fdw]\n"),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let tenant = wait_condition(&tenants, "acme", "Ready", "False", "InvalidSpec").await;
    let status = tenant.status.unwrap();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let message = ready.map(|c| c.message.clone()).unwrap_or_default();
    assert!(message.contains("file_fdw"), "{message}");
    let database = format!("tenant_{slug}");
    let made = (
        pg::database_exists(&database).await,
        pg::role_exists(&database).await,
    );
    // Cleaned up before asserting, so that a failure leaves nothing behind either.
    pg::drop_tenant(&database).await;
    assert_eq!(made, (false, false), "role or database of {database} made");
}

/// A Tenant as the apiserver would hand it to the operator (never created: nothing reconciles it).
fn tenant_object(ns: &str, name: &str) -> Tenant {
    let mut tenant = Tenant::new(name, TenantSpec::default());
    tenant.metadata.namespace = Some(ns.into());
    tenant.metadata.uid = Some(unique("uid"));
    tenant
}

fn data(password: &str) -> BTreeMap<String, ByteString> {
    BTreeMap::from([("password".into(), ByteString(password.as_bytes().to_vec()))])
}

#[tokio::test]
async fn a_secret_created_between_gather_and_write_is_not_taken_over() {
    let client = client().await;
    let ns = namespace(&client, "e2e-secretrace").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let tenant = tenant_object(&ns, "acme");
    // The plan was made when gather found no Secret (found version: None) ...
    let planned = credentials::desired(&tenant, data("landlords"));
    // ... and someone else's Secret of that name appears before the write.
    let theirs = Secret {
        metadata: ObjectMeta {
            name: Some("acme-db".into()),
            ..Default::default()
        },
        data: Some(data("theirs")),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    let (code, _) = rejection(credentials::write(&secrets, &planned, None).await);
    assert_eq!(code, 409);
    let after = secrets.get("acme-db").await.unwrap();
    assert_eq!(after.data, Some(data("theirs")));
    assert!(!credentials::is_ours(
        &after,
        "acme",
        tenant.uid().as_deref().unwrap()
    ));

    // Found at one version, changed before the write: refused too; at the version read, written.
    let read = after.resource_version();
    let mut edited = after.clone();
    edited.data = Some(data("edited"));
    let edited = secrets
        .replace("acme-db", &PostParams::default(), &edited)
        .await
        .unwrap();
    let (code, _) = rejection(credentials::write(&secrets, &planned, read.as_deref()).await);
    assert_eq!(code, 409);
    assert_eq!(
        secrets.get("acme-db").await.unwrap().data,
        Some(data("edited"))
    );
    let written = credentials::write(&secrets, &planned, edited.resource_version().as_deref())
        .await
        .unwrap();
    assert_eq!(written.data, Some(data("landlords")));

    // Absent when written: created, Landlord's.
    let other = tenant_object(&ns, "globex");
    let created = credentials::write(&secrets, &credentials::desired(&other, data("x")), None)
        .await
        .unwrap();
    assert!(credentials::is_ours(
        &created,
        "globex",
        other.uid().as_deref().unwrap()
    ));
}

#[tokio::test]
async fn an_uninstall_and_a_dependents_install_cannot_both_go_ahead() {
    let databases = databases();
    landlord_schema(&databases).await;
    let pool = databases.landlord_pool();
    let installer = |name: &str| Installer {
        uid: unique("uid"),
        name: name.into(),
    };
    for round in 0..2 {
        let slug = unique_slug("uninstallrace");
        let record = TenantRecord {
            slug: &slug,
            database: "unused",
            display_name: None,
        };
        let tenant = owner(&slug);
        let default = [mirror::Candidate {
            server: "default".into(),
            max_tenants: None,
        }];
        mirror::claim_tenant(pool, &record, &tenant, &default)
            .await
            .unwrap();
        let tasks = installer("acme-tasks");
        let expenses = installer("acme-expenses");
        let claimed = mirror::claim_module(pool, &slug, "tasks", &tasks, None, &[])
            .await
            .unwrap();
        assert_eq!(claimed, ModuleClaim::Recorded(tasks.clone()));
        mirror::record_module(
            pool,
            &slug,
            "tasks",
            (Some("1.0.0"), ModuleState::Installed),
            &tasks.uid,
            None,
        )
        .await
        .unwrap();

        // Both at once, as two reconciles would: whichever runs first, exactly one goes ahead.
        let (uninstall, install) = tokio::join!(
            mirror::mark_uninstalling(pool, &slug, "tasks", &tasks.uid, &["expenses"]),
            mirror::claim_module(pool, &slug, "expenses", &expenses, None, &["tasks"]),
        );
        let (uninstall, install) = (uninstall.unwrap(), install.unwrap());
        match (&uninstall, &install) {
            (Uninstalling::Marked, ModuleClaim::DependenciesMissing(missing)) => {
                assert_eq!(missing, &["tasks"]);
            }
            (Uninstalling::Blocked(by), ModuleClaim::Recorded(recorded)) => {
                assert_eq!(recorded, &expenses);
                assert_eq!(by[0].module, "expenses");
            }
            other => panic!("round {round}: both or neither went ahead: {other:?}"),
        }

        // Marked: stays Uninstalling (a failed rollback is carried on, never undone), and every later
        // install of a dependent is refused from that record.
        if uninstall == Uninstalling::Marked {
            let again = mirror::mark_uninstalling(pool, &slug, "tasks", &tasks.uid, &["expenses"]);
            assert_eq!(again.await.unwrap(), Uninstalling::Marked);
            let modules = mirror::installed_modules(pool, &slug).await.unwrap();
            assert_eq!(modules[0].status, ModuleState::Uninstalling);
            let later = mirror::claim_module(pool, &slug, "expenses", &expenses, None, &["tasks"]);
            assert!(matches!(
                later.await.unwrap(),
                ModuleClaim::DependenciesMissing(_)
            ));
        }
        // Only the recorded installer marks anything.
        let stranger = mirror::mark_uninstalling(pool, &slug, "tasks", "someone-else", &[]);
        assert_eq!(stranger.await.unwrap(), Uninstalling::NotRecorded);
        mirror::forget_tenant(pool, &slug, &tenant.uid)
            .await
            .unwrap();
    }
}

/// A rollout of `tasks` named `name` onto the Tenants labelled `plan: <plan>`.
fn rollout_yaml(name: &str, plan: &str) -> String {
    format!(
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleRollout\nmetadata: {{name: {name}}}\nspec:\n  module: tasks\n  tenantSelector: {{matchLabels: {{plan: {plan}}}}}\n"
    )
}

#[tokio::test]
async fn deleting_a_rollout_deletes_only_what_it_controls() {
    let client = client().await;
    let ns = namespace(&client, "e2e-rolloutref").await;
    let _operator = Operator::start(&ns, &[]);
    apply_yaml(&ns, &rollout_yaml("tasks-all", "none"));
    let rollouts: Api<ModuleRollout> = Api::namespaced(client.clone(), &ns);
    let rollout = wait_until(&rollouts, "tasks-all", "its finalizer", |r| {
        r.finalizers()
            .iter()
            .any(|f| f == "tenancy.landlord.dev/cleanup")
    })
    .await;
    // Someone's installation with the rollout's label and an owner reference to it, but not its
    // controller reference: not the rollout's, in its life or at its deletion.
    let mut reference = rollout.controller_owner_ref(&()).unwrap();
    reference.controller = Some(false);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    let theirs = ModuleInstallation {
        metadata: ObjectMeta {
            name: Some("by-hand-tasks".into()),
            labels: Some(BTreeMap::from([(ROLLOUT_LABEL.into(), "tasks-all".into())])),
            owner_references: Some(vec![OwnerReference { ..reference }]),
            ..Default::default()
        },
        spec: serde_json::from_value(serde_json::json!({"tenant": "by-hand", "module": "tasks"}))
            .unwrap(),
        status: None,
    };
    installs
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    rollouts
        .delete("tasks-all", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&rollouts, "tasks-all").await;
    let left = installs.get("by-hand-tasks").await.unwrap();
    assert!(left.metadata.deletion_timestamp.is_none(), "{left:#?}");
}

#[tokio::test]
async fn one_installation_the_api_refuses_does_not_stop_the_wave() {
    let client = client().await;
    let ns = namespace(&client, "e2e-rolloutrefused").await;
    // An admission policy refuses every installation for the Tenant `alpha` in this namespace.
    let policy = format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {{name: {ns}}}\n\
         spec:\n  failurePolicy: Fail\n  matchConstraints:\n    resourceRules:\n    - apiGroups: [tenancy.landlord.dev]\n      \
         apiVersions: [v1alpha1]\n      operations: [CREATE]\n      resources: [moduleinstallations]\n  validations:\n  \
         - expression: \"!(request.namespace == '{ns}' && object.spec.tenant == 'alpha')\"\n    \
         message: installations for alpha are refused here\n---\n\
         apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {{name: {ns}}}\n\
         spec:\n  policyName: {ns}\n  validationActions: [Deny]\n"
    );
    let (ok, _, err) = kubectl_with_input(&["apply", "-f", "-"], &policy);
    assert!(ok, "{err}");
    // The policy is in force once a probe (a dry run) is refused.
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    let probe: ModuleInstallation = serde_json::from_value(serde_json::json!({
        "apiVersion": "tenancy.landlord.dev/v1alpha1", "kind": "ModuleInstallation",
        "metadata": {"name": "probe"}, "spec": {"tenant": "alpha", "module": "tasks"}
    }))
    .unwrap();
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while installs.create(&dry_run, &probe).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the policy never took effect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let _operator = Operator::start(&ns, &[]);
    let prefix = unique_slug("refused");
    let tenants: String = ["alpha", "beta"]
        .iter()
        .map(|name| {
            format!(
                "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}, labels: {{plan: pro}}}}\nspec: {{slug: {prefix}_{name}, deletionPolicy: Delete}}\n"
            )
        })
        .collect();
    apply_yaml(&ns, &tenants);
    apply_yaml(&ns, &rollout_yaml("tasks-pro", "pro"));
    let rollouts: Api<ModuleRollout> = Api::namespaced(client.clone(), &ns);
    let rollout = wait_until(&rollouts, "tasks-pro", "alpha listed as failed", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| s.failed_tenants.iter().any(|f| f.tenant == "alpha"))
    })
    .await;
    let status = rollout.status.as_ref().unwrap();
    let failed = status.failed_tenants.iter().find(|f| f.tenant == "alpha");
    let failed = failed.unwrap();
    assert_eq!(failed.reason, "InvalidSpec", "{failed:?}");
    assert!(failed.message.contains("alpha-tasks"), "{failed:?}");
    // Alpha comes first by name; beta got its installation all the same.
    wait_until(&installs, "beta-tasks", "created by the rollout", |_| true).await;
    assert!(installs.get_opt("alpha-tasks").await.unwrap().is_none());
    let (ok, _, err) = kubectl_with_input(
        &[
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            &ns,
        ],
        "",
    );
    assert!(ok, "{err}");
    for name in ["alpha", "beta"] {
        pg::drop_tenant(&format!("tenant_{prefix}_{name}")).await;
    }
}
