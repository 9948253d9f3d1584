//! Creating and dropping tenants through the admin connection, which never enters a tenant database: it
//! creates and drops roles and databases from the maintenance database, and everything inside a tenant
//! database runs as the tenant's own role (`Databases::tenant`). Every function is idempotent ("already
//! exists" and "already gone" are success) and adopts or drops only what carries the asking Tenant's mark.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

mod database;

pub use database::ensure_tenant_database;

use crate::db::connect::{Databases, DbConnection};
use crate::db::error::sqlstate;
use crate::db::ident::{Ident, TenantNames, quote_literal, sql};
use crate::db::provisioning::owner::{Adoption, Found, TenantOwner, adoption};
use crate::db::provisioning::template::{self, Templates};
use crate::db::{Error, Password};

/// Tries of DROP DATABASE while an autovacuum worker is in the database (about 4.5 s in all).
const DROP_ATTEMPTS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    Created,
    /// It was there already, made by Landlord for this Tenant.
    Existed,
    /// Made by Landlord for an earlier Tenant of the same namespace and name (deletionPolicy Retain).
    Readopted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    Dropped,
    AlreadyGone,
    /// Something of the tenant's name that Landlord did not make for this Tenant: left as it is.
    NotOurs,
}

/// Everything `ensure_tenant` needs; names and extensions are validated before it can be built.
#[derive(Clone, Debug)]
pub struct TenantRequest<'a> {
    pub tenant: &'a TenantNames,
    pub owner: &'a TenantOwner,
    /// The password the tenant's Secret holds (or a new one when there is none): the role is made to
    /// accept it.
    pub password: &'a Password,
    pub extensions: &'a [Ident],
    /// Clone a new database from Landlord's template of the core tenant schema (None: create it empty).
    pub templates: Option<&'a Templates>,
    /// Whether an absent database may be made. False once Landlord's records say it was made: then it was
    /// lost outside Landlord, and a blank one in its place would take the applications' writes unnoticed.
    pub may_create_database: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provisioned {
    pub role: Ensured,
    pub database: Ensured,
    /// The role's password was set to the requested one (a new role, a new or hand-edited Secret).
    pub password_set: bool,
    /// The database was cloned from Landlord's template: its core tenant migrations are applied.
    pub cloned: bool,
}

/// Role, database, revoked PUBLIC access, extensions: a tenant database ready for its core migrations. Returns
/// a connection to it as the tenant's role, so the password the tenant's Secret holds is known to work.
pub async fn ensure_tenant(
    databases: &Databases,
    request: &TenantRequest<'_>,
) -> Result<(Provisioned, DbConnection), Error> {
    let names = request.tenant;
    let mut admin = databases.admin().await?;
    let role = ensure_tenant_role(&mut admin, names, request.owner, request.password).await?;
    // One slot at a time: holding the admin connection while waiting for another one could deadlock
    // reconciles that each hold one of the last slots. The clone goes on in this session.
    // Only a database that may be made is cloned; one that may not is judged where it would be created.
    if let Some(templates) = request.templates
        && request.may_create_database
        && template::clonable(&mut admin, names, request.owner).await?
    {
        if template::clone_database(databases, templates, admin, names, request.owner).await? {
            return log_in(databases, request, role, Ensured::Created, true).await;
        }
        admin = databases.admin().await?;
    }
    let copy = databases.ledger_copy(names);
    let may_create = request.may_create_database;
    let (database, opened) =
        database::ensure_database(&mut admin, names, request.owner, may_create, Some(&copy))
            .await?;
    if opened {
        // Nobody else could enter it while it was closed; should anyone be there all the same, they are
        // gone before the first migration.
        database::end_foreign_sessions(&mut admin, names).await?;
    }
    admin.close().await?;
    log_in(databases, request, role, database, false).await
}

