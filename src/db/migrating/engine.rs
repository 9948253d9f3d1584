//! The migration engine. Ours rather than sqlx's migrator: that one takes a single lock per database, can
//! leak it on pooled connections, and knows nothing of modules and scopes.
//!
//! Per call: take the advisory lock of (module, scope) on the dedicated connection, read the ledger (and, in
//! a tenant database, compare it with Landlord's copy), plan (refusing drift and irreversible steps before
//! anything runs), run each step in its own transaction together with its ledger row, release the lock.
//! Either the plan is made under the lock (`migrate`, `apply`, `rollback`), or a plan made earlier is run
//! exactly (`execute`), under the lock and only if the ledger is still what it was made from; either way two
//! engines racing on one database apply each migration exactly once, and what a dry run published is what runs.

use std::time::Duration;

use crate::catalog::Migration;
use crate::db::Error;
use crate::db::connect::DbConnection;
use crate::db::landlord::mirror;
use crate::db::lock::{advisory_key, lock_within, unlock};
use crate::db::migrating::ledger::{self, LedgerEntry};
use crate::db::migrating::ledger_copy;
use crate::db::migrating::plan::{self, Direction, Drift, MigrationStep, Plan, Track};
use crate::db::migrating::step::{self, Timeouts};

/// Where a track stands in one database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub applied: Vec<LedgerEntry>,
    /// Highest applied version.
    pub current: Option<i64>,
    /// Catalog migrations not applied yet, oldest first.
    pub pending: Vec<MigrationStep>,
    /// Applied migrations that differ from the catalog; a non-empty list blocks every change.
    pub drift: Vec<Drift>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    pub step: MigrationStep,
    pub execution_ms: i64,
}

/// What one call did: the plan computed under the lock, and every step of it, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub plan: Plan,
    pub executed: Vec<Executed>,
    /// Steps down of a shared landlord scope were skipped: these other tenants still have the module.
    pub kept_for: Vec<String>,
}

/// Which directions a call may run; a plan that needs another is refused under the lock, before anything
/// runs (production allows only `Up`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    Both,
    Only(Direction),
}

impl Allowed {
    /// What the environment allows: production runs upward migrations only. The one place that rule lives:
    /// the controller refuses a plan with it before anything runs, the engine again under its lock.
    pub fn in_environment(production: bool) -> Allowed {
        if production {
            Allowed::Only(Direction::Up)
        } else {
            Allowed::Both
        }
    }

    /// The first of `steps` this does not allow.
    pub fn refused<'s>(&self, steps: &'s [MigrationStep]) -> Option<&'s MigrationStep> {
        match self {
            Allowed::Both => None,
            Allowed::Only(direction) => steps.iter().find(|s| s.direction != *direction),
        }
    }
}

/// What a locked call runs: the plan made under the lock to reach a target, or a plan made earlier, run
/// only if the ledger is still what it was made from.
#[derive(Clone, Copy, Debug)]
enum Intent<'p> {
    Reach(Option<i64>),
    Run(&'p Plan),
}

#[derive(Clone, Debug)]
pub struct Migrator {
    /// How long to wait for another process migrating the same track.
    lock_timeout: Duration,
    /// What each migration statement may wait for a lock and run.
    timeouts: Timeouts,
}

impl Default for Migrator {
    fn default() -> Self {
        Migrator {
            lock_timeout: Duration::from_secs(60),
            timeouts: Timeouts::default(),
        }
    }
}

impl Migrator {
    pub fn new() -> Self {
        Self::default()
    }

    /// How long to wait for another process migrating the same track before `LockTimeout`.
    pub fn with_lock_timeout(mut self, lock_timeout: Duration) -> Self {
        self.lock_timeout = lock_timeout;
        self
    }

    /// Lock and statement timeouts of migrations whose files set none.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Reads the ledger; changes nothing (not even creating the ledger).
    pub async fn status(
        &self,
        conn: &mut DbConnection,
        track: &Track<'_>,
    ) -> Result<Status, Error> {
        let database = conn.database().to_string();
        let applied = ledger::entries(conn, &database, track.scope, track.module).await?;
        ledger_copy::check_unlocked(conn.ledger_copy_of(track), &database, track, &applied).await?;
        let done = |m: &&Migration| applied.iter().any(|e| e.version == m.version);
        let pending = track
            .migrations
            .migrations
            .iter()
            .filter(|m| !done(m))
            .map(|m| MigrationStep {
                version: m.version,
                name: m.name(),
                direction: Direction::Up,
            })
            .collect();
        Ok(Status {
            drift: plan::drift(track, &applied),
            current: applied.last().map(|e| e.version),
            pending,
            applied,
        })
    }

