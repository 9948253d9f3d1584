//! How the GitOps clients read objects: `landlord-health` (hack/gitops) runs Flux's kstatus
//! (`sigs.k8s.io/cli-utils` `status.Compute`) and Argo CD v2.14's own Lua health evaluator on them, with the
//! health checks of `deploy/argocd/` loaded from an argocd-cm ConfigMap by Argo CD's settings manager.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use super::repo_root;

/// One object as both clients read it.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct Reading {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub kstatus: Health,
    /// `None`: Argo CD has no health check for the kind.
    pub argocd: Option<Health>,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct Health {
    pub status: String,
    pub message: String,
}

/// The binary: `LANDLORD_GITOPS_HEALTH` (set by `scripts/test`), else built or found in the cache by the same
/// function of scripts/lib.sh (so `cargo test` after `scripts/dev up` works too).
pub fn binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(path) = std::env::var("LANDLORD_GITOPS_HEALTH") {
            return PathBuf::from(path);
        }
        let out = Command::new("bash")
            .args(["-c", ". scripts/lib.sh && gitops_health_binary"])
            .current_dir(repo_root())
            .stderr(Stdio::inherit())
            .output()
            .expect("run bash to build hack/gitops");
        assert!(
            out.status.success(),
            "scripts/lib.sh gitops_health_binary failed"
        );
        PathBuf::from(String::from_utf8(out.stdout).expect("UTF-8 path").trim())
    })
}

