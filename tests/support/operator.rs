//! The real `landlord run` binary, one per test, watching only that test's namespace.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{TestEnv, repo_root};

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
