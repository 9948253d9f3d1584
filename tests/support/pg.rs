//! Looking into PostgreSQL from tests, as the superuser (the operator never gets it): inspection, set-up of
//! what an attacker would plant, and clean-up. The environment has two servers: `Server::One` holds the
//! landlord database, `Server::Two` only what tenants place there. The free functions are server 1's, as most
//! tests use them; `Server::Two.database_exists(..)` and the like ask server 2.

use std::str::FromStr;

use std::path::Path;
use std::process::Command;

use landlord::db;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};

use super::{TestEnv, repo_root};

/// One of the environment's PostgreSQL servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// `LANDLORD_ADMIN_DATABASE_URL`'s server, with the landlord database.
    One,
    /// The second server: the admin role only, no landlord database.
    Two,
}

impl Server {
    pub fn superuser_url(self) -> &'static str {
        match self {
            Server::One => TestEnv::get().superuser_url(),
            Server::Two => TestEnv::get().server2_superuser_url(),
        }
    }

    /// The admin role's URL (CREATEDB, CREATEROLE), as the operator gets it.
    pub fn admin_url(self) -> &'static str {
        match self {
            Server::One => TestEnv::get().admin_url(),
            Server::Two => TestEnv::get().server2_admin_url(),
        }
    }

    pub fn options(self, database: &str) -> PgConnectOptions {
        PgConnectOptions::from_str(self.superuser_url())
            .expect("superuser URL")
            .database(database)
            .disable_statement_logging()
    }

    pub async fn connect(self, database: &str) -> PgConnection {
        PgConnection::connect_with(&self.options(database))
            .await
            .unwrap_or_else(|e| panic!("connect to server {self:?} as superuser: {e}"))
    }

    pub async fn database_exists(self, name: &str) -> bool {
        self.found("SELECT 1 FROM pg_database WHERE datname = $1", name)
            .await
    }

    pub async fn role_exists(self, name: &str) -> bool {
        self.found("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
            .await
    }

    async fn found(self, query: &'static str, name: &str) -> bool {
        let mut conn = self.connect("postgres").await;
        let row: Option<i32> = sqlx::query_scalar(query)
            .bind(name)
            .fetch_optional(&mut conn)
            .await
            .unwrap();
        row.is_some()
    }

    /// Tables of the public schema, sorted.
    pub async fn tables(self, database: &str) -> Vec<String> {
        self.strings(
            database,
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .await
    }

    pub async fn columns(self, database: &str, table: &str) -> Vec<String> {
        self.text_rows(
            database,
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY 1",
            Some(table),
        )
        .await
    }

    /// Runs one query returning a single text column, in `database`.
    pub async fn strings(self, database: &str, query: &'static str) -> Vec<String> {
        self.text_rows(database, query, None).await
    }

    async fn text_rows(
        self,
        database: &str,
        query: &'static str,
        bind: Option<&str>,
    ) -> Vec<String> {
        let mut conn = self.connect(database).await;
        let mut query = sqlx::query(query);
        if let Some(value) = bind {
            query = query.bind(value.to_string());
        }
        query
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.get(0))
            .collect()
    }

    /// Runs `statement` (a test's own SQL) in `database` as the superuser.
    pub async fn superuser_exec(self, database: &str, statement: impl AsRef<str>) {
        let mut conn = self.connect(database).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_ref().to_string()))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }

    /// Drops `database` as the superuser, its sessions ended: as a DBA's mistake would.
    pub async fn drop_database(self, database: &str) {
        self.superuser_exec(
            "postgres",
            format!("DROP DATABASE \"{database}\" WITH (FORCE)"),
        )
        .await;
    }

    /// Drops a tenant's database and role left behind by a test (Retain policies keep them on purpose).
    pub async fn drop_tenant(self, database: &str) {
        let mut conn = self.connect("postgres").await;
        for statement in [
            format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"),
            format!("DROP ROLE IF EXISTS \"{database}\""),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let _ = conn.close().await;
    }

    /// Drops `name` as database and role with the superuser, from a thread of its own so it also works
    /// while a test's runtime unwinds.
    pub fn drop_tenant_blocking(self, name: &str) {
        let owned = name.to_string();
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime")
                .block_on(self.drop_tenant(&owned))
        })
        .join();
        if done.is_err() && !std::thread::panicking() {
            panic!("cleanup of {name} failed");
        }
    }

    /// Tables of every schema but the catalogs, as `schema.table`, sorted.
    pub async fn all_tables(self, database: &str) -> Vec<String> {
        let mut conn = self.connect(database).await;
        let tables = sqlx::query_scalar(
            "SELECT schemaname || '.' || tablename FROM pg_tables
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )
        .fetch_all(&mut conn)
        .await
        .expect("list tables");
        let _ = conn.close().await;
        tables
    }

    /// `(module, version)` rows of the ledger, for one scope.
    pub async fn ledger_rows(self, database: &str, scope: &str) -> Vec<(String, i64)> {
        let mut conn = self.connect(database).await;
        let rows = sqlx::query_as(
            "SELECT module, version FROM landlord_migrations.ledger WHERE scope = $1
             ORDER BY module, version",
        )
        .bind(scope)
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        let _ = conn.close().await;
        rows
    }

    /// `pg_dump --schema-only` of `database`, without the ledger's schema.
    pub fn schema_dump(self, database: &str) -> String {
        let output = self.superuser_tool(
            "pg_dump",
            database,
            &["--schema-only", "--exclude-schema", db::LEDGER_SCHEMA],
        );
        let dump = String::from_utf8(output).expect("pg_dump output is UTF-8");
        // `\restrict <random key>` differs on every run (CVE-2025-8714 hardening).
        dump.lines()
            .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// Runs one of PostgreSQL's client programs (`pg_dump`, `pg_restore`) as the superuser on `database`,
    /// with `args`; panics with its error output when it fails. Returns what it printed.
    pub fn superuser_tool(self, program: &str, database: &str, args: &[&str]) -> Vec<u8> {
        let installed = Path::new("/usr/lib/postgresql/15/bin").join(program);
        let program = if installed.exists() {
            installed
        } else {
            program.into()
        };
        let options = self.options(database);
        let output = Command::new(&program)
            .args(args)
            .args(["--host", options.get_host()])
            .args(["--port", &options.get_port().to_string()])
            .args(["--username", options.get_username(), "--dbname", database])
            .env("PGPASSWORD", self.superuser_password())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        assert!(
            output.status.success(),
            "{} failed: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    fn superuser_password(self) -> String {
        // postgres://user:password@host:port/db
        self.superuser_url()
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password.to_string())
            .unwrap_or_default()
    }
}

