//! `charts/landlord`: what `helm template` renders, held against `deploy/` object by object. With its defaults
//! the chart installs exactly what `kubectl apply -k deploy/` installs (but the Namespace, which `helm install
//! --create-namespace` makes), with `watchNamespace` exactly what `deploy/overlays/namespaced` installs; its CRDs
//! and monitoring files are the repository's; every value changes what it names.

mod helm;
mod support;

use std::collections::{BTreeMap, BTreeSet};

use helm::{
    HELM_LABELS, find, helm_template, kind, kustomize, name, namespace_of, numbers_as_floats,
    repo_root, try_helm_template,
};
use serde_json::Value;

const NAMESPACE: &str = "landlord-system";

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Removes Helm's own labels from an object and its pod template, after checking that it carries them all.
fn without_helm_labels(mut object: Value) -> Value {
    let what = format!("{} {}", kind(&object), name(&object));
    strip(&mut object["metadata"]["labels"], &what);
    if kind(&object) == "Deployment" {
        strip(&mut object["spec"]["template"]["metadata"]["labels"], &what);
    }
    object
}

fn strip(labels: &mut Value, what: &str) {
    let labels = labels
        .as_object_mut()
        .unwrap_or_else(|| panic!("{what} has no labels"));
    for label in HELM_LABELS {
        assert!(
            labels.remove(label).is_some(),
            "{what} lacks the label {label}"
        );
    }
}

/// Objects by (kind, namespace, name), numbers compared by value.
fn by_identity(objects: Vec<Value>) -> BTreeMap<(String, String, String), Value> {
    let count = objects.len();
    let map: BTreeMap<_, _> = objects
        .into_iter()
        .map(|o| {
            (
                (
                    kind(&o).to_string(),
                    namespace_of(&o).to_string(),
                    name(&o).to_string(),
                ),
                numbers_as_floats(o),
            )
        })
        .collect();
    assert_eq!(map.len(), count, "an object is rendered twice");
    map
}

/// The chart's render (Helm labels removed; CRDs come from `crds/` unlabelled) equals kustomize's, Namespace aside.
fn assert_same_objects(chart: Vec<Value>, kustomized: Vec<Value>) {
    let chart = by_identity(
        chart
            .into_iter()
            .map(|o| {
                if kind(&o) == "CustomResourceDefinition" {
                    o
                } else {
                    without_helm_labels(o)
                }
            })
            .collect(),
    );
    let (namespaces, kustomized): (Vec<Value>, Vec<Value>) =
        kustomized.into_iter().partition(|o| kind(o) == "Namespace");
    assert_eq!(
        namespaces.iter().map(name).collect::<Vec<_>>(),
        [NAMESPACE],
        "deploy/ renders its namespace, the chart leaves it to helm install --create-namespace"
    );
    let kustomized = by_identity(kustomized);
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        kustomized.keys().collect::<Vec<_>>(),
        "the chart and deploy/ render different objects"
    );
    for (identity, object) in &chart {
        if let Some((path, left, right)) = first_difference(object, &kustomized[identity], "") {
            panic!("{identity:?} differs at {path}: the chart has {left}, deploy/ has {right}");
        }
    }
}

/// Where two JSON values first differ: (path, left, right).
fn first_difference(left: &Value, right: &Value, path: &str) -> Option<(String, Value, Value)> {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (lv, rv) = (
                    l.get(k).unwrap_or(&Value::Null),
                    r.get(k).unwrap_or(&Value::Null),
                );
                first_difference(lv, rv, &format!("{path}.{k}"))
            })
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => l
            .iter()
            .zip(r)
            .enumerate()
            .find_map(|(i, (lv, rv))| first_difference(lv, rv, &format!("{path}[{i}]"))),
        _ if left == right => None,
        _ => Some((path.to_string(), left.clone(), right.clone())),
    }
}

#[test]
fn defaults_render_what_deploy_installs() {
    assert_same_objects(
        helm_template("landlord", NAMESPACE, &[]),
        kustomize("deploy/"),
    );
}

