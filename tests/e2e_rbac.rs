//! The RBAC of `deploy/` is enough, and no more: the real `landlord run` authenticates with a
//! service-account token (TokenRequest API, token-only kubeconfig) bound to the rendered ClusterRole and
//! leader-election Role, provisions and deletes a Tenant and a module; the same token is refused what the
//! operator never needs. The same for the RBAC that `helm template` renders from `charts/landlord`, cluster-wide
//! and with a watched namespace (Secrets readable there only, and admin Secrets by name in the release namespace),
//! installed with `helm install`. Both operators wait for the DatabaseServer CRD and watch DatabaseServers
//! cluster-wide; none is created here, since every operator of a parallel test would reconcile it.

mod helm;
mod support;

use std::io::Write;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use landlord::crd::{DatabaseServer, ModuleInstallation, Tenant};
use serde::Deserialize;
use serde_json::{Value, json};
use support::kube::{apply_yaml, client, events, namespace, wait_gone, wait_ready};
use support::operator::Operator;
use support::{TestEnv, repo_root, unique_slug};

/// `kubectl kustomize deploy/`, one JSON value per object.
fn render_deploy() -> Vec<Value> {
    let out = Command::new("kubectl")
        .args(["kustomize", "deploy/"])
        .current_dir(repo_root())
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/ failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml::Deserializer::from_str(&String::from_utf8(out.stdout).unwrap())
        .map(|doc| Value::deserialize(doc).expect("YAML document"))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The rendered object of `kind` named `name`, as a typed object.
fn rendered<K: serde::de::DeserializeOwned>(objects: &[Value], kind: &str, name: &str) -> K {
    let object = objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("deploy/ renders no {kind} {name}"));
    serde_json::from_value(object.clone()).expect("rendered object")
}

/// Deletes the cluster-scoped objects of one test, even when it fails (the environment outlives the test).
struct ClusterObjects(String);

impl Drop for ClusterObjects {
    fn drop(&mut self) {
        for kind in ["clusterrolebinding", "clusterrole"] {
            let _ = support::kube::kubectl(&[
                "delete",
                kind,
                &self.0,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

/// Prints the operator's log when the test fails.
struct LogOnFailure<'a>(&'a Operator);

impl Drop for LogOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- operator log ({}):\n{}",
                self.0.log.display(),
                self.0.logs()
            );
        }
    }
}

/// The service account `landlord` in `ns` with the rendered RBAC: the ClusterRole and its binding under
/// `cluster_name` (unique per test, so parallel runs never share or delete each other's), the Roles of the
/// operator's namespace (leader election, the admin Secrets of DatabaseServers) and their RoleBindings moved
/// into `ns`.
async fn install_rbac(admin: &Client, ns: &str, cluster_name: &str) {
    let objects = render_deploy();
    let post = PostParams::default();

    let mut sa: ServiceAccount = rendered(&objects, "ServiceAccount", "landlord");
    sa.metadata.namespace = Some(ns.into());
    Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create(&post, &sa)
        .await
        .expect("create the service account");

    let mut cluster_role: ClusterRole = rendered(&objects, "ClusterRole", "landlord");
    cluster_role.metadata.name = Some(cluster_name.into());
    Api::<ClusterRole>::all(admin.clone())
        .create(&post, &cluster_role)
        .await
        .expect("create the ClusterRole");

    let mut binding: ClusterRoleBinding = rendered(&objects, "ClusterRoleBinding", "landlord");
    binding.metadata.name = Some(cluster_name.into());
    assert_eq!(binding.role_ref.name, "landlord");
    binding.role_ref.name = cluster_name.into();
    for subject in binding.subjects.iter_mut().flatten() {
        subject.namespace = Some(ns.into());
    }
    Api::<ClusterRoleBinding>::all(admin.clone())
        .create(&post, &binding)
        .await
        .expect("create the ClusterRoleBinding");

    for name in ["landlord-leader-election", "landlord-admin-secrets"] {
        let mut role: Role = rendered(&objects, "Role", name);
        role.metadata.namespace = Some(ns.into());
        Api::<Role>::namespaced(admin.clone(), ns)
            .create(&post, &role)
            .await
            .unwrap_or_else(|e| panic!("create the Role {name}: {e}"));

        let mut role_binding: RoleBinding = rendered(&objects, "RoleBinding", name);
        role_binding.metadata.namespace = Some(ns.into());
        for subject in role_binding.subjects.iter_mut().flatten() {
            subject.namespace = Some(ns.into());
        }
        Api::<RoleBinding>::namespaced(admin.clone(), ns)
            .create(&post, &role_binding)
            .await
            .unwrap_or_else(|e| panic!("create the RoleBinding {name}: {e}"));
    }
    let rendered_roles = objects.iter().filter(|o| o["kind"] == "Role").count();
    assert_eq!(
        rendered_roles, 2,
        "every Role deploy/ renders is installed here"
    );
}

