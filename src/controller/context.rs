use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Client, Resource, ResourceExt};
use tracing::warn;

use super::Error;
use super::cache::Current;
use super::moves::Moves;
use super::registry::{Server, Servers};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::crd::{ConditionType, ModuleInstallation, Tenant, find_condition};
use crate::db::{Databases, Migrator, Templates};
use crate::metrics::{Metrics, ReasonLabel};

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub catalog: Arc<Catalog>,
    pub databases: Arc<Databases>,
    pub migrator: Migrator,
    /// The servers tenant databases live on (`default` is `databases`), with their templates.
    pub servers: Servers,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    recorder: Recorder,
    /// The tenant controller's cache, for the state gauges.
    pub(super) tenants: Current<Tenant>,
    /// Landlord's credentials Secrets (label `app.kubernetes.io/managed-by=landlord`), cached.
    pub(super) secrets: Current<Secret>,
    /// The installation controller's cache, for hot-path reads of sibling installations.
    pub(super) installations: Current<ModuleInstallation>,
    /// Objects the drift check made due for a visit of their database.
    pub(super) visits: super::drift::Visits,
    /// The tenant moves this process drives.
    pub(super) moves: Arc<Moves>,
    /// Consecutive failures per object UID, for exponential backoff.
    failures: Failures,
}

/// Consecutive failures per object UID. A success or a finished deletion removes the entry; an object
/// deleted by other hands while failing never comes back to remove its own, so the map is bounded: past
/// `MAX_TRACKED` entries, those no requeue has touched for `STALE` go, then the oldest.
#[derive(Default)]
struct Failures(Mutex<HashMap<String, (u32, Instant)>>);

const MAX_TRACKED: usize = 4096;
/// Longer than the longest requeue of a failing object (`SLOW_CAP`): an entry this old is an object gone.
const STALE: Duration = Duration::from_secs(1200);

impl Failures {
    /// One more failure of `uid`; returns how many in a row.
    fn record(&self, uid: &str, now: Instant) -> u32 {
        let mut failures = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_TRACKED && !failures.contains_key(uid) {
            failures.retain(|_, (_, last)| now.saturating_duration_since(*last) < STALE);
            let oldest = failures
                .iter()
                .min_by_key(|(_, (_, last))| *last)
                .map(|(uid, _)| uid.clone());
            if let (true, Some(oldest)) = (failures.len() >= MAX_TRACKED, oldest) {
                failures.remove(&oldest);
            }
        }
        let entry = failures.entry(uid.to_string()).or_insert((0, now));
        *entry = (entry.0.saturating_add(1), now);
        entry.0
    }

    fn forget(&self, uid: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

pub(super) const BACKOFF_BASE: Duration = Duration::from_secs(2);
pub(super) const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Failures a person fixes outside Kubernetes are looked at again, slowly: 30 s, 1 min … 10 min.
const SLOW_BASE: Duration = Duration::from_secs(30);
const SLOW_CAP: Duration = Duration::from_secs(600);

impl Context {
    pub fn new(
        client: Client,
        catalog: Catalog,
        databases: Databases,
        config: Config,
        metrics: Arc<Metrics>,
    ) -> Self {
        let databases = Arc::new(databases);
        let templates = new_templates(&config, &catalog);
        let servers = Servers::new(databases.clone(), templates, config.default_server_cordoned);
        Context {
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: "landlord".into(),
                    instance: None,
                },
            ),
            client,
            catalog: Arc::new(catalog),
            databases,
            migrator: Migrator::new().with_timeouts(config.migration_timeouts),
            servers,
            config,
            metrics,
            tenants: Current::default(),
            secrets: Current::default(),
            installations: Current::default(),
            visits: Default::default(),
            moves: Arc::default(),
            failures: Failures::default(),
        }
    }

    /// A template of the core tenant schema for a server, when new databases are cloned.
    pub(super) fn new_templates(&self) -> Option<Arc<Templates>> {
        new_templates(&self.config, &self.catalog)
    }

