//! The controllers' caches hold every watched object; with a fleet that is thousands of Tenants,
//! installations and Secrets. Each is kept without its managedFields — often most of an object's size and
//! never read here — so the operator's memory follows the fleet slowly.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::RwLock;

use futures::Stream;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// The cache of `api`'s objects selected by `config`, and the stream of changes that fills it (to drive a
/// controller with).
pub fn cached<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone,
{
    let (store, writer) = reflector::store();
    let changes = watcher(api, config).modify(|object| object.managed_fields_mut().clear());
    (store, reflector(writer, changes).applied_objects())
}

/// The cache of the controller running now, for reads outside it (the drift loop, state gauges, sibling
/// reads). Each leadership starts new controllers with new caches, so the holder is replaced then and
/// emptied when the Lease is lost: a cache whose watch has stopped never answers.
pub struct Current<K: Resource + 'static>(RwLock<Option<Store<K>>>)
where
    K::DynamicType: Eq + Hash + Clone;

impl<K: Resource + Clone + 'static> Current<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    pub fn set(&self, store: Option<Store<K>>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = store;
    }

    pub fn get(&self) -> Option<Store<K>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<K: Resource + 'static> Default for Current<K>
where
    K::DynamicType: Eq + Hash + Clone,
{
    fn default() -> Self {
        Current(RwLock::new(None))
    }
}
