//! What a rollout does next, decided from the cluster as it is. Pure.
//!
//! Tenants go in waves: the canaries first (by name), then the rest by name; no other tenant starts before
//! every canary is Ready. An installation is in flight from the moment it is created or its spec changes until
//! it is Ready for that spec; at most `maxParallel` are in flight at once, and `maxParallelPerServer` on any
//! one server (a tenant whose server is full waits; those on other servers go ahead). More than
//! `maxFailures` failed installations at this spec halt the rollout: nothing starts until enough recover.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::SelectorExt;
use kube::{Resource, ResourceExt};

use super::gather::RolloutFacts;
use super::validate::ValidRollout;
use crate::crd::{
    ConditionType, FailedTenant, ModuleInstallation, ModuleInstallationSpec, ModuleRollout,
    ROLLOUT_LABEL, Reason, find_condition, label_value_problem, object_name_problem,
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
    /// Some installation of `start` could not be written.
    pub any_refused: bool,
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
    find_condition(&mi.status.as_ref()?.conditions, ConditionType::Ready).filter(|c| {
        c.observed_generation.is_some() && c.observed_generation == mi.metadata.generation
    })
}

/// Done with its current spec: Ready, or (a dry run) its plan published.
fn settled(mi: &ModuleInstallation) -> bool {
    ready_condition(mi).is_some_and(|c| c.status == "True" || c.reason == "DryRun")
}

/// Failed at its current spec: Ready False for a refusal a person must fix (what Flux reads as Stalled). An
/// outage (`DatabaseUnavailable`) or waiting on another object is in flight, not a failure: it must not halt
/// the rollout. A reason this Landlord does not know counts as a failure.
fn failure(mi: &ModuleInstallation) -> Option<&Condition> {
    let waiting = |reason: &str| {
        Reason::ALL
            .iter()
            .find(|r| r.as_str() == reason)
            .is_some_and(|r| r.kstatus() != Some(ConditionType::Stalled))
    };
    ready_condition(mi).filter(|c| c.status == "False" && !waiting(&c.reason))
}

/// The installation of `tenant` a rollout manages: `<tenant>-<module with _ as ->`.
pub fn installation_name(tenant: &str, module: &str) -> String {
    format!("{tenant}-{}", module.replace('_', "-"))
}

/// The one rule for which installations are the rollout's, in its life and at its deletion: its label and
/// its controller reference (another owner reference to it makes nothing its own).
pub fn owned_by(mi: &ModuleInstallation, rollout: &ModuleRollout) -> bool {
    mi.labels().get(ROLLOUT_LABEL) == Some(&rollout.name_any())
        && mi
            .owner_references()
            .iter()
            .any(|o| o.controller == Some(true) && Some(&o.uid) == rollout.meta().uid.as_ref())
}

pub fn plan(rollout: &ModuleRollout, valid: &ValidRollout, world: &RolloutFacts) -> RolloutPlan {
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

    // The server of each tenant by name, as Landlord's records place it ("" while not placed yet).
    let servers: BTreeMap<String, &str> = world
        .tenants
        .iter()
        .map(|t| {
            let server = world.servers.get(&t.slug()).map_or("", String::as_str);
            (t.name_any(), server)
        })
        .collect();
    let server_of = |tenant: &str| servers.get(tenant).copied().unwrap_or("").to_string();
    let mut per_server: BTreeMap<String, u32> = BTreeMap::new();
    for mi in live.iter().filter(|mi| !settled(mi)) {
        *per_server.entry(server_of(&mi.spec.tenant)).or_default() += 1;
    }
    let mut plan = RolloutPlan {
        tenants: matching.len() as u32,
        in_flight: per_server.values().sum(),
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
        } else if let Some(problem) = unusable_name(rollout, &desired_name) {
            // This tenant alone cannot have one; the others go on.
            plan.failed.push(FailedTenant {
                tenant: name.clone(),
                reason: Reason::InvalidSpec.as_str().to_string(),
                message: format!(
                    "The rollout cannot create installation {desired_name} for this tenant: {problem}."
                ),
            });
        } else {
            let mut installation = desired_installation(rollout, &desired_name, desired);
            if let Some(current) = mine {
                // Changed only at the version read here, as the rest of it stands.
                let mut current = (*current).clone();
                current.spec = installation.spec;
                current.metadata.managed_fields = None;
                current.status = None;
                installation = current;
            }
            candidates.push((is_canary(tenant), installation));
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
            let on_server = per_server
                .entry(server_of(&installation.spec.tenant))
                .or_default();
            if *on_server >= strategy.max_parallel_per_server {
                continue;
            }
            *on_server += 1;
            plan.in_flight += 1;
            plan.start.push(installation);
        }
    }
    plan
}

/// Why the installation the rollout would make cannot exist, if it cannot: its name (`<tenant>-<module>`)
/// must be an object name and the rollout's name a label value.
fn unusable_name(rollout: &ModuleRollout, name: &str) -> Option<String> {
    object_name_problem(name).or_else(|| label_value_problem(&rollout.name_any()))
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
    /// Tenants whose installation apply could not write: failed for status, no longer in flight.
    pub fn refused(&mut self, refused: Vec<FailedTenant>) {
        self.any_refused = !refused.is_empty();
        self.in_flight = self.in_flight.saturating_sub(refused.len() as u32);
        self.failed.extend(refused);
        self.failed.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    }

    /// The failed tenants status lists: the first 20 by name.
    pub fn listed_failures(&self) -> Vec<FailedTenant> {
        self.failed.iter().take(LISTED_FAILURES).cloned().collect()
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