    /// What `migrate` would run now, without the lock: for dry runs and status.
    pub async fn plan(
        &self,
        conn: &mut DbConnection,
        track: &Track<'_>,
        target: Option<i64>,
    ) -> Result<Plan, Error> {
        let database = conn.database().to_string();
        let applied = ledger::entries(conn, &database, track.scope, track.module).await?;
        ledger_copy::check_unlocked(conn.ledger_copy_of(track), &database, track, &applied).await?;
        plan::plan(track, &applied, target, &database)
    }

    /// Brings the track to `target` in whichever direction (None: remove everything of it).
    pub async fn migrate(
        &self,
        conn: &mut DbConnection,
        track: &Track<'_>,
        target: Option<i64>,
    ) -> Result<Report, Error> {
        self.locked(conn, track, Intent::Reach(target), Allowed::Both, None)
            .await
    }

    /// `migrate` in the directions `allowed`. With `shared_by` (the landlord scope, on behalf of that
    /// tenant), steps down run only if no other tenant has the module recorded, decided under the lock.
    pub async fn migrate_guarded(
        &self,
        conn: &mut DbConnection,
        track: &Track<'_>,
        target: Option<i64>,
        allowed: Allowed,
        shared_by: Option<&str>,
    ) -> Result<Report, Error> {
        self.locked(conn, track, Intent::Reach(target), allowed, shared_by)
            .await
    }

    /// Runs `plan` exactly (made earlier, e.g. published as a dry run), under the lock, and only if the
    /// ledger still says what the plan was made from: otherwise `PlanOutdated` and nothing runs. With
    /// `shared_by` (the landlord scope, on behalf of that tenant), steps down run only if no other tenant has
    /// the module recorded; what goes up toward the plan's target still runs.
    pub async fn execute(
        &self,
        conn: &mut DbConnection,
        track: &Track<'_>,
        plan: &Plan,
        allowed: Allowed,
        shared_by: Option<&str>,
    ) -> Result<Report, Error> {
        self.locked(conn, track, Intent::Run(plan), allowed, shared_by)
            .await
    }

    /// Applies pending migrations up to `target`; refuses if reaching it needs a rollback.
    pub async fn apply(
        &self,
        conn: &mut DbConnection,
        track: &Track<'_>,
        target: Option<i64>,
    ) -> Result<Report, Error> {
        self.locked(
            conn,
            track,
            Intent::Reach(target),
            Allowed::Only(Direction::Up),
            None,
        )
        .await
    }

    /// Rolls back down to `target` (None: everything); refuses if reaching it needs an upgrade.
    pub async fn rollback(
        &self,
        conn: &mut DbConnection,
        track: &Track<'_>,
        target: Option<i64>,
    ) -> Result<Report, Error> {
        self.locked(
            conn,
            track,
            Intent::Reach(target),
            Allowed::Only(Direction::Down),
            None,
        )
        .await
    }

    async fn locked(
        &self,
        conn: &mut DbConnection,
        track: &Track<'_>,
        intent: Intent<'_>,
        allowed: Allowed,
        shared_by: Option<&str>,
    ) -> Result<Report, Error> {
        self.lock(conn, track).await?;
        let result = run(conn, track, intent, allowed, shared_by, self.timeouts).await;
        // Released on every path; should the unlock itself fail, closing the connection releases it.
        let released = unlock(conn).await;
        let report = result?;
        released?;
        Ok(report)
    }

    async fn lock(&self, conn: &mut DbConnection, track: &Track<'_>) -> Result<(), Error> {
        // A call cancelled while holding a lock left it on this session.
        unlock(conn).await?;
        let what = format!("migrating module {} ({} scope)", track.module, track.scope);
        match lock_within(
            conn,
            lock_key(track),
            "the migration lock",
            &what,
            self.lock_timeout,
        )
        .await
        {
            Err(Error::LockBusy { database, .. }) => Err(Error::LockTimeout {
                module: track.module.to_string(),
                scope: track.scope,
                database,
                seconds: self.lock_timeout.as_secs(),
            }),
            other => other,
        }
    }
}

