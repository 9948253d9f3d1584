//! The sample catalog (`modules/`, `migrations/`) through the engine and the ACL functions: install,
//! upgrade, downgrade and uninstall in a real tenant database.

mod support;

use landlord::catalog::{Catalog, Module, Scope};
use landlord::db::{self, Migrator, Track};
use sqlx::Connection;
use support::db::{TestTenant, databases};
use support::pg;
use support::repo_root;

fn catalog() -> Catalog {
    let root = repo_root();
    Catalog::load(&root.join("modules"), &root.join("migrations")).expect("sample catalog loads")
}

async fn acl(database: &str) -> (Vec<String>, Vec<String>, i64) {
    let mut su = pg::connect(database).await;
    let permissions = sqlx::query_scalar("SELECT name FROM permissions ORDER BY name")
        .fetch_all(&mut su)
        .await
        .unwrap();
    let roles = sqlx::query_scalar("SELECT name FROM roles ORDER BY name")
        .fetch_all(&mut su)
        .await
        .unwrap();
    let grants = sqlx::query_scalar("SELECT count(*) FROM role_permissions")
        .fetch_one(&mut su)
        .await
        .unwrap();
    (permissions, roles, grants)
}

fn tenant_target(module: &Module, release: &str) -> Option<i64> {
    let version = semver::Version::parse(release).unwrap();
    module.release(&version).and_then(|r| r.tenant)
}

#[tokio::test]
async fn sample_modules_install_upgrade_downgrade_and_uninstall() {
    let catalog = catalog();
    let tasks = catalog.module("tasks").unwrap();
    let expenses = catalog.module("expenses").unwrap();
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "modules", &[]).await;
    let migrator = Migrator::new();
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    migrator
        .apply(
            &mut conn,
            &Track::core(&catalog, Scope::Tenant),
            catalog.core_tenant.latest(),
        )
        .await
        .unwrap();
    let core_only = pg::schema_dump(tenant.database());

    // The application's own role holds one of the module's permissions.
    let mut su = pg::connect(tenant.database()).await;
    sqlx::query("INSERT INTO roles (name) VALUES ('app_admin')")
        .execute(&mut su)
        .await
        .unwrap();

    let newest = |m: &Module| m.newest_release().and_then(|r| r.tenant);
    migrator
        .apply(&mut conn, &Track::of(tasks, Scope::Tenant), newest(tasks))
        .await
        .unwrap();
    db::register_module_acl(&mut conn, tasks).await.unwrap();
    let expenses_track = Track::of(expenses, Scope::Tenant);
    migrator
        .apply(&mut conn, &expenses_track, tenant_target(expenses, "1.0.0"))
        .await
        .unwrap();
    db::register_module_acl(&mut conn, expenses).await.unwrap();
    db::register_module_acl(&mut conn, expenses).await.unwrap(); // idempotent
    sqlx::query(
        "INSERT INTO role_permissions SELECT r.id, p.id FROM roles r, permissions p
         WHERE r.name = 'app_admin' AND p.name = 'expenses.view'",
    )
    .execute(&mut su)
    .await
    .unwrap();
    let (permissions, roles, grants) = acl(tenant.database()).await;
    let declared = tasks.permissions.len() + expenses.permissions.len();
    assert_eq!(permissions.len(), declared);
    assert!(
        roles.contains(&"expenses_manager".to_string()) && roles.contains(&"app_admin".to_string())
    );
    let module_grants: usize = [tasks, expenses]
        .iter()
        .flat_map(|m| m.roles.values())
        .map(Vec::len)
        .sum();
    assert_eq!(grants, module_grants as i64 + 1);

    // Upgrade to 1.1.0, then back to 1.0.0.
    let at_one_zero = pg::schema_dump(tenant.database());
    let up = migrator
        .migrate(&mut conn, &expenses_track, tenant_target(expenses, "1.1.0"))
        .await
        .unwrap();
    assert!(!up.executed.is_empty());
    let down = migrator
        .migrate(&mut conn, &expenses_track, tenant_target(expenses, "1.0.0"))
        .await
        .unwrap();
    assert_eq!(down.executed.len(), up.executed.len());
    assert_eq!(pg::schema_dump(tenant.database()), at_one_zero);

    // A release that stops declaring a permission loses it, and its grants.
    let mut trimmed = expenses.clone();
    trimmed.permissions.retain(|p| p != "expenses.delete");
    for permissions in trimmed.roles.values_mut() {
        permissions.retain(|p| p != "expenses.delete");
    }
    db::register_module_acl(&mut conn, &trimmed).await.unwrap();
    let (permissions, _, _) = acl(tenant.database()).await;
    assert!(!permissions.contains(&"expenses.delete".to_string()));
    assert_eq!(permissions.len(), declared - 1);

    // Uninstall with Rollback: expenses, then tasks.
    migrator
        .rollback(&mut conn, &expenses_track, None)
        .await
        .unwrap();
    db::remove_module_acl(&mut conn, "expenses").await.unwrap();
    migrator
        .rollback(&mut conn, &Track::of(tasks, Scope::Tenant), None)
        .await
        .unwrap();
    db::remove_module_acl(&mut conn, "tasks").await.unwrap();
    db::remove_module_acl(&mut conn, "tasks").await.unwrap(); // already gone
    conn.close().await.unwrap();
    let (permissions, roles, grants) = acl(tenant.database()).await;
    assert!(permissions.is_empty());
    assert_eq!((roles, grants), (vec!["app_admin".to_string()], 0));
    sqlx::query("DELETE FROM roles")
        .execute(&mut su)
        .await
        .unwrap();
    su.close().await.unwrap();
    assert_eq!(pg::schema_dump(tenant.database()), core_only);
}

#[tokio::test]
async fn both_scopes_of_a_module_keep_separate_ledgers() {
    let catalog = catalog();
    let card = catalog.module("digital_card").unwrap();
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "scopes", &[]).await;
    let migrator = Migrator::new();
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let core = Track::core(&catalog, Scope::Tenant);
    migrator
        .apply(&mut conn, &core, catalog.core_tenant.latest())
        .await
        .unwrap();
    // Landlord-scope migrations normally run in the landlord database; here the tenant database stands in
    // for it so that the test leaves the shared one alone.
    for scope in [Scope::Landlord, Scope::Tenant] {
        let track = Track::of(card, scope);
        migrator
            .apply(&mut conn, &track, card.migrations(scope).latest())
            .await
            .unwrap();
        let status = migrator.status(&mut conn, &track).await.unwrap();
        assert_eq!(
            status.applied.len(),
            card.migrations(scope).migrations.len()
        );
        assert!(status.pending.is_empty() && status.drift.is_empty());
    }
    migrator
        .rollback(&mut conn, &Track::of(card, Scope::Tenant), None)
        .await
        .unwrap();
    let landlord = migrator
        .status(&mut conn, &Track::of(card, Scope::Landlord))
        .await
        .unwrap();
    assert_eq!(landlord.applied.len(), card.landlord.migrations.len());
    conn.close().await.unwrap();
}
