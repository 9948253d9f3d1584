//! Who may record a module for a tenant, and when it may go: a new installer only while every module it
//! depends on is recorded `Installed`, an uninstall only once its record is `Uninstalling` and no dependent
//! is recorded. Both decide under one lock, so of an uninstall and a dependent's install, one goes ahead.

use sqlx::PgConnection;
use sqlx::PgPool;

use crate::db::Error;
use crate::db::landlord::mirror::{
    DATABASE, InstalledModule, Installer, installed_module, module_installer,
};

/// How a claim of a module ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModuleClaim {
    /// The installer recorded afterwards (this installation, or the one that got there first).
    Recorded(Installer),
    /// These dependencies are not recorded `Installed` (missing, installing, or being uninstalled): nothing
    /// was written.
    DependenciesMissing(Vec<String>),
}

/// Records `installer` as the installer of `module` for `slug` before anything is migrated, so that a
/// concurrent uninstall elsewhere sees the module in use. `replacing` takes over the record of an
/// installation that no longer exists. `needs`: the modules it depends on, which must be recorded
/// `Installed` at that moment, decided under the same lock as `mark_uninstalling`.
pub async fn claim_module(
    pool: &PgPool,
    slug: &str,
    module: &str,
    installer: &Installer,
    replacing: Option<&str>,
    needs: &[&str],
) -> Result<ModuleClaim, Error> {
    let failed = |e| Error::sql("recording the module's installer", DATABASE, e);
    let mut tx = pool.begin().await.map_err(failed)?;
    lock_tenant_modules(&mut tx, slug).await.map_err(failed)?;
    let missing: Vec<String> = sqlx::query_scalar(
        "SELECT need FROM unnest($2::text[]) AS need
          WHERE NOT EXISTS (SELECT 1 FROM tenant_modules
                             WHERE tenant_slug = $1 AND module = need AND status = 'Installed')
          ORDER BY 1",
    )
    .bind(slug)
    .bind(needs)
    .fetch_all(&mut *tx)
    .await
    .map_err(failed)?;
    if !missing.is_empty() {
        return Ok(ModuleClaim::DependenciesMissing(missing));
    }
    sqlx::query(
        "INSERT INTO tenant_modules (tenant_slug, module, version, status, resource_uid, name)
         VALUES ($1, $2, NULL, 'Installing', $3, $4)
         ON CONFLICT (tenant_slug, module) DO UPDATE
            SET resource_uid = EXCLUDED.resource_uid, name = EXCLUDED.name, status = 'Installing',
                updated_at = now()
          WHERE tenant_modules.resource_uid = $5",
    )
    .bind(slug)
    .bind(module)
    .bind(&installer.uid)
    .bind(&installer.name)
    .bind(replacing.unwrap_or(""))
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    module_installer(pool, slug, module)
        .await?
        .map(ModuleClaim::Recorded)
        .ok_or_else(|| failed(sqlx::Error::RowNotFound))
}

/// How marking a module `Uninstalling` ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uninstalling {
    /// The record is `Uninstalling` now: no dependent can be installed on it any more.
    Marked,
    /// These dependents are recorded (installer names by module): nothing was written.
    Blocked(Vec<InstalledModule>),
    /// `uid` is not the recorded installer (any more): nothing of it to uninstall.
    NotRecorded,
}

/// The compare-and-set before an uninstall touches anything: the record of `module` becomes `Uninstalling`
/// only if `uid` is its installer and none of `dependents` (the modules that depend on it) is recorded, in
/// any state. `claim_module` takes the same lock, so a dependent cannot slip in between. A record already
/// `Uninstalling` stays so: an uninstall that failed half-way is carried on, never undone.
pub async fn mark_uninstalling(
    pool: &PgPool,
    slug: &str,
    module: &str,
    uid: &str,
    dependents: &[&str],
) -> Result<Uninstalling, Error> {
    let failed = |e| Error::sql("marking the module as uninstalling", DATABASE, e);
    let mut tx = pool.begin().await.map_err(failed)?;
    lock_tenant_modules(&mut tx, slug).await.map_err(failed)?;
    let blocking = sqlx::query(
        "SELECT module, version, status, resource_uid, name, reinstalled FROM tenant_modules
          WHERE tenant_slug = $1 AND module = ANY($2::text[]) ORDER BY module",
    )
    .bind(slug)
    .bind(dependents)
    .fetch_all(&mut *tx)
    .await
    .map_err(failed)?;
    if !blocking.is_empty() {
        return Ok(Uninstalling::Blocked(
            blocking
                .into_iter()
                .map(installed_module)
                .collect::<Result<_, _>>()?,
        ));
    }
    let marked = sqlx::query(
        "UPDATE tenant_modules SET status = 'Uninstalling', updated_at = now()
          WHERE tenant_slug = $1 AND module = $2 AND resource_uid = $3",
    )
    .bind(slug)
    .bind(module)
    .bind(uid)
    .execute(&mut *tx)
    .await
    .map_err(failed)?;
    tx.commit().await.map_err(failed)?;
    Ok(if marked.rows_affected() == 1 {
        Uninstalling::Marked
    } else {
        Uninstalling::NotRecorded
    })
}

/// The lock that claims and uninstalls of one tenant's modules take: its row in `tenants`, which neither
/// tenants nor Kubernetes users can reach. Bounded, like every wait of Landlord's.
async fn lock_tenant_modules(conn: &mut PgConnection, slug: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL lock_timeout = '10s'")
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT 1 FROM tenants WHERE slug = $1 FOR UPDATE")
        .bind(slug)
        .fetch_optional(&mut *conn)
        .await
        .map(drop)
}
