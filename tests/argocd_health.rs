//! The Argo CD health checks in `deploy/argocd/`, run by Argo CD v2.14's own Lua evaluator (`landlord-health`,
//! hack/gitops: gitops-engine's `GetResourceHealth` with the scripts loaded from argocd-cm by Argo CD's settings
//! manager), and Flux's kstatus beside it, against Tenants, ModuleInstallations and ModuleRollouts as the
//! operator wrote them (`tests/fixtures/argocd/`, saved by `tests/gitops_health.rs`, which also fails when they
//! drift from what the operator writes), a Ready DatabaseServer built from the operator's own types (see
//! `ready_server`), and against variations of them: a spec edit the operator has not seen yet, no status, no
//! Ready condition, every Ready reason.
//! No cluster needed; the tool is built by `scripts/test` (or on first use, through scripts/lib.sh).

mod support;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use landlord::crd::{
    AdminSecretRef, ConditionType, DatabaseServer, DatabaseServerSpec, DatabaseServerStatus,
    DesiredCondition, Reason, merge_conditions,
};
use serde_json::{Value, json};
use std::path::PathBuf;
use support::gitops::{self, STATES, expected_messages};
use support::repo_root;

const KINDS: [&str; 4] = [
    "Tenant",
    "ModuleInstallation",
    "ModuleRollout",
    "DatabaseServer",
];

/// Every reason the operator can put on a Ready condition that is not True, with the health Argo CD maps it to
/// and the status kstatus computes once `merge_conditions` has added Reconciling or Stalled (`Reason::kstatus`).
/// `Reconciled` is never on a False Ready; it is here so that an unexpected pairing still reads as a fault to
/// Argo CD.
const REASONS: &[(&str, &str, &str)] = &[
    ("Progressing", "Progressing", "InProgress"),
    ("TenantNotReady", "Progressing", "InProgress"),
    ("TenantNotFound", "Progressing", "InProgress"),
    ("DependencyMissing", "Progressing", "InProgress"),
    // Only while the object is being deleted, which kstatus reads as Terminating before any condition.
    ("UninstallBlocked", "Progressing", "InProgress"),
    // Retried with backoff until the database answers again.
    ("DatabaseUnavailable", "Progressing", "InProgress"),
    // A Tenant waits for a DatabaseServer with room; placed as soon as one changes.
    ("NoServerAvailable", "Progressing", "InProgress"),
    // Only while a DatabaseServer is being deleted (Terminating to kstatus): it waits for its tenants to go.
    ("ServerInUse", "Progressing", "InProgress"),
    // A Tenant being moved to another server: it serves again from the target by itself.
    ("Moving", "Progressing", "InProgress"),
    // Stopped on purpose: kstatus has no suspended state, and neither Reconciling nor Stalled is set.
    ("Paused", "Suspended", "InProgress"),
    ("DryRun", "Suspended", "InProgress"),
    ("InvalidSpec", "Degraded", "Failed"),
    ("SlugConflict", "Degraded", "Failed"),
    ("ModuleNotFound", "Degraded", "Failed"),
    ("VersionNotFound", "Degraded", "Failed"),
    ("MigrationFailed", "Degraded", "Failed"),
    ("ChecksumMismatch", "Degraded", "Failed"),
    ("IrreversibleMigration", "Degraded", "Failed"),
    ("DestructiveActionBlocked", "Degraded", "Failed"),
    ("AdoptionRefused", "Degraded", "Failed"),
    // A database Landlord made is gone: restored or re-created by a person only.
    ("DatabaseMissing", "Degraded", "Failed"),
    // A rollout halted past spec.strategy.maxFailures: its failed installations need a person.
    ("FailureBudgetExceeded", "Degraded", "Failed"),
    // On a Tenant's Moved condition (its Ready is True again, from the source): a person asks again.
    ("MoveFailed", "Degraded", "Failed"),
    ("Reconciled", "Degraded", "InProgress"),
    // A reason a later operator version may add: loud rather than waiting forever (Argo CD only: the
    // operator cannot write it, so kstatus is not asked).
    ("SomethingNew", "Degraded", ""),
];

fn script(kind: &str) -> PathBuf {
    repo_root().join(format!("deploy/argocd/tenancy.landlord.dev_{kind}.lua"))
}

