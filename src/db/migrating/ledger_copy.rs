//! Landlord's copy of a tenant database's ledger, kept in the landlord database where the tenant's role
//! cannot write. The ledger inside the tenant database stays the transactional record (a migration and its
//! row commit together); the copy is written around it — `applying`/`reverting` before, settled after — and
//! compared with it under the migration lock before anything runs. A difference is refused, never repaired.

use sqlx::{PgConnection, PgPool, Row};

use crate::db::Error;
use crate::db::migrating::ledger::{self, LedgerEntry};
use crate::db::migrating::plan::{Direction, Track};

const DATABASE: &str = "landlord";

/// The copy of one tenant's ledger, bound to the tenant's connection (see `Databases::tenant`).
#[derive(Clone, Debug)]
pub(crate) struct LedgerCopy {
    pool: PgPool,
    slug: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CopyState {
    Applying,
    Applied,
    Reverting,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CopyEntry {
    pub version: i64,
    pub checksum: Vec<u8>,
    pub state: CopyState,
}

/// What settling the copy against the tenant's ledger does before a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Settle {
    /// The step committed in the tenant database before the copy heard of it.
    MarkApplied(i64),
    /// The step never committed (or its rollback did): the copy forgets it.
    Forget(i64),
}

/// Why the tenant's ledger and the copy disagree, in words a person can check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Difference {
    Missing(i64),
    Unrecorded(i64),
    Changed(i64),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing(v) => write!(f, "{v} is missing from it"),
            Difference::Unrecorded(v) => write!(f, "{v} was added to it"),
            Difference::Changed(v) => write!(f, "the checksum of {v} was changed"),
        }
    }
}

/// Settles interrupted steps and finds every difference. Pure.
pub(crate) fn compare(
    applied: &[LedgerEntry],
    copy: &[CopyEntry],
) -> Result<Vec<Settle>, Vec<Difference>> {
    let mut settle = Vec::new();
    let mut differences = Vec::new();
    for entry in copy {
        let found = applied.iter().find(|a| a.version == entry.version);
        match (found, entry.state) {
            (Some(a), _) if a.checksum != entry.checksum => {
                differences.push(Difference::Changed(entry.version))
            }
            (Some(_), CopyState::Applied) => {}
            (Some(_), CopyState::Applying | CopyState::Reverting) => {
                settle.push(Settle::MarkApplied(entry.version))
            }
            (None, CopyState::Applied) => differences.push(Difference::Missing(entry.version)),
            (None, CopyState::Applying | CopyState::Reverting) => {
                settle.push(Settle::Forget(entry.version))
            }
        }
    }
    for a in applied {
        if !copy.iter().any(|c| c.version == a.version) {
            differences.push(Difference::Unrecorded(a.version));
        }
    }
    if differences.is_empty() {
        Ok(settle)
    } else {
        Err(differences)
    }
}

impl LedgerCopy {
    pub(crate) fn new(pool: PgPool, slug: &str) -> Self {
        LedgerCopy {
            pool,
            slug: slug.to_string(),
        }
    }

    pub(crate) fn slug(&self) -> &str {
        &self.slug
    }

