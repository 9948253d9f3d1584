//! The migration engine against the real PostgreSQL: reversibility, failures, drift, irreversible steps.
//! Every test provisions its own tenant database and drops it at the end.

mod support;

use landlord::catalog::{MigrationSet, Scope};
use landlord::db::{Allowed, Direction, Drift, Error, Migrator, Track};
use support::db::{TestTenant, core_catalog, databases, migration, set};
use support::pg;

/// A module touching most kinds of schema objects, each undone by its down script.
fn varied_module() -> landlord::catalog::MigrationSet {
    set(vec![
        migration(
            1,
            "create_cards",
            "CREATE TYPE card_state AS ENUM ('draft', 'issued');
             CREATE TABLE cards (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                 state card_state NOT NULL DEFAULT 'draft', title text NOT NULL);
             CREATE INDEX cards_title_idx ON cards (lower(title));",
            Some("DROP TABLE cards; DROP TYPE card_state;"),
        ),
        migration(
            2,
            "card_views",
            "CREATE FUNCTION card_title(c cards) RETURNS text LANGUAGE sql AS 'SELECT c.title';
             CREATE VIEW issued_cards AS SELECT id, title FROM cards WHERE state = 'issued';
             CREATE SEQUENCE card_numbers START 1000;
             COMMENT ON TABLE cards IS 'digital cards';",
            Some("DROP SEQUENCE card_numbers; DROP VIEW issued_cards; DROP FUNCTION card_title(cards);
                  COMMENT ON TABLE cards IS NULL;"),
        ),
        migration(
            3,
            "touch_trigger",
            "ALTER TABLE cards ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
             CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
             CREATE TRIGGER cards_touch BEFORE UPDATE ON cards FOR EACH ROW EXECUTE FUNCTION touch();",
            Some("DROP TRIGGER cards_touch ON cards; DROP FUNCTION touch();
                  ALTER TABLE cards DROP COLUMN updated_at;"),
        ),
    ])
}

#[tokio::test]
async fn up_then_down_restores_the_schema() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "updown", &[]).await;
    let catalog = core_catalog();
    let core = Track::core(&catalog, Scope::Tenant);
    let cards = varied_module();
    let module = Track::new("cards", Scope::Tenant, &cards);
    let migrator = Migrator::new();

    let empty = pg::schema_dump(tenant.database());
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let report = migrator
        .apply(&mut conn, &core, catalog.core_tenant.latest())
        .await
        .unwrap();
    assert_eq!(report.executed.len(), catalog.core_tenant.migrations.len());
    let with_core = pg::schema_dump(tenant.database());

    migrator
        .apply(&mut conn, &module, cards.latest())
        .await
        .unwrap();
    assert_ne!(pg::schema_dump(tenant.database()), with_core);
    // Down in two steps, through a release in the middle.
    let to_one = migrator
        .rollback(&mut conn, &module, Some(1))
        .await
        .unwrap();
    let order: Vec<_> = to_one.executed.iter().map(|e| e.step.version).collect();
    assert_eq!(order, [3, 2]);
    migrator.rollback(&mut conn, &module, None).await.unwrap();
    assert_eq!(pg::schema_dump(tenant.database()), with_core);

    migrator.rollback(&mut conn, &core, None).await.unwrap();
    conn.close().await.unwrap();
    assert_eq!(pg::schema_dump(tenant.database()), empty);
    assert!(
        pg::ledger_rows(tenant.database(), "tenant")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn objects_belong_to_the_tenant_role() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "owner", &[]).await;
    let catalog = core_catalog();
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    Migrator::new()
        .migrate(
            &mut conn,
            &Track::core(&catalog, Scope::Tenant),
            catalog.core_tenant.latest(),
        )
        .await
        .unwrap();
    conn.close().await.unwrap();
    let mut su = pg::connect(tenant.database()).await;
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname IN ('public', 'landlord_migrations')",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    assert_eq!(owners, [tenant.database().to_string()]);
}

