//! `landlord catalog test`: proves on a real server, before any tenant needs it, that every migration of
//! the catalog runs and that every down migration undoes its up.
//!
//! In scratch databases it creates (and always drops) on the server of `--database-url`: one per scope
//! for the core migrations, each tested migration by migration and then kept as the template of that
//! scope; then, for every module (dependencies first) and each scope it has, a copy of that template with
//! the module's dependencies installed at their newest matching release, in which the module is taken
//! through its releases up, down and up again (see `walk`). Landlord-scope migrations run in a scratch
//! landlord database, tenant-scope ones in a scratch tenant database with `--extension`s created first,
//! as a Tenant's `spec.extensions` would be.
//!
//! Migrations run as the URL's role, not as a tenant's own role: a migration that needs more than a
//! tenant's privileges passes here when that role has them.

mod error;
mod report;
mod walk;

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{Catalog, Module, Scope};
use crate::db::{self, DbConnection, Ident, Migrator, Track};

pub use error::Error;
pub use report::Findings;
use walk::{Checkpoint, Walked};

const SCOPES: [Scope; 2] = [Scope::Landlord, Scope::Tenant];

/// Tests `catalog` on the server of `database_url` (its role needs CREATEDB). Ctrl-C stops the run;
/// the scratch databases are dropped on every path.
pub async fn test_catalog(
    catalog: &Catalog,
    database_url: &str,
    extensions: &[String],
) -> Result<Findings, Error> {
    let extensions = Ident::all(extensions)?;
    let server = db::scratch_server(database_url, None)?;
    let mut bed = Testbed {
        catalog,
        url: database_url,
        run: db::scratch_run_id()?,
        extensions,
        maintenance: server.admin().await?,
        migrator: Migrator::new(),
        created: Vec::new(),
        copies: 0,
        findings: Findings::default(),
    };
    let outcome = tokio::select! {
        result = bed.test_all() => result,
        _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
    };
    // A fresh session: the run may have been stopped in the middle of a statement on the old one.
    let created = std::mem::take(&mut bed.created);
    let findings = std::mem::take(&mut bed.findings);
    drop(bed);
    let cleanup = drop_all(&server, &created).await;
    match (outcome, cleanup) {
        (Ok(()), Ok(())) => Ok(findings),
        (Err(e), Ok(())) => Err(e),
        (outcome, Err((names, source))) => Err(Error::Cleanup {
            names,
            source,
            after: outcome.err().map(Box::new),
        }),
    }
}

/// Drops every database in `names`, going on past failures; the names it could not drop and the first
/// error.
async fn drop_all(server: &db::Databases, names: &[Ident]) -> Result<(), (Vec<String>, db::Error)> {
    if names.is_empty() {
        return Ok(());
    }
    let all = || names.iter().map(ToString::to_string).collect();
    let mut maintenance = server.admin().await.map_err(|e| (all(), e))?;
    let mut left = Vec::new();
    let mut first = None;
    for name in names.iter().rev() {
        if let Err(e) = db::drop_scratch(&mut maintenance, name).await {
            left.push(name.to_string());
            first.get_or_insert(e);
        }
    }
    match first {
        None => Ok(()),
        Some(e) => Err((left, e)),
    }
}

struct Testbed<'a> {
    catalog: &'a Catalog,
    url: &'a str,
    /// Random part of every scratch name of this run.
    run: String,
    extensions: Vec<Ident>,
    /// A session on the URL's own database, for CREATE and DROP DATABASE.
    maintenance: DbConnection,
    migrator: Migrator,
    /// Scratch databases that may exist (recorded before they are created) and are not dropped yet.
    created: Vec<Ident>,
    /// Module databases made so far, for their names.
    copies: usize,
    findings: Findings,
}

