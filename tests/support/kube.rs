//! The test run's kube-apiserver: clients, per-test namespaces, kubectl.

use std::io::Write;
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use super::{TestEnv, unique};

pub async fn client() -> Client {
    let path = TestEnv::get().kubeconfig();
    let kubeconfig = Kubeconfig::read_from(path).expect("read the test kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("load the test kubeconfig");
    Client::try_from(config).expect("build a kube client")
}

/// Creates a namespace of its own for one test. There is no namespace controller in the test control plane,
/// so namespaces are never deleted: the whole environment is thrown away after the run.
pub async fn namespace(client: &Client, prefix: &str) -> String {
    let name = unique(prefix);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create test namespace");
    name
}

/// Runs kubectl against the test cluster; returns (success, stdout, stderr).
pub fn kubectl(args: &[&str]) -> (bool, String, String) {
    kubectl_with_input(args, "")
}

/// Runs kubectl with `input` on its standard input, as in `kubectl apply -f -`.
pub fn kubectl_with_input(args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new("kubectl")
        .env("KUBECONFIG", TestEnv::get().kubeconfig())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    let mut stdin = child.stdin.take().expect("kubectl stdin");
    stdin
        .write_all(input.as_bytes())
        .expect("write kubectl stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The apiserver's rejection of a write, as (HTTP code, message); panics when the write succeeded.
pub fn rejection<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message.clone()),
        other => panic!("expected the apiserver to reject the write, got {other:?}"),
    }
}

/// Every kind carries `status.conditions`.
pub trait Conditions {
    fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>;
}

macro_rules! conditions_of {
    ($($kind:ty),*) => {$(
        impl Conditions for $kind {
            fn conditions(&self) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
                self.status
                    .as_ref()
                    .map(|s| s.conditions.clone())
                    .unwrap_or_default()
            }
        }
    )*};
}

conditions_of!(
    landlord::crd::Tenant,
    landlord::crd::ModuleInstallation,
    landlord::crd::ModuleRollout,
    landlord::crd::DatabaseServer
);

/// (status, reason) of a condition type, if present.
pub fn condition<K: Conditions>(object: &K, type_: &str) -> Option<(String, String)> {
    object
        .conditions()
        .into_iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, c.reason))
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(90);

/// Polls `name` until `ready` holds, as a person watching `kubectl get -w` would; panics with the last
/// state seen after 90 s.
pub async fn wait_until<K>(api: &Api<K>, name: &str, what: &str, ready: impl Fn(&K) -> bool) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        if let Some(object) = api.get_opt(name).await.expect("get object") {
            if ready(&object) {
                return object;
            }
            last = Some(object);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {name}: {what}; last seen: {last:#?}");
}

/// Waits until condition `type_` has `status` and `reason`.
pub async fn wait_condition<K>(
    api: &Api<K>,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> K
where
    K: kube::Resource + Conditions + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let want = (status.to_string(), reason.to_string());
    wait_until(api, name, &format!("{type_}={status} ({reason})"), |o| {
        condition(o, type_).as_ref() == Some(&want)
    })
    .await
}

pub async fn wait_ready<K>(api: &Api<K>, name: &str) -> K
where
    K: kube::Resource + Conditions + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    wait_condition(api, name, "Ready", "True", "Reconciled").await
}

/// Waits until `name` no longer exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        match api.get_opt(name).await.expect("get object") {
            None => return,
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    panic!(
        "timed out waiting for {name} to be deleted: {:#?}",
        api.get_opt(name).await
    );
}

/// `kubectl apply -f -` of YAML into `namespace`, like a user; panics with kubectl's error on failure.
pub fn apply_yaml(namespace: &str, yaml: &str) {
    let (ok, _, err) = kubectl_with_input(&["apply", "-n", namespace, "-f", "-"], yaml);
    assert!(ok, "kubectl apply failed: {err}");
}

/// Events recorded for the object `name` in `namespace`, as "Type Reason: note" lines.
pub async fn events(client: &Client, namespace: &str, name: &str) -> Vec<String> {
    use k8s_openapi::api::events::v1::Event;
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    api.list(&Default::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| {
            format!(
                "{} {}: {}",
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default()
            )
        })
        .collect()
}

/// A ModuleInstallation of `module` for the Tenant `acme`, as a user writes it; `extra` adds spec lines
/// (indented by two spaces).
pub fn installation_yaml(name: &str, module: &str, extra: &str) -> String {
    format!(
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: {name}}}\nspec:\n  tenant: acme\n  module: {module}\n{extra}"
    )
}

/// A Tenant as a user writes it; `extra` adds spec lines (indented by two spaces).
pub fn tenant_yaml(name: &str, slug: &str, extra: &str) -> String {
    format!(
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: {name}\nspec:\n  slug: {slug}\n{extra}"
    )
}

/// One value of a Secret, as text.
pub fn secret_value(secret: &k8s_openapi::api::core::v1::Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("secret has no {key}"));
    String::from_utf8(bytes.0.clone()).unwrap()
}

/// The Tenant `acme` with `slug` and deletionPolicy Delete, so tests clean up after themselves.
pub fn acme_yaml(slug: &str) -> String {
    format!(
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: acme}}\nspec: {{slug: {slug}, deletionPolicy: Delete}}\n"
    )
}

/// Who holds the leader Lease `landlord` in `leases`' namespace; None while nobody does, or while the API
/// cannot be asked (the chaos suite restarts it).
pub async fn lease_holder(
    leases: &Api<k8s_openapi::api::coordination::v1::Lease>,
) -> Option<String> {
    let lease = leases.get_opt("landlord").await.ok()??;
    lease.spec?.holder_identity
}
