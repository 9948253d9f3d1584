//! Helpers for the tests of `landlord::db`: connections from the test environment, migration sets built
//! in code, and tenants that drop their database and role when the test ends, even when it fails.

use std::path::PathBuf;
use std::time::Duration;

use landlord::catalog::{Catalog, Migration, MigrationScript, MigrationSet};
use landlord::db::{
    self, Databases, Ensured, Ident, Limits, Password, Provisioned, Templates, TenantNames,
    TenantOwner, TenantRequest,
};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};

use super::{TestEnv, repo_root, unique_slug};

pub fn limits() -> Limits {
    Limits {
        max_connections: 8,
        landlord_pool: 2,
        connect_timeout: Duration::from_secs(20),
    }
}

pub fn databases() -> Databases {
    let env = TestEnv::get();
    Databases::new(env.admin_url(), env.landlord_url(), limits()).expect("database URLs")
}

/// The landlord database's schema, as the operator migrates it at start: tenant connections keep
/// Landlord's copy of their ledger there. Idempotent (the engine locks and skips what is applied).
pub async fn landlord_schema(databases: &Databases) {
    let catalog = core_catalog();
    let track = db::Track::core(&catalog, landlord::catalog::Scope::Landlord);
    let mut conn = databases.landlord().await.expect("landlord connection");
    db::Migrator::new()
        .apply(&mut conn, &track, catalog.core_landlord.latest())
        .await
        .expect("migrate the landlord database");
    conn.close().await.expect("close");
}

/// A migration as the catalog would load it from `<version>_<description>.up.sql` (+ `.down.sql`).
pub fn migration(version: i64, description: &str, up: &str, down: Option<&str>) -> Migration {
    let script = |sql: &str, side: &str| {
        MigrationScript::new(
            sql.to_string(),
            PathBuf::from(format!("fixtures/{version}_{description}.{side}.sql")),
        )
    };
    Migration {
        version,
        description: description.to_string(),
        checksum: Sha256::digest(up.as_bytes()).into(),
        up: script(up, "up"),
        down: down.map(|sql| script(sql, "down")),
    }
}

pub fn set(mut migrations: Vec<Migration>) -> MigrationSet {
    migrations.sort_by_key(|m| m.version);
    MigrationSet { migrations }
}

/// The project's core migrations (`migrations/`), through the real catalog loader.
pub fn core_catalog() -> Catalog {
    let no_modules = tempfile::tempdir().expect("temp dir");
    Catalog::load(no_modules.path(), &repo_root().join("migrations")).expect("core migrations load")
}

/// A provisioned tenant of one test. Dropped (database with FORCE, then role) when it goes out of scope.
pub struct TestTenant {
    pub names: TenantNames,
    pub owner: TenantOwner,
    pub password: Password,
}

/// The Tenant a test provisions for: its own UID, namespace `db-tests`, name `name`.
pub fn owner(name: &str) -> TenantOwner {
    TenantOwner {
        uid: super::unique("uid"),
        namespace: "db-tests".into(),
        name: name.replace('_', "-"),
    }
}

impl TestTenant {
    /// Names, owner and password of a tenant not provisioned yet (dropped at the end all the same).
    pub fn unprovisioned(prefix: &str) -> TestTenant {
        let names = TenantNames::new(&unique_slug(prefix)).expect("valid slug");
        TestTenant {
            owner: owner(names.slug()),
            names,
            password: Password::generate().expect("password"),
        }
    }

    /// `db::ensure_tenant` for this tenant, with `extensions` and the template on offer or not; its session
    /// closed. What it made or found.
    pub async fn ensure(
        &self,
        databases: &Databases,
        extensions: &[&str],
        templates: Option<&Templates>,
    ) -> Result<Provisioned, db::Error> {
        let extensions = Ident::all(extensions).expect("valid extensions");
        let (provisioned, conn) = db::ensure_tenant(
            databases,
            &TenantRequest {
                tenant: &self.names,
                owner: &self.owner,
                password: &self.password,
                extensions: &extensions,
                templates,
                may_create_database: true,
            },
        )
        .await?;
        conn.close().await?;
        Ok(provisioned)
    }

    /// A tenant with its database created now (no template), the landlord schema in place.
    pub async fn provision(databases: &Databases, prefix: &str, extensions: &[&str]) -> TestTenant {
        landlord_schema(databases).await;
        let tenant = TestTenant::unprovisioned(prefix);
        let provisioned = tenant.ensure(databases, extensions, None).await;
        assert_eq!(
            provisioned.expect("provision tenant").database,
            Ensured::Created
        );
        tenant
    }

    pub fn database(&self) -> &str {
        self.names.database().as_str()
    }

    /// Connects as the tenant's own role with its password (what the tenant's Secret holds).
    pub async fn connect_as_tenant(&self, database: &str) -> Result<PgConnection, sqlx::Error> {
        self.connect_with_password(database, &self.password).await
    }

    pub async fn connect_with_password(
        &self,
        database: &str,
        password: &Password,
    ) -> Result<PgConnection, sqlx::Error> {
        let options = super::pg::options(database)
            .username(self.names.role().as_str())
            .password(password.expose());
        PgConnection::connect_with(&options).await
    }
}

impl Drop for TestTenant {
    fn drop(&mut self) {
        super::pg::drop_tenant_blocking(self.names.database().as_str());
    }
}
