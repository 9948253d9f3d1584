//! Landlord's record of a tenant's move to another server (`tenant_moves`): the move's whole memory. Every
//! phase change is conditional on the phase it leaves, so two processes (or a process and its own restart)
//! never both take a step; the switch of the tenant's server is one transaction with the phase `Switched`.

use std::fmt;

use sqlx::{PgPool, Row};

use crate::db::Error;
use crate::db::ident::sql;
use crate::db::landlord::mirror::DATABASE;
use crate::db::lock::advisory_key;

/// Where a move stands. Before `Switched` the source serves and the target is closed; from `Switched` on
/// the target serves and the source stays closed until it is dropped (or kept, marked as moved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MovePhase {
    /// New sessions refused on the source; existing ones have their grace period, then are ended.
    Quiescing,
    /// `pg_dump | pg_restore` into a fresh database on the target.
    Copying,
    /// Row counts, ledgers and releases compared.
    Verifying,
    /// The records name the target; its role opens, the Secret follows, the Tenant becomes Ready there.
    Switched,
    /// The Tenant is Ready on the target: the source is dropped (or kept with deletionPolicy Retain).
    Dropping,
    Done,
    /// Failed before the switch: the source opens again, the target is dropped.
    RollingBack,
    Failed,
}

impl MovePhase {
    pub const ALL: [MovePhase; 8] = [
        MovePhase::Quiescing,
        MovePhase::Copying,
        MovePhase::Verifying,
        MovePhase::Switched,
        MovePhase::Dropping,
        MovePhase::Done,
        MovePhase::RollingBack,
        MovePhase::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MovePhase::Quiescing => "Quiescing",
            MovePhase::Copying => "Copying",
            MovePhase::Verifying => "Verifying",
            MovePhase::Switched => "Switched",
            MovePhase::Dropping => "Dropping",
            MovePhase::Done => "Done",
            MovePhase::RollingBack => "RollingBack",
            MovePhase::Failed => "Failed",
        }
    }

    pub fn parse(text: &str) -> Option<MovePhase> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The source still holds the only data: the move may fail and roll back.
    pub fn before_switch(self) -> bool {
        matches!(
            self,
            MovePhase::Quiescing | MovePhase::Copying | MovePhase::Verifying
        )
    }

    /// Work remains (the tenant is not simply served from its recorded server).
    pub fn active(self) -> bool {
        !matches!(self, MovePhase::Done | MovePhase::Failed)
    }
}

impl fmt::Display for MovePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row of `tenant_moves`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveRecord {
    pub slug: String,
    pub source: String,
    pub target: String,
    pub phase: MovePhase,
    /// The source role's CONNECTION LIMIT before the move (None: not read yet).
    pub connection_limit: Option<i32>,
    pub bytes: i64,
    pub problem: Option<String>,
    pub started_at: jiff::Timestamp,
    /// Milliseconds from start to `Done` or `Failed`.
    pub took_ms: Option<i64>,
}

/// How asking for a move ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Begun {
    Started(MoveRecord),
    /// The target holds `placed` tenants (moves on their way there included), at its cap: nothing written.
    Full {
        placed: i64,
    },
    /// The records changed since the reconcile read them (another move, another owner): nothing written.
    Changed,
}

fn failed(action: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::sql(action, DATABASE, e)
}

const COLUMNS: &str = "tenant_slug, source, target, phase, connection_limit, bytes, problem,
    (pg_catalog.date_part('epoch', started_at) * 1000000)::bigint AS started_us,
    (pg_catalog.date_part('epoch', finished_at - started_at) * 1000)::bigint AS took_ms";

fn record(row: &sqlx::postgres::PgRow) -> Result<MoveRecord, sqlx::Error> {
    let phase: String = row.try_get("phase")?;
    Ok(MoveRecord {
        slug: row.try_get("tenant_slug")?,
        source: row.try_get("source")?,
        target: row.try_get("target")?,
        phase: MovePhase::parse(&phase)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown move phase {phase:?}").into()))?,
        connection_limit: row.try_get("connection_limit")?,
        bytes: row.try_get("bytes")?,
        problem: row.try_get("problem")?,
        started_at: jiff::Timestamp::from_microsecond(row.try_get("started_us")?)
            .unwrap_or_default(),
        took_ms: row.try_get("took_ms")?,
    })
}

/// The slug's move, under way or the last one.
pub async fn move_of(pool: &PgPool, slug: &str) -> Result<Option<MoveRecord>, Error> {
    let row = sqlx::query(sql(format!(
        "SELECT {COLUMNS} FROM tenant_moves WHERE tenant_slug = $1"
    )))
    .bind(slug)
    .fetch_optional(pool)
    .await
    .map_err(failed("reading the tenant's move"))?;
    row.as_ref()
        .map(record)
        .transpose()
        .map_err(failed("reading the tenant's move"))
}

