//! Looking into PostgreSQL from end-to-end tests, as the superuser (the operator never gets it).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, Row};

use super::TestEnv;

pub async fn connect(database: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(TestEnv::get().superuser_url())
        .expect("superuser URL")
        .database(database)
        .disable_statement_logging();
    PgConnection::connect_with(&options)
        .await
        .expect("connect as superuser")
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