/// A kubeconfig with the test cluster's server and CA and the token as the only credential (with a client
/// certificate as well, the apiserver would authenticate the certificate).
fn token_kubeconfig(token: &str, ns: &str) -> tempfile::NamedTempFile {
    let admin =
        Kubeconfig::read_from(TestEnv::get().kubeconfig()).expect("read the test kubeconfig");
    let context_name = admin.current_context.clone().expect("current context");
    let context = admin
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
        .expect("the current context");
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .expect("the current context's cluster");
    let server = cluster.server.expect("cluster server");
    let ca = match (
        &cluster.certificate_authority,
        &cluster.certificate_authority_data,
    ) {
        (Some(path), _) => format!("certificate-authority: {path}"),
        (None, Some(data)) => format!("certificate-authority-data: {data}"),
        (None, None) => panic!("the test kubeconfig has no CA"),
    };
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    {ca}\n\
         users:\n- name: landlord\n  user:\n    token: {token}\n\
         contexts:\n- name: landlord\n  context: {{cluster: test, user: landlord, namespace: {ns}}}\n\
         current-context: landlord\n"
    );
    let mut file = tempfile::Builder::new()
        .prefix("landlord-sa-")
        .suffix(".kubeconfig")
        .tempfile()
        .expect("temporary kubeconfig");
    file.write_all(yaml.as_bytes()).expect("write kubeconfig");
    file.flush().unwrap();
    file
}

async fn client_from(path: &std::path::Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("read the token kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("load the token kubeconfig");
    Client::try_from(config).expect("build a kube client")
}

/// Asserts the apiserver answered 403 Forbidden.
/// A namespace of its own with deploy/'s RBAC bound to its `landlord` service account, and that account's
/// token in a token-only kubeconfig (one holding a client certificate too would authenticate as the cert).
struct ServiceAccountSession {
    ns: String,
    kubeconfig: tempfile::NamedTempFile,
    sa: Client,
    _cluster_objects: ClusterObjects,
}

async fn service_account_session(admin: &Client, prefix: &str) -> ServiceAccountSession {
    let ns = namespace(admin, prefix).await;
    let cluster_name = format!("landlord-{ns}");
    let cluster_objects = ClusterObjects(cluster_name.clone());
    install_rbac(admin, &ns, &cluster_name).await;
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
        .create_token_request(
            "landlord",
            &PostParams::default(),
            &TokenRequest {
                metadata: ObjectMeta::default(),
                spec: TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..Default::default()
                },
                status: None,
            },
        )
        .await
        .expect("TokenRequest for the service account")
        .status
        .expect("token in the TokenRequest status")
        .token;
    let kubeconfig = token_kubeconfig(&token, &ns);
    let sa = client_from(kubeconfig.path()).await;
    ServiceAccountSession {
        ns,
        kubeconfig,
        sa,
        _cluster_objects: cluster_objects,
    }
}

/// `sa` may GET a Secret by name in `ns`, the operator's namespace, where DatabaseServers' admin Secrets are.
async fn reads_admin_secrets_by_name(sa: &Client, ns: &str) {
    Api::<Secret>::namespaced(sa.clone(), ns)
        .get_opt("landlord-server-second")
        .await
        .unwrap_or_else(|e| panic!("get an admin Secret in the operator's namespace {ns}: {e}"));
}

