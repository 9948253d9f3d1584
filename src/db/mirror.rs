//! The landlord database's mirror of the cluster (`tenants`, `tenant_modules`), read by applications and
//! used to guard identity: a slug belongs to the resource UID recorded with it, and nobody else.

use sqlx::{PgPool, Row};

use super::Error;

const DATABASE: &str = "landlord";

/// The resource that owns (or claims) a slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantOwner {
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    Ours,
    /// Another resource owns the slug: touch nothing of it.
    Taken(TenantOwner),
}

/// What a claim records next to the owner.
pub struct TenantRecord<'a> {
    pub slug: &'a str,
    pub database: &'a str,
    pub display_name: Option<&'a str>,
}

/// Claims `slug` for `owner`: a free slug (never seen, or released by a retained deletion) becomes ours
/// atomically, so two resources racing for it cannot both win.
pub async fn claim_tenant(
    pool: &PgPool,
    record: &TenantRecord<'_>,
    owner: &TenantOwner,
) -> Result<Claim, Error> {
    let claimed = sqlx::query(
        "INSERT INTO tenants (slug, database_name, display_name, status, resource_uid, namespace, name)
         VALUES ($1, $2, $3, 'Provisioning', $4, $5, $6)
         ON CONFLICT (slug) DO UPDATE
            SET resource_uid = EXCLUDED.resource_uid, namespace = EXCLUDED.namespace, name = EXCLUDED.name,
                display_name = EXCLUDED.display_name, updated_at = now()
          WHERE tenants.resource_uid = ''
             OR (tenants.resource_uid = EXCLUDED.resource_uid
                 AND tenants.display_name IS DISTINCT FROM EXCLUDED.display_name)
         RETURNING resource_uid",
    )
    .bind(record.slug)
    .bind(record.database)
    .bind(record.display_name)
    .bind(&owner.uid)
    .bind(&owner.namespace)
    .bind(&owner.name)
    .fetch_optional(pool)
    .await
    .map_err(|e| Error::sql("claiming the tenant slug", DATABASE, e))?;
    if claimed.is_some() {
        return Ok(Claim::Ours);
    }
    // Nothing was written: either the row is already ours and unchanged, or someone else holds it.
    match owner_of(pool, record.slug).await? {
        Some(current) if current.uid == owner.uid => Ok(Claim::Ours),
        Some(current) => Ok(Claim::Taken(current)),
        None => Err(Error::sql(
            "claiming the tenant slug",
            DATABASE,
            sqlx::Error::RowNotFound,
        )),
    }
}

pub async fn owner_of(pool: &PgPool, slug: &str) -> Result<Option<TenantOwner>, Error> {
    let row = sqlx::query("SELECT resource_uid, namespace, name FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await
        .map_err(|e| Error::sql("reading the tenant mirror", DATABASE, e))?;
    Ok(row.map(|row| TenantOwner {
        uid: row.get("resource_uid"),
        namespace: row.get("namespace"),
        name: row.get("name"),
    }))
}

/// Records the tenant's state for applications; only the owner's row changes, and only when it differs.
pub async fn set_tenant_status(
    pool: &PgPool,
    slug: &str,
    uid: &str,
    status: &str,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE tenants SET status = $3, updated_at = now()
          WHERE slug = $1 AND resource_uid = $2 AND status IS DISTINCT FROM $3",
    )
    .bind(slug)
    .bind(uid)
    .bind(status)
    .execute(pool)
    .await
    .map_err(|e| Error::sql("updating the tenant mirror", DATABASE, e))?;
    Ok(())
}

/// A retained deletion: the database stays, the slug is free for a new resource to adopt.
pub async fn release_tenant(pool: &PgPool, slug: &str, uid: &str) -> Result<(), Error> {
    sqlx::query(
        "UPDATE tenants SET status = 'Retained', resource_uid = '', updated_at = now()
          WHERE slug = $1 AND resource_uid = $2",
    )
    .bind(slug)
    .bind(uid)
    .execute(pool)
    .await
    .map_err(|e| Error::sql("releasing the tenant slug", DATABASE, e))?;
    Ok(())
}

/// A dropped tenant leaves the mirror, with its modules.
pub async fn forget_tenant(pool: &PgPool, slug: &str, uid: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM tenants WHERE slug = $1 AND resource_uid = $2")
        .bind(slug)
        .bind(uid)
        .execute(pool)
        .await
        .map_err(|e| Error::sql("removing the tenant from the mirror", DATABASE, e))?;
    Ok(())
}

/// Records an installation's module and release; unchanged rows are not rewritten.
pub async fn record_module(
    pool: &PgPool,
    slug: &str,
    module: &str,
    version: Option<&str>,
    status: &str,
    uid: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO tenant_modules (tenant_slug, module, version, status, resource_uid)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_slug, module) DO UPDATE
            SET version = EXCLUDED.version, status = EXCLUDED.status, resource_uid = EXCLUDED.resource_uid,
                updated_at = now()
          WHERE (tenant_modules.version, tenant_modules.status, tenant_modules.resource_uid)
                IS DISTINCT FROM (EXCLUDED.version, EXCLUDED.status, EXCLUDED.resource_uid)",
    )
    .bind(slug)
    .bind(module)
    .bind(version)
    .bind(status)
    .bind(uid)
    .execute(pool)
    .await
    .map_err(|e| Error::sql("recording the module in the mirror", DATABASE, e))?;
    Ok(())
}

pub async fn forget_module(pool: &PgPool, slug: &str, module: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM tenant_modules WHERE tenant_slug = $1 AND module = $2")
        .bind(slug)
        .bind(module)
        .execute(pool)
        .await
        .map_err(|e| Error::sql("removing the module from the mirror", DATABASE, e))?;
    Ok(())
}

/// Tenants other than `except_slug` that have `module` recorded: the landlord scope is shared by them.
pub async fn other_tenants_with_module(
    pool: &PgPool,
    module: &str,
    except_slug: &str,
) -> Result<Vec<String>, Error> {
    let rows = sqlx::query(
        "SELECT tenant_slug FROM tenant_modules WHERE module = $1 AND tenant_slug <> $2 ORDER BY 1",
    )
    .bind(module)
    .bind(except_slug)
    .fetch_all(pool)
    .await
    .map_err(|e| Error::sql("reading the module mirror", DATABASE, e))?;
    Ok(rows.into_iter().map(|row| row.get(0)).collect())
}
