//! Bounded connections: a small pool for the landlord database, and short-lived dedicated connections
//! (never a pool per tenant) for tenant, admin and migration work, all under one global limit.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db::error::sqlstate;
use crate::db::ident::{Ident, TenantNames};
use crate::db::migrating::ledger_copy::LedgerCopy;
use crate::db::migrating::plan::Track;
use crate::db::{Error, LOCK_WAIT, Password};

mod logins;

/// Every session says who it is, in `pg_stat_activity` and the server log.
const APPLICATION_NAME: &str = "landlord";

/// Settings of every operator session, in the startup packet: a session the operator left idle inside a
/// transaction is ended instead of holding locks, and the server notices a dead operator (a killed pod, a
/// lost node) within about a minute and releases its locks with its session.
const SESSION: [(&str, &str); 4] = [
    ("idle_in_transaction_session_timeout", "60s"),
    ("tcp_keepalives_idle", "30"),
    ("tcp_keepalives_interval", "10"),
    ("tcp_keepalives_count", "3"),
];

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Dedicated connections open at once (`LANDLORD_MAX_DB_CONNECTIONS`); callers wait for a free slot.
    pub max_connections: usize,
    /// Size of the landlord database pool (not counted in `max_connections`).
    pub landlord_pool: u32,
    /// How long to wait for a slot plus the connection itself.
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10,
            landlord_pool: 4,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// How to reach a PostgreSQL server tenant databases are placed on (besides the admin URL's own).
pub struct ServerAccess<'a> {
    /// The name Landlord's records place tenants under.
    pub name: &'a str,
    pub admin_url: &'a str,
    /// Host and port written into tenants' Secrets; None: the admin URL's.
    pub endpoint: Option<(String, u16)>,
    /// Connections open to this server at once, within the global limit; None: only the global limit.
    pub max_connections: Option<usize>,
}

/// Every database Landlord talks to on one server, besides the landlord database (shared by every
/// server's handle, as is the global connection limit). Options hold passwords, so Debug shows only names.
pub struct Databases {
    /// The server's name in Landlord's records (`default`: the admin URL's).
    server: String,
    admin: PgConnectOptions,
    endpoint: Option<(String, u16)>,
    landlord: PgConnectOptions,
    landlord_pool: PgPool,
    /// The global limit, shared by every server.
    permits: Arc<Semaphore>,
    /// This server's own budget, if it has one.
    server_permits: Option<Arc<Semaphore>>,
    limits: Limits,
}

