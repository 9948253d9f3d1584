//! The controllers' caches hold every watched object; with a fleet that is thousands of Tenants,
//! installations and Secrets. Each is kept without its managedFields — often most of an object's size and
//! never read here — so the operator's memory follows the fleet slowly.

use std::fmt::Debug;
use std::hash::Hash;

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