impl Testbed<'_> {
    async fn test_all(&mut self) -> Result<(), Error> {
        // Per scope, the database holding the core migrations, once they passed.
        let mut templates: BTreeMap<Scope, Ident> = BTreeMap::new();
        for scope in SCOPES {
            if let Some(template) = self.test_core(scope).await? {
                templates.insert(scope, template);
            }
        }
        let catalog = self.catalog;
        // A loaded catalog has no dependency cycle; by name should one ever get through.
        let order = catalog
            .topological_order()
            .unwrap_or_else(|_| catalog.modules.keys().map(String::as_str).collect());
        for module in order.into_iter().filter_map(|name| catalog.module(name)) {
            for scope in SCOPES {
                let Some(first) = module.migrations(scope).migrations.first() else {
                    continue;
                };
                match templates.get(&scope) {
                    Some(template) => self.test_module(module, scope, template).await?,
                    // Without a working core there is nothing to test the module on.
                    None => self.findings.note(
                        first.up.path.parent().unwrap_or(&first.up.path),
                        format!("not tested: the core {scope} migrations failed"),
                    ),
                }
            }
        }
        for name in templates.into_values() {
            self.drop(&name).await?;
        }
        Ok(())
    }

    /// The core migrations of `scope`, one checkpoint each, in a database of their own; that database
    /// when they passed (kept, as the template of the scope's module tests).
    async fn test_core(&mut self, scope: Scope) -> Result<Option<Ident>, Error> {
        let name = db::scratch_name(&self.run, scope.as_str())?;
        let mut conn = self.create(&name, None).await?;
        if scope == Scope::Tenant {
            db::ensure_extensions(&mut conn, &self.extensions).await?;
        }
        let track = Track::core(self.catalog, scope);
        let checkpoints: Vec<Checkpoint> = track
            .migrations
            .migrations
            .iter()
            .map(|m| Checkpoint {
                label: m.version.to_string(),
                target: m.version,
            })
            .collect();
        let walked = self.walk(&mut conn, &track, &checkpoints).await?;
        // Closed before it serves as a template, which allows no other session.
        conn.close().await?;
        if walked == Walked::Clean {
            Ok(Some(name))
        } else {
            self.drop(&name).await?;
            Ok(None)
        }
    }

    /// One module in one scope, in a copy of `template` with its dependencies installed.
    async fn test_module(
        &mut self,
        module: &Module,
        scope: Scope,
        template: &Ident,
    ) -> Result<(), Error> {
        self.copies += 1;
        let name = db::scratch_name(&self.run, &format!("{}_{}", scope.as_str(), self.copies))?;
        let mut conn = self.create(&name, Some(template)).await?;
        if self.install_dependencies(&mut conn, module, scope).await? {
            let track = Track::of(module, scope);
            let checkpoints = release_checkpoints(module, scope);
            self.walk(&mut conn, &track, &checkpoints).await?;
        }
        // The session may be broken by what a migration did; the drop ends it either way.
        let _ = conn.close().await;
        self.drop(&name).await
    }

    async fn walk(
        &mut self,
        conn: &mut DbConnection,
        track: &Track<'_>,
        checkpoints: &[Checkpoint],
    ) -> Result<Walked, Error> {
        walk::walk(conn, &self.migrator, track, checkpoints, &mut self.findings).await
    }

    /// A new scratch database (a copy of `template`) and a session in it.
    async fn create(
        &mut self,
        name: &Ident,
        template: Option<&Ident>,
    ) -> Result<DbConnection, Error> {
        // Recorded first: if the run stops while the server creates it, it is still dropped.
        self.created.push(name.clone());
        db::create_scratch(&mut self.maintenance, name, template).await?;
        let databases = db::scratch_server(self.url, Some(name))?;
        Ok(databases.landlord().await?)
    }

    async fn drop(&mut self, name: &Ident) -> Result<(), Error> {
        db::drop_scratch(&mut self.maintenance, name).await?;
        self.created.retain(|n| n != name);
        Ok(())
    }

    /// Every module `module` needs, transitively, at its newest release that its dependents accept,
    /// installed in `scope`, dependencies first. False (with the problem recorded) when one failed.
    async fn install_dependencies(
        &mut self,
        conn: &mut DbConnection,
        module: &Module,
        scope: Scope,
    ) -> Result<bool, Error> {
        let catalog = self.catalog;
        let mut requirements: BTreeMap<&str, Vec<&semver::VersionReq>> = BTreeMap::new();
        let mut queue = vec![module];
        let mut seen = BTreeSet::from([module.name.as_str()]);
        while let Some(next) = queue.pop() {
            for dependency in &next.depends_on {
                let wanted = requirements.entry(dependency.module.as_str()).or_default();
                wanted.extend(dependency.requirement.as_ref());
                if seen.insert(dependency.module.as_str())
                    && let Some(found) = catalog.module(&dependency.module)
                {
                    queue.push(found);
                }
            }
        }
        let order = catalog
            .topological_order()
            .unwrap_or_else(|_| requirements.keys().copied().collect());
        for name in order {
            let (Some(wanted), Some(dependency)) = (requirements.get(name), catalog.module(name))
            else {
                continue;
            };
            let release = dependency
                .releases
                .iter()
                .rev()
                .find(|r| wanted.iter().all(|req| req.matches(&r.version)))
                .or(dependency.newest_release());
            let Some((release, target)) =
                release.and_then(|r| r.target(scope).map(|target| (r, target)))
            else {
                continue;
            };
            let track = Track::of(dependency, scope);
            match self.migrator.apply(conn, &track, Some(target)).await {
                Ok(_) => {}
                Err(e) if walk::is_finding(&e) => {
                    let file = walk::failed_file(&e)
                        .or_else(|| track.migrations.get(target).map(|m| m.up.path.clone()))
                        .unwrap_or_default();
                    let context = format!(
                        "installing dependency {name} {} to test {} ({scope} scope) failed",
                        release.version, module.name
                    );
                    self.findings.problem(file, walk::failure(&context, &e));
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }
}

/// The module's releases that name a target in `scope`, oldest first.
fn release_checkpoints(module: &Module, scope: Scope) -> Vec<Checkpoint> {
    module
        .releases
        .iter()
        .filter_map(|r| {
            r.target(scope).map(|target| Checkpoint {
                label: r.version.to_string(),
                target,
            })
        })
        .collect()
}
