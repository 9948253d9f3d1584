//! The mover: a login made for one move on one server, a member of that tenant's role and of nothing else,
//! with a password of its own drawn for each step and never stored. It exists so that the dump and the
//! restore run as the tenant's role while the tenant's own logins are refused; it is dropped when the move
//! is over. Marked, like the tenant's role, with a comment only a CREATEROLE holder can write.

use sha2::{Digest, Sha256};

use crate::db::connect::{Databases, DbConnection};
use crate::db::ident::{Ident, TenantNames, quote_literal};
use crate::db::provisioning::owner::{Found, TenantOwner};
use crate::db::provisioning::provision::{
    database_owner, exec, is_duplicate, refused, role_mark, set_password,
};
use crate::db::{Error, Password};

const MOVER_MARK: &str = "landlord mover of ";
/// What a kept source copy's role and database say once the tenant lives elsewhere: no adoption mark.
const MOVED_MARK: &str = "landlord moved ";

/// A mover logged in to the tenant's database acts as the tenant's role.
pub struct Mover {
    pub role: Ident,
    password: Password,
}

impl std::fmt::Debug for Mover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mover")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Mover {
    /// A session in the tenant's database acting as the tenant's role.
    pub async fn log_in(
        &self,
        databases: &Databases,
        tenant: &TenantNames,
    ) -> Result<DbConnection, Error> {
        databases
            .as_member(tenant, &self.role, &self.password)
            .await
    }

    /// What pg_dump or pg_restore needs to log in as the mover.
    pub fn client_env(
        &self,
        databases: &Databases,
        tenant: &TenantNames,
    ) -> Vec<(&'static str, String)> {
        databases.client_env(&self.role, &self.password, tenant.database())
    }
}

/// `landlord_mover_<16 hex digits of the slug's SHA-256>`: within PostgreSQL's 63 bytes for any slug, and
/// nothing a tenant role (`tenant_…`) can be called.
fn mover_role(tenant: &TenantNames) -> Result<Ident, Error> {
    let digest = Sha256::digest(tenant.slug().as_bytes());
    Ident::new(&format!("landlord_mover_{}", hex::encode(&digest[..8])))
}

fn mover_mark(owner: &TenantOwner) -> String {
    format!("{MOVER_MARK}{}", owner.mark())
}

/// The tenant's mover on this server, made (or its password replaced) now.
pub async fn ensure_mover(
    databases: &Databases,
    tenant: &TenantNames,
    owner: &TenantOwner,
) -> Result<Mover, Error> {
    let role = mover_role(tenant)?;
    let password = Password::generate()?;
    let mut admin = databases.admin().await?;
    let fail = |e| Error::sql(format!("making the mover role {role}"), "postgres", e);
    match role_mark(&mut admin, &role).await? {
        Some(comment) if comment.as_deref() == Some(mover_mark(owner).as_str()) => {
            set_password(&mut admin, &role, &password).await?;
        }
        Some(_) => return Err(refused("role", &role, Found::Unmarked)),
        None => {
            let create = format!(
                "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION INHERIT \
                 PASSWORD {verifier} IN ROLE {tenant_role}; COMMENT ON ROLE {role} IS {mark}",
                role = role.quoted(),
                verifier = quote_literal(&password.scram_verifier())?,
                tenant_role = tenant.role().quoted(),
                mark = quote_literal(&mover_mark(owner))?,
            );
            match exec(&mut admin, create).await {
                Ok(()) => {}
                // Another process made it since: its password is replaced like any mover's.
                Err(e) if is_duplicate(&e) => set_password(&mut admin, &role, &password).await?,
                Err(e) => return Err(fail(e)),
            }
        }
    }
    admin.close().await.ok();
    Ok(Mover { role, password })
}

/// Drops the tenant's mover on this server (its sessions ended first), if it is there and ours.
pub async fn drop_mover(
    databases: &Databases,
    tenant: &TenantNames,
    owner: &TenantOwner,
) -> Result<(), Error> {
    let role = mover_role(tenant)?;
    let mut admin = databases.admin().await?;
    if role_mark(&mut admin, &role).await?.flatten().as_deref() == Some(mover_mark(owner).as_str())
    {
        let fail = |e| Error::sql(format!("dropping the mover role {role}"), "postgres", e);
        sqlx::query(
            "SELECT pg_catalog.pg_terminate_backend(pid, 5000) FROM pg_catalog.pg_stat_activity
              WHERE usename = $1",
        )
        .bind(role.as_str())
        .execute(&mut *admin)
        .await
        .map_err(fail)?;
        exec(&mut admin, format!("DROP ROLE IF EXISTS {}", role.quoted()))
            .await
            .map_err(fail)?;
    }
    admin.close().await.ok();
    Ok(())
}

/// A source copy kept after its tenant moved (deletionPolicy Retain): its role and database lose the
/// adoption mark (so no Tenant ever adopts them again) and say where the tenant went; the role stays closed.
pub async fn mark_moved(
    databases: &Databases,
    tenant: &TenantNames,
    owner: &TenantOwner,
    target: &str,
) -> Result<(), Error> {
    let note = quote_literal(&format!(
        "{MOVED_MARK}{}/{} uid {} to server {target}",
        owner.namespace, owner.name, owner.uid
    ))?;
    let mut admin = databases.admin().await?;
    let role = tenant.role();
    // Only what is still ours is re-marked; anything else is left as it is.
    let ours = role_mark(&mut admin, role)
        .await?
        .flatten()
        .and_then(|comment| TenantOwner::from_mark(&comment))
        .is_some_and(|found| found.same_tenant(owner));
    if ours {
        let database_ours = database_owner(&mut admin, tenant.database())
            .await?
            .as_deref()
            == Some(role.as_str());
        let mut statement = format!("COMMENT ON ROLE {} IS {note}", role.quoted());
        if database_ours {
            // Closed to every login, not only the tenant's role: a kept copy is never written again.
            statement.push_str(&format!(
                "; COMMENT ON DATABASE {db} IS {note}; ALTER DATABASE {db} CONNECTION LIMIT 0",
                db = tenant.database().quoted()
            ));
        }
        exec(&mut admin, statement).await.map_err(|e| {
            Error::sql(format!("marking role {role} as moved"), admin.database(), e)
        })?;
    }
    admin.close().await.ok();
    Ok(())
}
