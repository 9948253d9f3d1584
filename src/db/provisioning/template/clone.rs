//! Cloning the template into a tenant database that nobody but the tenant's role ever enters.

use sha2::{Digest, Sha256};

use crate::db::Error;
use crate::db::connect::{Databases, DbConnection};
use crate::db::error::sqlstate;
use crate::db::ident::{Ident, TenantNames, quote_literal};
use crate::db::provisioning::owner::TenantOwner;
use crate::db::provisioning::template::{Template, Templates, exec, fail, hex};

/// Whether `tenant_<slug>` is for cloning: absent, or an unfinished clone for `owner` (owned by the admin
/// role, marked as such, never entered by the tenant), which is dropped to be made again.
pub(crate) async fn clonable(
    admin: &mut DbConnection,
    tenant: &TenantNames,
    owner: &TenantOwner,
) -> Result<bool, Error> {
    let database = tenant.database();
    let found: Option<(bool, Option<String>)> = sqlx::query_as(
        "SELECT datdba = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user),
                pg_catalog.shobj_description(oid, 'pg_database')
           FROM pg_catalog.pg_database WHERE datname = $1",
    )
    .bind(database.as_str())
    .fetch_optional(&mut **admin)
    .await
    .map_err(fail("looking up the tenant database", admin))?;
    match found {
        None => Ok(true),
        Some((true, Some(comment))) if comment == clone_mark(owner) => {
            exec(
                admin,
                format!("DROP DATABASE {} WITH (FORCE)", database.quoted()),
            )
            .await
            .map_err(fail("dropping an unfinished clone", admin))?;
            Ok(true)
        }
        Some(_) => Ok(false),
    }
}

/// Where the clone of `database` is made before it takes its name: `landlord_clone_` and a digest of the name
/// (a tenant's name may be as long as PostgreSQL allows).
fn clone_name(database: &Ident) -> Result<Ident, Error> {
    let digest = Sha256::digest(database.as_str().as_bytes());
    Ident::new(&format!("landlord_clone_{}", hex(&digest[..8])))
}

/// `tenant_<slug>` cloned from the template, owned by the tenant's role (and so is every core object, through
/// `pg_database_owner`), PUBLIC's access revoked, Landlord's copy of its ledger written. No session ever
/// enters the clone before the tenant's role can. False when there is no template to clone (it could not
/// be built, another reconcile of this process is building it, or another session is in it, which
/// PostgreSQL refuses): the caller creates the database the ordinary way, as closed as a clone. An error
/// when another process held the build lock for `LOCK_WAIT` (`LockBusy`): the template is about to exist,
/// so the reconcile is retried rather than migrated from scratch. `admin` (the caller's session in the
/// maintenance database) is used when the template is built already, and closed before a build, so that
/// no slot is held while waiting.
pub(crate) async fn clone_database(
    databases: &Databases,
    templates: &Templates,
    admin: DbConnection,
    tenant: &TenantNames,
    owner: &TenantOwner,
) -> Result<bool, Error> {
    let (template, mut admin) = match templates.ready() {
        Some(template) => (template, admin),
        None => {
            admin.close().await.ok();
            match templates.get(databases).await {
                Ok(Some(template)) => (template, databases.admin().await?),
                Ok(None) => {
                    tracing::info!("the tenant template is being built: migrating from scratch");
                    return Ok(false);
                }
                Err(err @ Error::LockBusy { .. }) => return Err(err),
                Err(err) => {
                    tracing::warn!(%err, "no tenant template: migrating from scratch");
                    return Ok(false);
                }
            }
        }
    };
    let cloned = clone_as(&mut admin, databases, templates, &template, tenant, owner).await;
    admin.close().await.ok();
    cloned
}

async fn clone_as(
    admin: &mut DbConnection,
    databases: &Databases,
    templates: &Templates,
    template: &Template,
    tenant: &TenantNames,
    owner: &TenantOwner,
) -> Result<bool, Error> {
    let database = tenant.database();
    let building = clone_name(database)?;
    // Made under a name of its own and renamed once marked: a crash between CREATE and COMMENT leaves
    // `landlord_clone_…` (dropped here next time), never an unmarked `tenant_<slug>` that would be refused
    // as not Landlord's.
    exec(
        admin,
        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", building.quoted()),
    )
    .await
    .map_err(fail("dropping a clone a crash left unnamed", admin))?;
    // Connections off until it is the tenant's: nobody gets a moment inside before.
    let create = format!(
        "CREATE DATABASE {} TEMPLATE {} ALLOW_CONNECTIONS false",
        building.quoted(),
        template.name.quoted()
    );
    match exec(admin, create).await {
        Ok(()) => {}
        Err(e) if sqlstate(&e).as_deref() == Some("55006") => {
            tracing::warn!(template = %template.name, "the tenant template is in use by another session: migrating from scratch");
            return Ok(false);
        }
        // Dropped behind our back: built again for the next tenant.
        Err(e) if sqlstate(&e).as_deref() == Some("3D000") => {
            tracing::warn!(template = %template.name, "the tenant template is gone: migrating from scratch");
            templates.forget();
            return Ok(false);
        }
        Err(e) => {
            return Err(Error::sql(
                format!("cloning {database}"),
                admin.database(),
                e,
            ));
        }
    }
    // One transaction each (statements of one simple query): marked, closed to PUBLIC and named at once;
    // later owned, marked as the tenant's and opened at once.
    let named = format!(
        "COMMENT ON DATABASE {building} IS {mark}; \
         REVOKE CONNECT, TEMPORARY ON DATABASE {building} FROM PUBLIC; \
         ALTER DATABASE {building} RENAME TO {database}",
        building = building.quoted(),
        mark = quote_literal(&clone_mark(owner))?,
        database = database.quoted(),
    );
    if let Err(e) = exec(admin, named).await {
        // `tenant_<slug>` appeared meanwhile: the next reconcile judges it; this clone goes.
        let drop = format!("DROP DATABASE IF EXISTS {}", building.quoted());
        exec(admin, drop).await.ok();
        return Err(Error::sql(
            format!("naming the clone {database}"),
            admin.database(),
            e,
        ));
    }
    // Landlord's copy before the tenant's ownership: the copy is the template's ledger, not whatever the
    // tenant might write once it can connect.
    databases
        .ledger_copy(tenant)
        .replace(&template.copy_entries())
        .await?;
    let given = format!(
        "ALTER DATABASE {database} OWNER TO {role}; \
         COMMENT ON DATABASE {database} IS {mark}; \
         ALTER DATABASE {database} ALLOW_CONNECTIONS true",
        database = database.quoted(),
        role = tenant.role().quoted(),
        mark = quote_literal(&owner.mark())?,
    );
    exec(admin, given)
        .await
        .map_err(fail("giving the clone to the tenant's role", admin))?;
    Ok(true)
}

/// What a clone in progress says of itself: a database owned by the admin role with this comment is an
/// unfinished clone for `owner`, which the tenant never entered and which is made again.
pub(crate) fn clone_mark(owner: &TenantOwner) -> String {
    format!("landlord clone in progress for {}", owner.mark())
}
