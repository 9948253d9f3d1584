//! Looking into PostgreSQL from tests, as the superuser (the operator never gets it): inspection, set-up of
//! what an attacker would plant, and clean-up.

use std::str::FromStr;

use std::path::Path;
use std::process::Command;

use landlord::db;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};

use super::TestEnv;

pub fn options(database: &str) -> PgConnectOptions {
    PgConnectOptions::from_str(TestEnv::get().superuser_url())
        .expect("superuser URL")
        .database(database)
        .disable_statement_logging()
}

pub async fn connect(database: &str) -> PgConnection {
    PgConnection::connect_with(&options(database))
        .await
        .expect("connect as superuser")
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

pub async fn database_exists(name: &str) -> bool {
    found("SELECT 1 FROM pg_database WHERE datname = $1", name).await
}

pub async fn role_exists(name: &str) -> bool {
    found("SELECT 1 FROM pg_roles WHERE rolname = $1", name).await
}

async fn found(query: &'static str, name: &str) -> bool {
    let mut conn = connect("postgres").await;
    let row: Option<i32> = sqlx::query_scalar(query)
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    row.is_some()
}

/// Tables of the public schema, sorted.
pub async fn tables(database: &str) -> Vec<String> {
    strings(
        database,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .await
}

pub async fn columns(database: &str, table: &str) -> Vec<String> {
    text_rows(
        database,
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name = $1 ORDER BY 1",
        Some(table),
    )
    .await
}

/// Runs one query returning a single text column, in `database`.
pub async fn strings(database: &str, query: &'static str) -> Vec<String> {
    text_rows(database, query, None).await
}

async fn text_rows(database: &str, query: &'static str, bind: Option<&str>) -> Vec<String> {
    let mut conn = connect(database).await;
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
pub async fn superuser_exec(database: &str, statement: impl AsRef<str>) {
    let mut conn = connect(database).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.as_ref().to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// Drops `database` as the superuser, its sessions ended: as a DBA's mistake would.
pub async fn drop_database(database: &str) {
    superuser_exec(
        "postgres",
        format!("DROP DATABASE \"{database}\" WITH (FORCE)"),
    )
    .await;
}

/// Drops a tenant's database and role left behind by a test (Retain policies keep them on purpose).
pub async fn drop_tenant(database: &str) {
    let mut conn = connect("postgres").await;
    for statement in [
        format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS \"{database}\""),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

/// Drops `name` as database and role with the superuser, from a thread of its own so it also works while
/// a test's runtime unwinds.
pub fn drop_tenant_blocking(name: &str) {
    let owned = name.to_string();
    let done = std::thread::spawn(move || {
        let name = owned;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("cleanup runtime");
        runtime.block_on(async {
            let mut conn = connect("postgres").await;
            for statement in [
                format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                format!("DROP ROLE IF EXISTS \"{name}\""),
            ] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await
                    .expect("cleanup");
            }
            let _ = conn.close().await;
        })
    })
    .join();
    if done.is_err() && !std::thread::panicking() {
        panic!("cleanup of {name} failed");
    }
}

/// Tables of every schema but the catalogs, as `schema.table`, sorted.
pub async fn all_tables(database: &str) -> Vec<String> {
    let mut conn = connect(database).await;
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
pub async fn ledger_rows(database: &str, scope: &str) -> Vec<(String, i64)> {
    let mut conn = connect(database).await;
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
pub fn schema_dump(database: &str) -> String {
    let output = superuser_tool(
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

/// Runs one of PostgreSQL's client programs (`pg_dump`, `pg_restore`) as the superuser on `database`, with
/// `args`; panics with its error output when it fails. Returns what it printed.
pub fn superuser_tool(program: &str, database: &str, args: &[&str]) -> Vec<u8> {
    let installed = Path::new("/usr/lib/postgresql/15/bin").join(program);
    let program = if installed.exists() {
        installed
    } else {
        program.into()
    };
    let options = options(database);
    let output = Command::new(&program)
        .args(args)
        .args(["--host", options.get_host()])
        .args(["--port", &options.get_port().to_string()])
        .args(["--username", options.get_username(), "--dbname", database])
        .env("PGPASSWORD", superuser_password())
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

fn superuser_password() -> String {
    let url = TestEnv::get().superuser_url();
    // postgres://user:password@host:port/db
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, password)| password.to_string())
        .unwrap_or_default()
}
