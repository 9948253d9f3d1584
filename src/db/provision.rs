//! Creating and dropping tenants through the admin connection. Every function is idempotent: "already
//! exists" and "already gone" are success, so a reconcile can always run them again.

use std::time::Duration;

use sqlx::PgConnection;

use super::connect::{Databases, DbConnection};
use super::error::sqlstate;
use super::ident::{Ident, TenantNames, quote_literal, sql};
use super::{Error, Password};

/// Tries of DROP DATABASE while an autovacuum worker is in the database (about 4.5 s in all).
const DROP_ATTEMPTS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    Created,
    /// It was there already (and, for a database, owned by the tenant's role): adopted.
    Existed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    Dropped,
    AlreadyGone,
}

/// Everything `ensure_tenant` needs; names and extensions are validated before it can be built.
#[derive(Clone, Debug)]
pub struct TenantRequest<'a> {
    pub tenant: &'a TenantNames,
    pub password: &'a Password,
    /// Set the password even when the role exists (a lost or rotated Secret).
    pub reset_password: bool,
    pub extensions: &'a [Ident],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provisioned {
    pub role: Ensured,
    pub database: Ensured,
}

/// Role, database, revoked PUBLIC access, extensions: a tenant database ready for its core migrations.
pub async fn ensure_tenant(
    databases: &Databases,
    request: &TenantRequest<'_>,
) -> Result<Provisioned, Error> {
    let mut admin = databases.admin().await?;
    let role = ensure_tenant_role(
        &mut admin,
        request.tenant,
        request.password,
        request.reset_password,
    )
    .await?;
    let database = ensure_tenant_database(&mut admin, request.tenant).await?;
    admin.close().await?;
    if !request.extensions.is_empty() {
        let mut tenant = databases.tenant(request.tenant).await?;
        ensure_extensions(&mut tenant, request.extensions).await?;
        tenant.close().await?;
    }
    Ok(Provisioned { role, database })
}

/// Drops database (terminating its sessions) and role. Refuses a database the tenant's role does not own.
pub async fn drop_tenant(
    databases: &Databases,
    tenant: &TenantNames,
) -> Result<(Dropped, Dropped), Error> {
    let mut admin = databases.admin().await?;
    let database = drop_tenant_database(&mut admin, tenant).await?;
    let role = drop_tenant_role(&mut admin, tenant).await?;
    admin.close().await?;
    Ok((database, role))
}

