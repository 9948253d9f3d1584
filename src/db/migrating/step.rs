//! One step of a migration plan: the script and its ledger row, atomically unless the script is marked
//! no-transaction, every statement bounded by a lock timeout and a statement timeout, and PostgreSQL's own
//! words when it refuses the SQL.
//!
//! A no-transaction step is recorded as started (`landlord_migrations.started`) before it runs and forgotten
//! with its ledger row; finding the record means a run was interrupted: an INVALID index it left is dropped
//! and the statement (idempotent, as `catalog check` requires) runs again.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{Connection, PgConnection};

use crate::catalog::{Migration, MigrationScript};
use crate::db::Error;
use crate::db::error::{MigrationFailure, sqlstate};
use crate::db::ident::{Ident, sql};
use crate::db::migrating::ledger;
use crate::db::migrating::plan::{Direction, MigrationStep, Track, file_name};

/// How long a migration statement may wait for a lock and run, unless its file says otherwise
/// (`-- landlord:lock-timeout=…`, `-- landlord:statement-timeout=…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Short: a migration queued behind an application's lock queues every later query on that table.
    pub lock: Duration,
    pub statement: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            lock: Duration::from_secs(5),
            statement: Duration::from_secs(30 * 60),
        }
    }
}

/// SQLSTATE `lock_not_available`: the lock timeout ran out.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// One migration and its ledger row, atomically unless the script is marked no-transaction.
pub(crate) async fn run_step(
    conn: &mut PgConnection,
    database: &str,
    track: &Track<'_>,
    step: &MigrationStep,
    defaults: Timeouts,
) -> Result<i64, Error> {
    let file = |m: &Migration| file_name(m, step.direction);
    let Some(migration) = track.migrations.get(step.version) else {
        return Err(Error::UnknownTarget {
            module: track.module.to_string(),
            scope: track.scope,
            version: step.version,
        });
    };
    let script = match step.direction {
        Direction::Up => &migration.up,
        Direction::Down => migration
            .down
            .as_ref()
            .ok_or_else(|| Error::IrreversibleMigration {
                module: track.module.to_string(),
                scope: track.scope,
                file: file(migration),
            })?,
    };
    let timeouts = Timeouts {
        lock: script.lock_timeout.unwrap_or(defaults.lock),
        statement: script.statement_timeout.unwrap_or(defaults.statement),
    };
    let result = if script.no_transaction {
        run_alone(conn, database, track, migration, script, step, timeouts).await
    } else {
        run_in_transaction(conn, track, migration, script, step, timeouts).await
    };
    match result {
        Err(StepError::Sql(e)) if sqlstate(&e).as_deref() == Some(LOCK_NOT_AVAILABLE) => {
            let tables = locked_by_others(conn, &script.sql).await;
            Err(Error::LockNotAvailable {
                module: track.module.to_string(),
                scope: track.scope,
                file: file(migration),
                tables,
                waited_ms: u64::try_from(timeouts.lock.as_millis()).unwrap_or(u64::MAX),
            })
        }
        Err(StepError::Sql(e)) => Err(failure(track, &file(migration), step.direction, script, e)),
        Err(StepError::Bookkeeping(e)) => Err(Error::sql(
            format!("recording {}", file(migration)),
            database,
            e,
        )),
        Ok(elapsed) => Ok(elapsed),
    }
}

enum StepError {
    /// The migration's own SQL (or its commit) failed.
    Sql(sqlx::Error),
    /// Writing the ledger failed.
    Bookkeeping(sqlx::Error),
}

async fn run_in_transaction(
    conn: &mut PgConnection,
    track: &Track<'_>,
    migration: &Migration,
    script: &MigrationScript,
    step: &MigrationStep,
    timeouts: Timeouts,
) -> Result<i64, StepError> {
    let started = Instant::now();
    let mut tx = conn.begin().await.map_err(StepError::Sql)?;
    let ran = async {
        set_timeouts(&mut tx, "SET LOCAL", timeouts).await?;
        execute(&mut tx, script).await
    }
    .await;
    if let Err(e) = ran {
        // Explicit, so that the lock is released on a clean session.
        let _ = tx.rollback().await;
        return Err(StepError::Sql(e));
    }
    let elapsed = elapsed_ms(started);
    if let Err(e) = bookkeep(&mut tx, track, migration, step.direction, elapsed).await {
        let _ = tx.rollback().await;
        return Err(StepError::Bookkeeping(e));
    }
    // Deferred constraints fail here: that is the migration's failure too.
    tx.commit().await.map_err(StepError::Sql)?;
    Ok(elapsed)
}

/// A no-transaction step: recorded as started first, so that a crash anywhere before its ledger row is
/// found and converged on the next run.
async fn run_alone(
    conn: &mut PgConnection,
    database: &str,
    track: &Track<'_>,
    migration: &Migration,
    script: &MigrationScript,
    step: &MigrationStep,
    timeouts: Timeouts,
) -> Result<i64, StepError> {
    let direction = step.direction.to_string();
    let interrupted = ledger::start(conn, track.scope, track.module, step.version, &direction)
        .await
        .map_err(StepError::Bookkeeping)?;
    if interrupted {
        tracing::warn!(
            database, module = track.module, scope = %track.scope, migration = %step.name,
            "a run of this no-transaction migration was interrupted: converging"
        );
        if let Some(index) = &script.concurrent_index {
            drop_invalid_index(conn, index).await?;
        }
    }
    let started = Instant::now();
    set_timeouts(conn, "SET", timeouts)
        .await
        .map_err(StepError::Sql)?;
    let ran = execute(conn, script).await;
    let reset = sqlx::raw_sql("RESET lock_timeout; RESET statement_timeout")
        .execute(&mut *conn)
        .await;
    ran.map_err(StepError::Sql)?;
    reset.map_err(StepError::Bookkeeping)?;
    let elapsed = elapsed_ms(started);
    let mut tx = conn.begin().await.map_err(StepError::Bookkeeping)?;
    let recorded = async {
        bookkeep(&mut tx, track, migration, step.direction, elapsed).await?;
        ledger::finish(&mut tx, track.scope, track.module, step.version).await
    }
    .await;
    if let Err(e) = recorded {
        let _ = tx.rollback().await;
        return Err(StepError::Bookkeeping(e));
    }
    tx.commit().await.map_err(StepError::Bookkeeping)?;
    Ok(elapsed)
}