fn forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn the_operator_runs_on_the_rbac_of_deploy() {
    let admin = client().await;
    let ServiceAccountSession {
        ns,
        kubeconfig,
        sa,
        _cluster_objects,
    } = service_account_session(&admin, "e2e-rbac").await;

    // The apiserver sees the service account, not the admin certificate.
    let review = Api::<SelfSubjectReview>::all(sa.clone())
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .expect("SelfSubjectReview");
    let user = review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username);
    assert_eq!(
        user.as_deref(),
        Some(format!("system:serviceaccount:{ns}:landlord").as_str())
    );

    let operator = Operator::start(
        &ns,
        &[
            ("KUBECONFIG", kubeconfig.path().to_str().unwrap()),
            ("LANDLORD_WATCH_NAMESPACE", &ns),
            ("LANDLORD_LEASE_NAMESPACE", &ns),
            ("LANDLORD_HTTP_ADDR", "127.0.0.1:0"),
        ],
    );
    let _log = LogOnFailure(&operator);

    let slug = unique_slug("rbac");
    apply_yaml(
        &ns,
        &format!(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: acme}}\nspec: {{slug: {slug}, deletionPolicy: Delete}}\n\
             ---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: acme-tasks}}\nspec: {{tenant: acme, module: tasks}}\n"
        ),
    );
    let tenants: Api<Tenant> = Api::namespaced(admin.clone(), &ns);
    let installations: Api<ModuleInstallation> = Api::namespaced(admin.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
    wait_ready(&tenants, "acme").await;
    wait_ready(&installations, "acme-tasks").await;

    // What it wrote with those rights: the credentials Secret, Events, the Lease in its namespace.
    assert!(secrets.get_opt("acme-db").await.unwrap().is_some());
    let published = events(&admin, &ns, "acme").await;
    assert!(
        published
            .iter()
            .any(|e| e.starts_with("Normal Provisioned")),
        "events: {published:?}"
    );
    let lease = Api::<Lease>::namespaced(admin.clone(), &ns)
        .get("landlord")
        .await
        .expect("the leader Lease in the operator's namespace");
    assert!(
        lease.spec.and_then(|s| s.holder_identity).is_some(),
        "the Lease has a holder"
    );

    // Deleting runs the cleanup: uninstall, drop the database, delete the Secret, release the finalizers.
    let delete = DeleteParams::default();
    installations.delete("acme-tasks", &delete).await.unwrap();
    tenants.delete("acme", &delete).await.unwrap();
    wait_gone(&installations, "acme-tasks").await;
    wait_gone(&tenants, "acme").await;
    assert!(
        secrets.get_opt("acme-db").await.unwrap().is_none(),
        "the operator deleted the credentials Secret"
    );

    let log = operator.logs();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the operator was refused something its RBAC should allow"
    );
}

