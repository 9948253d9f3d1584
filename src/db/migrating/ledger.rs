//! The ledger every migrated database holds: one row per applied migration, per (scope, module).
//! Written only in the same transaction as the migration it records. In a tenant database the tenant's role
//! owns it and could rewrite it: `ledger_copy` keeps Landlord's own record to compare it with. Built-ins are
//! schema-qualified so that nothing the tenant planted in `public` answers in their place.

use sqlx::{PgConnection, Row};

use crate::catalog::{Migration, Scope};

use crate::db::Error;

pub const LEDGER_SCHEMA: &str = "landlord_migrations";

const CREATE_LEDGER: &str = "\
CREATE SCHEMA IF NOT EXISTS landlord_migrations;
CREATE TABLE IF NOT EXISTS landlord_migrations.ledger (
    scope        text NOT NULL,
    module       text NOT NULL,
    version      bigint NOT NULL,
    description  text NOT NULL,
    checksum     bytea NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    execution_ms bigint NOT NULL,
    PRIMARY KEY (scope, module, version)
);
CREATE TABLE IF NOT EXISTS landlord_migrations.started (
    scope      text NOT NULL,
    module     text NOT NULL,
    version    bigint NOT NULL,
    direction  text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, module, version)
);";

/// Serialises ledger creation between engines working on different modules of one database:
/// concurrent `CREATE ... IF NOT EXISTS` can still fail on the catalog's unique indexes.
const CREATE_LOCK_KEY: i64 = 0x4c4c_4c45_4447_4552; // "LLLEDGER"

/// One applied migration as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub version: i64,
    pub description: String,
    /// SHA-256 of the up script when it was applied.
    pub checksum: Vec<u8>,
    pub applied_at: jiff::Timestamp,
    pub execution_ms: i64,
}

pub(crate) async fn exists(conn: &mut PgConnection, database: &str) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT pg_catalog.to_regclass('landlord_migrations.ledger') IS NOT NULL")
        .fetch_one(conn)
        .await
        .map_err(|e| Error::sql("reading the ledger", database, e))
}

pub(crate) async fn ensure(conn: &mut PgConnection, database: &str) -> Result<(), Error> {
    let complete: bool = sqlx::query_scalar(
        "SELECT pg_catalog.to_regclass('landlord_migrations.ledger') IS NOT NULL
            AND pg_catalog.to_regclass('landlord_migrations.started') IS NOT NULL",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| Error::sql("reading the ledger", database, e))?;
    if complete {
        return Ok(());
    }
    let fail = |e| Error::sql("creating the ledger", database, e);
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(fail)?;
    // Waited for at most the session's lock_timeout (`LOCK_WAIT`); then `LockBusy`, retried.
    sqlx::query("SELECT pg_catalog.pg_advisory_xact_lock($1)")
        .bind(CREATE_LOCK_KEY)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    sqlx::raw_sql(CREATE_LEDGER)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)
}

/// Records that a no-transaction step is about to run (committed at once); true when a record was there
/// already: an earlier run was interrupted before its ledger row.
pub(crate) async fn start(
    conn: &mut PgConnection,
    scope: Scope,
    module: &str,
    version: i64,
    direction: &str,
) -> Result<bool, sqlx::Error> {
    let fresh: Option<i64> = sqlx::query_scalar(
        "INSERT INTO landlord_migrations.started (scope, module, version, direction)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING version",
    )
    .bind(scope.as_str())
    .bind(module)
    .bind(version)
    .bind(direction)
    .fetch_optional(conn)
    .await?;
    Ok(fresh.is_none())
}

/// Forgets the start record, in the transaction that writes the step's ledger row.
pub(crate) async fn finish(
    conn: &mut PgConnection,
    scope: Scope,
    module: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    let statement =
        "DELETE FROM landlord_migrations.started WHERE scope = $1 AND module = $2 AND version = $3";
    delete(conn, statement, scope, module, version).await
}

/// Applied migrations of one (scope, module), oldest first; empty when the database has no ledger yet.
pub(crate) async fn entries(
    conn: &mut PgConnection,
    database: &str,
    scope: Scope,
    module: &str,
) -> Result<Vec<LedgerEntry>, Error> {
    Ok(read(conn, database, scope, Some(module))
        .await?
        .into_iter()
        .map(|(_, entry)| entry)
        .collect())
}

/// Every applied migration of `scope`, by module then version.
pub(crate) async fn all_entries(
    conn: &mut PgConnection,
    database: &str,
    scope: Scope,
) -> Result<Vec<(String, LedgerEntry)>, Error> {
    read(conn, database, scope, None).await
}

async fn read(
    conn: &mut PgConnection,
    database: &str,
    scope: Scope,
    module: Option<&str>,
) -> Result<Vec<(String, LedgerEntry)>, Error> {
    if !exists(conn, database).await? {
        return Ok(Vec::new());
    }
    let fail = |e| Error::sql("reading the ledger", database, e);
    let rows = sqlx::query(
        "SELECT module, version, description, checksum, execution_ms,
                (pg_catalog.date_part('epoch', applied_at) * 1000000)::bigint AS applied_us
         FROM landlord_migrations.ledger
         WHERE scope = $1 AND ($2::text IS NULL OR module = $2)
         ORDER BY module, version",
    )
    .bind(scope.as_str())
    .bind(module)
    .fetch_all(conn)
    .await
    .map_err(fail)?;
    rows.iter()
        .map(|row| {
            let entry = LedgerEntry {
                version: row.try_get("version")?,
                description: row.try_get("description")?,
                checksum: row.try_get("checksum")?,
                execution_ms: row.try_get("execution_ms")?,
                applied_at: jiff::Timestamp::from_microsecond(row.try_get("applied_us")?)
                    .unwrap_or_default(),
            };
            Ok((row.try_get("module")?, entry))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(fail)
}

pub(crate) async fn record(
    conn: &mut PgConnection,
    scope: Scope,
    module: &str,
    migration: &Migration,
    execution_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO landlord_migrations.ledger
             (scope, module, version, description, checksum, execution_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(scope.as_str())
    .bind(module)
    .bind(migration.version)
    .bind(&migration.description)
    .bind(&migration.checksum[..])
    .bind(execution_ms)
    .execute(conn)
    .await
    .map(drop)
}

pub(crate) async fn forget(
    conn: &mut PgConnection,
    scope: Scope,
    module: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    let statement =
        "DELETE FROM landlord_migrations.ledger WHERE scope = $1 AND module = $2 AND version = $3";
    delete(conn, statement, scope, module, version).await
}

/// One row of a (scope, module, version) keyed table.
async fn delete(
    conn: &mut PgConnection,
    statement: &'static str,
    scope: Scope,
    module: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(statement)
        .bind(scope.as_str())
        .bind(module)
        .bind(version)
        .execute(conn)
        .await
        .map(drop)
}
