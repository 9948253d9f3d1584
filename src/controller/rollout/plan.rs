//! What a rollout does next, decided from the cluster as it is. Pure.
//!
//! Tenants go in waves: the canaries first (by name), then the rest by name; no other tenant starts before
//! every canary is Ready. An installation is in flight from the moment it is created or its spec changes until
//! it is Ready for that spec; at most `maxParallel` are in flight at once. More than `maxFailures` failed
//! installations at this spec halt the rollout: nothing starts until enough recover.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::SelectorExt;
use kube::{Resource, ResourceExt};

use super::gather::World;
use super::validate::ValidRollout;
use crate::crd::{
    FailedTenant, ModuleInstallation, ModuleInstallationSpec, ModuleRollout, ROLLOUT_LABEL,
};

/// At most this many failed tenants are listed in status.
const LISTED_FAILURES: usize = 20;

#[derive(Debug, Default)]
pub struct RolloutPlan {
    /// Installations to create or bring to the rollout's spec, in the order they start.
    pub start: Vec<ModuleInstallation>,
    /// Installations of this rollout whose Tenant no longer matches (or is gone).
    pub delete: Vec<String>,
    pub tenants: u32,
    pub updated: u32,
    pub ready: u32,
    /// At this spec and done with it: Ready, or a dry run's plan published.
    pub settled: u32,
    pub failed: Vec<FailedTenant>,
    pub conflicts: Vec<String>,
    /// Installations in flight after `start`.
    pub in_flight: u32,
    pub state: State,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub enum State {
    /// Every matching tenant but the conflicts is Ready at this spec (a dry run: has published its plan).
    Complete,
    #[default]
    Progressing,
    /// Canaries are not all Ready yet: the other tenants wait.
    WaitingForCanaries,
    Halted,
    Paused,
}

/// Ready for its current spec: the condition is True and speaks of the current generation.
pub fn is_ready(mi: &ModuleInstallation) -> bool {
    ready_condition(mi).is_some_and(|c| c.status == "True")
}

fn ready_condition(mi: &ModuleInstallation) -> Option<&Condition> {
    mi.status.as_ref()?.conditions.iter().find(|c| {
        c.type_ == "Ready"
            && c.observed_generation.is_some()
            && c.observed_generation == mi.metadata.generation
    })
}

/// Done with its current spec: Ready, or (a dry run) its plan published.
fn settled(mi: &ModuleInstallation) -> bool {
    ready_condition(mi).is_some_and(|c| c.status == "True" || c.reason == "DryRun")
}

/// Failed at its current spec: Ready False for a reason that is not mere waiting.
fn failure(mi: &ModuleInstallation) -> Option<&Condition> {
    const WAITING: [&str; 5] = [
        "Progressing",
        "TenantNotReady",
        "TenantNotFound",
        "DependencyMissing",
        "DryRun",
    ];
    ready_condition(mi).filter(|c| c.status == "False" && !WAITING.contains(&c.reason.as_str()))
}

/// The installation of `tenant` a rollout manages: `<tenant>-<module with _ as ->`.
pub fn installation_name(tenant: &str, module: &str) -> String {
    format!("{tenant}-{}", module.replace('_', "-"))
}

fn owned_by(mi: &ModuleInstallation, rollout: &ModuleRollout) -> bool {
    mi.labels().get(ROLLOUT_LABEL) == Some(&rollout.name_any())
        && mi
            .owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && Some(&o.uid) == rollout.meta().uid.as_ref())
}

