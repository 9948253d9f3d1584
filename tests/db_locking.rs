//! Concurrency of the migration engine against the real PostgreSQL: racing engines, the advisory lock
//! on every path (failure, cancellation, timeout). Every test provisions its own tenant database.

mod support;

use std::time::Duration;

use landlord::catalog::Scope;
use landlord::db::{Error, Migrator, Track};
use sqlx::Connection;
use support::db::{TestTenant, databases, migration, set};
use support::pg;

/// Advisory locks held in `database`, by any session.
/// Waits until `database` shows `count` granted advisory locks (at most 30 s).
async fn until_advisory_locks(database: &str, count: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while advisory_locks(database).await != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{database} never showed {count} advisory locks"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn advisory_locks(database: &str) -> i64 {
    let mut su = pg::connect(database).await;
    let held = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1",
    )
    .bind(database)
    .fetch_one(&mut su)
    .await
    .unwrap();
    su.close().await.unwrap();
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_engines_apply_each_migration_once() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "race", &[]).await;
    let mut migrations = vec![migration(
        1,
        "effects",
        "CREATE TABLE effects (version int NOT NULL); INSERT INTO effects VALUES (1); SELECT pg_sleep(0.3);",
        Some("DROP TABLE effects"),
    )];
    for v in 2..=5 {
        let up = format!("INSERT INTO effects VALUES ({v}); SELECT pg_sleep(0.05);");
        migrations.push(migration(v, &format!("effect_{v}"), &up, None));
    }
    let effects = set(migrations);

    let racers = (0..3).map(|_| {
        let databases = &databases;
        let effects = &effects;
        let names = &tenant.names;
        let password = &tenant.password;
        async move {
            let mut conn = databases.tenant(names, password).await.unwrap();
            let track = Track::new("effects", Scope::Tenant, effects);
            let report = Migrator::new()
                .apply(&mut conn, &track, Some(5))
                .await
                .unwrap();
            conn.close().await.unwrap();
            report.executed.len()
        }
    });
    let executed: Vec<usize> = futures::future::join_all(racers).await;
    assert_eq!(executed.iter().sum::<usize>(), 5, "{executed:?}");

    let mut su = pg::connect(tenant.database()).await;
    let seen: Vec<i32> = sqlx::query_scalar("SELECT version FROM effects ORDER BY version")
        .fetch_all(&mut su)
        .await
        .unwrap();
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    let ledger = pg::ledger_rows(tenant.database(), "tenant").await;
    assert_eq!(ledger.len(), 5);
}

#[tokio::test]
async fn lock_is_released_after_a_failing_migration() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "lock", &[]).await;
    let broken = set(vec![migration(1, "broken", "SELECT 1/0", None)]);
    let fixed = set(vec![migration(
        1,
        "fixed",
        "CREATE TABLE fixed (id int)",
        None,
    )]);
    let migrator = Migrator::new().with_lock_timeout(Duration::from_secs(2));

    let mut first = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let err = migrator
        .apply(
            &mut first,
            &Track::new("m", Scope::Tenant, &broken),
            Some(1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::MigrationFailed(f) if f.sqlstate == "22012"),
        "{err}"
    );

    // The first session is still open, and holds no advisory lock.
    let mut su = pg::connect(tenant.database()).await;
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
         WHERE l.locktype = 'advisory' AND d.datname = $1",
    )
    .bind(tenant.database())
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(held, 0);

    let mut second = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let report = migrator
        .apply(
            &mut second,
            &Track::new("m", Scope::Tenant, &fixed),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(report.executed.len(), 1);
    first.close().await.unwrap();
    second.close().await.unwrap();
}

#[tokio::test]
async fn a_held_lock_makes_the_other_engine_wait_then_time_out() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "busy", &[]).await;
    let slow = set(vec![migration(1, "slow", "SELECT pg_sleep(3)", None)]);
    let track = Track::new("slow", Scope::Tenant, &slow);
    let mut first = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let mut second = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let patient = Migrator::new();
    let impatient = Migrator::new().with_lock_timeout(Duration::from_millis(500));

    let database = tenant.database().to_string();
    let (slow_run, busy) = tokio::join!(patient.apply(&mut first, &track, Some(1)), async {
        // The patient one holds the migration lock (seen in pg_locks) before the impatient one asks.
        until_advisory_locks(&database, 1).await;
        impatient.apply(&mut second, &track, Some(1)).await
    });
    assert_eq!(slow_run.unwrap().executed.len(), 1);
    let err = busy.unwrap_err();
    assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
    assert!(err.is_retryable());
    first.close().await.unwrap();
    second.close().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_apply_leaves_no_lock_behind() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "cancel", &[]).await;
    let slow = set(vec![migration(
        1,
        "slow",
        "CREATE TABLE slow (id int); SELECT pg_sleep(1.5);",
        Some("DROP TABLE slow; SELECT pg_sleep(1.5);"),
    )]);
    let track = Track::new("slow", Scope::Tenant, &slow);
    let migrator = Migrator::new().with_lock_timeout(Duration::from_secs(10));

    // Cancelled mid-migration (the reconcile was dropped): the lock is still held by the session...
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        migrator.apply(&mut conn, &track, Some(1)),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the apply should still have been running"
    );
    assert_eq!(advisory_locks(tenant.database()).await, 1);

    // ...and the next call on that connection releases it first, then finds nothing was applied.
    let report = migrator.apply(&mut conn, &track, Some(1)).await.unwrap();
    assert_eq!(report.executed.len(), 1);
    assert_eq!(advisory_locks(tenant.database()).await, 0);
    assert_eq!(pg::ledger_rows(tenant.database(), "tenant").await.len(), 1);

    // Cancelled again, and this time the connection is dropped: the server ends the session and the lock.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        migrator.rollback(&mut conn, &track, None),
    )
    .await;
    assert!(cancelled.is_err());
    drop(conn);
    let mut other = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    migrator.rollback(&mut other, &track, None).await.unwrap();
    other.close().await.unwrap();
    assert!(
        pg::ledger_rows(tenant.database(), "tenant")
            .await
            .is_empty()
    );
}
