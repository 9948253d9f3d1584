//! Which servers a Tenant not yet recorded may be placed on, judged from the servers' rules; the landlord
//! database then picks the one with the fewest tenants under its cap (`mirror::claim_tenant`). Pure.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::controller::Error;
use crate::controller::registry::Server;
use crate::crd::Tenant;
use crate::db::mirror::Candidate;

/// The servers that may take `tenant` (of a namespace labelled `namespace_labels`), or why none may.
pub fn candidates(
    tenant: &Tenant,
    namespace_labels: &BTreeMap<String, String>,
    servers: &[Arc<Server>],
) -> Result<Vec<Candidate>, Error> {
    let namespace = tenant.namespace().unwrap_or_default();
    let admits = |server: &Server| {
        server
            .rules
            .namespaces
            .as_ref()
            .is_none_or(|selector| selector.matches(namespace_labels))
    };
    if let Some(asked) = &tenant.spec.server {
        let Some(server) = servers.iter().find(|s| s.name() == asked) else {
            return Err(Error::NoServerAvailable {
                why: vec![format!(
                    "{asked} (spec.server) is not a DatabaseServer whose admin Secret can be read"
                )],
            });
        };
        if !admits(server) {
            return Err(Error::ServerRefusesNamespace {
                server: asked.clone(),
                namespace,
            });
        }
        return match unfit(server) {
            Some(why) => Err(Error::NoServerAvailable {
                why: vec![format!("{asked} (spec.server) {why}")],
            }),
            None => Ok(vec![candidate(server)]),
        };
    }
    let chooses = match &tenant.spec.server_selector {
        None => None,
        Some(selector) => {
            Some(
                Selector::try_from(selector.clone()).map_err(|e| Error::InvalidSelector {
                    field: "spec.serverSelector",
                    problem: e.to_string(),
                })?,
            )
        }
    };
    let mut why = Vec::new();
    let mut fit = Vec::new();
    for server in servers {
        let name = server.name();
        if chooses
            .as_ref()
            .is_some_and(|selector| !selector.matches(&server.rules.labels))
        {
            continue;
        }
        if !admits(server) {
            why.push(format!("{name} does not admit namespace {namespace}"));
        } else if let Some(unfit) = unfit(server) {
            why.push(format!("{name} {unfit}"));
        } else {
            fit.push(candidate(server));
        }
    }
    if fit.is_empty() {
        if why.is_empty() {
            why.push("no DatabaseServer matches spec.serverSelector".into());
        }
        return Err(Error::NoServerAvailable { why });
    }
    Ok(fit)
}

/// The server a move to `name` may go to, or why not (its count is the landlord database's to judge).
pub fn move_target(
    name: &str,
    namespace: &str,
    namespace_labels: &BTreeMap<String, String>,
    servers: &[Arc<Server>],
) -> Result<Arc<Server>, String> {
    let Some(server) = servers.iter().find(|s| s.name() == name) else {
        return Err("is not a DatabaseServer whose admin Secret can be read".into());
    };
    let admits = server
        .rules
        .namespaces
        .as_ref()
        .is_none_or(|selector| selector.matches(namespace_labels));
    if !admits {
        return Err(format!("does not admit namespace {namespace}"));
    }
    match unfit(server) {
        Some(why) => Err(why.to_string()),
        None => Ok(server.clone()),
    }
}

/// Why a server takes no new tenant now, whatever its count.
fn unfit(server: &Server) -> Option<&'static str> {
    if server.rules.cordoned {
        Some("is cordoned")
    } else if !server.rules.ready {
        Some("is not Ready")
    } else {
        None
    }
}

fn candidate(server: &Server) -> Candidate {
    Candidate {
        server: server.name().to_string(),
        max_tenants: server.rules.max_tenants,
    }
}