/// Advisory locks are per database, so (scope, module) is enough; hashed to the lock's 64-bit key.
fn lock_key(track: &Track<'_>) -> i64 {
    advisory_key(&format!(
        "landlord_migrations/{}/{}",
        track.scope, track.module
    ))
}

async fn run(
    conn: &mut DbConnection,
    track: &Track<'_>,
    intent: Intent<'_>,
    allowed: Allowed,
    shared_by: Option<&str>,
    timeouts: Timeouts,
) -> Result<Report, Error> {
    let database = conn.database().to_string();
    ledger::ensure(conn, &database).await?;
    let applied = ledger::entries(conn, &database, track.scope, track.module).await?;
    let copy = conn.ledger_copy_of(track);
    if let Some(copy) = &copy {
        ledger_copy::check_under_lock(conn, &database, copy, track, &applied).await?;
    }
    let plan = match intent {
        Intent::Reach(target) => plan::plan(track, &applied, target, &database)?,
        Intent::Run(given) if given.stands_on(&applied) => given.clone(),
        Intent::Run(_) => {
            return Err(Error::PlanOutdated {
                module: track.module.to_string(),
                scope: track.scope,
                database,
            });
        }
    };
    if let (Allowed::Only(direction), Some(step)) = (allowed, allowed.refused(&plan.steps)) {
        return Err(Error::WrongDirection {
            operation: match direction {
                Direction::Up => "apply",
                Direction::Down => "rollback",
            },
            module: track.module.to_string(),
            scope: track.scope,
            step: step.name.clone(),
            direction: step.direction,
        });
    }
    let mut steps = plan.steps.clone();
    let mut kept_for = Vec::new();
    if let Some(slug) = shared_by
        && plan.steps.iter().any(|s| s.direction == Direction::Down)
    {
        let others = mirror::other_tenants_with_module(conn, track.module, slug).await?;
        if !others.is_empty() {
            // The shared scope stays for the other tenants: only what goes up toward the target runs.
            let upward = plan::plan(track, &applied, plan.target, &database)?;
            steps = if upward.steps.iter().all(|s| s.direction == Direction::Up) {
                upward.steps
            } else {
                Vec::new()
            };
            kept_for = others;
        }
    }
    let mut executed = Vec::with_capacity(steps.len());
    for step in steps {
        if let (Some(copy), Some(migration)) = (&copy, track.migrations.get(step.version)) {
            copy.begin(
                track.module,
                step.version,
                &migration.checksum,
                step.direction,
            )
            .await?;
        }
        let execution_ms = step::run_step(conn, &database, track, &step, timeouts).await?;
        if let Some(copy) = &copy {
            copy.finish(track.module, step.version, step.direction)
                .await?;
        }
        tracing::info!(
            database = %database, module = track.module, scope = %track.scope,
            migration = %step.name, direction = %step.direction, execution_ms,
            "migration done"
        );
        executed.push(Executed { step, execution_ms });
    }
    Ok(Report {
        plan,
        executed,
        kept_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{MigrationSet, Scope};

    #[test]
    fn production_allows_only_steps_up() {
        let step = |version, direction| MigrationStep {
            version,
            name: format!("{version}_m"),
            direction,
        };
        let steps = [step(2, Direction::Up), step(1, Direction::Down)];
        assert_eq!(Allowed::in_environment(false).refused(&steps), None);
        assert_eq!(
            Allowed::in_environment(true).refused(&steps),
            Some(&steps[1])
        );
        assert_eq!(Allowed::in_environment(true).refused(&steps[..1]), None);
    }

    #[test]
    fn lock_keys_differ_per_module_and_scope() {
        let set = MigrationSet::default();
        let key = |module, scope| lock_key(&Track::new(module, scope, &set));
        assert_ne!(key("tasks", Scope::Tenant), key("tasks", Scope::Landlord));
        assert_ne!(key("tasks", Scope::Tenant), key("expenses", Scope::Tenant));
        assert_eq!(key("tasks", Scope::Tenant), key("tasks", Scope::Tenant));
    }
}