fn fixture(name: &str) -> Value {
    let path = repo_root().join("tests/fixtures/argocd").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Argo CD's health of each object, `(hs.status, hs.message)`, from Argo CD's own evaluator, in one run.
fn argocd(objects: &[Value]) -> Vec<(String, String)> {
    gitops::read(objects)
        .into_iter()
        .map(|r| {
            let health = r
                .argocd
                .unwrap_or_else(|| panic!("Argo CD has no health check for {}", r.kind));
            (health.status, health.message)
        })
        .collect()
}

fn kind_of(obj: &Value) -> &str {
    obj["kind"].as_str().expect("kind")
}

/// A Ready DatabaseServer as the operator writes it: its own types, and its conditions from `merge_conditions`.
/// Not a fixture of `tests/gitops_health.rs`: a DatabaseServer is cluster-scoped, and every operator of the tests
/// running beside it watches DatabaseServers cluster-wide and would write its status too.
fn ready_server() -> Value {
    let mut server = DatabaseServer::new(
        "second",
        DatabaseServerSpec {
            admin_secret_ref: AdminSecretRef {
                name: "landlord-server-second".into(),
                key: "uri".into(),
            },
            max_tenants: Some(50),
            ..Default::default()
        },
    );
    server.metadata.generation = Some(1);
    server.metadata.uid = Some("6f1c2b0e-5d4a-4e3b-9c8d-7a6b5c4d3e2f".into());
    server.metadata.creation_timestamp =
        Some(Time(Timestamp::from_second(1_767_225_000).expect("a time")));
    let now = Time(Timestamp::from_second(1_767_225_600).expect("a time"));
    let ready = DesiredCondition::new(
        ConditionType::Ready,
        Some(true),
        Reason::Reconciled,
        "The server answers and its admin role has CREATEDB and CREATEROLE, no more; 1 tenant(s) of at most \
         50 placed here.",
    );
    server.status = Some(DatabaseServerStatus {
        observed_generation: Some(1),
        tenants: Some(1),
        server_version: Some("15.8".into()),
        template: None,
        conditions: merge_conditions(&[], &[ready], Some(1), &now),
    });
    serde_json::to_value(&server).expect("a DatabaseServer as JSON")
}

/// The objects the operator wrote Ready=True for, one per kind: the base for the variations below.
fn ready_objects() -> Vec<Value> {
    let objects = vec![
        fixture("tenant-ready.json"),
        fixture("installation-ready.json"),
        fixture("rollout-ready.json"),
        ready_server(),
    ];
    assert_eq!(objects.iter().map(kind_of).collect::<Vec<_>>(), KINDS);
    objects
}

/// Asserts that Argo CD reads every object as expected; all are read in one run of the tool.
fn assert_argocd(cases: Vec<(Value, (String, String))>) {
    let (objects, expected): (Vec<Value>, Vec<(String, String)>) = cases.into_iter().unzip();
    let got = argocd(&objects);
    assert_eq!(got.len(), objects.len());
    for ((obj, got), want) in objects.iter().zip(got).zip(expected) {
        assert_eq!(got, want, "{obj}");
    }
}

fn waiting(generation: i64) -> (String, String) {
    (
        "Progressing".to_string(),
        format!("Waiting for the operator to observe generation {generation}"),
    )
}

#[test]
fn fixtures_written_by_the_operator_read_as_their_state() {
    let objects: Vec<Value> = STATES.iter().map(|s| fixture(s.fixture)).collect();
    let readings = gitops::read(&objects);
    assert_eq!(readings.len(), STATES.len());
    for ((s, obj), r) in STATES.iter().zip(&objects).zip(readings) {
        let (kstatus_message, argocd_message) = expected_messages(obj, s);
        let argocd = r.argocd.expect("Argo CD has a health check");
        assert_eq!(
            (
                r.kstatus.status,
                r.kstatus.message,
                argocd.status,
                argocd.message
            ),
            (
                s.kstatus.to_string(),
                kstatus_message,
                s.argocd.to_string(),
                argocd_message
            ),
            "{}",
            s.fixture
        );
    }
}

#[test]
fn every_fixture_is_checked() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join("tests/fixtures/argocd"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = STATES.iter().map(|s| s.fixture.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/fixtures/argocd/ and support::gitops::STATES differ"
    );
}

#[test]
fn ready_objects_are_healthy_and_current() {
    let objects = ready_objects();
    let readings = gitops::read(&objects);
    for (obj, r) in objects.iter().zip(readings) {
        let argocd = r.argocd.expect("Argo CD has a health check");
        assert_eq!(
            (r.kstatus.status.as_str(), argocd.status.as_str()),
            ("Current", "Healthy"),
            "{obj}"
        );
    }
}

#[test]
fn every_kind_uses_the_same_script() {
    let [tenant, scripts @ ..] = KINDS.map(|kind| std::fs::read_to_string(script(kind)).unwrap());
    assert!(
        scripts.iter().all(|script| *script == tenant),
        "the health scripts of {KINDS:?} differ; the rules are the same for every kind"
    );
}

#[test]
fn generation_ahead_of_observed_generation_is_progressing() {
    let mut cases = Vec::new();
    for base in ready_objects() {
        let mut obj = base.clone();
        obj["metadata"]["generation"] = json!(2);
        // observedGeneration on the condition is optional in metav1.Condition: the status's alone must hold.
        let mut without_condition_generation = obj.clone();
        for condition in without_condition_generation["status"]["conditions"]
            .as_array_mut()
            .unwrap()
        {
            condition
                .as_object_mut()
                .unwrap()
                .remove("observedGeneration");
        }
        cases.push((obj, waiting(2)));
        cases.push((without_condition_generation, waiting(2)));
    }
    assert_argocd(cases);
}

#[test]
fn ready_condition_of_an_older_generation_is_progressing() {
    // status.observedGeneration is current but Ready is not: Ready only speaks for the generation it names.
    let mut cases = Vec::new();
    for mut obj in ready_objects() {
        obj["metadata"]["generation"] = json!(3);
        obj["status"]["observedGeneration"] = json!(3);
        cases.push((obj, waiting(3)));
    }
    assert_argocd(cases);
}

#[test]
fn missing_status_is_progressing_to_argocd_but_current_to_kstatus() {
    // The CRDs default status.observedGeneration to 0 (src/crd/mod.rs) because kstatus calls an object
    // without status Current; with the default both clients wait.
    let mut objects = Vec::new();
    for mut obj in ready_objects() {
        obj.as_object_mut().unwrap().remove("status");
        objects.push(obj.clone());
        obj["status"] = json!({"observedGeneration": 0});
        objects.push(obj);
    }
    let readings = gitops::read(&objects);
    for (obj, r) in objects.iter().zip(readings) {
        let kstatus = if obj.get("status").is_some() {
            "InProgress"
        } else {
            "Current"
        };
        assert_eq!(r.kstatus.status, kstatus, "{obj}");
        let argocd = r.argocd.expect("Argo CD has a health check");
        assert_eq!((argocd.status, argocd.message), waiting(1), "{obj}");
    }
}

#[test]
fn status_without_ready_condition_is_progressing() {
    let mut cases = Vec::new();
    for mut obj in ready_objects() {
        let ready_alone = matches!(kind_of(&obj), "ModuleRollout" | "DatabaseServer");
        let conditions = obj["status"]["conditions"].as_array_mut().unwrap();
        conditions.retain(|c| c["type"] != "Ready");
        // Tenants and installations keep their finer conditions; a rollout and a server have Ready alone, and
        // keep their counts and observedGeneration.
        assert_eq!(
            conditions.is_empty(),
            ready_alone,
            "the finer conditions stay"
        );
        cases.push((obj, waiting(1)));
    }
    assert_argocd(cases);
}

/// The conditions the operator writes for a Ready that is not True with `reason`: Ready plus Reconciling or
/// Stalled, from `merge_conditions`; for a reason the operator does not know, Ready alone.
fn not_ready_conditions(status: Option<bool>, reason: &str, message: &str) -> Vec<Value> {
    let Some(known) = Reason::ALL.iter().copied().find(|r| r.as_str() == reason) else {
        return vec![json!({
            "type": "Ready", "status": if status == Some(false) { "False" } else { "Unknown" },
            "reason": reason, "message": message, "observedGeneration": 1,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        })];
    };
    let now = Time(Timestamp::from_second(1_767_225_600).expect("a time"));
    let ready = DesiredCondition::new(ConditionType::Ready, status, known, message);
    merge_conditions(&[], &[ready], Some(1), &now)
        .iter()
        .map(|c| serde_json::to_value(c).expect("a condition as JSON"))
        .collect()
}

#[test]
fn every_ready_reason_maps_to_its_health() {
    // Quotes, a backslash, a tab and non-ASCII text also check that messages reach both clients intact.
    let message = "Tenant \"acme\": C:\\tmp\tfailed — réessayer";
    let mut objects = Vec::new();
    let mut expected = Vec::new();
    for base in ready_objects() {
        for (reason, argocd, kstatus) in REASONS {
            // The operator reports Unknown while work is ahead and False otherwise; neither is True.
            for status in [Some(false), None] {
                let mut obj = base.clone();
                obj["status"]["conditions"] = json!(not_ready_conditions(status, reason, message));
                objects.push(obj);
                expected.push((*reason, *argocd, *kstatus));
            }
        }
    }
    let readings = gitops::read(&objects);
    assert_eq!(readings.len(), objects.len());
    for ((obj, (reason, argocd, kstatus)), r) in objects.iter().zip(expected).zip(readings) {
        let health = r.argocd.expect("Argo CD has a health check");
        assert_eq!(
            (health.status.as_str(), health.message.as_str()),
            (argocd, message),
            "Argo CD, {} reason {reason}: {obj}",
            r.kind
        );
        if !kstatus.is_empty() {
            assert_eq!(
                (r.kstatus.status.as_str(), r.kstatus.message.as_str()),
                (kstatus, message),
                "kstatus, {} reason {reason}: {obj}",
                r.kind
            );
        }
    }
}

#[test]
fn every_operator_reason_is_in_reasons() {
    let listed: Vec<&str> = REASONS.iter().map(|(reason, _, _)| *reason).collect();
    for reason in Reason::ALL.iter().copied() {
        assert!(
            listed.contains(&reason.as_str()),
            "Ready reason {reason} is not in REASONS: add it with the health it must map to (and to README.md)"
        );
    }
}