/// The tenant's LOGIN role, and membership of the admin role in it (PostgreSQL 15 requires it to create a
/// database owned by the role). The password reaches the server only as a SCRAM verifier.
pub async fn ensure_tenant_role(
    admin: &mut DbConnection,
    tenant: &TenantNames,
    password: &Password,
    reset_password: bool,
) -> Result<Ensured, Error> {
    let role = tenant.role();
    let mut ensured = Ensured::Existed;
    if !role_exists(admin, role).await? {
        let verifier = quote_literal(&password.scram_verifier()?)?;
        let create = format!("CREATE ROLE {} LOGIN PASSWORD {verifier}", role.quoted());
        match exec(admin, create).await {
            Ok(()) => ensured = Ensured::Created,
            // Another process created it since we looked: fall through as if it had existed.
            Err(e) if is_duplicate(&e) => {}
            Err(e) => {
                return Err(Error::sql(
                    format!("creating role {role}"),
                    admin.database(),
                    e,
                ));
            }
        }
    }
    if ensured == Ensured::Existed && reset_password {
        let verifier = quote_literal(&password.scram_verifier()?)?;
        let alter = format!("ALTER ROLE {} LOGIN PASSWORD {verifier}", role.quoted());
        exec(admin, alter).await.map_err(|e| {
            Error::sql(
                format!("setting the password of role {role}"),
                admin.database(),
                e,
            )
        })?;
    }
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

/// `tenant_<slug>` owned by the tenant's role, with CONNECT and TEMPORARY revoked from PUBLIC so that
/// no other tenant's credentials open it. An existing database is adopted only if that role owns it.
pub async fn ensure_tenant_database(
    admin: &mut DbConnection,
    tenant: &TenantNames,
) -> Result<Ensured, Error> {
    let database = tenant.database();
    let mut ensured = Ensured::Existed;
    if database_owner(admin, database).await?.is_none() {
        // CREATE DATABASE cannot run in a transaction; the simple protocol sends it alone.
        let create = format!(
            "CREATE DATABASE {} OWNER {}",
            database.quoted(),
            tenant.role().quoted()
        );
        match exec(admin, create).await {
            Ok(()) => ensured = Ensured::Created,
            Err(e) if is_duplicate(&e) => {}
            Err(e) => {
                return Err(Error::sql(
                    format!("creating database {database}"),
                    admin.database(),
                    e,
                ));
            }
        }
    }
    check_owner(admin, tenant).await?;
    let revoke = format!(
        "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
        database.quoted()
    );
    exec(admin, revoke).await.map_err(|e| {
        Error::sql(
            format!("revoking PUBLIC access to {database}"),
            admin.database(),
            e,
        )
    })?;
    Ok(ensured)
}

/// `CREATE EXTENSION IF NOT EXISTS` for each, on a tenant connection (so the tenant's role owns them).
pub async fn ensure_extensions(
    tenant: &mut DbConnection,
    extensions: &[Ident],
) -> Result<(), Error> {
    let database = tenant.database().to_string();
    for extension in extensions {
        let unavailable = |message: String| Error::ExtensionUnavailable {
            extension: extension.to_string(),
            database: database.clone(),
            message,
        };
        let available: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)",
        )
        .bind(extension.as_str())
        .fetch_one(&mut **tenant)
        .await
        .map_err(|e| Error::sql("listing available extensions", &database, e))?;
        if !available {
            return Err(unavailable(
                "it is not installed on the PostgreSQL server".into(),
            ));
        }
        let create = format!("CREATE EXTENSION IF NOT EXISTS {}", extension.quoted());
        match exec(tenant, create).await {
            Ok(()) => {}
            // Untrusted extensions need a superuser; a broken package lacks its files.
            Err(e) if matches!(sqlstate(&e).as_deref(), Some("42501" | "58P01" | "0A000")) => {
                let message = e
                    .as_database_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_default();
                return Err(unavailable(message));
            }
            Err(e) => {
                return Err(Error::sql(
                    format!("creating extension {extension}"),
                    &database,
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// `DROP DATABASE ... WITH (FORCE)`; refuses a database the tenant's role does not own.
pub async fn drop_tenant_database(
    admin: &mut DbConnection,
    tenant: &TenantNames,
) -> Result<Dropped, Error> {
    let database = tenant.database();
    if database_owner(admin, database).await?.is_none() {
        return Ok(Dropped::AlreadyGone);
    }
    check_owner(admin, tenant).await?;
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

pub async fn drop_tenant_role(
    admin: &mut DbConnection,
    tenant: &TenantNames,
) -> Result<Dropped, Error> {
    let role = tenant.role();
    if !role_exists(admin, role).await? {
        return Ok(Dropped::AlreadyGone);
    }
    exec(admin, format!("DROP ROLE IF EXISTS {}", role.quoted()))
        .await
        .map_err(|e| Error::sql(format!("dropping role {role}"), admin.database(), e))?;
    Ok(Dropped::Dropped)
}

async fn role_exists(admin: &mut DbConnection, role: &Ident) -> Result<bool, Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(role.as_str())
        .fetch_one(&mut **admin)
        .await
        .map_err(|e| Error::sql(format!("looking up role {role}"), admin.database(), e))
}

async fn database_owner(
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

async fn check_owner(admin: &mut DbConnection, tenant: &TenantNames) -> Result<(), Error> {
    match database_owner(admin, tenant.database()).await? {
        Some(owner) if owner != tenant.role().as_str() => Err(Error::NotOurs {
            database: tenant.database().to_string(),
            owner,
            expected: tenant.role().to_string(),
        }),
        _ => Ok(()),
    }
}

async fn exec(conn: &mut PgConnection, statement: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql(statement)).execute(conn).await.map(drop)
}

/// Duplicate role or database (or the unique index behind them when two sessions race).
fn is_duplicate(error: &sqlx::Error) -> bool {
    matches!(
        sqlstate(error).as_deref(),
        Some("42710" | "42P04" | "23505")
    )
}
