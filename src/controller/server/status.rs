//! A DatabaseServer's status, computed from what its reconcile found. Pure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::observe::Observed;
use crate::controller::Error;
use crate::crd::{
    ConditionType, DatabaseServer, DatabaseServerStatus, DesiredCondition, Reason, merge_conditions,
};

pub fn desired_status(
    server: &DatabaseServer,
    observed: &Result<Observed, Error>,
    now: &Time,
) -> DatabaseServerStatus {
    let current = server.status.clone().unwrap_or_default();
    let ready = match observed {
        Ok(Observed {
            role: Ok(_),
            tenants,
            ..
        }) => {
            let cap = match server.spec.max_tenants {
                Some(max) => format!(" of at most {max}"),
                None => String::new(),
            };
            let cordoned = if server.spec.cordoned {
                "; cordoned: no new tenant is placed here"
            } else {
                ""
            };
            DesiredCondition::new(
                ConditionType::Ready,
                Some(true),
                Reason::Reconciled,
                format!(
                    "The server answers and its admin role has CREATEDB and CREATEROLE, no more; {tenants} \
                     tenant(s){cap} placed here{cordoned}."
                ),
            )
        }
        Ok(Observed { role: Err(err), .. }) | Err(err) => failed(err),
    };
    let (tenants, server_version, template) = match observed {
        Ok(found) => (
            Some(found.tenants),
            found.role.as_ref().ok().map(|r| r.server_version.clone()),
            found.template.clone(),
        ),
        Err(_) => (current.tenants, None, None),
    };
    let generation = server.metadata.generation;
    DatabaseServerStatus {
        observed_generation: generation,
        tenants,
        server_version: server_version.or(current.server_version),
        template: template.or(current.template),
        conditions: merge_conditions(&current.conditions, &[ready], generation, now),
    }
}

/// `Ready` False for a deletion that waits or a look that failed.
pub fn failed(err: &Error) -> DesiredCondition {
    DesiredCondition::new(
        ConditionType::Ready,
        Some(false),
        err.reason(),
        err.to_string(),
    )
}

/// The status of a deletion that waits for its tenants to go.
pub fn deleting(
    server: &DatabaseServer,
    err: &Error,
    tenants: Option<i64>,
    now: &Time,
) -> DatabaseServerStatus {
    let current = server.status.clone().unwrap_or_default();
    let generation = server.metadata.generation;
    DatabaseServerStatus {
        observed_generation: generation,
        tenants: tenants.or(current.tenants),
        conditions: merge_conditions(&current.conditions, &[failed(err)], generation, now),
        ..current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::DatabaseServerSpec;
    use crate::db::AdminRole;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).unwrap())
    }

    fn role() -> AdminRole {
        AdminRole {
            server_version: "15.8".into(),
            superuser: false,
            create_database: true,
            create_role: true,
        }
    }

    #[test]
    fn a_server_that_answers_is_ready_and_a_second_look_writes_nothing_new() {
        let mut server = DatabaseServer::new("b", DatabaseServerSpec::default());
        server.metadata.generation = Some(1);
        server.spec.max_tenants = Some(10);
        let found = || {
            Ok(Observed {
                role: Ok(role()),
                tenants: 3,
                template: None,
            })
        };
        let first = desired_status(&server, &found(), &at(1));
        assert_eq!(first.tenants, Some(3));
        assert_eq!(first.server_version.as_deref(), Some("15.8"));
        let ready = &first.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Reconciled")
        );
        assert!(
            ready.message.contains("3 tenant(s) of at most 10"),
            "{}",
            ready.message
        );
        server.status = Some(first.clone());
        assert_eq!(desired_status(&server, &found(), &at(99)), first);
        // Unreachable: Ready False, the count and version kept from the last look.
        let down = Ok(Observed {
            role: Err(Error::Database(crate::db::Error::ConnectTimeout {
                database: "postgres".into(),
                seconds: 30,
            })),
            tenants: 3,
            template: None,
        });
        let status = desired_status(&server, &down, &at(120));
        assert_eq!(status.conditions[0].reason, "DatabaseUnavailable");
        assert_eq!(status.server_version.as_deref(), Some("15.8"));
        // The reason kstatus reads as Reconciling follows it.
        assert!(status.conditions.iter().any(|c| c.type_ == "Reconciling"));
    }
}