/// Logs in as the tenant's role (making the role follow a hand-edited Secret) and creates the extensions.
async fn log_in(
    databases: &Databases,
    request: &TenantRequest<'_>,
    role: Ensured,
    database: Ensured,
    cloned: bool,
) -> Result<(Provisioned, DbConnection), Error> {
    let names = request.tenant;
    let mut password_set = role == Ensured::Created;
    let mut tenant = match databases.tenant(names, request.password).await {
        Err(Error::TenantLoginRefused { .. }) if !password_set => {
            // The Secret was edited by hand (or rotated): the role follows it.
            let mut admin = databases.admin().await?;
            set_password(&mut admin, names.role(), request.password).await?;
            admin.close().await?;
            password_set = true;
            databases.tenant(names, request.password).await?
        }
        other => other?,
    };
    super::extension::ensure_extensions(&mut tenant, request.extensions).await?;
    let provisioned = Provisioned {
        role,
        database,
        password_set,
        cloned,
    };
    Ok((provisioned, tenant))
}

/// Drops database (terminating its sessions) and role, each only if Landlord made it for `owner`.
pub async fn drop_tenant(
    databases: &Databases,
    tenant: &TenantNames,
    owner: &TenantOwner,
) -> Result<(Dropped, Dropped), Error> {
    let mut admin = databases.admin().await?;
    let role = role_mark(&mut admin, tenant.role())
        .await?
        .map(|comment| adoption(comment.as_deref(), owner));
    let ours = matches!(role, Some(Adoption::Ours | Adoption::Readopt));
    let database = match database_owner(&mut admin, tenant.database()).await? {
        None => Dropped::AlreadyGone,
        Some(db_owner) if ours && db_owner == tenant.role().as_str() => {
            drop_tenant_database(&mut admin, tenant).await?
        }
        Some(_) => Dropped::NotOurs,
    };
    let role = match role {
        None => Dropped::AlreadyGone,
        Some(_) if !ours => Dropped::NotOurs,
        Some(_) => drop_tenant_role(&mut admin, tenant).await?,
    };
    admin.close().await?;
    Ok((database, role))
}

/// The tenant's LOGIN role, marked with its owner in a comment only a CREATEROLE holder can write, and the
/// admin role's membership in it (PostgreSQL 15 requires it to create a database owned by the role). An
/// existing role is adopted only with the owner's mark; its password is set only when the role is new. The
/// password reaches the server only as a SCRAM verifier.
pub async fn ensure_tenant_role(
    admin: &mut DbConnection,
    tenant: &TenantNames,
    owner: &TenantOwner,
    password: &Password,
) -> Result<Ensured, Error> {
    let role = tenant.role();
    let ensured = match role_mark(admin, role).await? {
        Some(comment) => adopt_role(admin, role, owner, comment.as_deref()).await?,
        None => match create_role(admin, tenant, owner, password).await? {
            Some(created) => created,
            // Another process created it since we looked: judged by its mark like any other.
            None => {
                let comment = role_mark(admin, role).await?.flatten();
                adopt_role(admin, role, owner, comment.as_deref()).await?
            }
        },
    };
    // Repeating the grant is a notice, not an error.
    exec(admin, format!("GRANT {} TO CURRENT_USER", role.quoted()))
        .await
        .map_err(|e| {
            Error::sql(
                format!("granting role {role} to the admin role"),
                admin.database(),
                e,
            )
        })?;
    Ok(ensured)
}

/// CREATE ROLE and its mark in one transaction: there is never an unmarked role of ours. None when another
/// process created the role first.
async fn create_role(
    admin: &mut DbConnection,
    tenant: &TenantNames,
    owner: &TenantOwner,
    password: &Password,
) -> Result<Option<Ensured>, Error> {
    let role = tenant.role();
    let verifier = quote_literal(&password.scram_verifier())?;
    let mark = mark_role(role, owner)?;
    let database = admin.database().to_string();
    let fail = |e| Error::sql(format!("creating role {role}"), &database, e);
    let mut tx = admin.begin().await.map_err(fail)?;
    let create = format!(
        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {verifier}",
        role.quoted()
    );
    let created = match exec(&mut tx, create).await {
        Ok(()) => exec(&mut tx, mark).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(()) => {
            tx.commit().await.map_err(fail)?;
            Ok(Some(Ensured::Created))
        }
        Err(e) if is_duplicate(&e) => Ok(None),
        Err(e) => Err(fail(e)),
    }
}