    /// The server Landlord's records place a tenant on, if this process can reach it.
    pub(super) fn server(&self, name: &str) -> Result<Arc<Server>, Error> {
        self.servers
            .get(name)
            .ok_or_else(|| Error::ServerUnavailable {
                server: name.to_string(),
                problem: "no DatabaseServer of that name has a readable admin Secret".into(),
            })
    }

    /// The Lease is lost and the controllers stopped: their caches no longer follow the cluster, their
    /// queues take nothing.
    pub fn forget_caches(&self) {
        self.tenants.set(None);
        self.secrets.set(None);
        self.installations.set(None);
        self.visits.wake_tenants_with(None);
        self.servers.wake_with(None);
        // Another replica takes the moves over from Landlord's records.
        self.moves.stop_all();
    }

    /// A Tenant from the tenant controller's cache, else (before the cache is filled) from the API.
    pub(super) async fn tenant(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Tenant>, Error> {
        let key = ObjectRef::new(name).within(namespace);
        if let Some(tenant) = self.tenants.get().and_then(|store| store.get(&key)) {
            return Ok(Some((*tenant).clone()));
        }
        Ok(self.api::<Tenant>(namespace).get_opt(name).await?)
    }

    /// One of Landlord's Secrets from the cache, else from the API (a Secret the cache has not seen yet).
    pub(super) async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Secret>, Error> {
        let key = ObjectRef::new(name).within(namespace);
        if let Some(secret) = self.secrets.get().and_then(|store| store.get(&key)) {
            return Ok(Some((*secret).clone()));
        }
        Ok(self.api::<Secret>(namespace).get_opt(name).await?)
    }

    /// Recounts tenants and installations by the reason of their Ready condition, from the caches.
    pub fn refresh_resource_metrics(&self) {
        fn ready_reason(
            conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
        ) -> String {
            conditions
                .and_then(|c| find_condition(c, ConditionType::Ready))
                .map(|c| c.reason.clone())
                .unwrap_or_else(|| "Pending".into())
        }
        fn count(states: impl Iterator<Item = String>) -> HashMap<String, i64> {
            let mut counts = HashMap::new();
            for state in states {
                *counts.entry(state).or_insert(0) += 1;
            }
            counts
        }
        self.metrics.clear_resources();
        if let Some(store) = self.tenants.get() {
            let states = store
                .state()
                .into_iter()
                .map(|t| ready_reason(t.status.as_ref().map(|s| &s.conditions)));
            self.metrics
                .set_resources(super::TENANT_CONTROLLER, count(states));
        }
        if let Some(store) = self.installations.get() {
            let states = store
                .state()
                .into_iter()
                .map(|m| ready_reason(m.status.as_ref().map(|s| &s.conditions)));
            self.metrics
                .set_resources(super::INSTALLATION_CONTROLLER, count(states));
        }
    }

    pub fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    pub fn now(&self) -> Time {
        Time(jiff::Timestamp::now())
    }

    /// Publishes an Event on `object`; a failure to publish is logged, never fatal.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_string(),
            note: Some(truncate(note, 1000)),
            action: action.to_string(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, &object.object_ref(&())).await {
            warn!(%err, "could not publish event");
        }
    }

    /// How a reconcile of `controller` ended, after the finalizer helper: counted, and the object's backoff
    /// reset on success; an object deleted meanwhile is done.
    pub(super) fn reconciled(
        &self,
        controller: &'static str,
        uid: &str,
        started: Instant,
        result: Result<Action, Error>,
    ) -> Result<Action, Error> {
        let result = match result {
            Err(Error::Gone) => Ok(Action::await_change()),
            other => other,
        };
        self.metrics
            .reconciled(controller, started, result.as_ref().map(drop));
        let action = result?;
        self.succeeded(uid);
        Ok(action)
    }