#[tokio::test]
async fn the_token_is_refused_what_the_operator_never_needs() {
    let admin = client().await;
    let ServiceAccountSession {
        ns,
        kubeconfig: _kubeconfig,
        sa,
        _cluster_objects,
    } = service_account_session(&admin, "e2e-rbac-deny").await;
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };

    // Allowed, as the operator needs: its resources, Secrets, Leases in its own namespace, its CRDs by name.
    Api::<Tenant>::namespaced(sa.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list Tenants");
    Api::<Secret>::all(sa.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=landlord"))
        .await
        .expect("list managed Secrets in every namespace");
    Api::<Lease>::namespaced(sa.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list Leases in its own namespace");
    let crds: Api<CustomResourceDefinition> = Api::all(sa.clone());
    crds.get("tenants.tenancy.landlord.dev")
        .await
        .expect("get its own CRD");
    crds.get("databaseservers.tenancy.landlord.dev")
        .await
        .expect("get the DatabaseServer CRD");
    // DatabaseServers cluster-wide, a namespace's labels by name, an admin Secret by name in its own namespace.
    let servers: Api<DatabaseServer> = Api::all(sa.clone());
    servers
        .list(&ListParams::default())
        .await
        .expect("list DatabaseServers");
    Api::<Namespace>::all(sa.clone())
        .get(&ns)
        .await
        .expect("get a Tenant's namespace");
    reads_admin_secrets_by_name(&sa, &ns).await;

    // Refused: everything else.
    forbidden(
        "create a Deployment",
        Api::<Deployment>::namespaced(sa.clone(), &ns)
            .create(
                &dry_run,
                &serde_json::from_value(json!({
                    "metadata": {"name": "x"},
                    "spec": {"selector": {"matchLabels": {"a": "b"}},
                             "template": {"metadata": {"labels": {"a": "b"}},
                                          "spec": {"containers": [{"name": "x", "image": "x"}]}}}
                }))
                .unwrap(),
            )
            .await,
    );
    forbidden(
        "create a Namespace",
        Api::<Namespace>::all(sa.clone())
            .create(
                &dry_run,
                &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
            )
            .await,
    );
    forbidden(
        "delete its own Namespace",
        Api::<Namespace>::all(sa.clone())
            .delete(
                &ns,
                &DeleteParams {
                    dry_run: true,
                    ..Default::default()
                },
            )
            .await,
    );
    forbidden(
        "read ConfigMaps",
        Api::<ConfigMap>::namespaced(sa.clone(), &ns)
            .list(&ListParams::default())
            .await,
    );
    forbidden(
        "list Namespaces",
        Api::<Namespace>::all(sa.clone())
            .list(&ListParams::default())
            .await,
    );
    forbidden(
        "create a DatabaseServer",
        servers
            .create(
                &dry_run,
                &serde_json::from_value(json!({
                    "apiVersion": "tenancy.landlord.dev/v1alpha1",
                    "kind": "DatabaseServer",
                    "metadata": {"name": format!("{ns}-server")},
                    "spec": {"adminSecretRef": {"name": "x"}}
                }))
                .unwrap(),
            )
            .await,
    );
    forbidden(
        "delete a DatabaseServer",
        servers
            .delete(
                &format!("{ns}-server"),
                &DeleteParams {
                    dry_run: true,
                    ..Default::default()
                },
            )
            .await,
    );
    forbidden(
        "list Leases in another namespace",
        Api::<Lease>::namespaced(sa.clone(), "default")
            .list(&ListParams::default())
            .await,
    );
    forbidden("list every CRD", crds.list(&ListParams::default()).await);
    forbidden(
        "change its own CRD",
        crds.patch(
            "tenants.tenancy.landlord.dev",
            &PatchParams {
                dry_run: true,
                ..Default::default()
            },
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await,
    );
    forbidden(
        "delete a Tenant",
        Api::<Tenant>::namespaced(sa.clone(), &ns)
            .delete(
                "acme",
                &DeleteParams {
                    dry_run: true,
                    ..Default::default()
                },
            )
            .await,
    );
    forbidden(
        "bind itself to cluster-admin",
        Api::<ClusterRoleBinding>::all(sa.clone())
            .create(
                &dry_run,
                &serde_json::from_value(json!({
                    "metadata": {"name": format!("landlord-{ns}-escalate")},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "ServiceAccount", "name": "landlord", "namespace": ns}]
                }))
                .unwrap(),
            )
            .await,
    );
}

// ------------------------------------------------------------------------ the RBAC of charts/landlord

/// `helm install landlord-<ns> charts/landlord --namespace <ns>` on the test cluster as the admin, CRDs skipped
/// (installed already): every object named after the release, so parallel tests never share one. Returns the
/// release's object name and a guard that deletes its cluster-scoped objects.
fn install_chart(ns: &str, sets: &[&str]) -> (String, ClusterObjects) {
    let release = format!("landlord-{ns}");
    let guard = ClusterObjects(release.clone());
    let mut command = Command::new(helm::helm());
    command
        .args([
            "install",
            &release,
            "charts/landlord",
            "--namespace",
            ns,
            "--skip-crds",
        ])
        .arg("--kubeconfig")
        .arg(TestEnv::get().kubeconfig())
        .current_dir(repo_root());
    for set in sets {
        command.args(["--set", set]);
    }
    let out = command.output().expect("run helm install");
    assert!(
        out.status.success(),
        "helm install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (release, guard)
}

/// A token-only kubeconfig and client for the service account `name` in `ns`.
async fn service_account_token(
    admin: &Client,
    ns: &str,
    name: &str,
) -> (tempfile::NamedTempFile, Client) {
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create_token_request(
            name,
            &PostParams::default(),
            &TokenRequest {
                metadata: ObjectMeta::default(),
                spec: TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..Default::default()
                },
                status: None,
            },
        )
        .await
        .expect("TokenRequest for the chart's service account")
        .status
        .expect("token in the TokenRequest status")
        .token;
    let kubeconfig = token_kubeconfig(&token, ns);
    let client = client_from(kubeconfig.path()).await;
    (kubeconfig, client)
}

/// Provisions the Tenant `acme` with `tasks` in `ns` through `operator`, checks what it wrote, then deletes both
/// and waits for the operator's cleanup (database dropped, Secret deleted).
async fn provision_and_delete(admin: &Client, ns: &str, operator: &Operator) {
    let slug = unique_slug("chart");
    apply_yaml(
        ns,
        &format!(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: acme}}\nspec: {{slug: {slug}, deletionPolicy: Delete}}\n\
             ---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: acme-tasks}}\nspec: {{tenant: acme, module: tasks}}\n"
        ),
    );
    let tenants: Api<Tenant> = Api::namespaced(admin.clone(), ns);
    let installations: Api<ModuleInstallation> = Api::namespaced(admin.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
    wait_ready(&tenants, "acme").await;
    wait_ready(&installations, "acme-tasks").await;
    assert!(secrets.get_opt("acme-db").await.unwrap().is_some());
    let published = events(admin, ns, "acme").await;
    assert!(
        published
            .iter()
            .any(|e| e.starts_with("Normal Provisioned")),
        "events: {published:?}"
    );

    let delete = DeleteParams::default();
    installations.delete("acme-tasks", &delete).await.unwrap();
    tenants.delete("acme", &delete).await.unwrap();
    wait_gone(&installations, "acme-tasks").await;
    wait_gone(&tenants, "acme").await;
    assert!(
        secrets.get_opt("acme-db").await.unwrap().is_none(),
        "the operator deleted the credentials Secret"
    );
    assert!(
        !operator.logs().to_lowercase().contains("forbidden"),
        "the operator was refused something the chart's RBAC should allow"
    );
}

