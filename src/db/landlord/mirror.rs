//! The landlord database's mirror of the cluster (`tenants`, `tenant_modules`), read by applications and the
//! landlord's own record of who owns what: a slug belongs to the Tenant UID recorded with it, a tenant's module
//! to the ModuleInstallation UID recorded with it, and every destructive step checks that record first.
//! Neither tenants (no CONNECT on the landlord database) nor Kubernetes users (no status field) can write it.

use sqlx::{PgConnection, PgPool, Row};

use crate::db::Error;
pub use crate::db::provisioning::owner::TenantOwner;
pub use claims::{ModuleClaim, Uninstalling, claim_module, mark_uninstalling};
pub use moves::{
    Begun, MovePhase, MoveRecord, advance, begin_move, forget_failed_move, move_of,
    moves_in_flight, record_connection_limit, switch,
};
pub use placement::{Candidate, Claimed, claim_tenant, servers_of, tenants_on, tenants_per_server};
pub use state::{ModuleState, TenantState};

mod claims;
mod moves;
mod placement;
mod state;

const DATABASE: &str = "landlord";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    Ours,
    /// Another live resource owns the slug: touch nothing of it.
    Taken(TenantOwner),
    /// The slug's database was kept (deletionPolicy Retain) for another namespace and name.
    Retained(TenantOwner),
}

/// What a claim records next to the owner.
pub struct TenantRecord<'a> {
    pub slug: &'a str,
    pub database: &'a str,
    pub display_name: Option<&'a str>,
}

/// A slug as the landlord database records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlugRecord {
    pub owner: TenantOwner,
    /// Written by the operator alone.
    pub status: TenantState,
    /// The resourceVersion of the credentials Secret whose password last logged in.
    pub credentials_version: Option<String>,
    /// Landlord made (or adopted) the slug's database: if it is missing now, it was lost outside Landlord.
    pub database_made: bool,
    /// The last re-creation of a missing database carried out (the annotation's value).
    pub recreated: Option<String>,
    /// The server the slug's database was placed on (`default`: the server of the admin URL).
    pub server: String,
}

impl SlugRecord {
    /// The slug's claim as seen by the Tenant `asking`.
    pub fn claim_for(&self, asking: &TenantOwner) -> Claim {
        if self.owner.uid == asking.uid {
            Claim::Ours
        } else if self.owner.uid.is_empty() {
            if self.owner.namespace == asking.namespace && self.owner.name == asking.name {
                Claim::Ours
            } else {
                Claim::Retained(self.owner.clone())
            }
        } else {
            Claim::Taken(self.owner.clone())
        }
    }

    /// The slug is claimed by the Tenant with `uid` (a retained slug is nobody's until re-claimed): the one
    /// rule every destructive step and every installation checks.
    pub fn is_owned_by(&self, uid: &str) -> bool {
        !uid.is_empty() && self.owner.uid == uid
    }

    /// Owned by `uid` and provisioned: what a ModuleInstallation needs before it touches the tenant.
    pub fn is_ready_for(&self, uid: &str) -> bool {
        self.is_owned_by(uid) && self.status == TenantState::Ready
    }
}

pub async fn slug_record(pool: &PgPool, slug: &str) -> Result<Option<SlugRecord>, Error> {
    let row =
        sqlx::query("SELECT resource_uid, namespace, name, status, credentials_version, database_made, recreated, server FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(pool)
            .await
            .map_err(|e| Error::sql("reading the tenant mirror", DATABASE, e))?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(SlugRecord {
        owner: TenantOwner {
            uid: row.get("resource_uid"),
            namespace: row.get("namespace"),
            name: row.get("name"),
        },
        status: TenantState::parse(row.get("status"))?,
        credentials_version: row.get("credentials_version"),
        database_made: row.get("database_made"),
        recreated: row.get("recreated"),
        server: row.get("server"),
    }))
}

/// Records the tenant's state for applications; only the owner's row changes, and only when it differs.
pub async fn set_tenant_status(
    pool: &PgPool,
    slug: &str,
    uid: &str,
    status: TenantState,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE tenants SET status = $3, updated_at = now()
          WHERE slug = $1 AND resource_uid = $2 AND status IS DISTINCT FROM $3",
    )
    .bind(slug)
    .bind(uid)
    .bind(status.as_str())
    .execute(pool)
    .await
    .map_err(|e| Error::sql("updating the tenant mirror", DATABASE, e))?;
    Ok(())
}