    /// A Warning Event for a failure worth one (not a wait, not a plan another process outdated).
    pub async fn warn_of<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        action: &str,
        result: &Result<Action, Error>,
    ) {
        if let Err(err) = result
            && err.is_worth_a_warning()
        {
            self.event(object, true, err.reason().as_str(), action, err.to_string())
                .await;
        }
    }

    /// Exponential per-object backoff: `base`, twice that, … capped at `cap`; reset by `succeeded`.
    pub fn backoff(&self, uid: &str, base: Duration, cap: Duration) -> Duration {
        let n = self.failures.record(uid, Instant::now());
        base.saturating_mul(1 << (n - 1).min(10)).min(cap)
    }

    /// A reconcile went through, or a deletion finished: the object starts afresh (or is gone).
    pub fn succeeded(&self, uid: &str) {
        self.failures.forget(uid);
    }
}

fn new_templates(config: &Config, catalog: &Catalog) -> Option<Arc<Templates>> {
    config.tenant_template.then(|| {
        let migrator = Migrator::new().with_timeouts(config.migration_timeouts);
        Arc::new(Templates::new(&catalog.core_tenant, migrator))
    })
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Safety net for waits: watches on Tenants and ModuleInstallations wake waiting objects sooner.
const WAIT_POLL: Duration = Duration::from_secs(30);
/// How often a Tenant being moved shows its progress.
pub(super) const MOVE_POLL: Duration = Duration::from_secs(2);

/// The error policy of every controller, and the only place that decides when to look again: waiting polls
/// slowly (watches do the real waking), what time can fix backs off per object, what a person fixes outside
/// Kubernetes is looked at again slowly, and what only a change of the resource can fix waits for one.
pub fn error_policy<K: Resource>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let uid = object.meta().uid.clone().unwrap_or_default();
    if matches!(error, Error::Gone) {
        Action::await_change()
    } else if matches!(error, Error::Moving { .. }) {
        // A move reports its progress: bytes and time in the message.
        Action::requeue(MOVE_POLL)
    } else if error.is_waiting() {
        tracing::debug!(reason = error.metric_label(), %error, "waiting");
        Action::requeue(WAIT_POLL)
    } else if error.is_retryable() {
        let delay = ctx.backoff(&uid, BACKOFF_BASE, BACKOFF_CAP);
        warn!(reason = error.metric_label(), ?delay, %error, "reconcile failed, retrying");
        Action::requeue(delay)
    } else if error.is_fixed_elsewhere() {
        let delay = ctx.backoff(&uid, SLOW_BASE, SLOW_CAP);
        warn!(reason = error.metric_label(), ?delay, %error, "reconcile failed, looking again later");
        Action::requeue(delay)
    } else {
        warn!(reason = error.metric_label(), %error, "reconcile refused until the resource changes");
        Action::await_change()
    }
}

/// Names for logs and messages: `namespace/name`.
pub fn object_key<K: ResourceExt>(object: &K) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

impl ReasonLabel for Error {
    fn reason_label(&self) -> &'static str {
        self.metric_label()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_of_objects_gone_do_not_pile_up() {
        let failures = Failures::default();
        let start = Instant::now();
        assert_eq!(failures.record("a", start), 1);
        assert_eq!(failures.record("a", start), 2);
        failures.forget("a");
        assert_eq!(failures.record("a", start), 1);
        // Far more objects fail (and vanish) than are tracked: the map stays bounded.
        for i in 0..MAX_TRACKED * 2 {
            failures.record(&format!("gone-{i}"), start);
        }
        assert!(failures.len() <= MAX_TRACKED, "{}", failures.len());
        // Stale entries go first; a live object keeps its count.
        let later = start + STALE + Duration::from_secs(1);
        assert_eq!(failures.record("live", later), 1);
        assert_eq!(failures.record("live", later), 2);
        assert!(failures.len() <= 2, "{}", failures.len());
    }
}