async fn lease_holder(admin: &Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(admin.clone(), ns)
        .get("landlord")
        .await
        .expect("the leader Lease in the release namespace")
        .spec
        .and_then(|s| s.holder_identity)
}

#[tokio::test]
async fn the_operator_runs_on_the_rbac_of_the_chart() {
    let admin = client().await;
    let ns = namespace(&admin, "e2e-chart").await;
    let (release, _cluster_objects) = install_chart(&ns, &[]);
    let (kubeconfig, sa) = service_account_token(&admin, &ns, &release).await;

    // Cluster-wide, as deploy/: the credentials Secrets of every namespace.
    Api::<Secret>::all(sa.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=landlord"))
        .await
        .expect("list managed Secrets in every namespace");
    forbidden(
        "read ConfigMaps",
        Api::<ConfigMap>::namespaced(sa.clone(), &ns)
            .list(&ListParams::default())
            .await,
    );

    // Watching its own namespace only, so that it leaves the other tests' resources alone.
    let operator = Operator::start(
        &ns,
        &[
            ("KUBECONFIG", kubeconfig.path().to_str().unwrap()),
            ("POD_NAMESPACE", &ns),
        ],
    );
    let _log = LogOnFailure(&operator);
    provision_and_delete(&admin, &ns, &operator).await;
    assert!(lease_holder(&admin, &ns).await.is_some());
}

#[tokio::test]
async fn with_a_watched_namespace_the_chart_grants_secrets_there_only() {
    let admin = client().await;
    let release_ns = namespace(&admin, "e2e-chart-op").await;
    let watched = namespace(&admin, "e2e-chart-tn").await;
    let (release, _cluster_objects) =
        install_chart(&release_ns, &[&format!("watchNamespace={watched}")]);
    let (kubeconfig, sa) = service_account_token(&admin, &release_ns, &release).await;

    // The watched namespace: its Secrets and the operator's kinds.
    Api::<Secret>::namespaced(sa.clone(), &watched)
        .list(&ListParams::default())
        .await
        .expect("list Secrets in the watched namespace");
    Api::<Tenant>::namespaced(sa.clone(), &watched)
        .list(&ListParams::default())
        .await
        .expect("list Tenants in the watched namespace");
    // In its own namespace, the admin Secrets of DatabaseServers by name only.
    reads_admin_secrets_by_name(&sa, &release_ns).await;
    // Nowhere else, and no list or watch: not cluster-wide, not in its own namespace, not in another.
    forbidden(
        "list Secrets in every namespace",
        Api::<Secret>::all(sa.clone())
            .list(&ListParams::default().labels("app.kubernetes.io/managed-by=landlord"))
            .await,
    );
    for other in [release_ns.as_str(), "default"] {
        forbidden(
            &format!("list Secrets in {other}"),
            Api::<Secret>::namespaced(sa.clone(), other)
                .list(&ListParams::default())
                .await,
        );
        forbidden(
            &format!("list Tenants in {other}"),
            Api::<Tenant>::namespaced(sa.clone(), other)
                .list(&ListParams::default())
                .await,
        );
    }
    forbidden(
        "list Tenants in every namespace",
        Api::<Tenant>::all(sa.clone())
            .list(&ListParams::default())
            .await,
    );

    // As in a pod of the release: the Lease in the release namespace, the Tenants in the watched one.
    let operator = Operator::start(
        &watched,
        &[
            ("KUBECONFIG", kubeconfig.path().to_str().unwrap()),
            ("POD_NAMESPACE", &release_ns),
        ],
    );
    let _log = LogOnFailure(&operator);
    provision_and_delete(&admin, &watched, &operator).await;
    assert!(lease_holder(&admin, &release_ns).await.is_some());
}
