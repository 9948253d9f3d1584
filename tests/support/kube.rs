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
        metadata: ObjectMeta { name: Some(name.clone()), ..Default::default() },
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
    stdin.write_all(input.as_bytes()).expect("write kubectl stdin");
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
