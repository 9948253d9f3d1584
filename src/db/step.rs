//! One step of a migration plan: the script and its ledger row, atomically unless the script is marked
//! no-transaction, and PostgreSQL's own words when it refuses the SQL.

use std::time::Instant;

use sqlx::postgres::{PgDatabaseError, PgErrorPosition};
use sqlx::{Connection, PgConnection};

use super::Error;
use super::error::MigrationFailure;
use super::ident::sql;
use super::ledger;
use super::plan::{Direction, ModuleScope, Step, file_name};
use crate::catalog::{Migration, MigrationScript};

/// One migration and its ledger row, atomically unless the script is marked no-transaction.
pub(crate) async fn run_step(
    conn: &mut PgConnection,
    database: &str,
    track: &ModuleScope<'_>,
    step: &Step,
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
    let failed = |e| failure(track, &file(migration), step.direction, script, e);
    let bookkeeping_failed = |e| Error::sql(format!("recording {}", file(migration)), database, e);
    let started = Instant::now();

    if script.no_transaction {
        execute(conn, script).await.map_err(failed)?;
        let elapsed = elapsed_ms(started);
        // A crash right here leaves the change without its row; such scripts should be idempotent.
        bookkeep(conn, track, migration, step.direction, elapsed)
            .await
            .map_err(bookkeeping_failed)?;
        return Ok(elapsed);
    }

    let mut tx = conn.begin().await.map_err(failed)?;
    if let Err(e) = execute(&mut tx, script).await {
        // Explicit, so that the lock is released on a clean session.
        let _ = tx.rollback().await;
        return Err(failed(e));
    }
    let elapsed = elapsed_ms(started);
    if let Err(e) = bookkeep(&mut tx, track, migration, step.direction, elapsed).await {
        let _ = tx.rollback().await;
        return Err(bookkeeping_failed(e));
    }
    // Deferred constraints fail here: that is the migration's failure too.
    tx.commit().await.map_err(failed)?;
    Ok(elapsed)
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
    track: &ModuleScope<'_>,
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
    track: &ModuleScope<'_>,
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