#[tokio::test]
async fn failing_third_statement_leaves_nothing_behind() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "fail", &[]).await;
    let broken = "CREATE TABLE first_table (id int);\nCREATE TABLE second_table (id int);\nSELECT * FROM no_such_table;\n";
    let migrations = set(vec![
        migration(
            1,
            "fine",
            "CREATE TABLE fine (id int)",
            Some("DROP TABLE fine"),
        ),
        migration(2, "broken", broken, None),
    ]);
    let track = Track::new("broken", Scope::Tenant, &migrations);
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();

    let err = Migrator::new()
        .apply(&mut conn, &track, Some(2))
        .await
        .unwrap_err();
    let Error::MigrationFailed(failure) = &err else {
        panic!("expected MigrationFailed, got {err:?}");
    };
    assert_eq!(failure.file, "fixtures/2_broken.up.sql");
    assert_eq!(failure.module, "broken");
    assert_eq!(failure.direction, Direction::Up);
    assert_eq!(failure.sqlstate, "42P01");
    assert_eq!(failure.message, "relation \"no_such_table\" does not exist");
    let expected = broken.find("no_such_table").unwrap() + 1;
    assert_eq!(failure.position, Some(expected));
    assert_eq!(failure.line, Some(3));
    assert!(matches!(err, Error::MigrationFailed(_)), "{err}");
    assert!(!err.is_retryable());
    let text = err.to_string();
    assert!(
        text.contains("fixtures/2_broken.up.sql") && text.contains("no_such_table"),
        "{text}"
    );

    // The first migration committed on its own; the broken one left no trace.
    assert_eq!(
        pg::all_tables(tenant.database()).await,
        [
            "landlord_migrations.ledger",
            "landlord_migrations.started",
            "public.fine"
        ]
    );
    assert_eq!(
        pg::ledger_rows(tenant.database(), "tenant").await,
        [("broken".to_string(), 1)]
    );
    // The session is usable again.
    let status = Migrator::new().status(&mut conn, &track).await.unwrap();
    assert_eq!(status.current, Some(1));
    assert_eq!(status.pending.len(), 1);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn tampered_migration_is_drift_and_nothing_runs() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "drift", &[]).await;
    let original = two_tables();
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let migrator = Migrator::new();
    migrator
        .apply(
            &mut conn,
            &Track::new("m", Scope::Tenant, &original),
            Some(2),
        )
        .await
        .unwrap();

    // Someone edited an applied file, and a new migration arrived with it.
    let tampered = set(vec![
        migration(
            1,
            "one",
            "CREATE TABLE one (id bigint)",
            Some("DROP TABLE one"),
        ),
        migration(
            2,
            "two",
            "CREATE TABLE two (id int)",
            Some("DROP TABLE two"),
        ),
        migration(
            3,
            "three",
            "CREATE TABLE three (id int)",
            Some("DROP TABLE three"),
        ),
    ]);
    let track = Track::new("m", Scope::Tenant, &tampered);
    for target in [Some(3), Some(1), None] {
        let err = migrator
            .migrate(&mut conn, &track, target)
            .await
            .unwrap_err();
        let Error::ChecksumMismatch {
            module,
            file,
            applied,
            catalog,
            ..
        } = &err
        else {
            panic!("expected ChecksumMismatch, got {err:?}");
        };
        assert_eq!(
            (module.as_str(), file.as_str()),
            ("m", "fixtures/1_one.up.sql")
        );
        assert_ne!(applied, catalog);
        assert_eq!(applied.len(), 64);
    }
    let status = migrator.status(&mut conn, &track).await.unwrap();
    assert!(matches!(
        status.drift.as_slice(),
        [Drift::Changed { version: 1, .. }]
    ));
    conn.close().await.unwrap();
    assert_eq!(
        pg::all_tables(tenant.database()).await,
        [
            "landlord_migrations.ledger",
            "landlord_migrations.started",
            "public.one",
            "public.two"
        ]
    );
    assert_eq!(pg::ledger_rows(tenant.database(), "tenant").await.len(), 2);
}

#[tokio::test]
async fn applied_migration_missing_from_the_catalog_is_refused() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "gone", &[]).await;
    let two = two_tables();
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let migrator = Migrator::new();
    migrator
        .apply(&mut conn, &Track::new("m", Scope::Tenant, &two), Some(2))
        .await
        .unwrap();
    let one = set(vec![two.migrations[0].clone()]);
    let err = migrator
        .migrate(&mut conn, &Track::new("m", Scope::Tenant, &one), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownAppliedMigration { version: 2, .. }),
        "{err}"
    );
    conn.close().await.unwrap();
    assert_eq!(pg::ledger_rows(tenant.database(), "tenant").await.len(), 2);
}

