//! Template provisioning: one database per version of the core tenant schema, migrated once, from which
//! every new tenant database is cloned (`CREATE DATABASE … TEMPLATE`) instead of migrated.
//!
//! The template holds nothing of any tenant. Its migrations run as `landlord_template`, a NOLOGIN role of
//! Landlord's own, and every object is then handed to `pg_database_owner`: the predefined role whose one
//! member, in each database, is that database's owner. A clone therefore needs no session inside it. It is
//! created with connections off and PUBLIC's CONNECT revoked; Landlord records the clone's ledger as its own
//! copy; then, in one transaction, the database is given to the tenant's role — which thereby holds every
//! right of an owner over the core schema, in this database alone — marked, and opened. The tenant's role
//! is the first login ever to enter it.

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use tokio::sync::Mutex;

use super::Error;
use super::connect::{Databases, DbConnection};
use super::engine::Migrator;
use super::error::sqlstate;
use super::ident::{Ident, TenantNames, quote_literal, sql};
use super::ledger::{self, LedgerEntry};
use super::owner::TenantOwner;
use super::plan::ModuleScope;
use crate::catalog::{CORE_MODULE, MigrationSet, Scope};

/// Runs the template's migrations; what it creates is handed to `pg_database_owner`.
const TEMPLATE_ROLE: &str = "landlord_template";
/// How a template is laid out, part of its name: a template of an older layout is rebuilt, not cloned.
const TEMPLATE_LAYOUT: &[u8] = b"objects owned by pg_database_owner; vacuumed (full, freeze)";
const TEMPLATE_ROLE_MARK: &str = "landlord template owner";
const TEMPLATE_PREFIX: &str = "landlord_template_";
/// Serialises template builds between operator processes (session lock on the admin connection).
const BUILD_LOCK_KEY: i64 = 0x4c4c_5445_4d50_4c54; // "LLTEMPLT"

/// A built template: its name and the ledger every clone starts with.
#[derive(Clone, Debug)]
pub struct Template {
    pub name: Ident,
    ledger: Vec<LedgerEntry>,
}

impl Template {
    /// The clone's ledger as Landlord's copy records it: (module, entry).
    pub(crate) fn copy_entries(&self) -> Vec<(String, LedgerEntry)> {
        self.ledger
            .iter()
            .map(|e| (CORE_MODULE.to_string(), e.clone()))
            .collect()
    }
}

/// The template of the current core tenant schema, built on first use and kept for the process.
#[derive(Debug)]
pub struct Templates {
    core: MigrationSet,
    migrator: Migrator,
    built: Mutex<Option<Template>>,
}

impl Templates {
    pub fn new(core: &MigrationSet, migrator: Migrator) -> Templates {
        Templates {
            core: core.clone(),
            migrator,
            built: Mutex::new(None),
        }
    }

    /// `landlord_template_<12 hex digits>`: the digest of the layout and of every core migration's version
    /// and checksum, so a changed core schema (or layout) gets a template of its own.
    pub fn name(&self) -> Result<Ident, Error> {
        let mut digest = Sha256::new();
        digest.update(TEMPLATE_LAYOUT);
        for m in &self.core.migrations {
            digest.update(m.version.to_be_bytes());
            digest.update(m.checksum);
        }
        Ident::new(&format!(
            "{TEMPLATE_PREFIX}{}",
            hex(&digest.finalize()[..6])
        ))
    }

    /// The template, built now if this server has none for the current core schema (templates of older
    /// core schemas are dropped once the new one is complete).
    pub async fn get(&self, databases: &Databases) -> Result<Template, Error> {
        let mut built = self.built.lock().await;
        if let Some(template) = built.as_ref() {
            return Ok(template.clone());
        }
        let template = self.build(databases).await?;
        *built = Some(template.clone());
        Ok(template)
    }

    /// The template if it is built already, without waiting: a caller holding a connection must not wait
    /// for a build that needs connections of its own.
    fn ready(&self) -> Option<Template> {
        self.built.try_lock().ok()?.clone()
    }

    async fn forget(&self) {
        *self.built.lock().await = None;
    }