pub fn plan(rollout: &ModuleRollout, valid: &ValidRollout, world: &World) -> RolloutPlan {
    let module = &valid.spec.module;
    let strategy = &rollout.spec.strategy;
    let ours: Vec<&ModuleInstallation> = world
        .installations
        .iter()
        .filter(|mi| owned_by(mi, rollout))
        .collect();
    // Those being deleted neither count nor get deleted again.
    let live: Vec<&ModuleInstallation> = ours
        .iter()
        .copied()
        .filter(|mi| mi.metadata.deletion_timestamp.is_none())
        .collect();
    let is_canary = |tenant: &crate::crd::Tenant| {
        valid
            .canaries
            .as_ref()
            .is_some_and(|c| c.matches(tenant.labels()))
    };
    let mut matching: Vec<&crate::crd::Tenant> = world
        .tenants
        .iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none() && valid.tenants.matches(t.labels()))
        .collect();
    matching.sort_by_key(|t| (!is_canary(t), t.name_any()));

    let mut plan = RolloutPlan {
        tenants: matching.len() as u32,
        in_flight: live.iter().filter(|mi| !settled(mi)).count() as u32,
        ..Default::default()
    };
    let mut candidates = Vec::new();
    let mut canaries_ready = true;
    for tenant in &matching {
        let name = tenant.name_any();
        let desired_name = installation_name(&name, module);
        let mine = ours
            .iter()
            .find(|mi| mi.spec.tenant == name && mi.spec.module == *module);
        let theirs = world.installations.iter().any(|mi| {
            !owned_by(mi, rollout)
                && ((mi.spec.tenant == name && mi.spec.module == *module)
                    || mi.name_any() == desired_name)
        });
        if mine.is_none() && theirs {
            plan.conflicts.push(name);
            continue;
        }
        let desired = ModuleInstallationSpec {
            tenant: name.clone(),
            ..valid.spec.clone()
        };
        let at_spec = mine.filter(|mi| mi.spec == desired);
        let ready = at_spec.is_some_and(|mi| is_ready(mi));
        let done = at_spec.is_some_and(|mi| settled(mi));
        if is_canary(tenant) && !done {
            canaries_ready = false;
        }
        if let Some(mi) = at_spec {
            plan.updated += 1;
            plan.ready += u32::from(ready);
            plan.settled += u32::from(done);
            if let Some(c) = failure(mi) {
                plan.failed.push(FailedTenant {
                    tenant: name.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                });
            }
        } else {
            candidates.push((
                is_canary(tenant),
                desired_installation(rollout, &desired_name, desired),
            ));
        }
    }
    plan.conflicts.sort();
    plan.failed.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    let matching_names: Vec<String> = matching.iter().map(|t| t.name_any()).collect();
    plan.delete = live
        .iter()
        .filter(|mi| !matching_names.contains(&mi.spec.tenant))
        .map(|mi| mi.name_any())
        .collect();

    let halted = plan.failed.len() > strategy.max_failures as usize;
    plan.state = if rollout.spec.paused {
        State::Paused
    } else if halted {
        State::Halted
    } else if candidates.is_empty()
        && plan.settled + plan.conflicts.len() as u32 == plan.tenants
        && plan.delete.is_empty()
    {
        State::Complete
    } else {
        State::Progressing
    };
    if matches!(plan.state, State::Paused | State::Halted) {
        plan.delete.clear();
    } else {
        for (canary, installation) in candidates {
            if plan.in_flight >= strategy.max_parallel {
                break;
            }
            if !canary && !canaries_ready {
                plan.state = State::WaitingForCanaries;
                break;
            }
            plan.in_flight += 1;
            plan.start.push(installation);
        }
    }
    plan
}

fn desired_installation(
    rollout: &ModuleRollout,
    name: &str,
    spec: ModuleInstallationSpec,
) -> ModuleInstallation {
    let mut mi = ModuleInstallation::new(name, spec);
    mi.metadata.namespace = rollout.namespace();
    mi.metadata.labels = Some(BTreeMap::from([(
        ROLLOUT_LABEL.to_string(),
        rollout.name_any(),
    )]));
    mi.metadata.owner_references = rollout.controller_owner_ref(&()).map(|r| vec![r]);
    mi
}