impl fmt::Debug for Databases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Databases")
            .field("server", &self.server)
            .field("admin_database", &self.admin.get_database())
            .field("landlord_database", &self.landlord.get_database())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Databases {
    /// Parses the URLs and prepares the (lazy) landlord pool; nothing connects yet, so the operator starts
    /// while PostgreSQL is down. Must be called inside a Tokio runtime.
    pub fn new(admin_url: &str, landlord_url: &str, limits: Limits) -> Result<Databases, Error> {
        let landlord = parse("landlord", landlord_url)?
            .application_name(APPLICATION_NAME)
            .options(SESSION)
            .options(lock_timeout());
        let landlord_pool = PgPoolOptions::new()
            .max_connections(limits.landlord_pool.max(1))
            .acquire_timeout(limits.connect_timeout)
            .connect_lazy_with(landlord.clone());
        Ok(Databases {
            server: DEFAULT_SERVER.to_string(),
            admin: admin_options(admin_url)?,
            endpoint: None,
            landlord,
            landlord_pool,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            server_permits: None,
            limits,
        })
    }

    /// The handle of another server: the same landlord database and global limit, its own admin URL and
    /// budget. Nothing connects yet.
    pub fn on_server(&self, access: ServerAccess<'_>) -> Result<Databases, Error> {
        Ok(Databases {
            server: access.name.to_string(),
            admin: admin_options(access.admin_url)?,
            endpoint: access.endpoint,
            landlord: self.landlord.clone(),
            landlord_pool: self.landlord_pool.clone(),
            permits: self.permits.clone(),
            server_permits: access
                .max_connections
                .map(|max| Arc::new(Semaphore::new(max.max(1)))),
            limits: self.limits,
        })
    }

    /// The server's name in Landlord's records.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// `server_version` of the server, and whether the admin role is a superuser, holds CREATEDB and
    /// CREATEROLE, read from the maintenance database.
    pub async fn admin_role(&self) -> Result<AdminRole, Error> {
        let mut admin = self.admin().await?;
        let row = sqlx::query(
            "SELECT pg_catalog.current_setting('server_version') AS version, rolsuper, rolcreatedb, rolcreaterole
               FROM pg_catalog.pg_roles WHERE rolname = current_user",
        )
        .fetch_one(&mut *admin)
        .await
        .map_err(|e| Error::sql("reading the admin role's privileges", admin.database(), e));
        admin.close().await.ok();
        let row = row?;
        Ok(AdminRole {
            server_version: row.get("version"),
            superuser: row.get("rolsuper"),
            create_database: row.get("rolcreatedb"),
            create_role: row.get("rolcreaterole"),
        })
    }

    /// For queries on the landlord database's own tables. Never for migrations: use `landlord`.
    pub fn landlord_pool(&self) -> &PgPool {
        &self.landlord_pool
    }

    /// Whether PUBLIC holds CONNECT on the landlord database, so that any tenant's credentials open it
    /// (PostgreSQL grants it by default; the landlord database must revoke it).
    pub async fn landlord_open_to_public(&self) -> Result<bool, Error> {
        sqlx::query_scalar(
            "SELECT pg_catalog.has_database_privilege('public', pg_catalog.current_database(), 'CONNECT')",
        )
        .fetch_one(&self.landlord_pool)
        .await
        .map_err(|e| {
            Error::sql(
                "checking who may connect",
                self.landlord.get_database().unwrap_or("landlord"),
                e,
            )
        })
    }

    /// Whether PUBLIC holds CONNECT on the admin URL's database (the maintenance database, e.g. `postgres`),
    /// so that any tenant's credentials open it (PostgreSQL grants it by default; it should be revoked).
    pub async fn maintenance_open_to_public(&self) -> Result<bool, Error> {
        let mut admin = self.admin().await?;
        let open = sqlx::query_scalar(
            "SELECT pg_catalog.has_database_privilege('public', pg_catalog.current_database(), 'CONNECT')",
        )
        .fetch_one(&mut *admin)
        .await
        .map_err(|e| Error::sql("checking who may connect", admin.database(), e));
        admin.close().await.ok();
        open
    }

    /// A dedicated connection to the landlord database, for the migration engine.
    pub async fn landlord(&self) -> Result<DbConnection, Error> {
        self.open(self.landlord.clone()).await
    }

    /// A dedicated connection to the admin URL's database, for creating and dropping tenants.
    pub async fn admin(&self) -> Result<DbConnection, Error> {
        self.open(self.admin.clone()).await
    }

    /// A dedicated connection to `database` as the admin role: for Landlord's template and a fresh clone of
    /// it before its tenant could ever connect, never for a tenant database that is the tenant's.
    pub(crate) async fn admin_in(&self, database: &Ident) -> Result<DbConnection, Error> {
        self.open(self.admin.clone().database(database.as_str()))
            .await
    }

    /// A dedicated connection to the tenant's database, logged in as the tenant's own role: whatever the
    /// tenant planted there (views, functions, triggers, role or database settings) runs with no privilege
    /// the tenant does not already have. `search_path` is pinned in the startup packet, which outranks
    /// `ALTER ROLE/DATABASE ... SET`. Migrations through it keep Landlord's copy of the ledger.
    pub async fn tenant(
        &self,
        tenant: &TenantNames,
        password: &Password,
    ) -> Result<DbConnection, Error> {
        let options = self
            .admin
            .clone()
            .username(tenant.role().as_str())
            .password(password.expose())
            .database(tenant.database().as_str())
            .options([("search_path", "public")]);
        let mut conn = match self.open(options).await {
            Ok(conn) => conn,
            Err(Error::Connect { database, source }) => {
                return Err(match sqlstate(&source).as_deref() {
                    Some(INVALID_PASSWORD) => Error::TenantLoginRefused { database },
                    // The server answered that there is no such database: confirmed from the catalog
                    // before anyone is told it is gone (no slot is held here, so opening one is safe).
                    Some(INVALID_CATALOG_NAME)
                        if !self.database_exists(tenant.database()).await? =>
                    {
                        Error::DatabaseMissing { database }
                    }
                    _ => Error::Connect { database, source },
                });
            }
            Err(other) => return Err(other),
        };
        conn.ledger_copy = Some(LedgerCopy::new(self.landlord_pool.clone(), tenant.slug()));
        Ok(conn)
    }

    /// Whether `database` is in the server's catalog, read from the maintenance database as the admin role.
    pub async fn database_exists(&self, database: &Ident) -> Result<bool, Error> {
        let mut admin = self.admin().await?;
        let exists = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1)",
        )
        .bind(database.as_str())
        .fetch_one(&mut *admin)
        .await
        .map_err(|e| {
            Error::sql(
                format!("looking up database {database}"),
                admin.database(),
                e,
            )
        });
        admin.close().await.ok();
        exists
    }

    /// Landlord's copy of `tenant`'s ledger, outside any connection (a database created anew forgets it).
    pub(crate) fn ledger_copy(&self, tenant: &TenantNames) -> LedgerCopy {
        LedgerCopy::new(self.landlord_pool.clone(), tenant.slug())
    }

    /// Dedicated connections that can still be opened without waiting.
    pub fn available_connections(&self) -> usize {
        self.permits.available_permits()
    }

    async fn open(&self, options: PgConnectOptions) -> Result<DbConnection, Error> {
        let database = options.get_database().unwrap_or("postgres").to_string();
        let timeout = self.limits.connect_timeout;
        let timed_out = || Error::ConnectTimeout {
            database: database.clone(),
            seconds: timeout.as_secs(),
        };
        let opened = tokio::time::timeout(timeout, async {
            // This server's slot first: waiting for a busy server holds none of the global ones.
            let server_permit = match &self.server_permits {
                Some(permits) => permits.clone().acquire_owned().await.ok().map(Some),
                None => Some(None),
            };
            let permit = self.permits.clone().acquire_owned().await.ok();
            let conn = PgConnection::connect_with(&options).await;
            (server_permit, permit, conn)
        })
        .await;
        let (server_permit, permit, conn) = opened.map_err(|_| timed_out())?;
        let server_permit = server_permit.ok_or_else(timed_out)?;
        let permit = permit.ok_or_else(timed_out)?;
        let conn = conn.map_err(|source| Error::Connect {
            database: database.clone(),
            source,
        })?;
        Ok(DbConnection {
            conn,
            database,
            advisory_lock: None,
            ledger_copy: None,
            _permits: (permit, server_permit),
        })
    }
}

