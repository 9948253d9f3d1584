//! Advisory locks Landlord takes outside the migration engine: asked with a try-lock in a loop that gives
//! up at a deadline (`LockBusy`), never with an unbounded `pg_advisory_lock`, and only in databases no
//! tenant can connect to, so that no tenant can hold them.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::db::Error;
use crate::db::connect::DbConnection;
use crate::db::error::millis;

/// The 64-bit key of the advisory lock named `name` (the first 8 bytes of its SHA-256).
pub(crate) fn advisory_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut key = [0u8; 8];
    key.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(key)
}

/// Takes the session-level advisory lock `key` on `conn`, trying until `bound` has passed; then
/// `LockBusy`, naming `lock` and what it was for (`action`). Released by `unlock` or the session's end.
pub(crate) async fn lock_within(
    conn: &mut DbConnection,
    key: i64,
    lock: &str,
    action: &str,
    bound: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    let deadline = started + bound;
    let mut pause = Duration::from_millis(10);
    loop {
        // Recorded before asking, so a cancellation mid-query still gets it released.
        conn.advisory_lock = Some(key);
        let locked: bool = sqlx::query_scalar("SELECT pg_catalog.pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut **conn)
            .await
            .map_err(|e| Error::sql(action.to_string(), conn.database(), e))?;
        if locked {
            return Ok(());
        }
        conn.advisory_lock = None;
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::LockBusy {
                action: action.to_string(),
                lock: lock.to_string(),
                database: conn.database().to_string(),
                waited_ms: millis(now - started),
            });
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Releases the advisory lock `conn` holds, if any.
pub(crate) async fn unlock(conn: &mut DbConnection) -> Result<(), Error> {
    let Some(key) = conn.advisory_lock else {
        return Ok(());
    };
    sqlx::query_scalar::<_, bool>("SELECT pg_catalog.pg_advisory_unlock($1)")
        .bind(key)
        .fetch_one(&mut **conn)
        .await
        .map_err(|e| Error::sql("releasing an advisory lock", conn.database(), e))?;
    conn.advisory_lock = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_name() {
        assert_eq!(advisory_key("a"), advisory_key("a"));
        assert_ne!(advisory_key("a"), advisory_key("b"));
    }
}
