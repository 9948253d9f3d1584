//! Where a new tenant's database goes, decided with its slug claim: every first claim of a slug counts the
//! tenants of each candidate server and records the winner under one lock in the landlord database, so two
//! Tenants racing for a server's last slot cannot both get it. A slug already recorded keeps its server.

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool, Row};

use crate::db::Error;
use crate::db::landlord::mirror::{Claim, DATABASE, TenantOwner, TenantRecord, slug_record};
use crate::db::lock::advisory_key;

/// Serialises first claims (and with them every server's count); taken in the landlord database, which no
/// tenant can connect to, for one short transaction, bounded by the session's `lock_timeout`.
pub(super) const PLACEMENT_LOCK: &str = "landlord_placement";

/// A server a new tenant may go to, as the controller judged it (Ready, not cordoned, admitting the Tenant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub server: String,
    /// No tenant is placed once this many are recorded on the server (None: no limit).
    pub max_tenants: Option<i64>,
}

/// How a Tenant's claim of its slug ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// The slug is this Tenant's, its database on `server` (chosen now, or recorded before).
    Ours { server: String },
    /// Another live resource holds the slug: nothing was written.
    Taken(TenantOwner),
    /// The slug's database is kept for another namespace and name: nothing was written.
    Retained(TenantOwner),
    /// The slug is free and no candidate has room: nothing was written.
    NoServer,
}

/// Claims `slug` for `owner`: a free slug, or one retained for this very namespace and name, becomes ours
/// atomically. A free slug is placed on the candidate with the fewest tenants under its cap (ties by name);
/// a slug already recorded stays on its server, whatever the candidates.
pub async fn claim_tenant(
    pool: &PgPool,
    record: &TenantRecord<'_>,
    owner: &TenantOwner,
    candidates: &[Candidate],
) -> Result<Claimed, Error> {
    let failed = |e| Error::sql("claiming the tenant slug", DATABASE, e);
    let mut tx = pool.begin().await.map_err(failed)?;
    let mut server = recorded_server(&mut tx, record.slug)
        .await
        .map_err(failed)?;
    if server.is_none() {
        sqlx::query("SELECT pg_catalog.pg_advisory_xact_lock($1)")
            .bind(advisory_key(PLACEMENT_LOCK))
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        // Another claim may have recorded the slug while this one waited for the lock.
        server = match recorded_server(&mut tx, record.slug)
            .await
            .map_err(failed)?
        {
            Some(server) => Some(server),
            None => choose(&mut tx, candidates).await.map_err(failed)?,
        };
    }
    let Some(server) = server else {
        return Ok(Claimed::NoServer);
    };
    let claimed: Option<String> = sqlx::query_scalar(
        "INSERT INTO tenants (slug, database_name, display_name, status, resource_uid, namespace, name, server)
         VALUES ($1, $2, $3, 'Provisioning', $4, $5, $6, $7)
         ON CONFLICT (slug) DO UPDATE
            SET resource_uid = EXCLUDED.resource_uid, display_name = EXCLUDED.display_name,
                status = CASE WHEN tenants.resource_uid = '' THEN 'Provisioning' ELSE tenants.status END,
                updated_at = now()
          WHERE (tenants.resource_uid = '' AND tenants.namespace = EXCLUDED.namespace
                 AND tenants.name = EXCLUDED.name)
             OR (tenants.resource_uid = EXCLUDED.resource_uid
                 AND tenants.display_name IS DISTINCT FROM EXCLUDED.display_name)
         RETURNING server",
    )
    .bind(record.slug)
    .bind(record.database)
    .bind(record.display_name)
    .bind(&owner.uid)
    .bind(&owner.namespace)
    .bind(&owner.name)
    .bind(&server)
    .fetch_optional(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    if let Some(server) = claimed {
        return Ok(Claimed::Ours { server });
    }
    // Nothing was written: either the row is already ours and unchanged, or someone else holds it.
    match slug_record(pool, record.slug).await? {
        Some(current) => Ok(match current.claim_for(owner) {
            Claim::Ours => Claimed::Ours {
                server: current.server,
            },
            Claim::Taken(owner) => Claimed::Taken(owner),
            Claim::Retained(owner) => Claimed::Retained(owner),
        }),
        None => Err(failed(sqlx::Error::RowNotFound)),
    }
}

async fn recorded_server(
    conn: &mut PgConnection,
    slug: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT server FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_optional(conn)
        .await
}

/// The candidate with the fewest tenants recorded (moves on their way to it count), under its cap; ties by
/// name. Under the placement lock.
async fn choose(
    conn: &mut PgConnection,
    candidates: &[Candidate],
) -> Result<Option<String>, sqlx::Error> {
    let servers: Vec<&str> = candidates.iter().map(|c| c.server.as_str()).collect();
    let caps: Vec<Option<i64>> = candidates.iter().map(|c| c.max_tenants).collect();
    sqlx::query_scalar(
        "SELECT c.server FROM unnest($1::text[], $2::bigint[]) AS c(server, cap)
           CROSS JOIN LATERAL (
                SELECT (SELECT count(*) FROM tenants t WHERE t.server = c.server)
                     + (SELECT count(*) FROM tenant_moves m
                         WHERE m.target = c.server AND m.phase IN ('Quiescing', 'Copying', 'Verifying'))
                       AS placed) n
          WHERE c.cap IS NULL OR n.placed < c.cap
          ORDER BY n.placed, c.server
          LIMIT 1",
    )
    .bind(servers)
    .bind(caps)
    .fetch_optional(conn)
    .await
}

/// The server of each of `slugs` that is recorded.
pub async fn servers_of(
    pool: &PgPool,
    slugs: &[String],
) -> Result<BTreeMap<String, String>, Error> {
    let rows = sqlx::query("SELECT slug, server FROM tenants WHERE slug = ANY($1)")
        .bind(slugs)
        .fetch_all(pool)
        .await
        .map_err(|e| Error::sql("reading the tenants' servers", DATABASE, e))?;
    Ok(rows
        .into_iter()
        .map(|row| (row.get("slug"), row.get("server")))
        .collect())
}

/// Tenants recorded on `server` (retained databases count: they are still there).
pub async fn tenants_on(pool: &PgPool, server: &str) -> Result<i64, Error> {
    sqlx::query_scalar("SELECT count(*) FROM tenants WHERE server = $1")
        .bind(server)
        .fetch_one(pool)
        .await
        .map_err(|e| Error::sql("counting the tenants of a server", DATABASE, e))
}

/// Tenants recorded per server (retained databases count: they are still there; a move counts on its
/// source until it switches).
pub async fn tenants_per_server(pool: &PgPool) -> Result<BTreeMap<String, i64>, Error> {
    let rows = sqlx::query("SELECT server, count(*) AS placed FROM tenants GROUP BY server")
        .fetch_all(pool)
        .await
        .map_err(|e| Error::sql("counting tenants per server", DATABASE, e))?;
    Ok(rows
        .into_iter()
        .map(|row| (row.get("server"), row.get("placed")))
        .collect())
}
