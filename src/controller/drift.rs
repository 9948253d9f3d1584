//! Drift detection on its own paced loop. A resync decides from Landlord's records alone whether a tenant
//! database needs a visit (`in_place`); what the records cannot see — a ledger row or a module's table
//! changed by hand inside a tenant database — this loop finds by marking every Tenant and installation due
//! for one visit per `LANDLORD_DRIFT_INTERVAL` (jittered), at most `LANDLORD_DRIFT_SESSIONS_PER_SECOND`,
//! and waking its reconcile, which then opens the database and reports `ChecksumMismatch` as ever.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tracing::info;

use super::Context;
use crate::crd::{ModuleInstallation, Tenant};

/// The objects whose next reconcile must visit their database (by UID).
#[derive(Debug, Default)]
pub struct Visits {
    due: Mutex<HashSet<String>>,
    /// Wakes the running tenant controller (none between leaderships).
    wake_tenants: Mutex<Option<UnboundedSender<ObjectRef<Tenant>>>>,
}

/// Reconciles one Tenant when asked, for as long as the leadership it was made in lasts.
pub struct TenantWaker {
    sender: Option<UnboundedSender<ObjectRef<Tenant>>>,
    tenant: ObjectRef<Tenant>,
}

impl TenantWaker {
    pub fn wake(&self) {
        if let Some(sender) = &self.sender {
            let _ = sender.unbounded_send(self.tenant.clone());
        }
    }
}

impl Visits {
    pub fn mark(&self, uid: &str) {
        self.lock().insert(uid.to_string());
    }

    /// The tenant controller of this leadership, woken by `visit_tenant_now`; `None` when it stops.
    pub fn wake_tenants_with(&self, senders: Option<&Senders>) {
        *self.wake_tenants.lock().unwrap_or_else(|e| e.into_inner()) =
            senders.map(|s| s.tenants.clone());
    }

    /// A Tenant whose database must be looked at now, not at the next drift pass: its role refused the
    /// password of its Secret (changed by hand in PostgreSQL), which only a visit puts right.
    pub fn visit_tenant_now(&self, uid: &str, tenant: ObjectRef<Tenant>) {
        self.mark(uid);
        self.wake_tenant(tenant);
    }

    /// Reconciles `tenant` now (no visit of its database unless one is due): something outside its
    /// resource, which no watch reports, changed its answer.
    pub fn wake_tenant(&self, tenant: ObjectRef<Tenant>) {
        if let Some(wake) = self
            .wake_tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = wake.unbounded_send(tenant);
        }
    }

    /// What reconciles `tenant` when work that outlives a reconcile (a move) reaches a step its status
    /// should show at once.
    pub fn tenant_waker(&self, tenant: ObjectRef<Tenant>) -> TenantWaker {
        let sender = self
            .wake_tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        TenantWaker { sender, tenant }
    }

    /// Whether a visit is due; the visit is taken (a failed one is retried by the error policy anyway).
    pub fn take(&self, uid: &str) -> bool {
        self.lock().remove(uid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.due.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where the loop sends the objects it made due.
pub struct Triggers {
    pub tenants: UnboundedReceiver<ObjectRef<Tenant>>,
    pub installations: UnboundedReceiver<ObjectRef<ModuleInstallation>>,
}

pub fn triggers() -> (Triggers, Senders) {
    let (tenant_tx, tenants) = unbounded();
    let (installation_tx, installations) = unbounded();
    (
        Triggers {
            tenants,
            installations,
        },
        Senders {
            tenants: tenant_tx,
            installations: installation_tx,
        },
    )
}

pub struct Senders {
    tenants: UnboundedSender<ObjectRef<Tenant>>,
    installations: UnboundedSender<ObjectRef<ModuleInstallation>>,
}

/// Runs until the controllers stop (its receivers are dropped). Each pass starts one (jittered) interval
/// after the previous one ended — the first one interval after the start, so a restart opens no tenant
/// session.
pub async fn run(ctx: &Context, senders: Senders) {
    let Some(interval) = ctx.config.drift_interval else {
        info!("drift detection is off (LANDLORD_DRIFT_INTERVAL=0)");
        return;
    };
    let spacing = Duration::from_secs_f64(1.0 / ctx.config.drift_sessions_per_second.max(0.001));
    loop {
        tokio::time::sleep(jittered(interval)).await;
        let (Some(tenants), Some(installations)) = (ctx.tenants.get(), ctx.installations.get())
        else {
            continue;
        };
        let pass = due(&tenants, &installations);
        info!(
            objects = pass.len(),
            "drift check: visiting every tenant database"
        );
        for object in pass {
            ctx.visits.mark(object.uid());
            let sent = match object {
                Due::Tenant(_, r) => senders.tenants.unbounded_send(r).is_ok(),
                Due::Installation(_, r) => senders.installations.unbounded_send(r).is_ok(),
            };
            if !sent {
                return;
            }
            ctx.metrics.drift_visit();
            tokio::time::sleep(spacing).await;
        }
    }
}

enum Due {
    Tenant(String, ObjectRef<Tenant>),
    Installation(String, ObjectRef<ModuleInstallation>),
}

impl Due {
    fn uid(&self) -> &str {
        match self {
            Due::Tenant(uid, _) | Due::Installation(uid, _) => uid,
        }
    }
}

/// Every live object with a database behind it, Tenants first (each kind in the cache's order).
fn due(tenants: &Store<Tenant>, installations: &Store<ModuleInstallation>) -> Vec<Due> {
    let mut tenants: Vec<_> = tenants
        .state()
        .into_iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none() && !t.spec.paused)
        .filter_map(|t| Some(Due::Tenant(t.uid()?, ObjectRef::from_obj(&*t))))
        .collect();
    let installations = installations
        .state()
        .into_iter()
        .filter(|m| m.metadata.deletion_timestamp.is_none() && !m.spec.dry_run)
        .filter_map(|m| Some(Due::Installation(m.uid()?, ObjectRef::from_obj(&*m))));
    tenants.extend(installations);
    tenants
}

/// The interval ± 10 %, so that replicas started together do not visit in lockstep.
fn jittered(interval: Duration) -> Duration {
    let unit = getrandom::u32().unwrap_or(u32::MAX / 2) as f64 / u32::MAX as f64;
    interval.mul_f64(0.9 + 0.2 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visit_is_due_once() {
        let visits = Visits::default();
        assert!(!visits.take("u1"));
        visits.mark("u1");
        assert!(visits.take("u1"));
        assert!(!visits.take("u1"));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
    }
}
