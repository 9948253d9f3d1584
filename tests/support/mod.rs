//! Test support shared by the integration tests. One environment (two PostgreSQL servers, etcd, kube-apiserver)
//! per test run, started by `scripts/test` (or `scripts/dev up`); every test takes its own names from `unique`
//! so tests run in parallel without touching each other.
#![allow(dead_code)]

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub mod attack;
pub mod catalog;
pub mod db;
pub mod gitops;
pub mod kube;
pub mod operator;
pub mod pg;
pub mod proxy;

/// The environment of the run: variables from the process, else from `.dev/env` written by `scripts/dev up`.
pub struct TestEnv {
    vars: HashMap<String, String>,
}

impl TestEnv {
    pub fn get() -> &'static TestEnv {
        static ENV: OnceLock<TestEnv> = OnceLock::new();
        ENV.get_or_init(TestEnv::load)
    }

    fn load() -> TestEnv {
        let mut vars = HashMap::new();
        let file = std::env::var("LANDLORD_DEV_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo_root().join(".dev"))
            .join("env");
        if let Ok(text) = std::fs::read_to_string(&file) {
            for line in text.lines() {
                if let Some((key, value)) = line.trim_start_matches("export ").split_once('=') {
                    vars.insert(key.to_string(), value.to_string());
                }
            }
        }
        // The process environment wins over the file.
        for key in [
            "KUBECONFIG",
            "LANDLORD_ADMIN_DATABASE_URL",
            "LANDLORD_DATABASE_URL",
            "LANDLORD_DEV_SUPERUSER_URL",
            "LANDLORD_DEV_SERVER2_ADMIN_URL",
            "LANDLORD_DEV_SERVER2_SUPERUSER_URL",
        ] {
            if let Ok(value) = std::env::var(key) {
                vars.insert(key.to_string(), value);
            }
        }
        TestEnv { vars }
    }

    pub fn var(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or_else(|| {
            panic!("{key} is not set: run the tests with `scripts/test`, or start `scripts/dev up` first")
        })
    }

    pub fn kubeconfig(&self) -> &str {
        self.var("KUBECONFIG")
    }
    pub fn admin_url(&self) -> &str {
        self.var("LANDLORD_ADMIN_DATABASE_URL")
    }
    pub fn landlord_url(&self) -> &str {
        self.var("LANDLORD_DATABASE_URL")
    }
    /// A PostgreSQL superuser, for test set-up and inspection only; the operator never gets it.
    pub fn superuser_url(&self) -> &str {
        self.var("LANDLORD_DEV_SUPERUSER_URL")
    }
    /// The admin role (CREATEDB, CREATEROLE) of the second PostgreSQL server, which holds no landlord database.
    pub fn server2_admin_url(&self) -> &str {
        self.var("LANDLORD_DEV_SERVER2_ADMIN_URL")
    }
    /// The second server's superuser, for test set-up and inspection only.
    pub fn server2_superuser_url(&self) -> &str {
        self.var("LANDLORD_DEV_SERVER2_SUPERUSER_URL")
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A name no other test of this or a parallel run uses: `<prefix>-<6 random base-36 chars>`. Use `unique_slug`
/// for slugs and database-side names.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let mut n = hasher.finish();
    let mut suffix = String::new();
    for _ in 0..6 {
        suffix.push(char::from_digit((n % 36) as u32, 36).unwrap_or('x'));
        n /= 36;
    }
    format!("{prefix}-{suffix}")
}

/// Like `unique`, with `_` instead of `-`: valid as a Tenant slug.
pub fn unique_slug(prefix: &str) -> String {
    unique(prefix).replace('-', "_")
}
