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
//!
//! Builds are serialised between operator processes by an advisory lock in the landlord database, which no
//! tenant can connect to, waited for at most `LOCK_WAIT`; within a process, one reconcile builds and the
//! others create their databases without the template meanwhile instead of queueing behind it.

mod clone;

use std::sync::{Mutex, PoisonError};

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};

pub(crate) use clone::{clonable, clone_database};

use crate::catalog::{CORE_MODULE, MigrationSet, Scope};
use crate::db::Error;
use crate::db::LOCK_WAIT;
use crate::db::connect::{Databases, DbConnection};
use crate::db::error::sqlstate;
use crate::db::ident::{Ident, quote_literal, sql};
use crate::db::lock;
use crate::db::migrating::engine::Migrator;
use crate::db::migrating::ledger::{self, LedgerEntry};
use crate::db::migrating::plan::Track;

/// Runs the template's migrations; what it creates is handed to `pg_database_owner`.
const TEMPLATE_ROLE: &str = "landlord_template";
/// How a template is laid out, part of its name: a template of an older layout is rebuilt, not cloned.
const TEMPLATE_LAYOUT: &[u8] =
    b"objects owned by pg_database_owner; vacuumed (full, freeze); from template0";
const TEMPLATE_ROLE_MARK: &str = "landlord template owner";
const TEMPLATE_PREFIX: &str = "landlord_template_";
const BUILD_LOCK: &str = "the template build lock";

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

/// Where this process stands with the template. Held only to read or swap it, never across an await.
#[derive(Debug)]
enum State {
    Unknown,
    /// A reconcile of this process is building (or checking) it.
    Building,
    Built(Template),
}

/// The template of the current core tenant schema, built on first use and kept for the process.
#[derive(Debug)]
pub struct Templates {
    core: MigrationSet,
    migrator: Migrator,
    state: Mutex<State>,
}

/// Puts the state back to `Unknown` if a build ends without a template (an error, or the reconcile was
/// dropped mid-build), so that a later reconcile tries again.
struct Building<'a> {
    state: &'a Mutex<State>,
    built: Option<Template>,
}

impl Drop for Building<'_> {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = match self.built.take() {
            Some(template) => State::Built(template),
            None => State::Unknown,
        };
    }
}

impl Templates {
    pub fn new(core: &MigrationSet, migrator: Migrator) -> Templates {
        Templates {
            core: core.clone(),
            migrator,
            state: Mutex::new(State::Unknown),
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

    /// The advisory lock (in the landlord database) that serialises builds of this template on `server`
    /// between operator processes: its key is derived from the server's and the template's names, which the
    /// source and the server's catalog show, so it is taken only where no tenant can connect. Public for
    /// diagnostics (`pg_locks`).
    pub fn build_lock_key(&self, server: &str) -> Result<i64, Error> {
        Ok(lock::advisory_key(&format!(
            "landlord_template_build/{server}/{}",
            self.name()?
        )))
    }

    /// The template, built now if this server has none for the current core schema (templates of older
    /// core schemas are dropped once the new one is complete). None while another reconcile of this
    /// process builds it: the caller goes on without it rather than wait. `LockBusy` when another process
    /// held the build lock for `LOCK_WAIT`.
    pub async fn get(&self, databases: &Databases) -> Result<Option<Template>, Error> {
        let mut building = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match &*state {
                State::Built(template) => return Ok(Some(template.clone())),
                State::Building => return Ok(None),
                State::Unknown => *state = State::Building,
            }
            Building {
                state: &self.state,
                built: None,
            }
        };
        let template = self.build(databases).await?;
        building.built = Some(template.clone());
        Ok(Some(template))
    }

    /// The template if it is built already, without waiting: a caller holding a connection must not wait
    /// for a build that needs connections of its own.
    fn ready(&self) -> Option<Template> {
        match &*self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            State::Built(template) => Some(template.clone()),
            _ => None,
        }
    }

    /// The template this process built or found, if any yet (for status).
    pub fn built(&self) -> Option<Template> {
        self.ready()
    }

    /// The template was dropped behind the process's back: built again on next use.
    fn forget(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*state, State::Built(_)) {
            *state = State::Unknown;
        }
    }

    async fn build(&self, databases: &Databases) -> Result<Template, Error> {
        let name = self.name()?;
        let complete = template_mark(&name);
        let template = Template {
            ledger: self.ledger()?,
            name: name.clone(),
        };
        let mut admin = databases.admin().await?;
        // Built already (by an earlier run or another process): nothing to lock.
        if comment_of(&mut admin, &name).await?.as_deref() == Some(complete.as_str()) {
            admin.close().await.ok();
            return Ok(template);
        }
        let mut landlord = databases.landlord().await?;
        let key = self.build_lock_key(databases.server())?;
        let locked = lock::lock_within(
            &mut landlord,
            key,
            BUILD_LOCK,
            "building the tenant template",
            LOCK_WAIT,
        )
        .await;
        let built = match locked {
            Ok(()) => {
                self.build_locked(databases, &mut admin, &name, &complete)
                    .await
            }
            Err(e) => Err(e),
        };
        // Released on every path; closing the session releases it too.
        lock::unlock(&mut landlord).await.ok();
        landlord.close().await.ok();
        admin.close().await.ok();
        built.map(|()| template)
    }

    /// Under the build lock: (re)builds the template unless another process completed it meanwhile. From
    /// `template0`, so that no session in `template1` can block it, and with connections off until PUBLIC's
    /// CONNECT is revoked, so that only the admin role ever enters it.
    async fn build_locked(
        &self,
        databases: &Databases,
        admin: &mut DbConnection,
        name: &Ident,
        complete: &str,
    ) -> Result<(), Error> {
        ensure_template_role(admin).await?;
        if comment_of(admin, name).await?.as_deref() != Some(complete) {
            // Absent, or left half-built by a crash: (re)build it.
            exec(
                admin,
                format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", name.quoted()),
            )
            .await
            .map_err(fail("dropping an unfinished template", admin))?;
            let create = format!(
                "CREATE DATABASE {} TEMPLATE template0 ALLOW_CONNECTIONS false",
                name.quoted()
            );
            exec(admin, create)
                .await
                .map_err(fail("creating the template", admin))?;
            // One transaction: connections are allowed only once PUBLIC may no longer connect.
            let prepare = format!(
                "REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC; \
                 GRANT CREATE ON DATABASE {name} TO {TEMPLATE_ROLE}; \
                 ALTER DATABASE {name} ALLOW_CONNECTIONS true",
                name = name.quoted()
            );
            exec(admin, prepare)
                .await
                .map_err(fail("preparing the template", admin))?;
            self.migrate(databases, name).await?;
            let finished = format!(
                "ALTER DATABASE {name} ALLOW_CONNECTIONS false; COMMENT ON DATABASE {name} IS {mark}",
                name = name.quoted(),
                mark = quote_literal(complete)?
            );
            exec(admin, finished)
                .await
                .map_err(fail("finishing the template", admin))?;
            tracing::info!(template = %name, "built the tenant template");
        }
        drop_older_templates(admin, name).await;
        Ok(())
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
            let track = Track::new(CORE_MODULE, Scope::Tenant, &self.core);
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn exec(conn: &mut PgConnection, statement: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sql(statement)).execute(conn).await.map(drop)
}

fn fail(action: &'static str, conn: &DbConnection) -> impl Fn(sqlx::Error) -> Error + use<> {
    let database = conn.database().to_string();
    move |e| Error::sql(action, &database, e)
}
