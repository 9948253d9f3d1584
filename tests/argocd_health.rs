//! The Argo CD health checks in `deploy/argocd/`, run by a real Lua interpreter (`lua5.4`, Debian package
//! `lua5.4`) against Tenants, ModuleInstallations and ModuleRollouts as the operator wrote them
//! (`tests/fixtures/argocd/`, saved with `kubectl get -o json` from a running operator, managedFields removed)
//! and against variations of them: a spec edit the operator has not seen yet, no status, no Ready condition,
//! every Ready reason.
//! No cluster needed. The interpreter is required: without it every test fails, none is skipped.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use landlord::crd::Reason;
use serde_json::{Value, json};

const LUA: &str = "lua5.4";
const KINDS: [&str; 3] = ["Tenant", "ModuleInstallation", "ModuleRollout"];

/// Every fixture with the health Argo CD must show for it. `None`: the message is the Ready condition's.
const FIXTURES: &[(&str, &str, Option<&str>)] = &[
    ("tenant-ready.json", "Healthy", None),
    ("tenant-paused.json", "Suspended", None),
    // Saved after `kubectl patch` with the operator stopped: generation 2, status still for generation 1.
    (
        "tenant-generation-ahead.json",
        "Progressing",
        Some("Waiting for the operator to observe generation 2"),
    ),
    ("installation-ready.json", "Healthy", None),
    ("installation-dry-run.json", "Suspended", None),
    ("installation-dependency-missing.json", "Progressing", None),
    ("installation-tenant-not-found.json", "Progressing", None),
    ("installation-tenant-not-ready.json", "Progressing", None),
    ("installation-module-not-found.json", "Degraded", None),
    ("installation-version-not-found.json", "Degraded", None),
    ("rollout-ready.json", "Healthy", None),
    // maxParallel 1: the first tenant's installation waits for its paused Tenant, the second one waits its turn.
    ("rollout-progressing.json", "Progressing", None),
    ("rollout-paused.json", "Suspended", None),
    // The canary's migration failed (maxFailures 0): halted until a person fixes it.
    ("rollout-failure-budget-exceeded.json", "Degraded", None),
    // Saved after `kubectl patch` with the operator stopped: generation 2, status still for generation 1.
    (
        "rollout-generation-ahead.json",
        "Progressing",
        Some("Waiting for the operator to observe generation 2"),
    ),
    ("rollout-module-not-found.json", "Degraded", None),
];

/// Every reason the operator can put on a Ready condition that is not True, and the health it maps to.
/// `Reconciled` is never on a False Ready; it is here so that an unexpected pairing still reads as a fault.
const REASONS: &[(&str, &str)] = &[
    ("Progressing", "Progressing"),
    ("TenantNotReady", "Progressing"),
    ("TenantNotFound", "Progressing"),
    ("DependencyMissing", "Progressing"),
    ("UninstallBlocked", "Progressing"),
    ("DatabaseUnavailable", "Progressing"),
    ("Paused", "Suspended"),
    ("DryRun", "Suspended"),
    ("InvalidSpec", "Degraded"),
    ("SlugConflict", "Degraded"),
    ("ModuleNotFound", "Degraded"),
    ("VersionNotFound", "Degraded"),
    ("MigrationFailed", "Degraded"),
    ("ChecksumMismatch", "Degraded"),
    ("IrreversibleMigration", "Degraded"),
    ("DestructiveActionBlocked", "Degraded"),
    ("AdoptionRefused", "Degraded"),
    // A rollout halted past spec.strategy.maxFailures: its failed installations need a person.
    ("FailureBudgetExceeded", "Degraded"),
    ("Reconciled", "Degraded"),
    // A reason a later operator version may add: loud rather than waiting forever.
    ("SomethingNew", "Degraded"),
];

