//! Closing a tenant's role to new sessions on a server (`CONNECTION LIMIT 0`) and ending the sessions it
//! still has, from the maintenance database as the admin role. The role's own limit is what an application
//! logs in under; the mover logs in under its own role and is not held by it.

use sqlx::{PgConnection, PgPool};

use crate::db::Error;
use crate::db::connect::{Databases, DbConnection};
use crate::db::ident::{Ident, TenantNames};
use crate::db::lock::advisory_key;
use crate::db::provisioning::provision::{database_owner, exec};

/// How long to wait for each session to end once signalled.
const TERMINATE_WAIT_MS: i64 = 5_000;

/// The tenant role's CONNECTION LIMIT on this server (-1: none; None: no such role).
pub async fn connection_limit(
    databases: &Databases,
    tenant: &TenantNames,
) -> Result<Option<i32>, Error> {
    let mut admin = databases.admin().await?;
    let limit = role_limit(&mut admin, tenant.role()).await?;
    admin.close().await.ok();
    Ok(limit)
}

async fn role_limit(admin: &mut DbConnection, role: &Ident) -> Result<Option<i32>, Error> {
    sqlx::query_scalar("SELECT rolconnlimit FROM pg_catalog.pg_roles WHERE rolname = $1")
        .bind(role.as_str())
        .fetch_optional(&mut **admin)
        .await
        .map_err(|e| Error::sql(format!("looking up role {role}"), admin.database(), e))
}

/// `ALTER ROLE … CONNECTION LIMIT`; `action` says what it does, in an error.
async fn set_role_limit(
    admin: &mut DbConnection,
    role: &Ident,
    limit: i32,
    action: String,
) -> Result<(), Error> {
    let statement = format!("ALTER ROLE {} CONNECTION LIMIT {limit}", role.quoted());
    exec(admin, statement)
        .await
        .map_err(|e| Error::sql(action, admin.database(), e))
}

/// Refuses new sessions of the tenant's role on this server (`CONNECTION LIMIT 0`).
pub async fn close_tenant_role(databases: &Databases, tenant: &TenantNames) -> Result<(), Error> {
    let role = tenant.role();
    let mut admin = databases.admin().await?;
    let action = format!("closing role {role} to new sessions");
    set_role_limit(&mut admin, role, 0, action).await?;
    admin.close().await.ok();
    Ok(())
}

/// Drops what an earlier attempt at copying left of the tenant's database on this (target) server: only a
/// database the tenant's role owns (a role `ensure_tenant_role` has just found marked for this Tenant).
pub async fn drop_copy(databases: &Databases, tenant: &TenantNames) -> Result<(), Error> {
    let database = tenant.database();
    let mut admin = databases.admin().await?;
    let ours =
        database_owner(&mut admin, database).await?.as_deref() == Some(tenant.role().as_str());
    if ours {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", database.quoted());
        exec(&mut admin, drop).await.map_err(|e| {
            let action = format!("dropping an earlier copy of {database}");
            Error::sql(action, admin.database(), e)
        })?;
    }
    admin.close().await.ok();
    Ok(())
}

/// Takes the session advisory lock of `slug`'s move in the landlord database on a connection of its own:
/// None if another session holds it. The lock lasts as long as the returned session.
pub async fn lock_move(pool: &PgPool, slug: &str) -> Result<Option<PgConnection>, Error> {
    let fail = |e| Error::sql("taking the move lock", "landlord", e);
    let mut conn = pool.acquire().await.map_err(fail)?.detach();
    let locked: bool = sqlx::query_scalar("SELECT pg_catalog.pg_try_advisory_lock($1)")
        .bind(advisory_key(&format!("landlord_move/{slug}")))
        .fetch_one(&mut conn)
        .await
        .map_err(fail)?;
    Ok(locked.then_some(conn))
}

/// Lets the tenant's role log in again with `limit` (-1: no limit). A role that is not there is left so.
pub async fn open_tenant_role(
    databases: &Databases,
    tenant: &TenantNames,
    limit: i32,
) -> Result<(), Error> {
    let role = tenant.role();
    let mut admin = databases.admin().await?;
    if role_limit(&mut admin, role).await?.is_some() {
        let action = format!("opening role {role} to sessions again");
        set_role_limit(&mut admin, role, limit.max(-1), action).await?;
    }
    admin.close().await.ok();
    Ok(())
}

/// The tenant role's sessions on a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sessions {
    /// All of them, Landlord's included.
    pub all: i64,
    /// Those Landlord opened (migrations of an installation that started before the move).
    pub landlord: i64,
}

/// The sessions the tenant's role has on this server, in any database.
pub async fn sessions(databases: &Databases, tenant: &TenantNames) -> Result<Sessions, Error> {
    let role = tenant.role();
    let mut admin = databases.admin().await?;
    let (all, landlord): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE application_name = 'landlord')
           FROM pg_catalog.pg_stat_activity WHERE usename = $1",
    )
    .bind(role.as_str())
    .fetch_one(&mut *admin)
    .await
    .map_err(|e| {
        Error::sql(
            format!("counting the sessions of {role}"),
            admin.database(),
            e,
        )
    })?;
    admin.close().await.ok();
    Ok(Sessions { all, landlord })
}

/// Ends every session of the tenant's role on this server (the admin role may: it is a member of the
/// tenant's role), waiting for each; returns how many were signalled.
pub async fn end_sessions(databases: &Databases, tenant: &TenantNames) -> Result<i64, Error> {
    let role = tenant.role();
    let mut admin = databases.admin().await?;
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid, $2))
           FROM pg_catalog.pg_stat_activity WHERE usename = $1",
    )
    .bind(role.as_str())
    .bind(TERMINATE_WAIT_MS)
    .fetch_one(&mut *admin)
    .await
    .map_err(|e| {
        Error::sql(
            format!("ending the sessions of {role}"),
            admin.database(),
            e,
        )
    })?;
    admin.close().await.ok();
    Ok(ended)
}