    async fn build(&self, databases: &Databases) -> Result<Template, Error> {
        let name = self.name()?;
        let mut admin = databases.admin().await?;
        lock(&mut admin, true).await?;
        let built = async {
            ensure_template_role(&mut admin).await?;
            let complete = template_mark(&name);
            if comment_of(&mut admin, &name).await?.as_deref() != Some(complete.as_str()) {
                // Absent, or left half-built by a crash: (re)build it.
                exec(
                    &mut admin,
                    format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", name.quoted()),
                )
                .await
                .map_err(fail("dropping an unfinished template", &admin))?;
                exec(&mut admin, format!("CREATE DATABASE {}", name.quoted()))
                    .await
                    .map_err(fail("creating the template", &admin))?;
                for statement in [
                    format!(
                        "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
                        name.quoted()
                    ),
                    format!(
                        "GRANT CREATE ON DATABASE {} TO {TEMPLATE_ROLE}",
                        name.quoted()
                    ),
                ] {
                    exec(&mut admin, statement)
                        .await
                        .map_err(fail("preparing the template", &admin))?;
                }
                self.migrate(databases, &name).await?;
                let finished = [
                    format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", name.quoted()),
                    format!(
                        "COMMENT ON DATABASE {} IS {}",
                        name.quoted(),
                        quote_literal(&complete)?
                    ),
                ];
                for statement in finished {
                    exec(&mut admin, statement)
                        .await
                        .map_err(fail("finishing the template", &admin))?;
                }
                tracing::info!(template = %name, "built the tenant template");
            }
            drop_older_templates(&mut admin, &name).await;
            Ok::<_, Error>(())
        }
        .await;
        lock(&mut admin, false).await.ok();
        admin.close().await.ok();
        built?;
        Ok(Template {
            ledger: self.ledger()?,
            name,
        })
    }

    /// The core tenant migrations in the template, run by the admin role as `landlord_template`, then every
    /// object handed to `pg_database_owner` and every grant to `landlord_template` (the schema's, the
    /// database's) revoked, so that a clone holds nothing of Landlord's roles. The admin role may do that
    /// here because it owns the template, which makes it the template's one `pg_database_owner`. Last, the
    /// template is vacuumed.
    async fn migrate(&self, databases: &Databases, name: &Ident) -> Result<(), Error> {
        let mut conn = databases.admin_in(name).await?;
        let public = format!("GRANT USAGE, CREATE ON SCHEMA public TO {TEMPLATE_ROLE}");
        let migrated = async {
            exec(&mut conn, public)
                .await
                .map_err(fail("preparing the template", &conn))?;
            exec(&mut conn, format!("SET ROLE {TEMPLATE_ROLE}"))
                .await
                .map_err(fail("preparing the template", &conn))?;
            let track = ModuleScope::new(CORE_MODULE, Scope::Tenant, &self.core);
            self.migrator
                .apply(&mut conn, &track, self.core.latest())
                .await?;
            let database = conn.database().to_string();
            let applied = ledger::entries(&mut conn, &database, Scope::Tenant, CORE_MODULE).await?;
            if applied.len() != self.core.migrations.len() {
                return Err(Error::sql(
                    "checking the template's ledger",
                    &database,
                    sqlx::Error::RowNotFound,
                ));
            }
            let handed = format!(
                "RESET ROLE; REASSIGN OWNED BY {TEMPLATE_ROLE} TO pg_database_owner; DROP OWNED BY {TEMPLATE_ROLE}"
            );
            exec(&mut conn, handed)
                .await
                .map_err(fail("handing the template's objects to pg_database_owner", &conn))?;
            // Every clone copies the template block by block, and autovacuum would visit each one for the
            // dead catalog rows the migrations left: compacted and frozen once here, like template0. (The
            // shared catalogs, which only a superuser may vacuum, are skipped with a warning: silenced.)
            for statement in ["SET client_min_messages TO error", "VACUUM (FULL, FREEZE)"] {
                exec(&mut conn, statement.to_string())
                    .await
                    .map_err(fail("compacting the template", &conn))?;
            }
            Ok(())
        }
        .await;
        conn.close().await.ok();
        migrated
    }

    /// What the template's ledger holds: every core migration (times are the clone's, not recorded).
    fn ledger(&self) -> Result<Vec<LedgerEntry>, Error> {
        Ok(self
            .core
            .migrations
            .iter()
            .map(|m| LedgerEntry {
                version: m.version,
                description: m.description.clone(),
                checksum: m.checksum.to_vec(),
                applied_at: jiff::Timestamp::UNIX_EPOCH,
                execution_ms: 0,
            })
            .collect())
    }
}

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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `tenant_<slug>` cloned from the template, owned by the tenant's role (and so is every core object, through
/// `pg_database_owner`), PUBLIC's access revoked, Landlord's copy of its ledger written. No session ever
/// enters the clone before the tenant's role can. False when there is no template to clone (it could not
/// be built, or another session is in it, which PostgreSQL refuses): the caller creates the database the
/// ordinary way. `admin` (the caller's session in the maintenance database) is used when the template is
/// built already, and closed before a build, so that one connection at a time is open.
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
                Ok(template) => (template, databases.admin().await?),
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
            templates.forget().await;
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

