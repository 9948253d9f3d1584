//! Extensions in a tenant database, created by the tenant's own role: PostgreSQL lets a database owner create
//! the extensions it marks trusted (ltree, btree_gin, …); an untrusted one needs a superuser and is refused
//! for good rather than retried.

use std::collections::BTreeMap;

use crate::db::Error;
use crate::db::connect::{Databases, DbConnection};
use crate::db::error::sqlstate;
use crate::db::ident::{Ident, sql};

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
        // Schema-qualified: the tenant may have planted look-alikes in public.
        let (installed, trusted): (bool, Option<bool>) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = $1),
                    (SELECT v.trusted FROM pg_catalog.pg_available_extension_versions v
                       JOIN pg_catalog.pg_available_extensions a
                         ON a.name = v.name AND a.default_version = v.version
                      WHERE v.name = $1)",
        )
        .bind(extension.as_str())
        .fetch_one(&mut **tenant)
        .await
        .map_err(|e| Error::sql("listing available extensions", &database, e))?;
        match trusted {
            _ if installed => continue,
            None => {
                return Err(unavailable(
                    "it is not installed on the PostgreSQL server".into(),
                ));
            }
            // Only a superuser can create it: refused for good, not retried.
            Some(false) => {
                return Err(Error::ExtensionUntrusted {
                    extension: extension.to_string(),
                    database: database.clone(),
                });
            }
            Some(true) => {}
        }
        let create = format!("CREATE EXTENSION IF NOT EXISTS {}", extension.quoted());
        match exec(tenant, create).await {
            Ok(()) => {}
            // A broken package lacks its files.
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

/// Which of `extensions` the server has, and whether each is trusted (its default version's
/// `pg_available_extension_versions.trusted`): read through the admin connection on the maintenance database,
/// so that a Tenant asking for one it could never create is refused before its role and database exist.
/// Missing from the map: not installed on the server.
pub async fn available_extensions(
    databases: &Databases,
    extensions: &[Ident],
) -> Result<BTreeMap<String, bool>, Error> {
    let names: Vec<&str> = extensions.iter().map(Ident::as_str).collect();
    let mut admin = databases.admin().await?;
    let database = admin.database().to_string();
    let rows: Result<Vec<(String, bool)>, _> = sqlx::query_as(
        "SELECT v.name::text, v.trusted FROM pg_catalog.pg_available_extension_versions v
           JOIN pg_catalog.pg_available_extensions a ON a.name = v.name AND a.default_version = v.version
          WHERE v.name = ANY($1::text[])",
    )
    .bind(&names)
    .fetch_all(&mut *admin)
    .await;
    admin.close().await.ok();
    let rows = rows.map_err(|e| Error::sql("listing available extensions", &database, e))?;
    Ok(rows.into_iter().collect())
}

async fn exec(conn: &mut DbConnection, statement: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql(statement))
        .execute(&mut **conn)
        .await
        .map(drop)
}
