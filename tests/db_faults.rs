//! Faults during migrations against the real PostgreSQL: a lock an application holds bounds the migration's
//! wait (and so the application's queue behind it), and a `CREATE INDEX CONCURRENTLY` whose session dies
//! midway converges on the next run.

mod support;

use std::time::{Duration, Instant};

use landlord::catalog::Scope;
use landlord::db::{Error, Migrator, Timeouts, Track};
use sqlx::Connection;
use support::db::{TestTenant, databases, migration, set};
use support::pg;

fn table_t() -> landlord::catalog::Migration {
    migration(
        1,
        "create_t",
        "CREATE TABLE t (id bigint PRIMARY KEY, a int); INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;",
        Some("DROP TABLE t"),
    )
}

fn short_locks() -> Migrator {
    Migrator::new().with_timeouts(Timeouts {
        lock: Duration::from_millis(500),
        statement: Duration::from_secs(60),
    })
}

#[tokio::test]
async fn a_lock_held_by_the_application_bounds_the_wait_and_names_the_table() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "lockwait", &[]).await;
    let migrations = set(vec![
        table_t(),
        migration(
            2,
            "add_b",
            "ALTER TABLE t ADD COLUMN b int",
            Some("ALTER TABLE t DROP COLUMN b"),
        ),
    ]);
    let track = Track::new("m", Scope::Tenant, &migrations);
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    short_locks()
        .apply(&mut conn, &track, Some(1))
        .await
        .unwrap();

    // The application reads t in an open transaction: its ACCESS SHARE lock blocks ALTER TABLE.
    let mut app = tenant.connect_as_tenant(tenant.database()).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM t;")
        .execute(&mut app)
        .await
        .unwrap();

    // Meanwhile another application query on t must not queue behind the migration for long.
    let mut reader = tenant.connect_as_tenant(tenant.database()).await.unwrap();
    let reading = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut reader)
            .await
            .unwrap();
        (n, started.elapsed())
    });
    let err = short_locks()
        .apply(&mut conn, &track, Some(2))
        .await
        .unwrap_err();
    let Error::LockNotAvailable {
        tables, waited_ms, ..
    } = &err
    else {
        panic!("expected LockNotAvailable, got {err:?}");
    };
    assert_eq!(
        (tables.as_slice(), *waited_ms),
        (&["t".to_string()][..], 500)
    );
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .contains("on table t held by another session"),
        "{err}"
    );
    let (rows, queued) = reading.await.unwrap();
    assert_eq!(rows, 1000);
    assert!(
        queued < Duration::from_secs(5),
        "the reader queued {queued:?} behind the migration"
    );

    // Nothing was recorded; once the application commits, the same call succeeds.
    assert_eq!(pg::ledger_rows(tenant.database(), "tenant").await.len(), 1);
    sqlx::raw_sql("COMMIT").execute(&mut app).await.unwrap();
    let report = short_locks()
        .apply(&mut conn, &track, Some(2))
        .await
        .unwrap();
    assert_eq!(report.executed.len(), 1);
    conn.close().await.unwrap();
    app.close().await.unwrap();
}

async fn invalid_indexes(database: &str) -> i64 {
    let mut su = pg::connect(database).await;
    let n = sqlx::query_scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid")
        .fetch_one(&mut su)
        .await
        .unwrap();
    su.close().await.unwrap();
    n
}

#[tokio::test]
async fn a_concurrent_index_build_killed_midway_converges_on_the_next_run() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "cic", &[]).await;
    let migrations = set(vec![
        table_t(),
        migration(
            2,
            "index_t",
            "-- landlord:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a_idx ON t (a);",
            Some("-- landlord:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS t_a_idx;"),
        ),
    ]);
    let track = Track::new("m", Scope::Tenant, &migrations);
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    Migrator::new()
        .apply(&mut conn, &track, Some(1))
        .await
        .unwrap();
    conn.close().await.unwrap();

    // An open transaction with a snapshot makes the build wait in its last phase, the index already there
    // and INVALID; then its session dies, as when the operator is killed.
    let mut old_snapshot = tenant.connect_as_tenant(tenant.database()).await.unwrap();
    sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM t;")
        .execute(&mut old_snapshot)
        .await
        .unwrap();
    let building = {
        let databases = databases;
        let names = tenant.names.clone();
        let password = tenant.password.clone();
        let migrations = migrations.clone();
        tokio::spawn(async move {
            let track = Track::new("m", Scope::Tenant, &migrations);
            let mut conn = databases.tenant(&names, &password).await.unwrap();
            Migrator::new().apply(&mut conn, &track, Some(2)).await
        })
    };
    let mut su = pg::connect("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid: i32 = loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%CREATE INDEX CONCURRENTLY%'
               AND state = 'active' AND pid <> pg_backend_pid()",
        )
        .bind(tenant.database())
        .fetch_optional(&mut su)
        .await
        .unwrap();
        if let Some(pid) = pid {
            break pid;
        }
        assert!(Instant::now() < deadline, "the index build never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Interrupted while it waits for the old snapshot (a lock wait PostgreSQL reports), not before.
    loop {
        let waiting: Option<String> =
            sqlx::query_scalar("SELECT wait_event_type::text FROM pg_stat_activity WHERE pid = $1")
                .bind(pid)
                .fetch_one(&mut su)
                .await
                .unwrap();
        if waiting.as_deref() == Some("Lock") {
            break;
        }
        assert!(Instant::now() < deadline, "the index build never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut su)
        .await
        .unwrap();
    su.close().await.unwrap();
    assert!(
        building.await.unwrap().is_err(),
        "the build was interrupted"
    );
    sqlx::raw_sql("COMMIT")
        .execute(&mut old_snapshot)
        .await
        .unwrap();
    old_snapshot.close().await.unwrap();
    assert_eq!(
        invalid_indexes(tenant.database()).await,
        1,
        "the interruption left an INVALID index"
    );

    // The next run finds its start record, drops the INVALID index and builds it again.
    let databases = support::db::databases();
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let report = Migrator::new()
        .apply(&mut conn, &track, Some(2))
        .await
        .unwrap();
    assert_eq!(report.executed.len(), 1);
    conn.close().await.unwrap();
    assert_eq!(invalid_indexes(tenant.database()).await, 0);
    assert_eq!(
        pg::strings(
            tenant.database(),
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 't' ORDER BY 1"
        )
        .await,
        ["t_a_idx", "t_pkey"]
    );
    assert_eq!(
        pg::strings(
            tenant.database(),
            "SELECT module FROM landlord_migrations.started"
        )
        .await,
        Vec::<String>::new(),
        "no start record is left"
    );
    assert_eq!(pg::ledger_rows(tenant.database(), "tenant").await.len(), 2);
}