/// The owner's database exists, made or adopted by Landlord (and `recreated`, if given, is the re-creation
/// just carried out): from now on its absence is a loss, not a database still to make.
pub async fn record_database_made(
    pool: &PgPool,
    slug: &str,
    uid: &str,
    recreated: Option<&str>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE tenants SET database_made = true, recreated = COALESCE($3, recreated), updated_at = now()
          WHERE slug = $1 AND resource_uid = $2
            AND (database_made, recreated) IS DISTINCT FROM (true, COALESCE($3, recreated))",
    )
    .bind(slug)
    .bind(uid)
    .bind(recreated)
    .execute(pool)
    .await
    .map_err(|e| Error::sql("recording the tenant database", DATABASE, e))?;
    Ok(())
}

/// The tenant is provisioned and migrated, and the password of the Secret at `credentials_version` logs in.
pub async fn record_tenant_ready(
    pool: &PgPool,
    slug: &str,
    uid: &str,
    credentials_version: Option<&str>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE tenants SET status = 'Ready', credentials_version = $3, updated_at = now()
          WHERE slug = $1 AND resource_uid = $2
            AND (status, credentials_version) IS DISTINCT FROM ('Ready', $3)",
    )
    .bind(slug)
    .bind(uid)
    .bind(credentials_version)
    .execute(pool)
    .await
    .map_err(|e| Error::sql("updating the tenant mirror", DATABASE, e))?;
    Ok(())
}

/// A retained deletion: the database stays, kept for a Tenant of the same namespace and name.
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

/// A dropped tenant leaves the mirror, with its modules and Landlord's copy of its ledger.
pub async fn forget_tenant(pool: &PgPool, slug: &str, uid: &str) -> Result<(), Error> {
    sqlx::query(
        "WITH gone AS (DELETE FROM tenants WHERE slug = $1 AND resource_uid = $2 RETURNING slug)
         DELETE FROM tenant_ledger WHERE tenant_slug IN (SELECT slug FROM gone)",
    )
    .bind(slug)
    .bind(uid)
    .execute(pool)
    .await
    .map_err(|e| Error::sql("removing the tenant from the mirror", DATABASE, e))?;
    Ok(())
}

/// The ModuleInstallation recorded as a tenant's installer of a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installer {
    pub uid: String,
    pub name: String,
}

/// Who installs `module` for `slug`: the first installation to claim it, until it is gone.
pub async fn module_installer(
    pool: &PgPool,
    slug: &str,
    module: &str,
) -> Result<Option<Installer>, Error> {
    let row = sqlx::query(
        "SELECT resource_uid, name FROM tenant_modules WHERE tenant_slug = $1 AND module = $2",
    )
    .bind(slug)
    .bind(module)
    .fetch_optional(pool)
    .await
    .map_err(|e| Error::sql("reading the module mirror", DATABASE, e))?;
    Ok(row.map(|row| Installer {
        uid: row.get("resource_uid"),
        name: row.get("name"),
    }))
}

/// Records an installation's release (and the reinstall it carried out, if it did one); only the installer's
/// row changes, and only when it differs.
pub async fn record_module(
    pool: &PgPool,
    slug: &str,
    module: &str,
    (version, status): (Option<&str>, ModuleState),
    uid: &str,
    reinstalled: Option<&str>,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE tenant_modules
            SET version = $3, status = $4, reinstalled = COALESCE($6, reinstalled), updated_at = now()
          WHERE tenant_slug = $1 AND module = $2 AND resource_uid = $5
            AND (version, status, reinstalled) IS DISTINCT FROM ($3, $4, COALESCE($6, reinstalled))",
    )
    .bind(slug)
    .bind(module)
    .bind(version)
    .bind(status.as_str())
    .bind(uid)
    .bind(reinstalled)
    .execute(pool)
    .await
    .map_err(|e| Error::sql("recording the module in the mirror", DATABASE, e))?;
    Ok(())
}

/// Removes the module's record, only if `uid` is its installer.
pub async fn forget_module(
    pool: &PgPool,
    slug: &str,
    module: &str,
    uid: &str,
) -> Result<(), Error> {
    sqlx::query(
        "DELETE FROM tenant_modules WHERE tenant_slug = $1 AND module = $2 AND resource_uid = $3",
    )
    .bind(slug)
    .bind(module)
    .bind(uid)
    .execute(pool)
    .await
    .map_err(|e| Error::sql("removing the module from the mirror", DATABASE, e))?;
    Ok(())
}

