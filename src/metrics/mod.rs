//! Prometheus metrics. Labels are the controller and the condition reason, never a tenant's or an
//! installation's name, so cardinality stays bounded however many tenants there are; the few objects a
//! platform engineer names (a ModuleRollout, a DatabaseServer) may label their own series.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

mod fleet;

pub use fleet::ServerView;
use fleet::{OutcomeLabels, ServerLabels};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub controller: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub controller: &'static str,
    /// `gather`, `records`, `ledgers`, `apply` or `status`.
    pub phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CreatedLabels {
    /// `template` (cloned from Landlord's template) or `empty` (migrated from scratch).
    pub from: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    pub scope: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub controller: &'static str,
    /// The reason of the Ready condition (`Reconciled`, `MigrationFailed`, …), `Pending` without one.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    /// Few rollouts, each with many tenants: the rollout is a bounded label, a tenant would not be. Not
    /// `namespace`, which Prometheus gives the scraped pod's.
    pub rollout_namespace: String,
    pub rollout: String,
    /// `ready`, `failed` or `pending`.
    pub state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    server_tenants: Family<ServerLabels, Gauge>,
    server_max_tenants: Family<ServerLabels, Gauge>,
    server_up: Family<ServerLabels, Gauge>,
    server_cordoned: Family<ServerLabels, Gauge>,
    reconciles: Family<ControllerLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    durations: Family<ControllerLabels, Histogram>,
    migrations: Family<ScopeLabels, Counter>,
    resources: Family<StateLabels, Gauge>,
    leader: Gauge,
    public_landlord_database: Gauge,
    public_maintenance_database: Gauge,
    rollouts: Family<RolloutLabels, Gauge>,
    in_place: Family<ControllerLabels, Counter>,
    drift_visits: Counter,
    databases_created: Family<CreatedLabels, Counter>,
    phases: Family<PhaseLabels, Histogram>,
    moves: Family<OutcomeLabels, Counter>,
    moves_in_flight: Gauge,
    move_bytes: Counter,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("landlord");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let durations = Family::<ControllerLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.005, 2.0, 14))) as fn() -> Histogram,
        );
        let migrations = Family::<ScopeLabels, Counter>::default();
        let resources = Family::<StateLabels, Gauge>::default();
        let leader = Gauge::default();
        registry.register("reconciles", "Reconciles run", reconciles.clone());
        registry.register(
            "reconcile_failures",
            "Reconciles that failed, by condition reason",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile",
            durations.clone(),
        );
        registry.register(
            "migrations_applied",
            "Migrations run (up or down), by scope",
            migrations.clone(),
        );
        registry.register(
            "resources",
            "Tenants and installations by the reason of their Ready condition",
            resources.clone(),
        );
        registry.register(
            "leader",
            "1 while this process holds the leader lease",
            leader.clone(),
        );
        let rollouts = Family::<RolloutLabels, Gauge>::default();
        registry.register(
            "rollout_tenants",
            "Matching tenants of each ModuleRollout, by state of their installation",
            rollouts.clone(),
        );
        let public_landlord_database = Gauge::default();
        registry.register(
            "public_can_connect_to_landlord_database",
            "1 when PUBLIC holds CONNECT on the landlord database: any tenant's credentials could open it",
            public_landlord_database.clone(),
        );
        let public_maintenance_database = Gauge::default();
        registry.register(
            "public_can_connect_to_maintenance_database",
            "1 when PUBLIC holds CONNECT on the admin URL's database: any tenant's credentials could open it",
            public_maintenance_database.clone(),
        );
        let in_place = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconciles_in_place",
            "Reconciles that found everything in place from Landlord's records alone, without a tenant database session",
            in_place.clone(),
        );
        let drift_visits = Counter::default();
        registry.register(
            "drift_visits",
            "Tenants and installations the drift check made due for a visit of their database",
            drift_visits.clone(),
        );
        let databases_created = Family::<CreatedLabels, Counter>::default();
        registry.register(
            "tenant_databases_created",
            "Tenant databases created, cloned from Landlord's template or empty",
            databases_created.clone(),
        );
        let phases = Family::<PhaseLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 2.0, 14))) as fn() -> Histogram,
        );
        registry.register(
            "reconcile_phase_duration_seconds",
            "Time spent in each phase of a reconcile: where a reconcile's time goes",
            phases.clone(),
        );
        let server_tenants = Family::<ServerLabels, Gauge>::default();
        registry.register(
            "server_tenants",
            "Tenant databases Landlord's records place on each server (retained ones count)",
            server_tenants.clone(),
        );
        let server_max_tenants = Family::<ServerLabels, Gauge>::default();
        registry.register(
            "server_max_tenants",
            "maxTenants of each server; absent for a server without a limit",
            server_max_tenants.clone(),
        );
        let server_up = Family::<ServerLabels, Gauge>::default();
        registry.register(
            "server_up",
            "1 when the server answered the operator's last look with an admin role fit for its work",
            server_up.clone(),
        );
        let server_cordoned = Family::<ServerLabels, Gauge>::default();
        registry.register(
            "server_cordoned",
            "1 while no new tenant is placed on the server",
            server_cordoned.clone(),
        );
        let moves = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "moves",
            "Tenant moves to another server that ended, by outcome (moved, failed)",
            moves.clone(),
        );
        // Both outcomes exist from the start, so a rate over them is defined before the first move ends.
        for outcome in ["moved", "failed"] {
            drop(moves.get_or_create(&OutcomeLabels { outcome }));
        }
        let moves_in_flight = Gauge::default();
        registry.register(
            "moves_in_flight",
            "Tenant moves this operator is driving now",
            moves_in_flight.clone(),
        );
        let move_bytes = Counter::default();
        registry.register(
            "move_bytes",
            "Bytes piped from pg_dump into pg_restore by tenant moves",
            move_bytes.clone(),
        );
        Metrics {
            registry,
            moves,
            moves_in_flight,
            move_bytes,
            server_tenants,
            server_max_tenants,
            server_up,
            server_cordoned,
            phases,
            databases_created,
            in_place,
            drift_visits,
            reconciles,
            failures,
            durations,
            migrations,
            resources,
            leader,
            public_landlord_database,
            public_maintenance_database,
            rollouts,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    pub fn reconciled<E: ReasonLabel>(
        &self,
        controller: &'static str,
        started: Instant,
        result: Result<(), &E>,
    ) {
        let labels = ControllerLabels { controller };
        self.reconciles.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        if let Err(err) = result {
            self.failures
                .get_or_create(&FailureLabels {
                    controller,
                    reason: err.reason_label(),
                })
                .inc();
        }
    }

    pub fn in_place(&self, controller: &'static str) {
        self.in_place
            .get_or_create(&ControllerLabels { controller })
            .inc();
    }

    /// Records the time since `started` as `phase` of a reconcile of `controller`.
    pub fn phase(
        &self,
        controller: &'static str,
        phase: &'static str,
        started: std::time::Instant,
    ) {
        self.phases
            .get_or_create(&PhaseLabels { controller, phase })
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn database_created(&self, cloned: bool) {
        let from = if cloned { "template" } else { "empty" };
        self.databases_created
            .get_or_create(&CreatedLabels { from })
            .inc();
    }

    pub fn drift_visit(&self) {
        self.drift_visits.inc();
    }

    pub fn migrations_applied(&self, scope: &'static str, count: usize) {
        self.migrations
            .get_or_create(&ScopeLabels { scope })
            .inc_by(count as u64);
    }

    /// Replaces the per-state counts of one controller (computed from its cache at scrape time).
    pub fn set_resources(
        &self,
        controller: &'static str,
        counts: impl IntoIterator<Item = (String, i64)>,
    ) {
        for (state, count) in counts {
            self.resources
                .get_or_create(&StateLabels { controller, state })
                .set(count);
        }
    }

    pub fn clear_resources(&self) {
        self.resources.clear();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    pub fn rollout_progress(
        &self,
        (namespace, rollout): (&str, &str),
        ready: u32,
        failed: u32,
        pending: u32,
    ) {
        for (state, count) in [("ready", ready), ("failed", failed), ("pending", pending)] {
            self.rollouts
                .get_or_create(&RolloutLabels {
                    rollout_namespace: namespace.to_string(),
                    rollout: rollout.to_string(),
                    state,
                })
                .set(i64::from(count));
        }
    }

    pub fn forget_rollout(&self, (namespace, rollout): (&str, &str)) {
        for state in ["ready", "failed", "pending"] {
            self.rollouts.remove(&RolloutLabels {
                rollout_namespace: namespace.to_string(),
                rollout: rollout.to_string(),
                state,
            });
        }
    }

    /// This replica no longer leads: the progress it knew is no longer kept up to date.
    pub fn forget_rollouts(&self) {
        self.rollouts.clear();
    }

    pub fn set_public_landlord_database(&self, public: bool) {
        self.public_landlord_database.set(i64::from(public));
    }

    pub fn set_public_maintenance_database(&self, public: bool) {
        self.public_maintenance_database.set(i64::from(public));
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The label an error contributes to `landlord_reconcile_failures_total`.
pub trait ReasonLabel {
    fn reason_label(&self) -> &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failure;
    impl ReasonLabel for Failure {
        fn reason_label(&self) -> &'static str {
            "MigrationFailed"
        }
    }

    #[test]
    fn failures_are_labelled_by_controller_and_reason_only() {
        let metrics = Metrics::default();
        metrics.reconciled::<Failure>("landlord-tenant", Instant::now(), Ok(()));
        metrics.reconciled("landlord-tenant", Instant::now(), Err(&Failure));
        metrics.migrations_applied("tenant", 3);
        let text = metrics.encode();
        assert!(
            text.contains(r#"landlord_reconciles_total{controller="landlord-tenant"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"landlord_reconcile_failures_total{controller="landlord-tenant",reason="MigrationFailed"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"landlord_migrations_applied_total{scope="tenant"} 3"#),
            "{text}"
        );
    }
}
