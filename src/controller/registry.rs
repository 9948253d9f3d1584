//! The servers tenant databases may live on, as this process knows them: `default` from the environment, and
//! one entry per DatabaseServer whose admin URL could be read. Every step for a tenant connects through the
//! entry of the server Landlord's records place it on; placement reads the rules of every entry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use futures::channel::mpsc::UnboundedSender;
use kube::core::Selector;
use kube::runtime::reflector::ObjectRef;

use crate::crd::{DEFAULT_SERVER, DatabaseServer};
use crate::db::{Databases, Templates};

/// What placement reads of a server: the DatabaseServer's spec and what its last reconcile found.
#[derive(Clone, Debug, Default)]
pub struct PlacementRules {
    /// Reachable, with an admin role of exactly the privileges it needs, at the last look.
    pub ready: bool,
    pub cordoned: bool,
    pub max_tenants: Option<i64>,
    /// The DatabaseServer's labels, which a Tenant's `serverSelector` chooses by.
    pub labels: BTreeMap<String, String>,
    /// The namespaces whose Tenants may be placed here; None: all.
    pub namespaces: Option<Selector>,
}

/// One server: how to reach it, its template, and its placement rules.
#[derive(Clone, Debug)]
pub struct Server {
    pub databases: Arc<Databases>,
    /// Landlord's template of the core tenant schema on this server, when new databases are cloned.
    pub templates: Option<Arc<Templates>>,
    pub rules: PlacementRules,
    /// What the handle was made from (admin URL, endpoint, budget), to know when to make it anew.
    pub(super) source: u64,
}

impl Server {
    pub fn name(&self) -> &str {
        self.databases.server()
    }
}

/// Every server known to this process, by name.
#[derive(Debug)]
pub struct Servers {
    servers: RwLock<BTreeMap<String, Arc<Server>>>,
    /// Wakes the running server controller (none between leaderships).
    wake: Mutex<Option<UnboundedSender<ObjectRef<DatabaseServer>>>>,
}

impl Servers {
    /// `default`, the server of `LANDLORD_ADMIN_DATABASE_URL`: Ready as far as placement knows (a server
    /// that does not answer makes its tenants `DatabaseUnavailable`, as it always did), cordoned if the
    /// environment says so.
    pub fn new(default: Arc<Databases>, templates: Option<Arc<Templates>>, cordoned: bool) -> Self {
        let server = Server {
            databases: default,
            templates,
            rules: PlacementRules {
                ready: true,
                cordoned,
                ..PlacementRules::default()
            },
            source: 0,
        };
        Servers {
            servers: RwLock::new(BTreeMap::from([(
                DEFAULT_SERVER.to_string(),
                Arc::new(server),
            )])),
            wake: Mutex::new(None),
        }
    }

    /// The server controller of this leadership, woken by `count_changed`; `None` when it stops.
    pub fn wake_with(&self, sender: Option<UnboundedSender<ObjectRef<DatabaseServer>>>) {
        *self.wake.lock().unwrap_or_else(PoisonError::into_inner) = sender;
    }

    /// A tenant was placed on `server` or left it: its status and metrics say so now, not at the next look
    /// (and a deletion waiting for its last tenant finishes).
    pub fn count_changed(&self, server: &str) {
        if server == DEFAULT_SERVER {
            return;
        }
        if let Some(wake) = self
            .wake
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = wake.unbounded_send(ObjectRef::new(server));
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Server>> {
        self.read().get(name).cloned()
    }

    /// Every server, by name.
    pub fn all(&self) -> Vec<Arc<Server>> {
        self.read().values().cloned().collect()
    }

    pub(super) fn put(&self, server: Server) {
        let name = server.name().to_string();
        self.write().insert(name, Arc::new(server));
    }

    /// A DatabaseServer gone or unusable: its tenants wait (`DatabaseUnavailable`) until it is back.
    pub(super) fn remove(&self, name: &str) {
        if name != DEFAULT_SERVER {
            self.write().remove(name);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Server>>> {
        self.servers.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Server>>> {
        self.servers.write().unwrap_or_else(PoisonError::into_inner)
    }
}