fn template_mark(name: &Ident) -> String {
    format!("landlord template {name} complete")
}

async fn ensure_template_role(admin: &mut DbConnection) -> Result<(), Error> {
    let comment: Option<Option<String>> = sqlx::query_scalar(
        "SELECT pg_catalog.shobj_description(oid, 'pg_authid') FROM pg_catalog.pg_roles WHERE rolname = $1",
    )
    .bind(TEMPLATE_ROLE)
    .fetch_optional(&mut **admin)
    .await
    .map_err(fail("looking up the template role", admin))?;
    match comment {
        Some(Some(mark)) if mark == TEMPLATE_ROLE_MARK => {}
        Some(_) => {
            return Err(Error::AdoptionRefused {
                object: "role",
                name: TEMPLATE_ROLE.into(),
                found: super::owner::Found::Unmarked,
            });
        }
        None => {
            let fail_create = fail("creating the template role", admin);
            let mut tx = admin.begin().await.map_err(&fail_create)?;
            let created = async {
                exec(&mut tx, format!("CREATE ROLE {TEMPLATE_ROLE} NOLOGIN")).await?;
                exec(
                    &mut tx,
                    format!("COMMENT ON ROLE {TEMPLATE_ROLE} IS '{TEMPLATE_ROLE_MARK}'"),
                )
                .await
            }
            .await;
            match created {
                Ok(()) => tx.commit().await.map_err(&fail_create)?,
                // Another process made it first.
                Err(e) if matches!(sqlstate(&e).as_deref(), Some("42710" | "23505")) => {}
                Err(e) => return Err(fail_create(e)),
            }
        }
    }
    exec(admin, format!("GRANT {TEMPLATE_ROLE} TO CURRENT_USER"))
        .await
        .map_err(fail("joining the template role", admin))
}

async fn comment_of(admin: &mut DbConnection, name: &Ident) -> Result<Option<String>, Error> {
    let comment: Option<Option<String>> = sqlx::query_scalar(
        "SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database WHERE datname = $1",
    )
    .bind(name.as_str())
    .fetch_optional(&mut **admin)
    .await
    .map_err(fail("looking up the template", admin))?;
    Ok(comment.flatten())
}

/// Templates of earlier core schemas, owned by the admin role: dropped when unused (a failure only waits
/// for the next build).
async fn drop_older_templates(admin: &mut DbConnection, current: &Ident) {
    let older: Result<Vec<String>, _> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_catalog.pg_database
          WHERE starts_with(datname, $1) AND datname <> $2
            AND datdba = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)",
    )
    .bind(TEMPLATE_PREFIX)
    .bind(current.as_str())
    .fetch_all(&mut **admin)
    .await;
    for name in older.unwrap_or_default() {
        let Ok(name) = Ident::new(&name) else {
            continue;
        };
        match exec(admin, format!("DROP DATABASE {}", name.quoted())).await {
            Ok(()) => {
                tracing::info!(template = %name, "dropped the template of an older core schema")
            }
            Err(e) => {
                tracing::warn!(template = %name, error = %e, "could not drop an older template")
            }
        }
    }
}

async fn lock(admin: &mut DbConnection, take: bool) -> Result<(), Error> {
    let query = if take {
        "SELECT pg_catalog.pg_advisory_lock($1)"
    } else {
        "SELECT pg_catalog.pg_advisory_unlock($1)"
    };
    sqlx::query(query)
        .bind(BUILD_LOCK_KEY)
        .execute(&mut **admin)
        .await
        .map_err(fail("locking the template build", admin))?;
    Ok(())
}

async fn exec(conn: &mut PgConnection, statement: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql(statement)).execute(conn).await.map(drop)
}

fn fail(action: &'static str, conn: &DbConnection) -> impl Fn(sqlx::Error) -> Error + use<> {
    let database = conn.database().to_string();
    move |e| Error::sql(action, &database, e)
}
