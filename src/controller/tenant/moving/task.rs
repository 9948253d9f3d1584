//! The mover: one task per move, driving it phase by phase from Landlord's record (`tenant_moves`) under a
//! session advisory lock in the landlord database, so two replicas (or a replica and its successor) never
//! drive the same move. Every phase can be run again from its start: a process killed anywhere resumes from
//! the record. Any failure before the switch rolls the move back (the source opens again, the target is
//! dropped); after the switch the move only goes forward.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;

use super::super::super::drift::TenantWaker;
use super::super::super::moves::Progress;
use super::super::super::registry::Server;
use crate::db::mirror::{self, MovePhase, MoveRecord, TenantState};
use crate::db::moving::{self as moving, PgTools};
use crate::db::{self, Databases, Ident, Password, TenantNames, TenantOwner};
use crate::metrics::Metrics;

/// How often the mover looks again while it waits (sessions to end, the Tenant to be Ready on the target).
const POLL: Duration = Duration::from_millis(500);

/// Everything a move needs, owned: it outlives the reconcile that started it.
pub struct MoveJob {
    pub tenant: TenantNames,
    pub owner: TenantOwner,
    /// The tenant's password (its Secret's): the target role is made with it.
    pub password: Password,
    pub extensions: Vec<Ident>,
    pub source: Arc<Server>,
    pub target: Arc<Server>,
    /// The landlord database (records, Landlord's copy of the ledger).
    pub landlord: Arc<Databases>,
    /// Per module, the last tenant migration of the release its installation recorded.
    pub releases: BTreeMap<String, Option<i64>>,
    /// Keep the source copy, closed and marked as moved, instead of dropping it.
    pub retain_source: bool,
    pub tools: PgTools,
    pub grace: Duration,
    pub halt_at: Option<MovePhase>,
    pub metrics: Arc<Metrics>,
    /// Reconciles the Tenant: after the switch it is provisioned on the target, and the end is shown.
    pub waker: TenantWaker,
}

/// Runs the move until it is done, failed, halted, or an error stops this run (the next reconcile starts
/// another from the record).
pub async fn run(job: MoveJob, progress: Arc<Progress>) {
    job.metrics.move_driven(true);
    if let Err(err) = drive(&job, &progress).await {
        tracing::warn!(tenant = job.tenant.slug(), %err, "a tenant move stopped; it resumes from its record");
        progress.note(format!("stopped: {err}; trying again"));
    }
    job.metrics.move_driven(false);
}

async fn drive(job: &MoveJob, progress: &Progress) -> Result<(), db::Error> {
    let pool = job.landlord.landlord_pool();
    let slug = job.tenant.slug();
    let Some(lock) = moving::lock_move(pool, slug).await? else {
        progress.note("driven by another operator process");
        return Ok(());
    };
    let result = phases(job, progress).await;
    // The lock goes with the session.
    lock.close().await.ok();
    result
}

async fn phases(job: &MoveJob, progress: &Progress) -> Result<(), db::Error> {
    let pool = job.landlord.landlord_pool();
    let slug = job.tenant.slug();
    loop {
        let Some(record) = mirror::move_of(pool, slug).await? else {
            return Ok(());
        };
        if job.halt_at == Some(record.phase) {
            progress.note(format!(
                "halted at {} (LANDLORD_MOVE_HALT_AFTER)",
                record.phase
            ));
            std::future::pending::<()>().await;
        }
        let phase = record.phase;
        let step = match phase {
            MovePhase::Quiescing => quiesce(job, &record, progress).await,
            MovePhase::Copying => copy(job, progress).await,
            MovePhase::Verifying => verify(job, progress).await,
            MovePhase::Switched => open_target(job, &record, progress).await,
            MovePhase::Dropping => drop_source(job, &record, progress).await,
            MovePhase::RollingBack => roll_back(job, &record, progress).await,
            MovePhase::Done | MovePhase::Failed => return Ok(()),
        };
        match step {
            Ok(()) => {}
            // Before the switch the source holds the only data: rather than keep the tenant closed while
            // something is wrong, open it again and drop the copy.
            Err(err) if phase.before_switch() => {
                let problem = err.to_string();
                tracing::warn!(tenant = slug, %phase, %err, "a tenant move failed; rolling it back");
                mirror::advance(
                    pool,
                    slug,
                    phase,
                    MovePhase::RollingBack,
                    None,
                    Some(&problem),
                )
                .await?;
            }
            Err(err) => return Err(err),
        }
    }
}

