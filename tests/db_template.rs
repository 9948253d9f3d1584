//! Template provisioning against the real PostgreSQL: a clone of Landlord's template is the tenant's in
//! every object and grant, its ledger and Landlord's copy hold the core migrations, nobody but the admin
//! role may enter the template, a template in use or an unfinished clone still ends in a tenant database.

mod support;

use landlord::catalog::Scope;
use landlord::db::{self, Ensured, Migrator, Templates};
use sqlx::Connection;
use support::db::{TestTenant, core_catalog, databases, landlord_schema};
use support::pg;

/// Provisions `tenant` with the template on offer; its database must be created.
async fn provision_as(
    databases: &db::Databases,
    templates: &Templates,
    tenant: &TestTenant,
    extensions: &[&str],
) {
    let provisioned = tenant.ensure(databases, extensions, Some(templates)).await;
    let provisioned = provisioned.expect("provision from the template");
    assert_eq!(provisioned.database, Ensured::Created);
}

async fn provision(databases: &db::Databases, templates: &Templates, prefix: &str) -> TestTenant {
    let tenant = TestTenant::unprovisioned(prefix);
    provision_as(databases, templates, &tenant, &["ltree"]).await;
    tenant
}

/// Objects of the database (schemas, relations, functions, types) whose owner's rights `role` does not hold
/// there, and grants naming the template's role. A clone's core objects belong to `pg_database_owner`, whose
/// one member in a database is its owner: `pg_has_role` answers for the database it is asked in.
async fn foreign_objects(database: &str, role: &str) -> Vec<String> {
    let mut conn = pg::connect(database).await;
    sqlx::query_scalar(
        "SELECT kind || ' ' || name || ' of ' || pg_get_userbyid(owner) FROM (
           SELECT 'schema' AS kind, nspname::text AS name, nspowner AS owner
             FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public')
           UNION ALL
           SELECT 'relation', relname::text, relowner FROM pg_class
            WHERE relnamespace NOT IN (SELECT oid FROM pg_namespace WHERE nspname LIKE 'pg\\_%' OR nspname = 'information_schema')
           UNION ALL
           SELECT 'function', proname::text, proowner FROM pg_proc
            WHERE pronamespace NOT IN (SELECT oid FROM pg_namespace WHERE nspname LIKE 'pg\\_%' OR nspname = 'information_schema')
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = pg_proc.oid AND d.deptype = 'e')
         ) o WHERE NOT pg_has_role($1, owner, 'USAGE')
         UNION ALL
         SELECT 'grant on schema ' || nspname FROM pg_namespace WHERE nspacl::text LIKE '%landlord_template%'
         UNION ALL
         SELECT 'grant on database ' || datname FROM pg_database
          WHERE datname = current_database() AND datacl::text LIKE '%landlord_template%'",
    )
    .bind(role)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

/// The owners of the database's tables (public and ledger schemas).
async fn table_owners(database: &str) -> Vec<String> {
    pg::strings(
        database,
        "SELECT DISTINCT tableowner::text FROM pg_tables WHERE schemaname IN ('public', 'landlord_migrations')",
    )
    .await
}