/// Every reason of the operator (`landlord::crd::Reason`). The match has no wildcard arm: a reason added to
/// the operator does not compile here until it is listed, and `every_operator_reason_is_in_reasons` then
/// wants it in `REASONS` with its health.
fn operator_reasons() -> Vec<Reason> {
    let all = vec![
        Reason::InvalidSpec,
        Reason::SlugConflict,
        Reason::TenantNotFound,
        Reason::TenantNotReady,
        Reason::ModuleNotFound,
        Reason::VersionNotFound,
        Reason::DependencyMissing,
        Reason::MigrationFailed,
        Reason::ChecksumMismatch,
        Reason::DatabaseUnavailable,
        Reason::IrreversibleMigration,
        Reason::UninstallBlocked,
        Reason::DestructiveActionBlocked,
        Reason::Paused,
        Reason::Reconciled,
        Reason::AdoptionRefused,
        Reason::Progressing,
        Reason::DryRun,
        Reason::FailureBudgetExceeded,
    ];
    for reason in &all {
        match reason {
            Reason::InvalidSpec
            | Reason::SlugConflict
            | Reason::TenantNotFound
            | Reason::TenantNotReady
            | Reason::ModuleNotFound
            | Reason::VersionNotFound
            | Reason::DependencyMissing
            | Reason::MigrationFailed
            | Reason::ChecksumMismatch
            | Reason::DatabaseUnavailable
            | Reason::IrreversibleMigration
            | Reason::UninstallBlocked
            | Reason::DestructiveActionBlocked
            | Reason::Paused
            | Reason::Reconciled
            | Reason::AdoptionRefused
            | Reason::Progressing
            | Reason::DryRun
            | Reason::FailureBudgetExceeded => {}
        }
    }
    all
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(kind: &str) -> PathBuf {
    repo().join(format!("deploy/argocd/tenancy.landlord.dev_{kind}.lua"))
}

fn fixture(name: &str) -> Value {
    let path = repo().join("tests/fixtures/argocd").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON value as a Lua constructor, the way Argo CD's decoder hands `obj` to the script: members that are
/// null are left out (an absent field and a nil one are the same in Lua), integers stay integers (gopher-lua
/// keeps them as float64 but prints them without a fraction, as Lua 5.4 does for integers).
fn lua_literal(value: &Value) -> String {
    match value {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => lua_string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(lua_literal).collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::Object(members) => {
            let members: Vec<String> = members
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_literal(v)))
                .collect();
            format!("{{{}}}", members.join(", "))
        }
    }
}