/// A module recorded for a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledModule {
    pub module: String,
    /// The release last installed; None while the first install is under way.
    pub version: Option<String>,
    pub status: ModuleState,
    pub installer: Installer,
    /// The last reinstall its installer carried out (the annotation's value).
    pub reinstalled: Option<String>,
}

/// Every module recorded for `slug`, by name.
pub async fn installed_modules(pool: &PgPool, slug: &str) -> Result<Vec<InstalledModule>, Error> {
    let rows = sqlx::query(
        "SELECT module, version, status, resource_uid, name, reinstalled FROM tenant_modules
          WHERE tenant_slug = $1 ORDER BY module",
    )
    .bind(slug)
    .fetch_all(pool)
    .await
    .map_err(|e| Error::sql("reading the module mirror", DATABASE, e))?;
    rows.into_iter().map(installed_module).collect()
}

fn installed_module(row: sqlx::postgres::PgRow) -> Result<InstalledModule, Error> {
    Ok(InstalledModule {
        module: row.get("module"),
        version: row.get("version"),
        status: ModuleState::parse(row.get("status"))?,
        installer: Installer {
            uid: row.get("resource_uid"),
            name: row.get("name"),
        },
        reinstalled: row.get("reinstalled"),
    })
}

/// Removes whatever is recorded as installed by `uid` (its tenant may be gone already).
pub async fn forget_installation(pool: &PgPool, uid: &str) -> Result<(), Error> {
    sqlx::query("DELETE FROM tenant_modules WHERE resource_uid = $1")
        .bind(uid)
        .execute(pool)
        .await
        .map_err(|e| Error::sql("removing the installation from the mirror", DATABASE, e))?;
    Ok(())
}

/// Tenants other than `except_slug` that have `module` recorded: the landlord scope is shared by them.
/// Read on the migration's own connection, under its lock, so no install slips in between.
pub(crate) async fn other_tenants_with_module(
    conn: &mut PgConnection,
    module: &str,
    except_slug: &str,
) -> Result<Vec<String>, Error> {
    let rows = sqlx::query(
        "SELECT tenant_slug FROM tenant_modules WHERE module = $1 AND tenant_slug <> $2 ORDER BY 1",
    )
    .bind(module)
    .bind(except_slug)
    .fetch_all(conn)
    .await
    .map_err(|e| Error::sql("reading the module mirror", DATABASE, e))?;
    Ok(rows.into_iter().map(|row| row.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uid: &str, namespace: &str, name: &str, status: &str) -> SlugRecord {
        SlugRecord {
            owner: TenantOwner {
                uid: uid.into(),
                namespace: namespace.into(),
                name: name.into(),
            },
            status: TenantState::parse(status).unwrap(),
            credentials_version: None,
            database_made: true,
            recreated: None,
            server: "default".into(),
        }
    }

    #[test]
    fn claims_as_seen_by_a_tenant() {
        let asking = TenantOwner {
            uid: "u2".into(),
            namespace: "team-a".into(),
            name: "acme".into(),
        };
        let cases = [
            (record("u2", "team-a", "acme", "Ready"), "ours"),
            (record("", "team-a", "acme", "Retained"), "ours"),
            (record("", "team-b", "acme", "Retained"), "retained"),
            (record("u1", "team-b", "acme", "Ready"), "taken"),
            (record("u1", "team-a", "acme", "Ready"), "taken"),
        ];
        for (record, expected) in cases {
            let got = match record.claim_for(&asking) {
                Claim::Ours => "ours",
                Claim::Taken(_) => "taken",
                Claim::Retained(_) => "retained",
            };
            assert_eq!(got, expected, "{record:?}");
        }
    }

    #[test]
    fn only_the_owner_and_only_once_provisioned_is_ready() {
        assert!(record("u1", "a", "b", "Ready").is_ready_for("u1"));
        assert!(!record("u1", "a", "b", "Provisioning").is_ready_for("u1"));
        assert!(!record("u1", "a", "b", "Ready").is_ready_for("u2"));
        assert!(!record("", "a", "b", "Retained").is_ready_for(""));
    }
}