/// New sessions refused on the source; existing ones have the grace period, then are ended.
async fn quiesce(job: &MoveJob, record: &MoveRecord, progress: &Progress) -> Result<(), db::Error> {
    let pool = job.landlord.landlord_pool();
    let source = &job.source.databases;
    if record.connection_limit.is_none() {
        // Recorded before the role is closed: a crash in between must not make 0 the limit to restore.
        let limit = moving::connection_limit(source, &job.tenant)
            .await?
            .unwrap_or(-1);
        mirror::record_connection_limit(pool, job.tenant.slug(), limit).await?;
    }
    moving::close_tenant_role(source, &job.tenant).await?;
    let started = Instant::now();
    loop {
        let sessions = moving::sessions(source, &job.tenant).await?;
        if sessions.all == 0 {
            break;
        }
        let waited = started.elapsed();
        if waited >= job.grace {
            progress.note(format!(
                "quiescing: ending {} sessions after the grace period of {} s",
                sessions.all,
                job.grace.as_secs()
            ));
            moving::end_sessions(source, &job.tenant).await?;
        } else {
            progress.note(format!(
                "quiescing: {} sessions left ({} of them Landlord's), ended in {} s",
                sessions.all,
                sessions.landlord,
                (job.grace - waited).as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    progress.note("copying");
    mirror::advance(
        pool,
        job.tenant.slug(),
        MovePhase::Quiescing,
        MovePhase::Copying,
        None,
        None,
    )
    .await?;
    Ok(())
}

/// A fresh database on the target (its role closed, with the tenant's password), the extensions, then
/// `pg_dump | pg_restore` as the tenant's role on both sides.
async fn copy(job: &MoveJob, progress: &Progress) -> Result<(), db::Error> {
    let target = &job.target.databases;
    let mut admin = target.admin().await?;
    db::ensure_tenant_role(&mut admin, &job.tenant, &job.owner, &job.password).await?;
    admin.close().await.ok();
    moving::close_tenant_role(target, &job.tenant).await?;
    // Whatever an earlier attempt left there is dropped: the copy starts from nothing.
    moving::drop_copy(target, &job.tenant).await?;
    let mut admin = target.admin().await?;
    db::ensure_tenant_database(&mut admin, &job.tenant, &job.owner, true).await?;
    admin.close().await.ok();
    let source_mover = moving::ensure_mover(&job.source.databases, &job.tenant, &job.owner).await?;
    let target_mover = moving::ensure_mover(target, &job.tenant, &job.owner).await?;
    let mut conn = target_mover.log_in(target, &job.tenant).await?;
    db::ensure_extensions(&mut conn, &job.extensions).await?;
    conn.close().await.ok();
    progress.note("copying");
    let bytes = moving::copy_database(
        &job.tools,
        &job.tenant,
        (&job.source.databases, &source_mover),
        (target, &target_mover),
        progress.copied.clone(),
    )
    .await?;
    job.metrics.move_bytes(bytes);
    progress.note("verifying");
    mirror::advance(
        job.landlord.landlord_pool(),
        job.tenant.slug(),
        MovePhase::Copying,
        MovePhase::Verifying,
        Some(bytes as i64),
        None,
    )
    .await?;
    Ok(())
}

/// Both sides compared; the switch only if nothing differs.
async fn verify(job: &MoveJob, progress: &Progress) -> Result<(), db::Error> {
    let source_mover = moving::ensure_mover(&job.source.databases, &job.tenant, &job.owner).await?;
    let target_mover = moving::ensure_mover(&job.target.databases, &job.tenant, &job.owner).await?;
    let mut conn = source_mover
        .log_in(&job.source.databases, &job.tenant)
        .await?;
    let source = moving::snapshot(&mut conn).await?;
    conn.close().await.ok();
    let mut conn = target_mover
        .log_in(&job.target.databases, &job.tenant)
        .await?;
    let target = moving::snapshot(&mut conn).await?;
    conn.close().await.ok();
    let mut found = moving::differences(&source, &target);
    found.extend(moving::ledger_copy_differences(&job.landlord, &job.tenant, &target).await?);
    found.extend(release_differences(&job.releases, &target.releases()));
    if !found.is_empty() {
        return Err(db::Error::CopyDiffers {
            database: job.tenant.database().to_string(),
            differences: found,
        });
    }
    progress.note(format!(
        "verified {} tables, {} rows, {} migrations; switching",
        target.rows.len(),
        target.total_rows(),
        target.ledger.len()
    ));
    let bytes = progress.current().1 as i64;
    mirror::switch(job.landlord.landlord_pool(), job.tenant.slug(), bytes).await?;
    job.waker.wake();
    Ok(())
}

/// Each installed module's release, as recorded, against the target's ledger. Pure.
fn release_differences(
    expected: &BTreeMap<String, Option<i64>>,
    found: &BTreeMap<&str, i64>,
) -> Vec<String> {
    expected
        .iter()
        .filter_map(|(module, wanted)| {
            let there = found.get(module.as_str()).copied();
            (there != *wanted).then(|| {
                let show = |v: Option<i64>| v.map_or("none".to_string(), |v| v.to_string());
                format!(
                    "module {module} is at migration {} there, its release needs {}",
                    show(there),
                    show(*wanted)
                )
            })
        })
        .collect()
}

/// After the switch: the target's role opens, the movers go; then, once the Tenant is Ready on the target
/// (the ordinary reconcile makes it so: the Secret, the core schema), the source may go.
async fn open_target(
    job: &MoveJob,
    record: &MoveRecord,
    progress: &Progress,
) -> Result<(), db::Error> {
    let limit = record.connection_limit.unwrap_or(-1);
    moving::open_tenant_role(&job.target.databases, &job.tenant, limit).await?;
    moving::drop_mover(&job.target.databases, &job.tenant, &job.owner).await?;
    moving::drop_mover(&job.source.databases, &job.tenant, &job.owner).await?;
    progress.note(format!(
        "switched to {}; waiting for the Tenant to be Ready there",
        record.target
    ));
    let pool = job.landlord.landlord_pool();
    loop {
        let ready = mirror::slug_record(pool, job.tenant.slug())
            .await?
            .is_some_and(|r| r.server == record.target && r.status == TenantState::Ready);
        if ready {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    mirror::advance(
        pool,
        job.tenant.slug(),
        MovePhase::Switched,
        MovePhase::Dropping,
        None,
        None,
    )
    .await?;
    Ok(())
}

/// The source copy dropped, or (deletionPolicy Retain) kept closed and marked as moved.
async fn drop_source(
    job: &MoveJob,
    record: &MoveRecord,
    progress: &Progress,
) -> Result<(), db::Error> {
    let source = &job.source.databases;
    if job.retain_source {
        progress.note(format!("keeping the copy on {}", record.source));
        moving::mark_moved(source, &job.tenant, &job.owner, &record.target).await?;
    } else {
        progress.note(format!("dropping the copy on {}", record.source));
        db::drop_tenant(source, &job.tenant, &job.owner).await?;
    }
    let done = mirror::advance(
        job.landlord.landlord_pool(),
        job.tenant.slug(),
        MovePhase::Dropping,
        MovePhase::Done,
        None,
        None,
    )
    .await?;
    if done {
        job.metrics.move_ended(true);
        job.waker.wake();
    }
    Ok(())
}

/// A failed move undone: the source opens again first (the tenant serves), then the copy goes.
async fn roll_back(
    job: &MoveJob,
    record: &MoveRecord,
    progress: &Progress,
) -> Result<(), db::Error> {
    let pool = job.landlord.landlord_pool();
    let limit = record.connection_limit.unwrap_or(-1);
    progress.note("rolling back: the source opens again");
    moving::open_tenant_role(&job.source.databases, &job.tenant, limit).await?;
    mirror::set_tenant_status(pool, job.tenant.slug(), &job.owner.uid, TenantState::Ready).await?;
    moving::drop_mover(&job.source.databases, &job.tenant, &job.owner).await?;
    progress.note(format!(
        "rolling back: dropping the copy on {}",
        record.target
    ));
    db::drop_tenant(&job.target.databases, &job.tenant, &job.owner).await?;
    moving::drop_mover(&job.target.databases, &job.tenant, &job.owner).await?;
    let failed = mirror::advance(
        pool,
        job.tenant.slug(),
        MovePhase::RollingBack,
        MovePhase::Failed,
        None,
        None,
    )
    .await?;
    if failed {
        job.metrics.move_ended(false);
        job.waker.wake();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_compared_with_what_the_installations_recorded() {
        let expected: BTreeMap<String, Option<i64>> =
            [("tasks".to_string(), Some(3)), ("notes".to_string(), None)].into();
        let mut found = BTreeMap::from([("tasks", 3)]);
        assert!(release_differences(&expected, &found).is_empty());
        found.insert("tasks", 2);
        assert_eq!(
            release_differences(&expected, &found),
            ["module tasks is at migration 2 there, its release needs 3"]
        );
        found.insert("notes", 1);
        found.insert("tasks", 3);
        assert_eq!(
            release_differences(&expected, &found),
            ["module notes is at migration 1 there, its release needs none"]
        );
    }
}