/// An interrupted `CREATE INDEX CONCURRENTLY` leaves an INVALID index that `IF NOT EXISTS` would keep.
async fn drop_invalid_index(conn: &mut PgConnection, index: &str) -> Result<(), StepError> {
    let invalid: Option<bool> = sqlx::query_scalar(
        "SELECT NOT i.indisvalid FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
          WHERE c.relname = $1 AND pg_catalog.pg_table_is_visible(c.oid)",
    )
    .bind(index)
    .fetch_optional(&mut *conn)
    .await
    .map_err(StepError::Bookkeeping)?;
    if invalid == Some(true) {
        // The catalog admits only plain lower-case names here, so this always holds.
        let Ok(name) = Ident::new(index) else {
            return Ok(());
        };
        tracing::warn!(
            index,
            "dropping the INVALID index an interrupted build left"
        );
        sqlx::raw_sql(sql(format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}",
            name.quoted()
        )))
        .execute(&mut *conn)
        .await
        .map_err(StepError::Sql)?;
    }
    Ok(())
}

async fn set_timeouts(
    conn: &mut PgConnection,
    set: &str,
    timeouts: Timeouts,
) -> Result<(), sqlx::Error> {
    let ms = |d: Duration| d.as_millis();
    let statement = format!(
        "{set} lock_timeout = {}; {set} statement_timeout = {}",
        ms(timeouts.lock),
        ms(timeouts.statement)
    );
    sqlx::raw_sql(sql(statement)).execute(conn).await.map(drop)
}

/// After a lock timeout: the tables the script names that other sessions hold locks on, for the message.
async fn locked_by_others(conn: &mut PgConnection, script: &str) -> Vec<String> {
    let locked: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.relname::text FROM pg_catalog.pg_locks l
           JOIN pg_catalog.pg_class c ON c.oid = l.relation
          WHERE l.database = (SELECT oid FROM pg_catalog.pg_database
                               WHERE datname = pg_catalog.current_database())
            AND l.pid <> pg_catalog.pg_backend_pid() AND l.granted AND c.relkind IN ('r', 'p', 'm')
          ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .unwrap_or_default();
    let text = script.to_ascii_lowercase();
    locked
        .into_iter()
        .filter(|table| {
            text.match_indices(table.as_str()).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + table.len()..].chars().next();
                let word =
                    |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                !word(before) && !word(after)
            })
        })
        .collect()
}

/// The simple query protocol, so a script may hold many statements.
async fn execute(conn: &mut PgConnection, script: &MigrationScript) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql(script.sql.clone()))
        .execute(conn)
        .await
        .map(drop)
}

async fn bookkeep(
    conn: &mut PgConnection,
    track: &Track<'_>,
    migration: &Migration,
    direction: Direction,
    execution_ms: i64,
) -> Result<(), sqlx::Error> {
    match direction {
        Direction::Up => {
            ledger::record(conn, track.scope, track.module, migration, execution_ms).await
        }
        Direction::Down => ledger::forget(conn, track.scope, track.module, migration.version).await,
    }
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// PostgreSQL's own words, SQLSTATE and position when it refused the SQL; an interruption otherwise.
fn failure(
    track: &Track<'_>,
    file: &str,
    direction: Direction,
    script: &MigrationScript,
    error: sqlx::Error,
) -> Error {
    let Some(pg) = error
        .as_database_error()
        .and_then(|e| e.try_downcast_ref::<PgDatabaseError>())
    else {
        return Error::MigrationInterrupted {
            module: track.module.to_string(),
            scope: track.scope,
            file: file.to_string(),
            source: error,
        };
    };
    let position = match pg.position() {
        Some(PgErrorPosition::Original(position)) => Some(position),
        _ => None,
    };
    Error::MigrationFailed(Box::new(MigrationFailure {
        module: track.module.to_string(),
        scope: track.scope,
        file: file.to_string(),
        direction,
        message: pg.message().to_string(),
        sqlstate: pg.code().to_string(),
        position,
        line: position.map(|p| line_of(&script.sql, p)),
        detail: pg.detail().map(str::to_string),
        hint: pg.hint().map(str::to_string),
    }))
}

/// PostgreSQL counts characters from 1 over the whole query string.
fn line_of(sql: &str, position: usize) -> usize {
    1 + sql
        .chars()
        .take(position.saturating_sub(1))
        .filter(|c| *c == '\n')
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_from_one() {
        let sql = "CREATE TABLE a ();\nCREATE TABLE b ();\nSELECT nope;";
        assert_eq!(line_of(sql, 1), 1);
        assert_eq!(line_of(sql, sql.find("nope").unwrap() + 1), 3);
    }
}
