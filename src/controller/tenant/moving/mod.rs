//! A Tenant's move to another server, as its reconcile sees it: the annotation judged against Landlord's
//! records (`request`), the mover started or found running (`task`), and what the Tenant shows meanwhile.
//! Before the switch a move holds the tenant (no provisioning on either server, `Ready` False `Moving`);
//! after it the ordinary reconcile serves the tenant from the target while the mover finishes.

mod request;
mod task;

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::super::credentials;
use super::super::server::placement;
use super::super::{Context, Error};
use super::gather::TenantFacts;
use super::validate::ValidTenant;
use crate::catalog::Scope;
use crate::crd::{
    ConditionType, DeletionPolicy, DesiredCondition, ModuleInstallation, Reason, Tenant,
    find_condition,
};
use crate::db::mirror::{self, Begun, MovePhase, MoveRecord};
use crate::db::moving::{self, PgTools};
use request::{Ask, Decision, Refusal, moved_condition, moving_message};
use task::MoveJob;

/// What a move means for this reconcile.
#[derive(Debug, Default)]
pub struct Steer {
    /// The `Moved` condition (None: no move asked, none to show).
    pub moved: Option<DesiredCondition>,
    /// The move holds the tenant: nothing is provisioned; this is reported instead.
    pub hold: Option<Error>,
    /// Look again soon: the move goes on by itself.
    pub soon: bool,
}

pub async fn steer(
    tenant: &Tenant,
    valid: &ValidTenant,
    world: &TenantFacts,
    ctx: &Context,
) -> Result<Steer, Error> {
    let Some(slug) = world
        .slug
        .as_ref()
        .filter(|s| s.is_owned_by(&valid.owner.uid))
    else {
        return Ok(Steer::default());
    };
    let namespace = tenant.namespace().unwrap_or_default();
    let in_flight = in_flight(tenant, ctx);
    let decision = request::decide(
        &Ask::of(tenant),
        ctx.config.is_production(),
        slug,
        world.moving.as_ref(),
        |to| {
            placement::move_target(to, &namespace, &world.namespace_labels, &world.servers)
                .map(drop)
        },
        &in_flight,
    );
    let pool = ctx.databases.landlord_pool();
    let steer = match decision {
        Decision::Nothing => Steer::default(),
        Decision::ForgetFailure => {
            mirror::forget_failed_move(pool, valid.names.slug()).await?;
            Steer::default()
        }
        Decision::Show(record) => Steer {
            moved: Some(moved_condition(&record, None)),
            ..Steer::default()
        },
        Decision::Refuse(refusal) => refused(refusal),
        Decision::Wait(message) => Steer {
            moved: Some(DesiredCondition::new(
                ConditionType::Moved,
                Some(false),
                Reason::Moving,
                message,
            )),
            hold: None,
            soon: true,
        },
        Decision::Start { target } => {
            let server = ctx.server(&target)?;
            let begun = mirror::begin_move(
                pool,
                valid.names.slug(),
                &valid.owner.uid,
                &slug.server,
                &target,
                server.rules.max_tenants,
            )
            .await?;
            match begun {
                Begun::Started(record) => {
                    let note = format!(
                        "Moving from server {} to {target}: new sessions are refused from now on.",
                        record.source
                    );
                    ctx.event(tenant, false, "MoveStarted", "Move", note).await;
                    drive(tenant, valid, world, record, ctx).await?
                }
                Begun::Full { placed } => refused(Refusal::Unfit {
                    target: target.clone(),
                    from: slug.server.clone(),
                    why: format!(
                        "is full ({placed} tenants, maxTenants {})",
                        server.rules.max_tenants.unwrap_or_default()
                    ),
                }),
                Begun::Changed => Steer {
                    hold: Some(Error::Moving {
                        message: format!(
                            "Moving to server {target}: Landlord's records changed while the move was asked; \
                             looking again."
                        ),
                    }),
                    soon: true,
                    ..Steer::default()
                },
            }
        }
        Decision::Drive(record) => drive(tenant, valid, world, record, ctx).await?,
    };
    announce(tenant, steer.moved.as_ref(), ctx).await;
    Ok(steer)
}

fn refused(refusal: Refusal) -> Steer {
    let err = Error::from(refusal);
    Steer {
        moved: Some(DesiredCondition::new(
            ConditionType::Moved,
            Some(false),
            err.reason(),
            err.to_string(),
        )),
        ..Steer::default()
    }
}

/// Keeps a move under way going whatever the Tenant asks now (its deletion waits for the move to end).
pub async fn resume(
    tenant: &Tenant,
    valid: &ValidTenant,
    world: &TenantFacts,
    ctx: &Context,
) -> Result<(), Error> {
    if let Some(record) = world.moving.clone().filter(|m| m.phase.active())
        && world
            .slug
            .as_ref()
            .is_some_and(|s| s.is_owned_by(&valid.owner.uid))
    {
        drive(tenant, valid, world, record, ctx).await?;
    }
    Ok(())
}