impl RolloutPlan {
    /// The failed tenants status lists: the first 20 by name.
    pub fn listed_failures(&self) -> Vec<FailedTenant> {
        self.failed.iter().take(LISTED_FAILURES).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

    use super::super::validate::validate;
    use super::*;
    use crate::catalog::Catalog;
    use crate::crd::{
        ModuleInstallationStatus, ModuleRolloutSpec, RolloutStrategy, Tenant, TenantSpec,
    };

    fn catalog() -> Catalog {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        Catalog::load(&root.join("modules"), &root.join("migrations")).unwrap()
    }

    fn selector(key: &str, value: &str) -> Option<LabelSelector> {
        Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(key.into(), value.into())])),
            ..Default::default()
        })
    }

    fn rollout(max_parallel: u32, max_failures: u32) -> ModuleRollout {
        let mut rollout = ModuleRollout::new(
            "tasks-pro",
            ModuleRolloutSpec {
                module: "tasks".into(),
                tenant_selector: selector("plan", "pro"),
                strategy: RolloutStrategy {
                    max_parallel,
                    max_failures,
                    canary: selector("canary", "yes"),
                },
                ..Default::default()
            },
        );
        rollout.metadata.namespace = Some("ns".into());
        rollout.metadata.uid = Some("r1".into());
        rollout
    }

    fn tenant(name: &str, plan: &str, canary: bool) -> Tenant {
        let mut tenant = Tenant::new(name, TenantSpec::default());
        let mut labels = BTreeMap::from([("plan".to_string(), plan.to_string())]);
        if canary {
            labels.insert("canary".into(), "yes".into());
        }
        tenant.metadata.labels = Some(labels);
        tenant
    }

    /// An installation of this rollout for `tenant` at generation 1, Ready as `ready` says (None: not yet).
    fn ours(
        rollout: &ModuleRollout,
        tenant: &str,
        ready: Option<(&str, &str)>,
    ) -> ModuleInstallation {
        let mut mi = desired_installation(
            rollout,
            &installation_name(tenant, "tasks"),
            ModuleInstallationSpec {
                tenant: tenant.into(),
                module: "tasks".into(),
                ..Default::default()
            },
        );
        mi.metadata.generation = Some(1);
        if let Some((status, reason)) = ready {
            mi.status = Some(ModuleInstallationStatus {
                conditions: vec![Condition {
                    type_: "Ready".into(),
                    status: status.into(),
                    reason: reason.into(),
                    message: format!("{reason} on {tenant}"),
                    observed_generation: Some(1),
                    last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
                }],
                ..Default::default()
            });
        }
        mi
    }

    fn world(tenants: Vec<Tenant>, installations: Vec<ModuleInstallation>) -> World {
        World {
            tenants,
            installations,
        }
    }

    fn fleet() -> Vec<Tenant> {
        vec![
            tenant("t1", "pro", false),
            tenant("t2", "pro", false),
            tenant("t3", "pro", true),
            tenant("t4", "pro", false),
            tenant("free", "free", false),
        ]
    }

    fn run(rollout: &ModuleRollout, world: &World) -> RolloutPlan {
        let catalog = catalog();
        let valid = validate(rollout, &catalog).unwrap();
        plan(rollout, &valid, world)
    }

    fn started(plan: &RolloutPlan) -> Vec<String> {
        plan.start.iter().map(|mi| mi.spec.tenant.clone()).collect()
    }

    #[test]
    fn canaries_go_first_and_alone() {
        let r = rollout(2, 0);
        let first = run(&r, &world(fleet(), vec![]));
        assert_eq!(started(&first), ["t3"]);
        assert_eq!(first.state, State::WaitingForCanaries);
        assert_eq!(first.tenants, 4, "the free tenant does not match");
        let created = &first.start[0];
        assert_eq!(created.name_any(), "t3-tasks");
        assert_eq!(
            created.labels().get(ROLLOUT_LABEL).map(String::as_str),
            Some("tasks-pro")
        );
        assert!(created.owner_references()[0].controller == Some(true));

        // The canary is in flight: nobody else starts, whatever the budget.
        let flying = run(&r, &world(fleet(), vec![ours(&r, "t3", None)]));
        assert!(flying.start.is_empty());
        // Once it is Ready, the others go by name, at most two at once.
        let next = run(
            &r,
            &world(fleet(), vec![ours(&r, "t3", Some(("True", "Reconciled")))]),
        );
        assert_eq!(started(&next), ["t1", "t2"]);
        assert_eq!(next.in_flight, 2);
    }

    #[test]
    fn at_most_max_parallel_are_in_flight() {
        let r = rollout(2, 5);
        let installations = vec![
            ours(&r, "t3", Some(("True", "Reconciled"))),
            ours(&r, "t1", None),
            ours(&r, "t2", Some(("False", "Progressing"))),
        ];
        let plan = run(&r, &world(fleet(), installations));
        assert!(plan.start.is_empty(), "two are in flight already");
        assert_eq!((plan.updated, plan.ready), (3, 1));
    }

    #[test]
    fn a_failure_past_the_budget_halts_and_pause_changes_nothing() {
        let r = rollout(5, 0);
        let installations = vec![
            ours(&r, "t3", Some(("True", "Reconciled"))),
            ours(&r, "t1", Some(("False", "MigrationFailed"))),
        ];
        let halted = run(&r, &world(fleet(), installations.clone()));
        assert_eq!(halted.state, State::Halted);
        assert!(halted.start.is_empty());
        assert_eq!(halted.failed[0].tenant, "t1");
        assert_eq!(halted.failed[0].reason, "MigrationFailed");
        // With a budget of one, the rest goes on.
        let tolerant = run(&rollout(5, 1), &world(fleet(), installations));
        assert_eq!(started(&tolerant), ["t2", "t4"]);

        let mut paused = rollout(5, 0);
        paused.spec.paused = true;
        let mut tenants = fleet();
        tenants[0].metadata.labels = None; // t1 stops matching
        let plan = run(
            &paused,
            &world(
                tenants,
                vec![ours(&paused, "t1", Some(("True", "Reconciled")))],
            ),
        );
        assert_eq!(plan.state, State::Paused);
        assert!(plan.start.is_empty() && plan.delete.is_empty());
    }

    #[test]
    fn others_installations_are_conflicts_and_leavers_are_deleted() {
        let r = rollout(10, 0);
        let mut foreign = ours(&r, "t4", Some(("True", "Reconciled")));
        foreign.metadata.name = Some("t4-by-hand".into());
        foreign.metadata.labels = None;
        foreign.metadata.owner_references = None;
        let mut tenants = fleet();
        tenants[1].metadata.labels = None; // t2 stops matching
        let installations = vec![
            ours(&r, "t3", Some(("True", "Reconciled"))),
            ours(&r, "t2", Some(("True", "Reconciled"))),
            foreign,
        ];
        let plan = run(&r, &world(tenants, installations));
        assert_eq!(plan.conflicts, ["t4"]);
        assert_eq!(plan.delete, ["t2-tasks"]);
        assert_eq!(started(&plan), ["t1"]);
    }

    #[test]
    fn a_dry_run_is_done_once_every_plan_is_published() {
        let mut r = rollout(2, 0);
        r.spec.dry_run = true;
        r.spec.strategy.canary = None;
        let published: Vec<ModuleInstallation> = ["t1", "t2"]
            .into_iter()
            .map(|t| {
                let mut mi = ours(&r, t, Some(("False", "DryRun")));
                mi.spec.dry_run = true;
                mi
            })
            .collect();
        let more = run(&r, &world(fleet(), published.clone()));
        assert_eq!(started(&more), ["t3", "t4"], "published plans hold no slot");
        let mut all = published;
        for t in ["t3", "t4"] {
            let mut mi = ours(&r, t, Some(("False", "DryRun")));
            mi.spec.dry_run = true;
            all.push(mi);
        }
        let done = run(&r, &world(fleet(), all));
        assert_eq!(done.state, State::Complete, "{done:?}");
        assert_eq!((done.ready, done.settled, done.failed.len()), (0, 4, 0));
    }

    #[test]
    fn a_new_spec_is_a_new_wave_and_everything_ready_is_complete() {
        let r = rollout(1, 0);
        let all_ready: Vec<ModuleInstallation> = ["t1", "t2", "t3", "t4"]
            .into_iter()
            .map(|t| ours(&r, t, Some(("True", "Reconciled"))))
            .collect();
        let done = run(&r, &world(fleet(), all_ready.clone()));
        assert_eq!(done.state, State::Complete);
        assert!(done.start.is_empty() && done.delete.is_empty());

        let mut downgrade = rollout(1, 0);
        downgrade.spec.version = Some("1.0.0".into());
        let wave = run(&downgrade, &world(fleet(), all_ready));
        assert_eq!(started(&wave), ["t3"], "the canary first, one at a time");
        assert_eq!(wave.start[0].spec.version.as_deref(), Some("1.0.0"));
        assert_eq!(wave.updated, 0);
    }
}