/// Reads `objects` (objects or Lists, as `kubectl get -o json` prints them) with both clients, in one run of
/// the tool; one `Reading` per object, in order.
pub fn read(objects: &[Value]) -> Vec<Reading> {
    let mut child = Command::new(binary())
        .arg("-argocd-dir")
        .arg(repo_root().join("deploy/argocd"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary().display()));
    let mut stdin = child.stdin.take().expect("stdin");
    for obj in objects {
        serde_json::to_writer(&mut stdin, obj).expect("write an object");
        stdin.write_all(b"\n").expect("write a newline");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("wait for landlord-health");
    assert!(
        out.status.success(),
        "landlord-health failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// One state of one object: its saved copy in `tests/fixtures/argocd/`, the object `tests/gitops_health.rs`
/// drives into it, the reason of the `Ready` the operator writes in it (`None`: the operator has not seen the
/// current generation), and how each client must read it.
pub struct State {
    pub fixture: &'static str,
    pub kind: &'static str,
    pub name: &'static str,
    pub reason: Option<&'static str>,
    pub kstatus: &'static str,
    pub argocd: &'static str,
}

const fn state(
    fixture: &'static str,
    kind: &'static str,
    name: &'static str,
    reason: Option<&'static str>,
    (kstatus, argocd): (&'static str, &'static str),
) -> State {
    State {
        fixture,
        kind,
        name,
        reason,
        kstatus,
        argocd,
    }
}

pub const TN: &str = "Tenant";
pub const MI: &str = "ModuleInstallation";
pub const MRO: &str = "ModuleRollout";

/// kstatus `Current`, Argo CD `Healthy`: done.
const DONE: (&str, &str) = ("Current", "Healthy");
/// kstatus `InProgress`, Argo CD `Progressing`: work goes on, or waits for something that comes by itself.
const WAITING: (&str, &str) = ("InProgress", "Progressing");
/// kstatus `Failed` (Stalled=True), Argo CD `Degraded`: refused until a person acts, so a Flux Kustomization
/// fails at once instead of waiting out its timeout.
const REFUSED: (&str, &str) = ("Failed", "Degraded");
/// Stopped on purpose (spec.paused, spec.dryRun): Argo CD `Suspended`. kstatus has no such state: a Ready=False
/// with neither Reconciling nor Stalled reads `InProgress`, so Flux keeps waiting, as a Suspended resource
/// holds an Argo CD sync wave; neither calls it done or failed.
const STOPPED: (&str, &str) = ("InProgress", "Suspended");

/// Every state, with why each client reads it so.
pub const STATES: &[State] = &[
    // Database, role, Secret and core schema in place.
    state("tenant-ready.json", TN, "acme", Some("Reconciled"), DONE),
    state("tenant-paused.json", TN, "hold", Some("Paused"), STOPPED),
    // Another Tenant owns the slug: nothing changes until a person renames one of them.
    state(
        "tenant-slug-conflict.json",
        TN,
        "copycat",
        Some("SlugConflict"),
        REFUSED,
    ),
    // A Secret Landlord did not make holds the Tenant's name: a person must remove or rename it.
    state(
        "tenant-adoption-refused.json",
        TN,
        "squat",
        Some("AdoptionRefused"),
        REFUSED,
    ),
    // Deleted while it still has an installation: waits for it to go. Both clients read any object being
    // deleted by its deletionTimestamp alone: kstatus Terminating, Argo CD "Pending deletion".
    state(
        "tenant-uninstall-blocked.json",
        TN,
        "leaving",
        Some("UninstallBlocked"),
        ("Terminating", "Progressing"),
    ),
    // spec.server names no DatabaseServer the operator knows: it waits for one (placed as soon as a server
    // changes), as for a full or cordoned one.
    state(
        "tenant-no-server-available.json",
        TN,
        "homeless",
        Some("NoServerAvailable"),
        WAITING,
    ),
    // A spec edit the operator has not seen: the status says nothing about it yet.
    state("tenant-generation-ahead.json", TN, "acme", None, WAITING),
    // Applied while no operator runs: no status at all yet.
    state("tenant-unseen.json", TN, "unseen", None, WAITING),
    state(
        "installation-ready.json",
        MI,
        "acme-tasks",
        Some("Reconciled"),
        DONE,
    ),
    state(
        "installation-generation-ahead.json",
        MI,
        "acme-tasks",
        None,
        WAITING,
    ),
    state(
        "installation-unseen.json",
        MI,
        "unseen-tasks",
        None,
        WAITING,
    ),
    // dryRun: the plan is in status.plan and nothing is applied, on purpose.
    state(
        "installation-dry-run.json",
        MI,
        "acme-digital-card",
        Some("DryRun"),
        STOPPED,
    ),
    // Waits for the installation of `tasks` it depends on; applied in the same sync, that comes by itself.
    state(
        "installation-dependency-missing.json",
        MI,
        "globex-expenses",
        Some("DependencyMissing"),
        WAITING,
    ),
    // Waits for its Tenant, which a sync may apply after it.
    state(
        "installation-tenant-not-found.json",
        MI,
        "ghost-tasks",
        Some("TenantNotFound"),
        WAITING,
    ),
    // Made by the rollout `slow` for the paused Tenant `hold`: waits for the Tenant to be Ready.
    state(
        "installation-tenant-not-ready.json",
        MI,
        "hold-tasks",
        Some("TenantNotReady"),
        WAITING,
    ),
    // No such module in the catalog: the spec must change.
    state(
        "installation-module-not-found.json",
        MI,
        "acme-payroll",
        Some("ModuleNotFound"),
        REFUSED,
    ),
    // No such release of the module: the spec must change, or the catalog grow.
    state(
        "installation-version-not-found.json",
        MI,
        "globex-tasks",
        Some("VersionNotFound"),
        REFUSED,
    ),
    // Made by the rollout `halted`: a table is in the migration's way. The operator retries, but only a person
    // can clear the way.
    state(
        "installation-migration-failed.json",
        MI,
        "broken-tasks",
        Some("MigrationFailed"),
        REFUSED,
    ),
    // Every matching Tenant has the module.
    state("rollout-ready.json", MRO, "cards", Some("Reconciled"), DONE),
    // maxParallel 1: `hold-tasks` waits for its Tenant, `later` waits its turn.
    state(
        "rollout-progressing.json",
        MRO,
        "slow",
        Some("Progressing"),
        WAITING,
    ),
    state(
        "rollout-paused.json",
        MRO,
        "frozen",
        Some("Paused"),
        STOPPED,
    ),
    state(
        "rollout-dry-run.json",
        MRO,
        "preview",
        Some("DryRun"),
        STOPPED,
    ),
    // One failed installation past maxFailures 0: halted until a person fixes it.
    state(
        "rollout-failure-budget-exceeded.json",
        MRO,
        "halted",
        Some("FailureBudgetExceeded"),
        REFUSED,
    ),
    state("rollout-generation-ahead.json", MRO, "cards", None, WAITING),
    state("rollout-unseen.json", MRO, "unseen", None, WAITING),
    // The rollout's spec names a module the catalog does not have.
    state(
        "rollout-module-not-found.json",
        MRO,
        "unknown",
        Some("ModuleNotFound"),
        REFUSED,
    ),
];

/// The messages each client must show for `obj` in `state`: (kstatus, Argo CD). The Ready condition's message
/// (kstatus's own "Resource is Ready" when Current); for a generation the operator has not seen, each client's
/// own words.
pub fn expected_messages(obj: &Value, state: &State) -> (String, String) {
    let generation = obj["metadata"]["generation"]
        .as_i64()
        .expect("metadata.generation");
    if obj["metadata"]["deletionTimestamp"].is_string() {
        return (
            "Resource scheduled for deletion".to_string(),
            "Pending deletion".to_string(),
        );
    }
    if state.reason.is_none() {
        let kstatus = match obj["status"]["observedGeneration"].as_i64() {
            Some(observed) => format!(
                "{} generation is {generation}, but latest observed generation is {observed}",
                state.kind
            ),
            None => String::new(),
        };
        return (
            kstatus,
            format!("Waiting for the operator to observe generation {generation}"),
        );
    }
    let ready = obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_else(|| panic!("{} {} has no Ready message", state.kind, state.name))
        .to_string();
    let kstatus = if state.kstatus == "Current" {
        "Resource is Ready".to_string()
    } else {
        ready.clone()
    };
    (kstatus, ready)
}