/// Starts the mover unless this process runs it already, and says where the move stands.
async fn drive(
    tenant: &Tenant,
    valid: &ValidTenant,
    world: &TenantFacts,
    record: MoveRecord,
    ctx: &Context,
) -> Result<Steer, Error> {
    let progress = match ctx.moves.progress(valid.names.slug()) {
        Some(progress) => progress,
        None => {
            let job = job(tenant, valid, world, &record, ctx).await?;
            ctx.moves
                .drive(valid.names.slug(), |progress| task::run(job, progress))
        }
    };
    let now = progress.current();
    let moved = moved_condition(&record, Some(now.clone()));
    // Switched: the tenant is served from the target from now on, so its role opens there before this
    // reconcile provisions (the mover does the same; both are idempotent).
    if record.phase == MovePhase::Switched {
        let target = ctx.server(&record.target)?;
        let limit = record.connection_limit.unwrap_or(-1);
        moving::open_tenant_role(&target.databases, &valid.names, limit).await?;
    }
    // Until the switch, and while a failed move rolls back, the tenant is held where it was.
    if !matches!(record.phase, MovePhase::Switched | MovePhase::Dropping) {
        Ok(Steer {
            moved: Some(moved),
            hold: Some(Error::Moving {
                message: moving_message(&record, Some(now)),
            }),
            soon: true,
        })
    } else {
        Ok(Steer {
            moved: Some(moved),
            hold: None,
            soon: true,
        })
    }
}

async fn job(
    tenant: &Tenant,
    valid: &ValidTenant,
    world: &TenantFacts,
    record: &MoveRecord,
    ctx: &Context,
) -> Result<MoveJob, Error> {
    let password = world
        .secret
        .as_ref()
        .and_then(credentials::password)
        .ok_or_else(|| Error::Moving {
            message: format!(
                "Moving to server {}: the tenant's Secret holds no password to make its role with there; \
                 waiting for it.",
                record.target
            ),
        })?;
    let pool = ctx.databases.landlord_pool();
    let mut releases = BTreeMap::new();
    for module in mirror::installed_modules(pool, valid.names.slug()).await? {
        let release = module
            .version
            .as_deref()
            .and_then(|v| semver::Version::parse(v).ok())
            .and_then(|v| {
                ctx.catalog
                    .module(&module.module)
                    .and_then(|m| m.release(&v))
                    .map(|r| r.target(Scope::Tenant))
            });
        // A release the catalog no longer has cannot be judged here; its installation reports it.
        if let Some(target) = release {
            releases.insert(module.module, target);
        }
    }
    Ok(MoveJob {
        tenant: valid.names.clone(),
        owner: valid.owner.clone(),
        password,
        extensions: valid.extensions.clone(),
        source: ctx.server(&record.source)?,
        target: ctx.server(&record.target)?,
        landlord: ctx.databases.clone(),
        releases,
        retain_source: tenant.spec.deletion_policy == DeletionPolicy::Retain,
        tools: PgTools {
            bin_dir: ctx.config.pg_bin_dir.clone(),
        },
        grace: ctx.config.move_grace_period,
        halt_at: ctx.config.move_halt_after,
        metrics: ctx.metrics.clone(),
        waker: ctx.visits.tenant_waker(ObjectRef::from_obj(tenant)),
    })
}

/// The Tenant's installations with work under way: no status for their generation yet, progressing, or
/// being deleted. One that waits or was refused is not in flight.
fn in_flight(tenant: &Tenant, ctx: &Context) -> Vec<String> {
    let Some(store) = ctx.installations.get() else {
        return Vec::new();
    };
    let namespace = tenant.namespace();
    let name = tenant.name_any();
    let mut busy: Vec<String> = store
        .state()
        .iter()
        .filter(|mi| mi.namespace() == namespace && mi.spec.tenant == name)
        .filter(|mi| busy(mi))
        .map(|mi| mi.name_any())
        .collect();
    busy.sort();
    busy
}

fn busy(mi: &ModuleInstallation) -> bool {
    if mi.metadata.deletion_timestamp.is_some() {
        return true;
    }
    let ready = mi
        .status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, ConditionType::Ready));
    match ready {
        None => true,
        Some(ready) => {
            ready.observed_generation != mi.metadata.generation
                || ready.reason == Reason::Progressing.as_str()
        }
    }
}

/// An Event when a move ends, once: the condition it ends with is not the one the Tenant shows yet.
async fn announce(tenant: &Tenant, moved: Option<&DesiredCondition>, ctx: &Context) {
    let Some(moved) = moved else { return };
    let shown = tenant
        .status
        .as_ref()
        .and_then(|s| find_condition(&s.conditions, ConditionType::Moved))
        .map(|c| c.reason.clone());
    if shown.as_deref() == Some(moved.reason.as_str()) {
        return;
    }
    match moved.reason {
        Reason::Reconciled => {
            ctx.event(tenant, false, "Moved", "Move", moved.message.clone())
                .await
        }
        Reason::MoveFailed => {
            ctx.event(tenant, true, "MoveFailed", "Move", moved.message.clone())
                .await
        }
        _ => {}
    }
}
