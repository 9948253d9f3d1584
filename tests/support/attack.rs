//! What an attacker with one tenant's credentials does in the tests of issue 20: log in, again and again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{Connection, PgConnection};

use super::db::TestTenant;
use super::pg;

/// The test server's Unix socket directory, where it trusts the role a client names: a login loop through
/// it tries far more often than one paying for SCRAM in a debug build. Whether a login gets in is decided
/// after authentication either way, by the database's state and the role's privileges.
pub fn socket_dir() -> Option<PathBuf> {
    let dev = std::env::var("LANDLORD_DEV_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| super::repo_root().join(".dev"));
    let dir = dev.join("pg/sock");
    dir.exists().then_some(dir)
}

/// Logs in as `attacker` to each of `targets`, on a few tasks, as fast as it can, until stopped; every
/// session it gets is kept.
pub struct LoginLoop {
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl LoginLoop {
    pub fn start(attacker: &TestTenant, targets: &[String]) -> LoginLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(AtomicU64::new(0));
        let tasks = (0..3)
            .map(|_| {
                let (stop, attempts) = (stop.clone(), attempts.clone());
                let targets = targets.to_vec();
                let socket = socket_dir();
                let options = |database: &str| {
                    let options = pg::options(database)
                        .username(attacker.names.role().as_str())
                        .password(attacker.password.expose());
                    match &socket {
                        Some(dir) => options.socket(dir),
                        None => options,
                    }
                };
                let options: Vec<_> = targets.iter().map(|t| options(t)).collect();
                tokio::spawn(async move {
                    let mut entered = Vec::new();
                    let mut kept = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        for (target, options) in targets.iter().zip(&options) {
                            if let Ok(conn) = PgConnection::connect_with(options).await {
                                entered.push(target.clone());
                                kept.push(conn);
                            }
                            attempts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    entered
                })
            })
            .collect();
        LoginLoop {
            stop,
            attempts,
            tasks,
        }
    }

    /// Waits until the loop has made `more` further attempts.
    pub async fn attempts_more(&self, more: u64) {
        let target = self.attempts.load(Ordering::Relaxed) + more;
        while self.attempts.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut entered = Vec::new();
        for task in self.tasks {
            entered.extend(task.await.unwrap());
        }
        entered
    }
}

/// Sessions of `role` in `database`, as the server sees them.
pub async fn sessions_of(role: &str, database: &str) -> i64 {
    let mut su = pg::connect("postgres").await;
    let count = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = $2",
    )
    .bind(role)
    .bind(database)
    .fetch_one(&mut su)
    .await
    .unwrap();
    su.close().await.unwrap();
    count
}