/// Starts moving `slug`, owned by `uid` and recorded on `source`, to `target` (cap `max_tenants`): under
/// the placement lock, the target's count (its tenants and the moves on their way to it) decides, and the
/// move's row and the tenant's state `Moving` are written together. An earlier finished move is replaced.
pub async fn begin_move(
    pool: &PgPool,
    slug: &str,
    uid: &str,
    source: &str,
    target: &str,
    max_tenants: Option<i64>,
) -> Result<Begun, Error> {
    let fail = failed("starting the tenant's move");
    let mut tx = pool.begin().await.map_err(&fail)?;
    sqlx::query("SELECT pg_catalog.pg_advisory_xact_lock($1)")
        .bind(advisory_key(super::placement::PLACEMENT_LOCK))
        .execute(&mut *tx)
        .await
        .map_err(&fail)?;
    let placed: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM tenants WHERE server = $1)
              + (SELECT count(*) FROM tenant_moves
                  WHERE target = $1 AND phase IN ('Quiescing', 'Copying', 'Verifying'))",
    )
    .bind(target)
    .fetch_one(&mut *tx)
    .await
    .map_err(&fail)?;
    if max_tenants.is_some_and(|cap| placed >= cap) {
        return Ok(Begun::Full { placed });
    }
    let owned = sqlx::query(
        "UPDATE tenants SET status = 'Moving', updated_at = now()
          WHERE slug = $1 AND resource_uid = $2 AND server = $3 AND status = 'Ready'",
    )
    .bind(slug)
    .bind(uid)
    .bind(source)
    .execute(&mut *tx)
    .await
    .map_err(&fail)?;
    if owned.rows_affected() != 1 {
        return Ok(Begun::Changed);
    }
    let row = sqlx::query(sql(format!(
        "INSERT INTO tenant_moves (tenant_slug, source, target, phase)
         VALUES ($1, $2, $3, 'Quiescing')
         ON CONFLICT (tenant_slug) DO UPDATE
            SET source = EXCLUDED.source, target = EXCLUDED.target, phase = 'Quiescing',
                connection_limit = NULL, bytes = 0, problem = NULL, started_at = now(),
                updated_at = now(), finished_at = NULL
          WHERE tenant_moves.phase IN ('Done', 'Failed')
         RETURNING {COLUMNS}"
    )))
    .bind(slug)
    .bind(source)
    .bind(target)
    .fetch_optional(&mut *tx)
    .await
    .map_err(&fail)?;
    let Some(row) = row else {
        return Ok(Begun::Changed);
    };
    let started = record(&row).map_err(&fail)?;
    tx.commit().await.map_err(&fail)?;
    Ok(Begun::Started(started))
}

/// Moves `slug` from phase `from` to `to`, with the bytes copied so far and a problem (for `RollingBack`
/// and `Failed`); false if the move was no longer in `from`.
pub async fn advance(
    pool: &PgPool,
    slug: &str,
    from: MovePhase,
    to: MovePhase,
    bytes: Option<i64>,
    problem: Option<&str>,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE tenant_moves
            SET phase = $3, bytes = coalesce($4, bytes), problem = coalesce($5, problem), updated_at = now(),
                finished_at = CASE WHEN $3 IN ('Done', 'Failed') THEN now() END
          WHERE tenant_slug = $1 AND phase = $2",
    )
    .bind(slug)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(bytes)
    .bind(problem)
    .execute(pool)
    .await
    .map_err(failed("recording the move's phase"))?;
    Ok(done.rows_affected() == 1)
}

/// Records the source role's CONNECTION LIMIT before the move closes it, once.
pub async fn record_connection_limit(pool: &PgPool, slug: &str, limit: i32) -> Result<(), Error> {
    sqlx::query(
        "UPDATE tenant_moves SET connection_limit = $2, updated_at = now()
          WHERE tenant_slug = $1 AND connection_limit IS NULL",
    )
    .bind(slug)
    .bind(limit)
    .execute(pool)
    .await
    .map_err(failed("recording the tenant role's connection limit"))?;
    Ok(())
}

/// The switch: in one transaction the tenant's server becomes the target and the move `Switched`, only
/// from `Verifying`. False if the move was no longer verifying (nothing written).
pub async fn switch(pool: &PgPool, slug: &str, bytes: i64) -> Result<bool, Error> {
    let fail = failed("switching the tenant to its new server");
    let mut tx = pool.begin().await.map_err(&fail)?;
    let target: Option<String> = sqlx::query_scalar(
        "UPDATE tenant_moves SET phase = 'Switched', bytes = $2, updated_at = now()
          WHERE tenant_slug = $1 AND phase = 'Verifying'
         RETURNING target",
    )
    .bind(slug)
    .bind(bytes)
    .fetch_optional(&mut *tx)
    .await
    .map_err(&fail)?;
    let Some(target) = target else {
        return Ok(false);
    };
    sqlx::query("UPDATE tenants SET server = $2, updated_at = now() WHERE slug = $1")
        .bind(slug)
        .bind(&target)
        .execute(&mut *tx)
        .await
        .map_err(&fail)?;
    tx.commit().await.map_err(&fail)?;
    Ok(true)
}

/// Forgets a failed move (its annotation was removed): asking for the same server again retries it.
pub async fn forget_failed_move(pool: &PgPool, slug: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM tenant_moves WHERE tenant_slug = $1 AND phase = 'Failed'")
        .bind(slug)
        .execute(pool)
        .await
        .map_err(failed("forgetting the tenant's failed move"))?;
    Ok(())
}

/// Moves under way (for the metrics, never per tenant).
pub async fn moves_in_flight(pool: &PgPool) -> Result<i64, Error> {
    sqlx::query_scalar("SELECT count(*) FROM tenant_moves WHERE phase NOT IN ('Done', 'Failed')")
        .fetch_one(pool)
        .await
        .map_err(failed("counting moves under way"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each phase is allowed by the CHECK constraint of `tenant_moves.phase`, and nothing else is.
    #[test]
    fn the_sql_constraint_lists_exactly_these_phases() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let sql = std::fs::read_to_string(
            root.join("migrations/landlord/20250101000008_record_tenant_moves.up.sql"),
        )
        .unwrap();
        let list = &sql[sql.find("phase IN (").unwrap() + "phase IN (".len()..];
        let list = &list[..list.find(')').unwrap()];
        let listed: Vec<String> = list
            .split(',')
            .map(|s| s.trim().trim_matches('\'').to_string())
            .collect();
        let phases: Vec<&str> = MovePhase::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(listed, phases);
        for phase in MovePhase::ALL {
            assert_eq!(MovePhase::parse(phase.as_str()), Some(phase));
        }
    }
}
