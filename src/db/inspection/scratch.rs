//! Throwaway databases for `landlord catalog test`: created on the server of a URL whose role has
//! CREATEDB (optionally as a copy of another scratch database), and dropped with every session in them.
//! Names are `landlord_test_<random>_<suffix>`, so they never meet a tenant's `tenant_<slug>`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

use crate::db::Error;
use crate::db::connect::{Databases, DbConnection, Limits};
use crate::db::error::sqlstate;
use crate::db::ident::{Ident, sql};

/// Every scratch database name starts with this.
pub const SCRATCH_PREFIX: &str = "landlord_test_";

/// Tries of DROP DATABASE while an autovacuum worker is in the database.
const DROP_ATTEMPTS: u64 = 10;

/// A random run id for scratch names: 10 base-36 characters from the operating system's randomness.
pub fn scratch_run_id() -> Result<String, Error> {
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes).map_err(|e| Error::Randomness(e.to_string()))?;
    Ok(bytes
        .iter()
        .map(|b| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[usize::from(b % 36)]))
        .collect())
}

/// `landlord_test_<run>_<suffix>`, validated like every identifier.
pub fn scratch_name(run: &str, suffix: &str) -> Result<Ident, Error> {
    Ident::new(&format!("{SCRATCH_PREFIX}{run}_{suffix}"))
}

/// The server of `url`: `admin()` opens the URL's own database (where scratch databases are created and
/// dropped), `landlord()` the scratch database `name` (None: the URL's database too).
pub fn scratch_server(url: &str, name: Option<&Ident>) -> Result<Databases, Error> {
    let options = PgConnectOptions::from_str(url).map_err(|source| Error::InvalidUrl {
        which: "given",
        source,
    })?;
    let scratch = match name {
        None => url.to_string(),
        Some(name) => options.database(name.as_str()).to_url_lossy().to_string(),
    };
    let limits = Limits {
        max_connections: 2,
        landlord_pool: 1,
        ..Limits::default()
    };
    Databases::new(url, &scratch, limits)
}

/// CREATE DATABASE `name`, a copy of `template` when given (which must have no session open), else of
/// `template0`. Run on a connection to the URL's own database.
pub async fn create_scratch(
    maintenance: &mut DbConnection,
    name: &Ident,
    template: Option<&Ident>,
) -> Result<(), Error> {
    // From template0 unless told otherwise: nothing a DBA put in template1 gets in, and no session in
    // template1 (any login may open it) can block the copy.
    let source = template.map_or("template0".to_string(), |t| t.quoted());
    let statement = format!("CREATE DATABASE {} TEMPLATE {source}", name.quoted());
    sqlx::raw_sql(sql(statement))
        .execute(&mut **maintenance)
        .await
        .map(drop)
        .map_err(|e| {
            Error::sql(
                format!("creating scratch database {name}"),
                maintenance.database(),
                e,
            )
        })
}

/// DROP DATABASE IF EXISTS … WITH (FORCE): ends every session in it first.
pub async fn drop_scratch(maintenance: &mut DbConnection, name: &Ident) -> Result<(), Error> {
    let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", name.quoted());
    let mut attempt = 1;
    loop {
        match sqlx::raw_sql(sql(statement.clone()))
            .execute(&mut **maintenance)
            .await
        {
            Ok(_) => return Ok(()),
            // FORCE cannot end an autovacuum worker's session (it has no role): it is done in moments.
            Err(e) if sqlstate(&e).as_deref() == Some("42501") && attempt < DROP_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(Error::sql(
                    format!("dropping scratch database {name}"),
                    maintenance.database(),
                    e,
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_random_valid_names() {
        let a = scratch_run_id().unwrap();
        let b = scratch_run_id().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 10);
        let name = scratch_name(&a, "tenant").unwrap();
        assert!(name.as_str().starts_with(SCRATCH_PREFIX));
        assert!(scratch_name(&a, "Bad-Suffix").is_err());
    }
}