/// A double-quoted Lua string; control characters as decimal escapes, other UTF-8 as is (Lua strings are bytes).
fn lua_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_control() => out.push_str(&format!("\\{:03}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs the `kind`'s health script on `obj` the way Argo CD does and returns `(hs.status, hs.message)`.
/// Argo CD loads only the base and table libraries (plus a trimmed `os`), so the script gets an environment
/// with just those, and strings lose their methods: a script leaning on `string.*` fails here as it would there.
/// `loadfile` compiles the script into a function, as Argo CD's `DoString` does; its return value is `hs`.
fn health(kind: &str, obj: &Value) -> (String, String) {
    let driver = format!(
        r#"local obj = {obj}
getmetatable("").__index = nil
local env = {{ obj = obj, table = table }}
for _, name in ipairs({{ "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print",
    "rawequal", "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall" }}) do
  env[name] = _G[name]
end
local health = assert(loadfile({script}, "t", env))
local hs = health()
print(hs.status .. "\t" .. hs.message)
"#,
        obj = lua_literal(obj),
        script = lua_string(script(kind).to_str().expect("UTF-8 path")),
    );
    let mut child = match Command::new(LUA)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "{LUA} is not installed (Debian package lua5.4): run the tests with scripts/test, \
             or `apt-get install lua5.4`"
        ),
        Err(e) => panic!("cannot run {LUA}: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(driver.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{LUA} failed on the {kind} script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (status, message) = stdout
        .strip_suffix('\n')
        .and_then(|line| line.split_once('\t'))
        .unwrap_or_else(|| panic!("unexpected output from the driver: {stdout:?}"));
    (status.to_string(), message.to_string())
}

fn kind_of(obj: &Value) -> &str {
    obj["kind"].as_str().expect("kind")
}

fn ready_message(obj: &Value) -> &str {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .expect("a Ready condition with a message")
}

/// The fixtures the operator wrote Ready=True for, one per kind: the base for the variations below.
fn ready_objects() -> Vec<Value> {
    let objects = vec![
        fixture("tenant-ready.json"),
        fixture("installation-ready.json"),
        fixture("rollout-ready.json"),
    ];
    assert_eq!(objects.iter().map(kind_of).collect::<Vec<_>>(), KINDS);
    objects
}

#[test]
fn fixtures_written_by_the_operator_map_to_their_health() {
    for (file, status, message) in FIXTURES {
        let obj = fixture(file);
        let expected_message = message.unwrap_or_else(|| ready_message(&obj));
        assert_eq!(
            health(kind_of(&obj), &obj),
            (status.to_string(), expected_message.to_string()),
            "{file}"
        );
    }
}

#[test]
fn every_fixture_is_checked() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo().join("tests/fixtures/argocd"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|(f, _, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "tests/fixtures/argocd/ and FIXTURES differ"
    );
}

#[test]
fn every_kind_uses_the_same_script() {
    let [tenant, installation, rollout] =
        KINDS.map(|kind| std::fs::read_to_string(script(kind)).unwrap());
    assert!(
        tenant == installation && tenant == rollout,
        "the Tenant, ModuleInstallation and ModuleRollout health scripts differ; the rules are the same for \
         every kind"
    );
}

#[test]
fn generation_ahead_of_observed_generation_is_progressing() {
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
        for obj in [obj, without_condition_generation] {
            assert_eq!(
                health(kind_of(&obj), &obj),
                (
                    "Progressing".to_string(),
                    "Waiting for the operator to observe generation 2".to_string()
                ),
                "{obj}"
            );
        }
    }
}

#[test]
fn ready_condition_of_an_older_generation_is_progressing() {
    // status.observedGeneration is current but Ready is not: Ready only speaks for the generation it names.
    for mut obj in ready_objects() {
        obj["metadata"]["generation"] = json!(3);
        obj["status"]["observedGeneration"] = json!(3);
        assert_eq!(
            health(kind_of(&obj), &obj).0,
            "Progressing",
            "{}",
            kind_of(&obj)
        );
    }
}

#[test]
fn missing_status_is_progressing() {
    for mut obj in ready_objects() {
        obj.as_object_mut().unwrap().remove("status");
        assert_eq!(
            health(kind_of(&obj), &obj),
            (
                "Progressing".to_string(),
                "Waiting for the operator to observe generation 1".to_string()
            ),
            "{}",
            kind_of(&obj)
        );
    }
}

#[test]
fn status_without_ready_condition_is_progressing() {
    for mut obj in ready_objects() {
        let rollout = kind_of(&obj) == "ModuleRollout";
        let conditions = obj["status"]["conditions"].as_array_mut().unwrap();
        conditions.retain(|c| c["type"] != "Ready");
        // Tenants and installations keep their finer conditions; a rollout has Ready alone, and keeps its
        // counts and observedGeneration.
        assert_eq!(conditions.is_empty(), rollout, "the finer conditions stay");
        assert_eq!(
            health(kind_of(&obj), &obj),
            (
                "Progressing".to_string(),
                "Waiting for the operator to observe generation 1".to_string()
            ),
            "{}",
            kind_of(&obj)
        );
    }
}

#[test]
fn every_ready_reason_maps_to_its_health() {
    // Quotes, a backslash, a tab and non-ASCII text also check that messages reach Lua intact.
    let message = "Tenant \"acme\": C:\\tmp\tfailed — réessayer";
    for base in ready_objects() {
        for (reason, expected) in REASONS {
            // The operator reports Unknown while work is ahead and False otherwise; neither is True.
            for status in ["False", "Unknown"] {
                let mut obj = base.clone();
                let ready = obj["status"]["conditions"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|c| c["type"] == "Ready")
                    .unwrap();
                ready["status"] = json!(status);
                ready["reason"] = json!(reason);
                ready["message"] = json!(message);
                assert_eq!(
                    health(kind_of(&obj), &obj),
                    (expected.to_string(), message.to_string()),
                    "{} Ready={status} reason {reason}",
                    kind_of(&obj)
                );
            }
        }
    }
}

#[test]
fn every_operator_reason_is_in_reasons() {
    let listed: Vec<&str> = REASONS.iter().map(|(reason, _)| *reason).collect();
    for reason in operator_reasons() {
        assert!(
            listed.contains(&reason.as_str()),
            "Ready reason {reason} is not in REASONS: add it with the health it must map to (and to README.md)"
        );
    }
}

#[test]
fn lua_literal_escapes_what_lua_would_misread() {
    assert_eq!(
        lua_literal(&json!({"a": [1, true, null], "b": null, "q": "x\"\\\n"})),
        r#"{["a"] = {1, true, nil}, ["q"] = "x\"\\\010"}"#
    );
}
