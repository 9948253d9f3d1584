//! Table tests of the rollout plan: waves, the in-flight bound, the failure budget, pause, conflicts.
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

use super::super::validate::validate;
use super::*;
use crate::catalog::Catalog;
use crate::crd::{
    ModuleInstallationStatus, ModuleRolloutSpec, RolloutStrategy, Tenant, TenantSpec,
};

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
                ..Default::default()
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
fn ours(rollout: &ModuleRollout, tenant: &str, ready: Option<(&str, &str)>) -> ModuleInstallation {
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

fn world(tenants: Vec<Tenant>, installations: Vec<ModuleInstallation>) -> RolloutFacts {
    RolloutFacts {
        tenants,
        installations,
        servers: BTreeMap::new(),
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

fn run(rollout: &ModuleRollout, world: &RolloutFacts) -> RolloutPlan {
    let catalog = Catalog::shipped();
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
fn at_most_max_parallel_per_server_are_in_flight_on_any_one_server() {
    let mut r = rollout(4, 0);
    r.spec.strategy.canary = None;
    r.spec.strategy.max_parallel_per_server = 1;
    let mut found = world(fleet(), vec![]);
    // t1 and t2 on server a, t3 on b; t4 not placed yet.
    found.servers = [("t1", "a"), ("t2", "a"), ("t3", "b")]
        .map(|(t, s)| (t.to_string(), s.to_string()))
        .into();
    let first = run(&r, &found);
    assert_eq!(started(&first), ["t1", "t3", "t4"], "t2 waits for a");
    // t1 in flight on a: t2 still waits, while b's and the unplaced go on.
    found.installations = vec![ours(&r, "t1", None)];
    assert_eq!(started(&run(&r, &found)), ["t3", "t4"]);
    // t1 Ready: a has room again.
    found.installations = vec![ours(&r, "t1", Some(("True", "Reconciled")))];
    assert_eq!(started(&run(&r, &found)), ["t2", "t3", "t4"]);
}

#[test]
fn an_outage_or_a_wait_is_in_flight_not_a_failure() {
    let r = rollout(5, 0);
    for reason in [
        "DatabaseUnavailable",
        "UninstallBlocked",
        "TenantNotReady",
        "Progressing",
    ] {
        let installations = vec![ours(&r, "t1", Some(("False", reason)))];
        let plan = run(&r, &world(fleet(), installations));
        assert_ne!(plan.state, State::Halted, "{reason}");
        assert!(plan.failed.is_empty(), "{reason}");
    }
    for reason in ["ChecksumMismatch", "SomethingNew"] {
        let installations = vec![ours(&r, "t1", Some(("False", reason)))];
        let plan = run(&r, &world(fleet(), installations));
        assert_eq!(plan.state, State::Halted, "{reason}");
    }
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

#[test]
fn a_tenant_whose_installation_cannot_be_named_fails_alone() {
    let r = rollout(10, 5);
    let mut tenants = fleet();
    // Made before names were checked: `<tenant>-tasks` is longer than an object name may be.
    tenants[0].metadata.name = Some("t".repeat(250));
    let plan = run(&r, &world(tenants, vec![]));
    assert_eq!(plan.failed.len(), 1);
    assert_eq!(plan.failed[0].reason, "InvalidSpec");
    assert!(
        plan.failed[0].message.contains("at most 253"),
        "{:?}",
        plan.failed
    );
    // The others go on (the canary first, as ever).
    assert_eq!(started(&plan), ["t3"]);
    assert_eq!(plan.state, State::WaitingForCanaries);
}

#[test]
fn a_change_is_written_at_the_version_read_and_only_a_controller_reference_owns() {
    let mut r = rollout(10, 0);
    r.spec.strategy.canary = None;
    let mut older = ours(&r, "t3", Some(("True", "Reconciled")));
    older.spec.version = Some("0.9.0".into());
    older.metadata.resource_version = Some("17".into());
    older.metadata.finalizers = Some(vec!["tenancy.landlord.dev/cleanup".into()]);
    let plan = run(&r, &world(fleet(), vec![older]));
    let changed = plan.start.iter().find(|mi| mi.spec.tenant == "t3").unwrap();
    assert_eq!(changed.metadata.resource_version.as_deref(), Some("17"));
    assert_eq!(changed.spec.version, None);
    assert!(changed.metadata.finalizers.is_some(), "the rest stands");
    let new = plan.start.iter().find(|mi| mi.spec.tenant == "t1").unwrap();
    assert_eq!(new.metadata.resource_version, None);

    let mut referenced = ours(&r, "t1", None);
    for owner in referenced.metadata.owner_references.iter_mut().flatten() {
        owner.controller = Some(false);
    }
    assert!(!owned_by(&referenced, &r));
    assert!(owned_by(&ours(&r, "t1", None), &r));
}