#[test]
fn a_watched_namespace_renders_what_the_namespaced_overlay_installs() {
    assert_same_objects(
        helm_template("landlord", NAMESPACE, &["watchNamespace=tenants"]),
        kustomize("deploy/overlays/namespaced"),
    );
}

/// A rule as (apiGroups, resources, resourceNames, verbs), order-insensitive.
type Rule = [BTreeSet<String>; 4];

fn rules(role: &Value) -> BTreeSet<Rule> {
    let set = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            [
                set(&r["apiGroups"]),
                set(&r["resources"]),
                set(&r["resourceNames"]),
                set(&r["verbs"]),
            ]
        })
        .collect()
}

fn grants_secrets(rule: &Rule) -> bool {
    rule[0].contains("") && (rule[1].contains("secrets") || rule[1].contains("*"))
}

/// What is cluster-scoped, and so granted by the ClusterRole in every mode: the CRDs, DatabaseServers, namespaces.
fn is_cluster_scoped(rule: &Rule) -> bool {
    rule[1].iter().all(|r| {
        [
            "customresourcedefinitions",
            "databaseservers",
            "databaseservers/status",
            "databaseservers/finalizers",
            "namespaces",
        ]
        .contains(&r.as_str())
    })
}

#[test]
fn a_watched_namespace_gets_secrets_by_a_role_there_and_nothing_else_cluster_wide() {
    let base = kustomize("deploy/");
    let cluster_wide = rules(find(&base, "ClusterRole", "landlord"));
    let cluster_scoped: BTreeSet<Rule> = cluster_wide
        .iter()
        .filter(|r| is_cluster_scoped(r))
        .cloned()
        .collect();
    assert_eq!(
        cluster_scoped.len(),
        5,
        "the CRDs, DatabaseServers with their status and finalizers, namespaces"
    );
    assert!(cluster_wide.iter().any(grants_secrets));

    for objects in [
        helm_template("landlord", NAMESPACE, &["watchNamespace=tenants"]),
        kustomize("deploy/overlays/namespaced"),
    ] {
        // Cluster-wide, only what is cluster-scoped remains: its CRDs by name, DatabaseServers, namespaces.
        let cluster_role = find(&objects, "ClusterRole", "landlord");
        assert_eq!(rules(cluster_role), cluster_scoped);
        assert!(objects.iter().filter(|o| kind(o) == "ClusterRole").count() == 1);
        // Everything else the base grants cluster-wide, granted in the watched namespace.
        let role = objects
            .iter()
            .find(|o| kind(o) == "Role" && namespace_of(o) == "tenants")
            .expect("a Role in the watched namespace");
        let namespaced: BTreeSet<Rule> =
            cluster_wide.difference(&cluster_scoped).cloned().collect();
        assert_eq!(rules(role), namespaced);
        let binding = objects
            .iter()
            .find(|o| kind(o) == "RoleBinding" && namespace_of(o) == "tenants")
            .expect("a RoleBinding in the watched namespace");
        assert_eq!(binding["roleRef"]["kind"], "Role");
        assert_eq!(binding["roleRef"]["name"], name(role));
        assert_eq!(binding["subjects"][0]["name"], "landlord");
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
        // No Secret anywhere else, but the admin Secrets of DatabaseServers: read by name (never listed or
        // watched) in the operator's own namespace.
        let get_secrets: BTreeSet<Rule> = BTreeSet::from([[
            BTreeSet::from([String::new()]),
            BTreeSet::from(["secrets".to_string()]),
            BTreeSet::new(),
            BTreeSet::from(["get".to_string()]),
        ]]);
        for other in objects
            .iter()
            .filter(|o| matches!(kind(o), "Role" | "ClusterRole") && namespace_of(o) != "tenants")
        {
            let granted = rules(other);
            if name(other) == "landlord-admin-secrets" {
                assert_eq!(namespace_of(other), NAMESPACE);
                assert_eq!(granted, get_secrets);
                continue;
            }
            assert!(
                !granted.iter().any(grants_secrets),
                "{} {} grants Secrets outside the watched namespace",
                kind(other),
                name(other)
            );
        }
        let env = &find(&objects, "Deployment", "landlord")["spec"]["template"]["spec"]["containers"]
            [0]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "LANDLORD_WATCH_NAMESPACE" && e["value"] == "tenants"),
            "the operator watches the namespace its Role is in: {env}"
        );
    }
}

