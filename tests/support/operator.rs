//! The real `landlord run` binary, one per test, watching only that test's namespace.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use landlord::crd::DatabaseServer;

use super::kube::{wait_gone, wait_ready};
use super::pg::Server;
use super::{TestEnv, repo_root, unique};

/// The label that gives a DatabaseServer to the operator of one test namespace.
pub const SERVER_OWNER_LABEL: &str = "tenancy.landlord.dev/test-namespace";

pub struct Operator {
    child: Child,
    pub log: PathBuf,
}

impl Operator {
    /// Starts the operator for `namespace` with the run's databases and the repository's catalog;
    /// `extra` adds or overrides environment variables (e.g. LANDLORD_ENVIRONMENT=production).
    pub fn start(namespace: &str, extra: &[(&str, &str)]) -> Operator {
        let env = TestEnv::get();
        let dir = repo_root().join("target/e2e-logs");
        std::fs::create_dir_all(&dir).expect("create e2e log dir");
        // Several operators may share a namespace (leader election): one log each.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let log = dir.join(format!(
            "{namespace}-{}.log",
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let out = File::create(&log).expect("create operator log");
        let err = out.try_clone().expect("clone operator log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_landlord"));
        command
            .arg("run")
            .env("KUBECONFIG", env.kubeconfig())
            .env("LANDLORD_ADMIN_DATABASE_URL", env.admin_url())
            .env("LANDLORD_DATABASE_URL", env.landlord_url())
            .env("LANDLORD_MODULES_DIR", repo_root().join("modules"))
            .env("LANDLORD_MIGRATIONS_DIR", repo_root().join("migrations"))
            .env("LANDLORD_WATCH_NAMESPACE", namespace)
            .env("LANDLORD_MAX_DB_CONNECTIONS", "4")
            // Many operators run side by side: a free port each, and a short lease for quick failover.
            .env("LANDLORD_HTTP_ADDR", "127.0.0.1:0")
            .env("LANDLORD_LEASE_DURATION_SECONDS", "6")
            // DatabaseServers are cluster-wide: each test's operator takes only those labelled for it.
            .env(
                "LANDLORD_SERVER_SELECTOR",
                format!("{SERVER_OWNER_LABEL}={namespace}"),
            )
            .env("RUST_LOG", "info,landlord=debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (key, value) in extra {
            command.env(key, value);
        }
        let child = command.spawn().expect("start landlord run");
        Operator { child, log }
    }

    /// The address the operator logged for its HTTP endpoints (`/healthz`, `/readyz`, `/metrics`).
    pub async fn http_addr(&self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let logs = self.logs();
            if let Some(rest) = logs.split("bound=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the operator never logged its address:\n{logs}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reconciles `controller` has finished, from `/metrics`: proof that the operator looked.
    pub async fn reconciles(&self, controller: &str) -> u64 {
        let (_, metrics) = http_get(&self.http_addr().await, "/metrics").await;
        let prefix = format!("landlord_reconciles_total{{controller=\"{controller}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    /// Resyncs of `controller` decided from Landlord's records alone, from `/metrics`.
    pub async fn in_place(&self, controller: &str) -> u64 {
        let (_, metrics) = http_get(&self.http_addr().await, "/metrics").await;
        let prefix = format!("landlord_reconciles_in_place_total{{controller=\"{controller}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    /// Waits until `controller` has decided a resync from Landlord's records (at most a minute): from then on
    /// what is in place is settled.
    pub async fn until_in_place(&self, controller: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.in_place(controller).await == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{controller} never resynced from its records:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Server 2 as a DatabaseServer named `<prefix>-…` of the operators of namespace `ns`, its admin Secret
/// `pg2-admin` in `ns` (their own namespace when they run without POD_NAMESPACE); waits until it is Ready,
/// so that placement counts it. Its name.
pub async fn second_server(client: &Client, ns: &str, prefix: &str) -> String {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("pg2-admin".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(
            "uri".to_string(),
            Server::Two.admin_url().to_string(),
        )])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the admin Secret of server 2");
    let name = unique(prefix);
    let server: DatabaseServer = serde_json::from_value(serde_json::json!({
        "apiVersion": "tenancy.landlord.dev/v1alpha1",
        "kind": "DatabaseServer",
        "metadata": { "name": name, "labels": { SERVER_OWNER_LABEL: ns } },
        "spec": { "adminSecretRef": { "name": "pg2-admin" } },
    }))
    .expect("a DatabaseServer");
    let servers: Api<DatabaseServer> = Api::all(client.clone());
    servers
        .create(&PostParams::default(), &server)
        .await
        .expect("create the DatabaseServer of server 2");
    wait_ready(&servers, &name).await;
    name
}

/// Deletes the DatabaseServer `name` and waits until it is gone (once no tenant holds it).
pub async fn delete_server(client: &Client, name: &str) {
    let servers: Api<DatabaseServer> = Api::all(client.clone());
    servers
        .delete(name, &DeleteParams::default())
        .await
        .expect("delete the DatabaseServer");
    wait_gone(&servers, name).await;
}

/// One HTTP/1.1 GET: (status line, body).
pub async fn http_get(addr: &str, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}
