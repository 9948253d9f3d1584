//! The tenant database made without the template (template off, or not available): like a clone, nobody
//! but its owner can ever connect to it, from the moment it exists.
//!
//! `CREATE DATABASE … ALLOW_CONNECTIONS false` (no login at all, whatever its privileges), then in one
//! transaction the mark, `REVOKE CONNECT, TEMPORARY … FROM PUBLIC` and `ALLOW_CONNECTIONS true`: when
//! connections open, PUBLIC's are gone. It is copied from `template0`, which no session can be in, so that
//! an idle session in `template1` cannot block it. A crash before the transaction leaves the database
//! closed, which the next call finishes the same way.

use crate::db::Error;
use crate::db::connect::DbConnection;
use crate::db::ident::{Ident, TenantNames, quote_literal};
use crate::db::migrating::ledger_copy::LedgerCopy;
use crate::db::provisioning::owner::{Found, TenantOwner};
use crate::db::provisioning::provision::Ensured;
use crate::db::provisioning::provision::{exec, is_duplicate, refused};

/// How long to wait for each foreign session to end once signalled.
const TERMINATE_WAIT_MS: i64 = 5_000;

/// `tenant_<slug>` owned by the tenant's role, with CONNECT and TEMPORARY revoked from PUBLIC so that
/// no other tenant's credentials open it. An existing database is adopted only if that role (already
/// checked for the owner's mark by `ensure_tenant_role`) owns it: nobody else can create one it owns. An
/// absent one is created only if `may_create` (else `DatabaseMissing`), decided on the same look that
/// found it absent, so a database dropped while a reconcile runs is never made again in its place.
pub async fn ensure_tenant_database(
    admin: &mut DbConnection,
    tenant: &TenantNames,
    owner: &TenantOwner,
    may_create: bool,
) -> Result<Ensured, Error> {
    Ok(ensure_database(admin, tenant, owner, may_create, None)
        .await?
        .0)
}

/// `ensure_tenant_database`, and whether connections were opened just now (a database created now, or one
/// a crash left closed): then no migration has run in it yet. `copy`, Landlord's copy of the tenant's
/// ledger, is forgotten before a database is created: a crash after the CREATE cannot leave an earlier
/// database's history attached to the new one.
pub(super) async fn ensure_database(
    admin: &mut DbConnection,
    tenant: &TenantNames,
    owner: &TenantOwner,
    may_create: bool,
    copy: Option<&LedgerCopy>,
) -> Result<(Ensured, bool), Error> {
    let database = tenant.database();
    match database_state(admin, database).await? {
        Some((db_owner, _)) if db_owner != tenant.role().as_str() => {
            Err(refused("database", database, Found::OwnedByRole(db_owner)))
        }
        Some((_, true)) => {
            let revoke = format!(
                "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
                database.quoted()
            );
            exec(admin, revoke).await.map_err(|e| {
                let action = format!("revoking PUBLIC access to {database}");
                Error::sql(action, admin.database(), e)
            })?;
            Ok((Ensured::Existed, false))
        }
        // Ours and closed: a crash came between CREATE and opening it (or its owner closed it).
        Some((_, false)) => {
            open(admin, tenant, owner).await?;
            Ok((Ensured::Existed, true))
        }
        None if !may_create => Err(Error::DatabaseMissing {
            database: database.to_string(),
        }),
        None => {
            if let Some(copy) = copy {
                copy.forget_all().await?;
            }
            // CREATE DATABASE cannot run in a transaction; the simple protocol sends it alone.
            let create = format!(
                "CREATE DATABASE {} OWNER {} TEMPLATE template0 ALLOW_CONNECTIONS false",
                database.quoted(),
                tenant.role().quoted()
            );
            match exec(admin, create).await {
                Ok(()) => {}
                Err(e) if is_duplicate(&e) => {
                    return Box::pin(ensure_database(admin, tenant, owner, may_create, copy)).await;
                }
                Err(e) => {
                    let action = format!("creating database {database}");
                    return Err(Error::sql(action, admin.database(), e));
                }
            }
            open(admin, tenant, owner).await?;
            Ok((Ensured::Created, true))
        }
    }
}

/// Marked (for people reading `\l+`; the mark that counts is the owning role's), closed to PUBLIC and
/// opened, in one transaction (statements of one simple query).
async fn open(
    admin: &mut DbConnection,
    tenant: &TenantNames,
    owner: &TenantOwner,
) -> Result<(), Error> {
    let database = tenant.database();
    let statement = format!(
        "COMMENT ON DATABASE {database} IS {mark}; \
         REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC; \
         ALTER DATABASE {database} ALLOW_CONNECTIONS true",
        database = database.quoted(),
        mark = quote_literal(&owner.mark())?,
    );
    exec(admin, statement).await.map_err(|e| {
        let action = format!("opening database {database} to its role alone");
        Error::sql(action, admin.database(), e)
    })
}

/// Ends every session in the tenant database whose role is not the tenant's own, waiting for each to end.
/// The admin role may end sessions of roles it is a member of, which every tenant role is (`GRANT … TO
/// CURRENT_USER`); a superuser's session (a DBA's) it may not end, and leaves, with a warning.
pub(super) async fn end_foreign_sessions(
    admin: &mut DbConnection,
    tenant: &TenantNames,
) -> Result<(), Error> {
    let database = tenant.database();
    let ended: Vec<(String, bool)> = sqlx::query_as(
        "SELECT r.rolname::text,
                CASE WHEN NOT r.rolsuper AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')
                     THEN pg_catalog.pg_terminate_backend(a.pid, $3) ELSE false END
           FROM pg_catalog.pg_stat_activity a JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid
          WHERE a.datname = $1 AND r.rolname <> $2",
    )
    .bind(database.as_str())
    .bind(tenant.role().as_str())
    .bind(TERMINATE_WAIT_MS)
    .fetch_all(&mut **admin)
    .await
    .map_err(|e| {
        let action = format!("ending other roles' sessions in {database}");
        Error::sql(action, admin.database(), e)
    })?;
    for (role, terminated) in ended {
        if terminated {
            tracing::warn!(%database, %role, "ended a session of another role in a new tenant database");
        } else {
            tracing::warn!(%database, %role, "a session of another role is in a new tenant database and could not be ended");
        }
    }
    Ok(())
}

/// The database's owner and whether it allows connections; None when it does not exist.
async fn database_state(
    admin: &mut DbConnection,
    database: &Ident,
) -> Result<Option<(String, bool)>, Error> {
    sqlx::query_as(
        "SELECT pg_catalog.pg_get_userbyid(datdba)::text, datallowconn
           FROM pg_catalog.pg_database WHERE datname = $1",
    )
    .bind(database.as_str())
    .fetch_optional(&mut **admin)
    .await
    .map_err(|e| {
        let action = format!("looking up database {database}");
        Error::sql(action, admin.database(), e)
    })
}