async fn copy_versions(slug: &str) -> Vec<i64> {
    let mut conn = pg::connect("landlord").await;
    sqlx::query_scalar(
        "SELECT version FROM tenant_ledger WHERE tenant_slug = $1 AND module = 'core' AND state = 'applied' ORDER BY version",
    )
    .bind(slug)
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_clone_is_the_tenants_alone_and_its_ledger_is_recorded() {
    let databases = databases();
    landlord_schema(&databases).await;
    let catalog = core_catalog();
    let templates = Templates::new(&catalog.core_tenant, Migrator::new());
    let template = templates.name().unwrap();
    let tenant = provision(&databases, &templates, "tpl").await;
    let database = tenant.database();
    let role = tenant.names.role().as_str();
    assert!(
        pg::database_exists(template.as_str()).await,
        "the template was built"
    );

    // Every object of the core schema is there, the tenant's (through `pg_database_owner`: nobody entered
    // the clone to hand it over), with no grant left to the template's role.
    assert_eq!(foreign_objects(database, role).await, Vec::<String>::new());
    assert_eq!(table_owners(database).await, ["pg_database_owner"]);
    let tables = pg::tables(database).await;
    assert!(tables.contains(&"permissions".to_string()), "{tables:?}");
    let core: Vec<i64> = catalog
        .core(Scope::Tenant)
        .migrations
        .iter()
        .map(|m| m.version)
        .collect();
    let ledger: Vec<i64> = pg::ledger_rows(database, "tenant")
        .await
        .into_iter()
        .map(|(_, version)| version)
        .collect();
    assert_eq!(ledger, core);
    assert_eq!(copy_versions(tenant.names.slug()).await, core);
    let owner_and_mark = pg::strings(
        "postgres",
        "SELECT pg_get_userbyid(datdba) || ' ' || shobj_description(oid, 'pg_database') FROM pg_database
          WHERE datname LIKE 'tenant\\_tpl\\_%'",
    )
    .await;
    assert!(
        owner_and_mark.contains(&format!("{role} {}", tenant.owner.mark())),
        "{owner_and_mark:?}"
    );

    // The tenant works in its clone and may not enter the template.
    let mut conn = tenant
        .connect_as_tenant(database)
        .await
        .expect("tenant login");
    sqlx::query("CREATE TABLE mine (id int)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(tenant.connect_as_tenant(template.as_str()).await.is_err());

    // Clones made at the same moment (each hands its objects over in its own database) all succeed.
    let clones =
        futures::future::join_all((0..4).map(|_| provision(&databases, &templates, "tplmany")))
            .await;
    for clone in &clones {
        assert_eq!(
            foreign_objects(clone.database(), clone.names.role().as_str()).await,
            Vec::<String>::new()
        );
    }
    // ... and no tenant holds an owner's rights in another's clone.
    let other = foreign_objects(clones[0].database(), role).await;
    assert!(
        other
            .iter()
            .any(|o| o.starts_with("relation permissions of pg_database_owner")),
        "{other:?}"
    );
}

#[tokio::test]
async fn a_template_in_use_and_an_unfinished_clone_still_end_in_a_tenant_database() {
    let databases = databases();
    landlord_schema(&databases).await;
    let catalog = core_catalog();
    let templates = Templates::new(&catalog.core_tenant, Migrator::new());
    let template = templates.name().unwrap();
    drop(provision(&databases, &templates, "tplfirst").await);

    // A session inside the template (a DBA's): PostgreSQL refuses to clone, the tenant is migrated instead.
    let mut superuser = pg::connect("postgres").await;
    let allow = format!("ALTER DATABASE \"{template}\" ALLOW_CONNECTIONS {{}}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(allow.replace("{}", "true")))
        .execute(&mut superuser)
        .await
        .unwrap();
    let inside = pg::connect(template.as_str()).await;
    let busy = provision(&databases, &templates, "tplbusy").await;
    inside.close().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(allow.replace("{}", "false")))
        .execute(&mut superuser)
        .await
        .unwrap();
    // Created empty (PostgreSQL waits 5 s for the template's sessions first): the core migrations run
    // next, as without a template.
    assert!(pg::database_exists(busy.database()).await);
    assert!(pg::ledger_rows(busy.database(), "tenant").await.is_empty());
    assert_eq!(
        foreign_objects(busy.database(), busy.names.role().as_str()).await,
        Vec::<String>::new()
    );

    // A clone a crash left unfinished (the admin role's, marked as such) is made again.
    let crashed = TestTenant::unprovisioned("tplcrash");
    for leftover in [
        format!(
            "CREATE DATABASE \"{}\" OWNER landlord_admin",
            crashed.database()
        ),
        format!(
            "COMMENT ON DATABASE \"{}\" IS 'landlord clone in progress for {}'",
            crashed.database(),
            crashed.owner.mark()
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(leftover))
            .execute(&mut superuser)
            .await
            .unwrap();
    }
    provision_as(&databases, &templates, &crashed, &[]).await;
    assert_eq!(
        foreign_objects(crashed.database(), crashed.names.role().as_str()).await,
        Vec::<String>::new()
    );

    // A crash between CREATE DATABASE and its mark leaves the clone under its building name, never as an
    // unmarked tenant database: dropped, and the tenant cloned.
    let unnamed = TestTenant::unprovisioned("tplunnamed");
    use sha2::Digest;
    let digest = sha2::Sha256::digest(unnamed.database().as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let building = format!("landlord_clone_{hex}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{building}\" OWNER landlord_admin TEMPLATE \"{template}\" ALLOW_CONNECTIONS false"
    )))
    .execute(&mut superuser)
    .await
    .unwrap();
    assert!(pg::database_exists(&building).await);
    provision_as(&databases, &templates, &unnamed, &[]).await;
    assert!(
        !pg::database_exists(&building).await,
        "the leftover clone stays"
    );
    assert_eq!(
        foreign_objects(unnamed.database(), unnamed.names.role().as_str()).await,
        Vec::<String>::new()
    );
    assert!(
        !pg::ledger_rows(unnamed.database(), "tenant")
            .await
            .is_empty()
    );
}
