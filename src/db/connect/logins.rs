//! The logins that are not Landlord's own, on a server Landlord administers: the tenant's application (what
//! its Secret holds), and a move's mover, in a session or through PostgreSQL's client programs.

use super::{APPLICATION_NAME, Databases, DbConnection};
use crate::db::credentials::TenantCredentials;
use crate::db::ident::{Ident, TenantNames};
use crate::db::{Error, Password};

impl Databases {
    /// What a tenant's application needs to reach its own database as its own role.
    pub fn tenant_credentials(
        &self,
        tenant: &TenantNames,
        password: Password,
    ) -> TenantCredentials {
        let (host, port) = self
            .endpoint
            .clone()
            .unwrap_or_else(|| (self.admin.get_host().to_string(), self.admin.get_port()));
        TenantCredentials {
            host,
            port,
            database: tenant.database().to_string(),
            username: tenant.role().to_string(),
            password,
        }
    }

    /// A dedicated connection to `tenant`'s database as `login` (a move's mover: a member of the tenant's role
    /// and of nothing else), acting as the tenant's role from the startup packet on, so that everything it
    /// reads or makes is read or made by the tenant's role; `search_path` pinned as for `tenant`.
    pub(crate) async fn as_member(
        &self,
        tenant: &TenantNames,
        login: &Ident,
        password: &Password,
    ) -> Result<DbConnection, Error> {
        let options = self
            .admin
            .clone()
            .username(login.as_str())
            .password(password.expose())
            .database(tenant.database().as_str())
            .options([("search_path", "public"), ("role", tenant.role().as_str())]);
        self.open(options).await
    }

    /// The libpq environment of a PostgreSQL client program (pg_dump, pg_restore) logging in to `database` as
    /// `login` on this server: the admin URL's host, port and TLS mode. The password goes in the environment,
    /// never on a command line.
    pub(crate) fn client_env(
        &self,
        login: &Ident,
        password: &Password,
        database: &Ident,
    ) -> Vec<(&'static str, String)> {
        use sqlx::postgres::PgSslMode;
        let host = match self.admin.get_socket() {
            Some(socket) => socket.display().to_string(),
            None => self.admin.get_host().to_string(),
        };
        let ssl = match self.admin.get_ssl_mode() {
            PgSslMode::Disable => "disable",
            PgSslMode::Allow => "allow",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        };
        vec![
            ("PGHOST", host),
            ("PGPORT", self.admin.get_port().to_string()),
            ("PGDATABASE", database.to_string()),
            ("PGUSER", login.to_string()),
            ("PGPASSWORD", password.expose().to_string()),
            ("PGSSLMODE", ssl.to_string()),
            ("PGAPPNAME", format!("{APPLICATION_NAME}-move")),
            (
                "PGCONNECT_TIMEOUT",
                self.limits.connect_timeout.as_secs().to_string(),
            ),
        ]
    }
}