#[test]
fn chart_crds_are_the_crds_of_the_repository() {
    assert!(
        read("charts/landlord/crds/landlord.yaml") == read("crds/landlord.yaml"),
        "charts/landlord/crds/landlord.yaml differs from crds/landlord.yaml: cp crds/landlord.yaml charts/landlord/crds/"
    );
}

#[test]
fn chart_monitoring_files_are_those_of_deploy_monitoring() {
    for (chart, deploy) in [
        (
            "charts/landlord/files/prometheusrule.yaml",
            "deploy/monitoring/prometheusrule.yaml",
        ),
        (
            "charts/landlord/files/landlord-dashboard.json",
            "deploy/monitoring/landlord-dashboard.json",
        ),
    ] {
        assert!(
            read(chart) == read(deploy),
            "{chart} differs from {deploy}: cp {deploy} {chart}"
        );
    }
}

fn env_of(objects: &[Value], deployment: &str) -> BTreeMap<String, Value> {
    find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

#[test]
fn every_value_changes_what_it_names() {
    let objects = helm_template(
        "shop",
        "ops",
        &[
            "image.repository=registry.example.com/landlord",
            "image.tag=v9.9.9",
            "image.pullPolicy=Always",
            "replicaCount=3",
            "environment=production",
            "database.secretName=pg-urls",
            "database.adminUrlKey=admin",
            "database.landlordUrlKey=landlord",
            "logLevel=debug",
            "resources.limits.memory=1Gi",
            "podDisruptionBudget.minAvailable=2",
            "metrics.service.port=9090",
            "extraEnv.LANDLORD_CONCURRENCY=8",
            "defaultServerCordoned=true",
        ],
    );
    // A release not named landlord: every object is <release>-landlord, in the release namespace.
    let deployment = find(&objects, "Deployment", "shop-landlord");
    assert_eq!(namespace_of(deployment), "ops");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example.com/landlord:v9.9.9");
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(pod["serviceAccountName"], "shop-landlord");
    assert_eq!(container["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(container["resources"]["requests"]["memory"], "64Mi");
    let env = env_of(&objects, "shop-landlord");
    assert_eq!(env["LANDLORD_ENVIRONMENT"]["value"], "production");
    assert_eq!(env["RUST_LOG"]["value"], "debug");
    assert_eq!(env["LANDLORD_CONCURRENCY"]["value"], "8");
    assert_eq!(env["LANDLORD_DEFAULT_SERVER_CORDONED"]["value"], "true");
    let admin = &env["LANDLORD_ADMIN_DATABASE_URL"]["valueFrom"]["secretKeyRef"];
    assert_eq!(
        (&admin["name"], &admin["key"]),
        (&"pg-urls".into(), &"admin".into())
    );
    let landlord = &env["LANDLORD_DATABASE_URL"]["valueFrom"]["secretKeyRef"];
    assert_eq!(
        (&landlord["name"], &landlord["key"]),
        (&"pg-urls".into(), &"landlord".into())
    );
    assert!(!env.contains_key("LANDLORD_WATCH_NAMESPACE"));
    assert_eq!(
        find(&objects, "PodDisruptionBudget", "shop-landlord")["spec"]["minAvailable"],
        2
    );
    assert_eq!(
        find(&objects, "Service", "shop-landlord-metrics")["spec"]["ports"][0]["port"],
        9090
    );
    let binding = find(&objects, "ClusterRoleBinding", "shop-landlord");
    assert_eq!(binding["roleRef"]["name"], "shop-landlord");
    assert_eq!(binding["subjects"][0]["name"], "shop-landlord");
    assert_eq!(binding["subjects"][0]["namespace"], "ops");
    for role in [
        "shop-landlord-leader-election",
        "shop-landlord-admin-secrets",
    ] {
        let binding = find(&objects, "RoleBinding", role);
        assert_eq!(namespace_of(binding), "ops");
        assert_eq!(binding["roleRef"]["name"], role);
        assert_eq!(binding["subjects"][0]["namespace"], "ops");
        assert_eq!(namespace_of(find(&objects, "Role", role)), "ops");
    }

    // Defaults: no environment, no watched namespace, the default server open to new tenants.
    let defaults = env_of(&helm_template("landlord", NAMESPACE, &[]), "landlord");
    assert!(!defaults.contains_key("LANDLORD_ENVIRONMENT"));
    assert!(!defaults.contains_key("LANDLORD_WATCH_NAMESPACE"));
    assert!(!defaults.contains_key("LANDLORD_DEFAULT_SERVER_CORDONED"));

    // Optional objects go away when disabled.
    let bare = helm_template(
        "landlord",
        NAMESPACE,
        &[
            "podDisruptionBudget.enabled=false",
            "metrics.service.enabled=false",
        ],
    );
    assert!(
        !bare
            .iter()
            .any(|o| matches!(kind(o), "PodDisruptionBudget" | "Service"))
    );
}

#[test]
fn values_outside_the_schema_are_refused() {
    // values.schema.json: LANDLORD_ENVIRONMENT knows `production` only, and a misspelt key is an error, not a no-op.
    for (set, complaint) in [
        ("environment=staging", "/environment"),
        ("replicas=3", "'replicas' not allowed"),
        ("metrics.serviceMonitor.enable=true", "'enable' not allowed"),
        ("extraEnv.KUBECONFIG=/tmp/k", "KUBECONFIG"),
        ("defaultServerCordoned=yes", "/defaultServerCordoned"),
    ] {
        let err = try_helm_template("landlord", NAMESPACE, &[set])
            .expect_err(&format!("{set} must not render"));
        assert!(err.contains(complaint), "{set}: {err}");
    }
}

#[test]
fn monitoring_objects_are_off_by_default_and_match_deploy_monitoring_when_on() {
    let monitoring_kinds = ["ServiceMonitor", "PrometheusRule", "ConfigMap"];
    assert!(
        !helm_template("landlord", NAMESPACE, &[])
            .iter()
            .any(|o| monitoring_kinds.contains(&kind(o)))
    );

    let objects = helm_template(
        "landlord",
        NAMESPACE,
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.serviceMonitor.labels.release=kube-prometheus",
            "metrics.prometheusRule.enabled=true",
            "metrics.dashboard.enabled=true",
        ],
    );
    // The ServiceMonitor selects the metrics Service, by its port's name.
    let monitor = find(&objects, "ServiceMonitor", "landlord");
    assert_eq!(monitor["metadata"]["labels"]["release"], "kube-prometheus");
    let service = find(&objects, "Service", "landlord-metrics");
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(&service["metadata"]["labels"][key], value, "selector {key}");
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");

    // The rules and the dashboard are deploy/monitoring's.
    let deployed = kustomize("deploy/monitoring");
    let rule = find(&objects, "PrometheusRule", "landlord");
    assert_eq!(
        rule["spec"],
        find(&deployed, "PrometheusRule", "landlord")["spec"]
    );
    assert!(
        !rule["spec"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let dashboard = find(&objects, "ConfigMap", "landlord-dashboard");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let deployed_dashboard = find(&deployed, "ConfigMap", "landlord-dashboard");
    assert_eq!(
        deployed_dashboard["metadata"]["labels"]["grafana_dashboard"],
        "1"
    );
    let parse = |cm: &Value| -> Value {
        serde_json::from_str(cm["data"]["landlord.json"].as_str().expect("landlord.json"))
            .expect("dashboard JSON")
    };
    assert_eq!(parse(dashboard), parse(deployed_dashboard));
    assert_eq!(parse(dashboard)["uid"], "landlord");
}
