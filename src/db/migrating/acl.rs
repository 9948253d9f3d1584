//! A module's permissions and roles in the tenant's core ACL tables (`permissions`, `roles`,
//! `role_permissions`), tagged with the module's name so that an uninstall removes exactly them.

use sqlx::Connection;

use crate::catalog::Module;
use crate::db::Error;
use crate::db::connect::DbConnection;

/// Makes the tables say what the module declares: adds what is missing, removes what a newer release
/// dropped. Names another module or the application already registered are left to their owner.
pub async fn register_module_acl(tenant: &mut DbConnection, module: &Module) -> Result<(), Error> {
    let database = tenant.database().to_string();
    let fail = |e| {
        Error::sql(
            format!("registering the ACL of module {}", module.name),
            &database,
            e,
        )
    };
    let roles: Vec<&str> = module.roles.keys().map(String::as_str).collect();
    let (pair_roles, pair_permissions): (Vec<&str>, Vec<&str>) = module
        .roles
        .iter()
        .flat_map(|(role, permissions)| {
            permissions.iter().map(move |p| (role.as_str(), p.as_str()))
        })
        .unzip();

    let mut tx = tenant.begin().await.map_err(fail)?;
    sqlx::query("DELETE FROM roles WHERE module = $1 AND NOT name = ANY($2)")
        .bind(&module.name)
        .bind(&roles)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    sqlx::query("DELETE FROM permissions WHERE module = $1 AND NOT name = ANY($2)")
        .bind(&module.name)
        .bind(&module.permissions)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    sqlx::query(
        "INSERT INTO permissions (name, module) SELECT unnest($2::text[]), $1
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&module.name)
    .bind(&module.permissions)
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    sqlx::query(
        "INSERT INTO roles (name, module) SELECT unnest($2::text[]), $1
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(&module.name)
    .bind(&roles)
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    sqlx::query(
        "DELETE FROM role_permissions rp USING roles r, permissions p
         WHERE rp.role_id = r.id AND rp.permission_id = p.id AND r.module = $1
           AND (r.name, p.name) NOT IN (SELECT * FROM unnest($2::text[], $3::text[]))",
    )
    .bind(&module.name)
    .bind(&pair_roles)
    .bind(&pair_permissions)
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    sqlx::query(
        "INSERT INTO role_permissions (role_id, permission_id)
         SELECT r.id, p.id
         FROM unnest($1::text[], $2::text[]) AS wanted (role, permission)
         JOIN roles r ON r.name = wanted.role
         JOIN permissions p ON p.name = wanted.permission
         ON CONFLICT DO NOTHING",
    )
    .bind(&pair_roles)
    .bind(&pair_permissions)
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    tx.commit().await.map_err(fail)
}

/// Removes the module's roles and permissions; their grants and user assignments go with them (CASCADE).
pub async fn remove_module_acl(tenant: &mut DbConnection, module: &str) -> Result<(), Error> {
    let database = tenant.database().to_string();
    let fail = |e| Error::sql(format!("removing the ACL of module {module}"), &database, e);
    let mut tx = tenant.begin().await.map_err(fail)?;
    for statement in [
        "DELETE FROM roles WHERE module = $1",
        "DELETE FROM permissions WHERE module = $1",
    ] {
        sqlx::query(statement)
            .bind(module)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
    }
    tx.commit().await.map_err(fail)
}