/// An existing role: ours, re-marked for a Tenant of the same namespace and name, or refused untouched.
async fn adopt_role(
    admin: &mut DbConnection,
    role: &Ident,
    owner: &TenantOwner,
    comment: Option<&str>,
) -> Result<Ensured, Error> {
    match adoption(comment, owner) {
        Adoption::Ours => Ok(Ensured::Existed),
        Adoption::Readopt => {
            exec(admin, mark_role(role, owner)?)
                .await
                .map_err(|e| Error::sql(format!("marking role {role}"), admin.database(), e))?;
            Ok(Ensured::Readopted)
        }
        Adoption::Refused(found) => Err(refused("role", role, found)),
    }
}

fn mark_role(role: &Ident, owner: &TenantOwner) -> Result<String, Error> {
    let mark = quote_literal(&owner.mark())?;
    Ok(format!("COMMENT ON ROLE {} IS {mark}", role.quoted()))
}

pub(crate) async fn set_password(
    admin: &mut DbConnection,
    role: &Ident,
    password: &Password,
) -> Result<(), Error> {
    let verifier = quote_literal(&password.scram_verifier())?;
    let alter = format!("ALTER ROLE {} PASSWORD {verifier}", role.quoted());
    exec(admin, alter).await.map_err(|e| {
        Error::sql(
            format!("setting the password of role {role}"),
            admin.database(),
            e,
        )
    })
}

pub(crate) fn refused(object: &'static str, name: &Ident, found: Found) -> Error {
    Error::AdoptionRefused {
        object,
        name: name.to_string(),
        found,
    }
}

/// `DROP DATABASE ... WITH (FORCE)`, once `drop_tenant` has found it ours.
async fn drop_tenant_database(
    admin: &mut DbConnection,
    tenant: &TenantNames,
) -> Result<Dropped, Error> {
    let database = tenant.database();
    let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", database.quoted());
    let mut attempt = 1;
    loop {
        match exec(admin, drop.clone()).await {
            Ok(()) => return Ok(Dropped::Dropped),
            // FORCE may only terminate sessions of roles we are a member of, and an autovacuum worker
            // has no role: it refuses (42501) until the worker is done, which takes moments.
            Err(e) if sqlstate(&e).as_deref() == Some("42501") && attempt < DROP_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                let action = format!("dropping database {database}");
                return Err(Error::sql(action, admin.database(), e));
            }
        }
    }
}

async fn drop_tenant_role(
    admin: &mut DbConnection,
    tenant: &TenantNames,
) -> Result<Dropped, Error> {
    let role = tenant.role();
    exec(admin, format!("DROP ROLE IF EXISTS {}", role.quoted()))
        .await
        .map_err(|e| Error::sql(format!("dropping role {role}"), admin.database(), e))?;
    Ok(Dropped::Dropped)
}

/// None when the role does not exist; otherwise its comment (the owner's mark, if Landlord made it).
pub(crate) async fn role_mark(
    admin: &mut DbConnection,
    role: &Ident,
) -> Result<Option<Option<String>>, Error> {
    sqlx::query_scalar(
        "SELECT pg_catalog.shobj_description(oid, 'pg_authid') FROM pg_catalog.pg_roles WHERE rolname = $1",
    )
    .bind(role.as_str())
    .fetch_optional(&mut **admin)
    .await
    .map_err(|e| Error::sql(format!("looking up role {role}"), admin.database(), e))
}

pub(crate) async fn database_owner(
    admin: &mut DbConnection,
    database: &Ident,
) -> Result<Option<String>, Error> {
    sqlx::query_scalar("SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1")
        .bind(database.as_str())
        .fetch_optional(&mut **admin)
        .await
        .map_err(|e| {
            Error::sql(
                format!("looking up database {database}"),
                admin.database(),
                e,
            )
        })
}

pub(crate) async fn exec(conn: &mut PgConnection, statement: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql(statement)).execute(conn).await.map(drop)
}

/// Duplicate role or database (or the unique index behind them when two sessions race).
pub(crate) fn is_duplicate(error: &sqlx::Error) -> bool {
    matches!(
        sqlstate(error).as_deref(),
        Some("42710" | "42P04" | "23505")
    )
}