    /// Whether Landlord has recorded anything of this tenant yet. Until it has (a database from before the
    /// copy existed), the tenant database's ledger is taken as it is, once, for every module.
    pub(crate) async fn is_kept(&self) -> Result<bool, Error> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenant_ledger WHERE tenant_slug = $1)")
            .bind(&self.slug)
            .fetch_one(&self.pool)
            .await
            .map_err(fail("reading Landlord's copy of the ledger"))
    }

    /// The modules the copy holds migrations of.
    pub(crate) async fn modules(&self) -> Result<Vec<String>, Error> {
        sqlx::query_scalar(
            "SELECT DISTINCT module FROM tenant_ledger WHERE tenant_slug = $1 ORDER BY module",
        )
        .bind(&self.slug)
        .fetch_all(&self.pool)
        .await
        .map_err(fail("reading Landlord's copy of the ledger"))
    }

    pub(crate) async fn entries(&self, module: &str) -> Result<Vec<CopyEntry>, Error> {
        let rows = sqlx::query(
            "SELECT version, checksum, state FROM tenant_ledger
              WHERE tenant_slug = $1 AND module = $2 ORDER BY version",
        )
        .bind(&self.slug)
        .bind(module)
        .fetch_all(&self.pool)
        .await
        .map_err(fail("reading Landlord's copy of the ledger"))?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok(CopyEntry {
                    version: row.try_get("version")?,
                    checksum: row.try_get("checksum")?,
                    state: match state.as_str() {
                        "applying" => CopyState::Applying,
                        "reverting" => CopyState::Reverting,
                        _ => CopyState::Applied,
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(fail("reading Landlord's copy of the ledger"))
    }

    /// Takes the tenant database's whole ledger as the copy (first sight of a tenant).
    pub(crate) async fn adopt(&self, ledger: &[(String, LedgerEntry)]) -> Result<(), Error> {
        let modules: Vec<&str> = ledger.iter().map(|(module, _)| module.as_str()).collect();
        let versions: Vec<i64> = ledger.iter().map(|(_, e)| e.version).collect();
        let checksums: Vec<&[u8]> = ledger.iter().map(|(_, e)| e.checksum.as_slice()).collect();
        sqlx::query(
            "INSERT INTO tenant_ledger (tenant_slug, module, version, checksum, state)
             SELECT $1, m, v, c, 'applied' FROM unnest($2::text[], $3::bigint[], $4::bytea[]) AS t (m, v, c)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.slug)
        .bind(&modules)
        .bind(&versions)
        .bind(&checksums)
        .execute(&self.pool)
        .await
        .map_err(fail("adopting the tenant's ledger"))?;
        Ok(())
    }

    /// The copy becomes exactly `ledger` (a database cloned from Landlord's template).
    pub(crate) async fn replace(&self, ledger: &[(String, LedgerEntry)]) -> Result<(), Error> {
        self.forget_all().await?;
        self.adopt(ledger).await
    }

    pub(crate) async fn settle(&self, module: &str, settle: &[Settle]) -> Result<(), Error> {
        for step in settle {
            let (statement, version) = match step {
                Settle::MarkApplied(v) => (
                    "UPDATE tenant_ledger SET state = 'applied', updated_at = now()
                      WHERE tenant_slug = $1 AND module = $2 AND version = $3",
                    v,
                ),
                Settle::Forget(v) => (
                    "DELETE FROM tenant_ledger WHERE tenant_slug = $1 AND module = $2 AND version = $3",
                    v,
                ),
            };
            self.execute(statement, module, *version, None).await?;
        }
        Ok(())
    }

    /// Written before the step runs in the tenant database.
    pub(crate) async fn begin(
        &self,
        module: &str,
        version: i64,
        checksum: &[u8],
        direction: Direction,
    ) -> Result<(), Error> {
        match direction {
            Direction::Up => {
                self.execute(
                    "INSERT INTO tenant_ledger (tenant_slug, module, version, checksum, state)
                     VALUES ($1, $2, $3, $4, 'applying')
                     ON CONFLICT (tenant_slug, module, version)
                     DO UPDATE SET checksum = EXCLUDED.checksum, state = 'applying', updated_at = now()",
                    module,
                    version,
                    Some(checksum),
                )
                .await
            }
            Direction::Down => {
                self.execute(
                    "UPDATE tenant_ledger SET state = 'reverting', updated_at = now()
                      WHERE tenant_slug = $1 AND module = $2 AND version = $3",
                    module,
                    version,
                    None,
                )
                .await
            }
        }
    }

    /// Written once the step committed in the tenant database.
    pub(crate) async fn finish(
        &self,
        module: &str,
        version: i64,
        direction: Direction,
    ) -> Result<(), Error> {
        let settle = match direction {
            Direction::Up => Settle::MarkApplied(version),
            Direction::Down => Settle::Forget(version),
        };
        self.settle(module, &[settle]).await
    }

    /// A database created anew has no history: whatever the copy remembers of the slug is gone with it.
    pub(crate) async fn forget_all(&self) -> Result<(), Error> {
        sqlx::query("DELETE FROM tenant_ledger WHERE tenant_slug = $1")
            .bind(&self.slug)
            .execute(&self.pool)
            .await
            .map_err(fail("clearing Landlord's copy of the ledger"))?;
        Ok(())
    }

    async fn execute(
        &self,
        statement: &'static str,
        module: &str,
        version: i64,
        checksum: Option<&[u8]>,
    ) -> Result<(), Error> {
        let mut query = sqlx::query(statement)
            .bind(&self.slug)
            .bind(module)
            .bind(version);
        if let Some(checksum) = checksum {
            query = query.bind(checksum);
        }
        query
            .execute(&self.pool)
            .await
            .map_err(fail("recording the step in Landlord's copy of the ledger"))?;
        Ok(())
    }
}

/// Under the lock: the tenant database's ledger must say what Landlord's copy says. Steps a crash left
/// half-recorded are settled from the tenant's ledger (its rows commit with their migrations); any other
/// difference was written by someone else and stops the run. A tenant seen for the first time (a database
/// from before the copy existed) has its whole ledger taken as it is.
pub(crate) async fn check_under_lock(
    conn: &mut PgConnection,
    database: &str,
    copy: &LedgerCopy,
    track: &Track<'_>,
    applied: &[LedgerEntry],
) -> Result<(), Error> {
    if !copy.is_kept().await? {
        let all = ledger::all_entries(conn, database, track.scope).await?;
        tracing::info!(database = %database, tenant = copy.slug(), entries = all.len(), "recording the tenant's ledger for the first time");
        return copy.adopt(&all).await;
    }
    let recorded = copy.entries(track.module).await?;
    match compare(applied, &recorded) {
        Ok(settle) => copy.settle(track.module, &settle).await,
        Err(differences) => Err(mismatch(database, track, &differences)),
    }
}

/// Without the lock (status, dry runs): a tenant ledger that differs from Landlord's copy is reported, and
/// nothing is settled or adopted — that waits for a run under the lock.
pub(crate) async fn check_unlocked(
    copy: Option<LedgerCopy>,
    database: &str,
    track: &Track<'_>,
    applied: &[LedgerEntry],
) -> Result<(), Error> {
    let Some(copy) = copy else {
        return Ok(());
    };
    if !copy.is_kept().await? {
        return Ok(());
    }
    let recorded = copy.entries(track.module).await?;
    match compare(applied, &recorded) {
        Err(differences) => Err(mismatch(database, track, &differences)),
        Ok(_) => Ok(()),
    }
}

fn mismatch(database: &str, track: &Track<'_>, differences: &[Difference]) -> Error {
    let listed: Vec<String> = differences
        .iter()
        .map(|d| format!("migration {d}"))
        .collect();
    Error::LedgerMismatch {
        database: database.to_string(),
        module: track.module.to_string(),
        differences: listed.join(", "),
    }
}

fn fail(action: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::sql(action, DATABASE, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: i64, checksum: u8) -> LedgerEntry {
        LedgerEntry {
            version,
            description: format!("m{version}"),
            checksum: vec![checksum],
            applied_at: jiff::Timestamp::UNIX_EPOCH,
            execution_ms: 1,
        }
    }

    fn copy(version: i64, checksum: u8, state: CopyState) -> CopyEntry {
        CopyEntry {
            version,
            checksum: vec![checksum],
            state,
        }
    }

    #[test]
    fn equal_ledgers_need_nothing() {
        let ledger = [applied(1, 7), applied(2, 8)];
        let recorded = [
            copy(1, 7, CopyState::Applied),
            copy(2, 8, CopyState::Applied),
        ];
        assert_eq!(compare(&ledger, &recorded), Ok(vec![]));
        assert_eq!(compare(&[], &[]), Ok(vec![]));
    }

    #[test]
    fn interrupted_steps_settle_from_the_tenant_ledger() {
        // MigrationStep 2 committed in the tenant database before the crash; step 3 never did; 4's rollback did not.
        let ledger = [applied(1, 7), applied(2, 8), applied(4, 9)];
        let recorded = [
            copy(1, 7, CopyState::Applied),
            copy(2, 8, CopyState::Applying),
            copy(3, 1, CopyState::Applying),
            copy(4, 9, CopyState::Reverting),
            copy(5, 2, CopyState::Reverting),
        ];
        assert_eq!(
            compare(&ledger, &recorded),
            Ok(vec![
                Settle::MarkApplied(2),
                Settle::Forget(3),
                Settle::MarkApplied(4),
                Settle::Forget(5)
            ])
        );
    }

    #[test]
    fn rewritten_ledgers_are_differences() {
        let recorded = [
            copy(1, 7, CopyState::Applied),
            copy(2, 8, CopyState::Applied),
        ];
        // A row deleted, a row forged, a checksum rewritten.
        let ledger = [applied(2, 9), applied(3, 1)];
        assert_eq!(
            compare(&ledger, &recorded),
            Err(vec![
                Difference::Missing(1),
                Difference::Changed(2),
                Difference::Unrecorded(3)
            ])
        );
        // An interrupted step whose row carries another checksum was not ours either.
        assert_eq!(
            compare(&[applied(1, 9)], &[copy(1, 7, CopyState::Applying)]),
            Err(vec![Difference::Changed(1)])
        );
    }
}