/// The message when the landlord database found every candidate at its cap.
pub fn all_full(candidates: &[Candidate]) -> Error {
    Error::NoServerAvailable {
        why: candidates
            .iter()
            .map(|c| {
                format!(
                    "{} is full (maxTenants {})",
                    c.server,
                    c.max_tenants.unwrap_or_default()
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::registry::PlacementRules;
    use crate::crd::{Reason, TenantSpec};
    use crate::db::{Databases, Limits, ServerAccess};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn selector(key: &str, value: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some([(key.to_string(), value.to_string())].into()),
            ..Default::default()
        }
    }

    fn server(name: &str, rules: PlacementRules) -> Arc<Server> {
        let base = Databases::new(
            "postgres://a:a@db:5432/postgres",
            "postgres://l:l@db:5432/landlord",
            Limits::default(),
        )
        .unwrap();
        let databases = base
            .on_server(ServerAccess {
                name,
                admin_url: "postgres://a:a@db:5432/postgres",
                endpoint: None,
                max_connections: None,
            })
            .unwrap();
        Arc::new(Server {
            databases: Arc::new(databases),
            templates: None,
            rules,
            source: 0,
        })
    }

    fn ready() -> PlacementRules {
        PlacementRules {
            ready: true,
            ..Default::default()
        }
    }

    fn tenant(spec: TenantSpec) -> Tenant {
        let mut tenant = Tenant::new("acme", spec);
        tenant.metadata.namespace = Some("team-a".into());
        tenant
    }

    fn names(result: &Result<Vec<Candidate>, Error>) -> Result<Vec<String>, Reason> {
        match result {
            Ok(c) => Ok(c.iter().map(|c| c.server.clone()).collect()),
            Err(e) => Err(e.reason()),
        }
    }

    #[tokio::test]
    async fn servers_a_tenant_may_go_to() {
        let ssd = PlacementRules {
            labels: [("disk".to_string(), "ssd".to_string())].into(),
            ..ready()
        };
        let reserved = PlacementRules {
            namespaces: Some(Selector::try_from(selector("team", "b")).unwrap()),
            ..ready()
        };
        let servers = vec![
            server("a", ready()),
            server(
                "b",
                PlacementRules {
                    cordoned: true,
                    ..ready()
                },
            ),
            server("c", PlacementRules::default()),
            server("d", ssd),
            server("e", reserved),
        ];
        let labels_a = BTreeMap::from([("team".to_string(), "a".to_string())]);
        let labels_b = BTreeMap::from([("team".to_string(), "b".to_string())]);
        let named = |name: &str| TenantSpec {
            server: Some(name.into()),
            ..Default::default()
        };
        let selecting = |key: &str, value: &str| TenantSpec {
            server_selector: Some(selector(key, value)),
            ..Default::default()
        };
        let cases = [
            // Anywhere: Ready, uncordoned, admitting the namespace.
            (TenantSpec::default(), &labels_a, Ok(vec!["a", "d"])),
            (TenantSpec::default(), &labels_b, Ok(vec!["a", "d", "e"])),
            (selecting("disk", "ssd"), &labels_a, Ok(vec!["d"])),
            (
                selecting("disk", "hdd"),
                &labels_a,
                Err(Reason::NoServerAvailable),
            ),
            (named("a"), &labels_a, Ok(vec!["a"])),
            // Named: cordoned or not Ready waits, not admitted is refused, unknown waits.
            (named("b"), &labels_a, Err(Reason::NoServerAvailable)),
            (named("c"), &labels_a, Err(Reason::NoServerAvailable)),
            (named("e"), &labels_a, Err(Reason::InvalidSpec)),
            (named("e"), &labels_b, Ok(vec!["e"])),
            (named("zz"), &labels_a, Err(Reason::NoServerAvailable)),
        ];
        for (spec, labels, expected) in cases {
            let got = candidates(&tenant(spec.clone()), labels, &servers);
            let expected = expected.map(|v| v.into_iter().map(String::from).collect());
            assert_eq!(names(&got), expected, "{spec:?} {labels:?}");
        }
        let why = candidates(&tenant(TenantSpec::default()), &labels_a, &servers[1..3])
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("b is cordoned") && why.contains("c is not Ready"),
            "{why}"
        );
    }
}