/// Stops server 2 in immediate mode (as by a crash) until `start_server2`: `scripts/dev stop postgres 2` on
/// this run's environment. Blocks the thread. Every test sharing the environment sees server 2 down meanwhile.
pub fn stop_server2() {
    scripts_dev(&["stop", "postgres", "2"]);
}

/// Starts server 2 again on its port after `stop_server2` (a no-op when it runs). Blocks the thread.
pub fn start_server2() {
    scripts_dev(&["start", "postgres", "2"]);
}

/// Runs `scripts/dev` with `args`; it inherits LANDLORD_DEV_DIR, so it acts on the environment TestEnv reads.
fn scripts_dev(args: &[&str]) {
    let status = Command::new(repo_root().join("scripts/dev"))
        .args(args)
        .status()
        .expect("run scripts/dev");
    assert!(status.success(), "scripts/dev {} failed", args.join(" "));
}

/// Waits until `uri` (a tenant's credentials) logs in, for at most a minute: the operator sets a role's
/// password a moment after its Secret changes.
pub async fn until_login_works(uri: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match PgConnection::connect(uri).await {
            Ok(conn) => {
                conn.close().await.expect("close");
                return;
            }
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            }
            Err(err) => panic!("{what} never worked: {err}"),
        }
    }
}

// Server 1's, under the names most tests use.

pub fn options(database: &str) -> PgConnectOptions {
    Server::One.options(database)
}

pub async fn connect(database: &str) -> PgConnection {
    Server::One.connect(database).await
}

pub async fn database_exists(name: &str) -> bool {
    Server::One.database_exists(name).await
}

pub async fn role_exists(name: &str) -> bool {
    Server::One.role_exists(name).await
}

pub async fn tables(database: &str) -> Vec<String> {
    Server::One.tables(database).await
}

pub async fn columns(database: &str, table: &str) -> Vec<String> {
    Server::One.columns(database, table).await
}

pub async fn strings(database: &str, query: &'static str) -> Vec<String> {
    Server::One.strings(database, query).await
}

pub async fn superuser_exec(database: &str, statement: impl AsRef<str>) {
    Server::One.superuser_exec(database, statement).await
}

pub async fn drop_database(database: &str) {
    Server::One.drop_database(database).await
}

pub async fn drop_tenant(database: &str) {
    Server::One.drop_tenant(database).await
}

pub fn drop_tenant_blocking(name: &str) {
    Server::One.drop_tenant_blocking(name)
}

pub async fn all_tables(database: &str) -> Vec<String> {
    Server::One.all_tables(database).await
}

pub async fn ledger_rows(database: &str, scope: &str) -> Vec<(String, i64)> {
    Server::One.ledger_rows(database, scope).await
}

pub fn schema_dump(database: &str) -> String {
    Server::One.schema_dump(database)
}

pub fn superuser_tool(program: &str, database: &str, args: &[&str]) -> Vec<u8> {
    Server::One.superuser_tool(program, database, args)
}
