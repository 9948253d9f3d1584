//! What the landlord database records of every track a tenant has — Landlord's copy of each tenant ledger,
//! and the landlord database's own ledger — read without entering any tenant database. A resync compares
//! them with the catalog to decide whether a tenant database needs a visit at all.

use sqlx::{PgPool, Row};

use crate::db::Error;
use crate::db::error::sqlstate;
use crate::db::migrating::ledger::LedgerEntry;
use crate::db::migrating::plan::Track;

const DATABASE: &str = "landlord";

/// One migration as Landlord's records hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub version: i64,
    pub checksum: Vec<u8>,
    /// False while a step is recorded as under way (`applying`, `reverting`): only a visit settles it.
    pub settled: bool,
}

/// Whether the records say `track` stands exactly at `target`: every migration of the catalog up to it
/// recorded, settled, with the catalog's checksum, and nothing else. Anything less needs a visit. Pure.
pub fn in_place(track: &Track<'_>, target: Option<i64>, recorded: &[Recorded]) -> bool {
    let wanted: Vec<_> = track
        .migrations
        .migrations
        .iter()
        .filter(|m| target.is_some_and(|t| m.version <= t))
        .collect();
    wanted.len() == recorded.len()
        && wanted.iter().zip(recorded).all(|(m, r)| {
            r.settled && r.version == m.version && r.checksum.as_slice() == m.checksum.as_slice()
        })
}

/// The ledger the records stand for, as `plan` reads ledgers (times are not recorded).
pub fn as_ledger(track: &Track<'_>, recorded: &[Recorded]) -> Vec<LedgerEntry> {
    recorded
        .iter()
        .map(|r| LedgerEntry {
            version: r.version,
            description: track
                .migrations
                .migrations
                .iter()
                .find(|m| m.version == r.version)
                .map(|m| m.description.clone())
                .unwrap_or_default(),
            checksum: r.checksum.clone(),
            applied_at: jiff::Timestamp::UNIX_EPOCH,
            execution_ms: 0,
        })
        .collect()
}

/// Landlord's copy of `slug`'s ledger for `module`, in version order.
pub async fn tenant_records(
    pool: &PgPool,
    slug: &str,
    module: &str,
) -> Result<Vec<Recorded>, Error> {
    let rows = sqlx::query(
        "SELECT version, checksum, state = 'applied' AS settled FROM tenant_ledger
          WHERE tenant_slug = $1 AND module = $2 ORDER BY version",
    )
    .bind(slug)
    .bind(module)
    .fetch_all(pool)
    .await
    .map_err(|e| Error::sql("reading Landlord's copy of the ledger", DATABASE, e))?;
    rows.iter().map(recorded).collect()
}

/// The landlord database's own ledger of `module`'s landlord scope (empty before the first migration).
pub async fn landlord_records(pool: &PgPool, module: &str) -> Result<Vec<Recorded>, Error> {
    let rows = sqlx::query(
        "SELECT version, checksum, true AS settled FROM landlord_migrations.ledger
          WHERE scope = 'landlord' AND module = $1 ORDER BY version",
    )
    .bind(module)
    .fetch_all(pool)
    .await;
    match rows {
        Ok(rows) => rows.iter().map(recorded).collect(),
        // No ledger yet: nothing is recorded.
        Err(e) if sqlstate(&e).as_deref() == Some("42P01") => Ok(Vec::new()),
        Err(e) => Err(Error::sql("reading the landlord ledger", DATABASE, e)),
    }
}

fn recorded(row: &sqlx::postgres::PgRow) -> Result<Recorded, Error> {
    let read = || -> Result<Recorded, sqlx::Error> {
        Ok(Recorded {
            version: row.try_get("version")?,
            checksum: row.try_get("checksum")?,
            settled: row.try_get("settled")?,
        })
    };
    read().map_err(|e| Error::sql("reading Landlord's records", DATABASE, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Migration, MigrationScript, MigrationSet, Scope};
    use sha2::{Digest, Sha256};

    fn test_set(versions: &[i64]) -> MigrationSet {
        let migration = |version: i64| {
            let up = format!("CREATE TABLE t{version} ()");
            Migration {
                version,
                description: format!("m{version}"),
                checksum: Sha256::digest(&up).into(),
                up: MigrationScript::new(up, Default::default()),
                down: None,
            }
        };
        MigrationSet {
            migrations: versions.iter().map(|&v| migration(v)).collect(),
        }
    }

    fn rec(set: &MigrationSet, version: i64) -> Recorded {
        let m = set
            .migrations
            .iter()
            .find(|m| m.version == version)
            .unwrap();
        Recorded {
            version,
            checksum: m.checksum.to_vec(),
            settled: true,
        }
    }

    #[test]
    fn only_exactly_the_catalog_up_to_the_target_is_in_place() {
        let set = test_set(&[1, 2, 3]);
        let track = Track::new("m", Scope::Tenant, &set);
        let two = [rec(&set, 1), rec(&set, 2)];
        assert!(in_place(&track, Some(2), &two));
        assert!(in_place(&track, None, &[]));
        // Behind, ahead, unsettled, another checksum, a version the catalog does not have.
        assert!(!in_place(&track, Some(3), &two));
        assert!(!in_place(&track, Some(1), &two));
        assert!(!in_place(&track, None, &two));
        let mut unsettled = two.clone();
        unsettled[1].settled = false;
        assert!(!in_place(&track, Some(2), &unsettled));
        let mut changed = two.clone();
        changed[0].checksum = vec![0; 32];
        assert!(!in_place(&track, Some(2), &changed));
        let mut foreign = two.clone();
        foreign[1].version = 7;
        assert!(!in_place(&track, Some(2), &foreign));
    }
}