/// The server's name for the admin URL of `LANDLORD_ADMIN_DATABASE_URL`, in Landlord's records.
const DEFAULT_SERVER: &str = "default";

fn parse(which: &'static str, url: &str) -> Result<PgConnectOptions, Error> {
    PgConnectOptions::from_str(url).map_err(|source| Error::InvalidUrl { which, source })
}

/// The startup packet's `lock_timeout`, which outranks `ALTER ROLE/DATABASE … SET`.
fn lock_timeout() -> [(&'static str, String); 1] {
    [("lock_timeout", format!("{}ms", LOCK_WAIT.as_millis()))]
}

/// The admin connection sends role DDL: its statements stay out of the logs.
fn admin_options(url: &str) -> Result<PgConnectOptions, Error> {
    Ok(parse("admin", url)?
        .disable_statement_logging()
        .application_name(APPLICATION_NAME)
        .options(SESSION)
        .options(lock_timeout()))
}

/// What the admin role of a server may do, and the server's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRole {
    pub server_version: String,
    pub superuser: bool,
    pub create_database: bool,
    pub create_role: bool,
}

/// SQLSTATE of a refused password (`invalid_password`).
const INVALID_PASSWORD: &str = "28P01";
/// SQLSTATE of a connection to a database that does not exist (`invalid_catalog_name`).
const INVALID_CATALOG_NAME: &str = "3D000";

/// A dedicated connection holding one slot of the global limit until dropped or closed. Migration locks
/// are session-level, so they live here: closing or dropping the connection ends the session and with it
/// any lock a cancelled call left behind.
pub struct DbConnection {
    conn: PgConnection,
    database: String,
    /// Advisory lock key this session may hold (set before asking, cleared after releasing).
    pub(crate) advisory_lock: Option<i64>,
    /// Set on tenant connections: the migration engine keeps it in step with the tenant's ledger.
    pub(crate) ledger_copy: Option<LedgerCopy>,
    /// The global slot, and this server's if it has a budget.
    _permits: (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>),
}

impl DbConnection {
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Landlord's copy follows the tenant scope of a tenant connection: the tracks a tenant database holds.
    pub(crate) fn ledger_copy_of(&self, track: &Track<'_>) -> Option<LedgerCopy> {
        self.ledger_copy
            .clone()
            .filter(|_| track.scope == crate::catalog::Scope::Tenant)
    }

    /// Ends the session (and frees the slot). Dropping does the same without waiting for the server.
    pub async fn close(self) -> Result<(), Error> {
        let database = self.database;
        self.conn
            .close()
            .await
            .map_err(|e| Error::sql("closing the connection", &database, e))
    }
}

impl Deref for DbConnection {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for DbConnection {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl fmt::Debug for DbConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConnection")
            .field("database", &self.database)
            .field("advisory_lock", &self.advisory_lock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn debug_never_shows_the_urls_passwords() {
        let databases = Databases::new(
            "postgres://admin:s3cret-admin@localhost:1/postgres",
            "postgres://landlord:s3cret-landlord@localhost:1/landlord",
            Limits::default(),
        )
        .unwrap();
        let shown = format!("{databases:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