#[tokio::test]
async fn rollback_through_irreversible_migration_is_refused_before_anything_runs() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "irrev", &[]).await;
    let migrations = set(vec![
        migration(
            1,
            "one",
            "CREATE TABLE one (id int)",
            Some("DROP TABLE one"),
        ),
        migration(2, "two", "CREATE TABLE two (id int)", None),
        migration(
            3,
            "three",
            "CREATE TABLE three (id int)",
            Some("DROP TABLE three"),
        ),
    ]);
    let track = Track::new("m", Scope::Tenant, &migrations);
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let migrator = Migrator::new();
    migrator.apply(&mut conn, &track, Some(3)).await.unwrap();

    let err = migrator
        .rollback(&mut conn, &track, Some(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::IrreversibleMigration { file, .. } if file == "fixtures/2_two.up.sql"),
        "{err}"
    );
    // Three would have been rolled back first: it is still there (with the two ledger tables and one, two).
    assert_eq!(pg::all_tables(tenant.database()).await.len(), 5);
    // Above the irreversible one is fine.
    let report = migrator.rollback(&mut conn, &track, Some(2)).await.unwrap();
    assert_eq!(report.executed.len(), 1);
    // apply never rolls back, rollback never applies.
    let err = migrator
        .apply(&mut conn, &track, Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IrreversibleMigration { .. }), "{err}");
    let err = migrator
        .rollback(&mut conn, &track, Some(3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongDirection { .. }), "{err}");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn no_transaction_migration_runs_outside_a_transaction() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "notx", &[]).await;
    let migrations = set(vec![
        migration(
            1,
            "table",
            "CREATE TABLE big (id int)",
            Some("DROP TABLE big"),
        ),
        migration(
            2,
            "index",
            "-- landlord:no-transaction\nCREATE INDEX CONCURRENTLY big_id_idx ON big (id)",
            Some("-- landlord:no-transaction\nDROP INDEX CONCURRENTLY big_id_idx"),
        ),
    ]);
    assert!(migrations.migrations[1].up.no_transaction);
    let track = Track::new("m", Scope::Tenant, &migrations);
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let migrator = Migrator::new();
    migrator.apply(&mut conn, &track, Some(2)).await.unwrap();
    let plan = migrator.plan(&mut conn, &track, None).await.unwrap();
    assert_eq!(plan.steps.len(), 2);
    migrator.rollback(&mut conn, &track, None).await.unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn status_and_plan_read_without_writing() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "status", &[]).await;
    let cards = varied_module();
    let track = Track::new("cards", Scope::Tenant, &cards);
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let migrator = Migrator::new();
    let status = migrator.status(&mut conn, &track).await.unwrap();
    assert_eq!((status.current, status.pending.len()), (None, 3));
    let plan = migrator.plan(&mut conn, &track, Some(2)).await.unwrap();
    assert_eq!(
        plan.steps
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["1_create_cards", "2_card_views"]
    );
    // Neither created the ledger.
    assert!(pg::all_tables(tenant.database()).await.is_empty());
    let err = migrator.plan(&mut conn, &track, Some(9)).await.unwrap_err();
    assert!(matches!(err, Error::UnknownTarget { .. }), "{err}");
    conn.close().await.unwrap();
}

/// Migrations 1 and 2 creating tables `one` and `two`, both reversible.
fn two_tables() -> MigrationSet {
    set(vec![
        migration(
            1,
            "one",
            "CREATE TABLE one (id int)",
            Some("DROP TABLE one"),
        ),
        migration(
            2,
            "two",
            "CREATE TABLE two (id int)",
            Some("DROP TABLE two"),
        ),
    ])
}

/// The plan is what runs: a plan made earlier (a dry run's) runs step for step, and one made before the
/// ledger moved is refused under the lock with nothing run.
#[tokio::test]
async fn a_given_plan_runs_exactly_or_not_at_all() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "execute", &[]).await;
    let cards = varied_module();
    let track = Track::new("cards", Scope::Tenant, &cards);
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let migrator = Migrator::new();
    let published = migrator.plan(&mut conn, &track, Some(2)).await.unwrap();
    let report = migrator
        .execute(&mut conn, &track, &published, Allowed::Both, None)
        .await
        .unwrap();
    let executed: Vec<_> = report.executed.iter().map(|e| e.step.clone()).collect();
    assert_eq!(executed, published.steps);
    assert_eq!(report.plan, published);

    // Planned at version 2; another process moves the ledger to 3 before it runs.
    let stale = migrator.plan(&mut conn, &track, None).await.unwrap();
    assert_eq!(stale.steps.len(), 2);
    let mut other = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    migrator.apply(&mut other, &track, Some(3)).await.unwrap();
    other.close().await.unwrap();
    let before = pg::all_tables(tenant.database()).await;
    let err = migrator
        .execute(&mut conn, &track, &stale, Allowed::Both, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PlanOutdated { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(
        pg::all_tables(tenant.database()).await,
        before,
        "nothing ran"
    );
    let status = migrator.status(&mut conn, &track).await.unwrap();
    assert_eq!(status.current, Some(3));

    // Production's rule refuses a plan that goes down, before anything runs.
    let down = migrator.plan(&mut conn, &track, Some(1)).await.unwrap();
    let err = migrator
        .execute(
            &mut conn,
            &track,
            &down,
            Allowed::in_environment(true),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongDirection { .. }), "{err}");
    assert_eq!(
        migrator.status(&mut conn, &track).await.unwrap().current,
        Some(3)
    );
    conn.close().await.unwrap();
}
