//! The fleet's series: per server (a few, named by platform engineers) and the tenant moves, never per
//! tenant.

use prometheus_client::encoding::EncodeLabelSet;

use super::Metrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ServerLabels {
    /// A DatabaseServer's name, or `default`: few, chosen by platform engineers.
    pub server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    /// `moved` or `failed`.
    pub outcome: &'static str,
}

/// What the operator last saw of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerView {
    pub tenants: i64,
    pub max_tenants: Option<i64>,
    pub up: bool,
    pub cordoned: bool,
}

impl Metrics {
    pub fn set_server(&self, server: &str, view: ServerView) {
        let labels = ServerLabels {
            server: server.to_string(),
        };
        self.server_tenants.get_or_create(&labels).set(view.tenants);
        match view.max_tenants {
            Some(max) => {
                self.server_max_tenants.get_or_create(&labels).set(max);
            }
            None => {
                self.server_max_tenants.remove(&labels);
            }
        }
        self.server_up
            .get_or_create(&labels)
            .set(i64::from(view.up));
        self.server_cordoned
            .get_or_create(&labels)
            .set(i64::from(view.cordoned));
    }

    /// This replica no longer leads: what it knew of the servers is no longer kept up to date.
    pub fn forget_servers(&self) {
        self.server_tenants.clear();
        self.server_max_tenants.clear();
        self.server_up.clear();
        self.server_cordoned.clear();
    }

    /// A DatabaseServer deleted: its series go.
    pub fn forget_server(&self, server: &str) {
        let labels = ServerLabels {
            server: server.to_string(),
        };
        self.server_tenants.remove(&labels);
        self.server_max_tenants.remove(&labels);
        self.server_up.remove(&labels);
        self.server_cordoned.remove(&labels);
    }

    /// A move ended: `moved`, or `failed` (rolled back).
    pub fn move_ended(&self, moved: bool) {
        let outcome = if moved { "moved" } else { "failed" };
        self.moves.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn move_bytes(&self, bytes: u64) {
        self.move_bytes.inc_by(bytes);
    }

    /// One more (`true`) or one fewer move driven by this process.
    pub fn move_driven(&self, started: bool) {
        if started {
            self.moves_in_flight.inc();
        } else {
            self.moves_in_flight.dec();
        }
    }
}
