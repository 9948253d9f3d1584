//! Rendering for the chart's tests: `helm template` of `charts/landlord` (helm from `scripts/helm-build`, the
//! cached build of hack/helm) and `kubectl kustomize` of `deploy/`, as one JSON value per object.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

pub use super::support::repo_root;

/// The labels Helm's own conventions add to every object; deploy/ has no release to name.
pub const HELM_LABELS: [&str; 4] = [
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

/// The path of helm (scripts/test builds it first; a warm cache answers at once).
pub fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let out = Command::new(repo_root().join("scripts/helm-build"))
            .output()
            .expect("run scripts/helm-build");
        assert!(
            out.status.success(),
            "scripts/helm-build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// `helm template <release> charts/landlord --namespace <namespace> --include-crds` with `--set` of each of `sets`.
pub fn try_helm_template(
    release: &str,
    namespace: &str,
    sets: &[&str],
) -> Result<Vec<Value>, String> {
    let mut command = Command::new(helm());
    command
        .args([
            "template",
            release,
            "charts/landlord",
            "--namespace",
            namespace,
            "--include-crds",
        ])
        .current_dir(repo_root());
    for set in sets {
        command.args(["--set", set]);
    }
    let out = command.output().expect("run helm template");
    if out.status.success() {
        Ok(documents(&String::from_utf8(out.stdout).unwrap()))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn helm_template(release: &str, namespace: &str, sets: &[&str]) -> Vec<Value> {
    try_helm_template(release, namespace, sets)
        .unwrap_or_else(|err| panic!("helm template {sets:?} failed: {err}"))
}

/// `kubectl kustomize <dir>` (relative to the repository).
pub fn kustomize(dir: &str) -> Vec<Value> {
    let out = Command::new("kubectl")
        .args(["kustomize", dir])
        .current_dir(repo_root())
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8(out.stdout).unwrap())
}

/// Every non-empty document of a multi-document YAML stream.
pub fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).expect("YAML document"))
        .filter(|doc| !doc.is_null())
        .collect()
}

pub fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

pub fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn namespace_of(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// The one object of `kind` named `name`.
pub fn find<'a>(objects: &'a [Value], kind_: &str, name_: &str) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| kind(o) == kind_ && name(o) == name_)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind_} {name_}");
    found[0]
}

/// YAML writers differ on `0` and `0.0`: the same number to the apiserver, so compare numbers by value.
pub fn numbers_as_floats(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, numbers_as_floats(v)))
                .collect(),
        ),
        other => other,
    }
}
