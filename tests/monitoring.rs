//! The dashboard and alert rules of `deploy/monitoring` (the chart ships the same files) look only at what the
//! operator exports: every metric name and label in their PromQL is held against `/metrics` of a real
//! `landlord run` that has done some work (a Tenant, an installation, a failing one, a rollout and a cordoned
//! DatabaseServer with a capacity on the second PostgreSQL server), so renaming a
//! metric or a label without the dashboards fails here. Labels in legends and alert annotations must come out
//! of their expression; every exported metric has a panel.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use landlord::crd::{DatabaseServer, ModuleInstallation, ModuleRollout, Tenant};
use serde_json::{Value, json};
use support::kube::{acme_yaml, apply_yaml, client, namespace, wait_gone, wait_ready, wait_until};
use support::operator::{Operator, SERVER_OWNER_LABEL, http_get};
use support::{TestEnv, repo_root, unique, unique_slug};

/// Labels Prometheus adds from the scrape target (ServiceMonitor / pod discovery), not the operator.
const TARGET_LABELS: [&str; 5] = ["namespace", "pod", "service", "job", "instance"];

// ------------------------------------------------------------------------------------------ PromQL, lexed

#[derive(Debug, PartialEq)]
enum Token {
    Ident(String),
    Open(char),
    Close(char),
    Str,
    Other,
}

/// A lexer for the PromQL these files use: identifiers, brackets and strings; ranges `[...]` are skipped whole.
fn lex(expr: &str) -> Vec<Token> {
    let chars: Vec<char> = expr.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
            continue;
        }
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                tokens.push(Token::Str);
            }
            '[' => {
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
            }
            '(' | '{' => tokens.push(Token::Open(c)),
            ')' | '}' => tokens.push(Token::Close(c)),
            c if c.is_ascii_digit() || c == '.' => {
                // Numbers (and a duration's unit or an exponent) are not names.
                while i + 1 < chars.len() && (chars[i + 1].is_alphanumeric() || chars[i + 1] == '.')
                {
                    i += 1;
                }
                tokens.push(Token::Other);
            }
            c if c.is_whitespace() => {}
            _ => tokens.push(Token::Other),
        }
        i += 1;
    }
    tokens
}

const KEYWORDS: [&str; 7] = ["and", "or", "unless", "bool", "offset", "inf", "nan"];
const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// What one expression refers to: each metric with the labels its matchers name, and the grouping labels.
#[derive(Debug, Default)]
struct Refs {
    metrics: BTreeMap<String, BTreeSet<String>>,
    grouping: BTreeSet<String>,
}

fn refs(expr: &str) -> Refs {
    let tokens = lex(expr);
    let mut refs = Refs::default();
    let mut i = 0;
    while i < tokens.len() {
        if let Token::Ident(word) = &tokens[i] {
            let next = tokens.get(i + 1);
            if GROUPING.contains(&word.as_str()) {
                // `by (a, b)`: label names up to the closing parenthesis.
                if next == Some(&Token::Open('(')) {
                    i += 2;
                    while i < tokens.len() && tokens[i] != Token::Close(')') {
                        if let Token::Ident(label) = &tokens[i] {
                            refs.grouping.insert(label.clone());
                        }
                        i += 1;
                    }
                }
            } else if next == Some(&Token::Open('('))
                || matches!(next, Some(Token::Ident(w)) if GROUPING.contains(&w.as_str()))
                || KEYWORDS.contains(&word.as_str())
            {
                // A function or an aggregation (`sum by (…)` too), or an operator keyword.
            } else {
                let labels = refs.metrics.entry(word.clone()).or_default();
                if next == Some(&Token::Open('{')) {
                    // `{a="x", b!~"y"}`: the names before each operator.
                    i += 2;
                    while i < tokens.len() && tokens[i] != Token::Close('}') {
                        if let Token::Ident(label) = &tokens[i] {
                            labels.insert(label.clone());
                        }
                        i += 1;
                    }
                }
            }
        }
        i += 1;
    }
    refs
}

/// Names in `{{ $labels.x }}` (alert templates) or `{{x}}` (Grafana legends).
fn template_labels(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut labels = BTreeSet::new();
    for part in text.split("{{").skip(1) {
        let inner = part.split("}}").next().unwrap_or_default().trim();
        if let Some(name) = inner.strip_prefix(prefix) {
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                labels.insert(name);
            }
        }
    }
    labels
}

#[test]
fn the_lexer_finds_metrics_matchers_and_grouping() {
    let found = refs(
        r#"histogram_quantile(0.99, sum by (controller, le) (rate(x_bucket{reason!~"A|B", scope="t"}[5m])))
           > 30 and on (pod) max without (rollout) (y) or absent(z) unless sum(w) by (state)"#,
    );
    let metrics: Vec<&str> = found.metrics.keys().map(String::as_str).collect();
    assert_eq!(metrics, ["w", "x_bucket", "y", "z"]);
    assert_eq!(
        found.metrics["x_bucket"],
        BTreeSet::from(["reason".to_string(), "scope".to_string()])
    );
    assert_eq!(
        found.grouping,
        ["controller", "le", "pod", "rollout", "state"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    assert_eq!(
        template_labels(
            "{{ $labels.controller }} {{ $value }} {{$labels.reason}}",
            "$labels."
        ),
        BTreeSet::from(["controller".to_string(), "reason".to_string()])
    );
    assert_eq!(
        template_labels("p99 {{controller}} {{ state }}", ""),
        BTreeSet::from(["controller".to_string(), "state".to_string()])
    );
}

// ---------------------------------------------------------------------------------- the files' PromQL

/// One PromQL expression and the labels its text (legend, annotations) prints.
struct Query {
    source: String,
    expr: String,
    printed: BTreeSet<String>,
}

fn rule_queries() -> Vec<Query> {
    let text = std::fs::read_to_string(repo_root().join("deploy/monitoring/prometheusrule.yaml"))
        .expect("read deploy/monitoring/prometheusrule.yaml");
    let rule: Value = serde_yaml::from_str(&text).expect("PrometheusRule YAML");
    let mut queries = Vec::new();
    for group in rule["spec"]["groups"].as_array().expect("groups") {
        for r in group["rules"].as_array().expect("rules") {
            let name = r["alert"]
                .as_str()
                .or(r["record"].as_str())
                .expect("alert name");
            let mut printed = BTreeSet::new();
            for text in r["annotations"].as_object().into_iter().flatten() {
                printed.extend(template_labels(
                    text.1.as_str().unwrap_or_default(),
                    "$labels.",
                ));
            }
            queries.push(Query {
                source: format!("alert {name}"),
                expr: r["expr"].as_str().expect("expr").to_string(),
                printed,
            });
        }
    }
    queries
}

fn dashboard() -> Value {
    let text =
        std::fs::read_to_string(repo_root().join("deploy/monitoring/landlord-dashboard.json"))
            .expect("read deploy/monitoring/landlord-dashboard.json");
    serde_json::from_str(&text).expect("dashboard JSON")
}

/// Every object with an `expr`, wherever it is (panels, rows, templating).
fn dashboard_queries(value: &Value, title: &str, out: &mut Vec<Query>) {
    match value {
        Value::Object(map) => {
            let title = map.get("title").and_then(Value::as_str).unwrap_or(title);
            if let Some(expr) = map.get("expr").and_then(Value::as_str) {
                out.push(Query {
                    source: format!("panel {title:?}"),
                    expr: expr.to_string(),
                    printed: template_labels(
                        map.get("legendFormat")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                        "",
                    ),
                });
            }
            for v in map.values() {
                dashboard_queries(v, title, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, title, out)),
        _ => {}
    }
}

// --------------------------------------------------------------------------------- what /metrics exports

/// A sample name the exposition's `# TYPE` lines promise: its family and the labels seen on its samples.
struct Sample {
    family: String,
    labels: BTreeSet<String>,
}

fn exported(text: &str) -> BTreeMap<String, Sample> {
    let mut samples: BTreeMap<String, Sample> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (family, type_) = (parts.next().unwrap(), parts.next().unwrap());
            let names: Vec<String> = match type_ {
                "counter" => vec![format!("{family}_total")],
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{family}{s}"))
                    .collect(),
                _ => vec![family.to_string()],
            };
            for name in names {
                samples.insert(
                    name,
                    Sample {
                        family: family.to_string(),
                        labels: BTreeSet::new(),
                    },
                );
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            if let Some(sample) = samples.get_mut(&line[..name_end])
                && let Some(inner) = line[name_end..]
                    .strip_prefix('{')
                    .and_then(|l| l.split('}').next())
            {
                for pair in inner.split(',').filter(|p| !p.is_empty()) {
                    sample
                        .labels
                        .insert(pair.split('=').next().unwrap().to_string());
                }
            }
        }
    }
    samples
}

/// A DatabaseServer on the second PostgreSQL server with a capacity, cordoned so that no tenant of this or any
/// other test lands on it, its admin Secret in `ns` (the operator's namespace: Operator::start's Lease namespace).
/// Cluster-scoped: its name is unique to the run.
async fn cordoned_server(admin: &kube::Client, ns: &str) -> String {
    let name = unique("mon");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("{name}-admin")},
        "stringData": {"uri": TestEnv::get().server2_admin_url()},
    }))
    .unwrap();
    Api::<Secret>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the admin Secret");
    let server: DatabaseServer = serde_json::from_value(json!({
        "apiVersion": "tenancy.landlord.dev/v1alpha1",
        "kind": "DatabaseServer",
        // Labelled for this test's operator alone (LANDLORD_SERVER_SELECTOR): no other test's takes it.
        "metadata": {"name": name, "labels": {SERVER_OWNER_LABEL: ns}},
        "spec": {"adminSecretRef": {"name": format!("{name}-admin")}, "maxTenants": 10, "cordoned": true},
    }))
    .unwrap();
    Api::<DatabaseServer>::all(admin.clone())
        .create(&PostParams::default(), &server)
        .await
        .expect("create the DatabaseServer");
    name
}

/// `/metrics` of a real operator that has reconciled every kind, failed once, run a rollout and looked at a
/// DatabaseServer.
async fn scrape_a_working_operator() -> String {
    let admin = client().await;
    let ns = namespace(&admin, "monitoring").await;
    let operator = Operator::start(&ns, &[]);
    let server = cordoned_server(&admin, &ns).await;
    let servers = Api::<DatabaseServer>::all(admin.clone());
    let slug = unique_slug("mon");
    apply_yaml(
        &ns,
        &format!(
            "{}---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: acme-tasks}}\nspec: {{tenant: acme, module: tasks}}\n\
             ---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: acme-missing}}\nspec: {{tenant: acme, module: no_such_module}}\n\
             ---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleRollout\nmetadata: {{name: everyone}}\nspec: {{module: tasks, tenantSelector: {{matchLabels: {{nobody: matches}}}}}}\n",
            acme_yaml(&slug)
        ),
    );
    wait_ready(&Api::<Tenant>::namespaced(admin.clone(), &ns), "acme").await;
    let installations = Api::<ModuleInstallation>::namespaced(admin.clone(), &ns);
    wait_ready(&installations, "acme-tasks").await;
    wait_until(&installations, "acme-missing", "a failed reconcile", |mi| {
        mi.status.is_some()
    })
    .await;
    wait_until(
        &Api::<ModuleRollout>::namespaced(admin.clone(), &ns),
        "everyone",
        "a reconciled rollout",
        |r| r.status.is_some(),
    )
    .await;
    wait_until(&servers, &server, "a Ready server", |s| {
        s.status.as_ref().is_some_and(|status| {
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await;
    let addr = operator.http_addr().await;
    let (status, body) = http_get(&addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    // Leave nothing behind in the shared PostgreSQL and cluster: deletionPolicy Delete drops the database; the
    // server, with no tenant, goes once the operator has lifted its finalizer.
    servers.delete(&server, &Default::default()).await.unwrap();
    let rollouts = Api::<ModuleRollout>::namespaced(admin.clone(), &ns);
    rollouts
        .delete("everyone", &Default::default())
        .await
        .unwrap();
    for name in ["acme-tasks", "acme-missing"] {
        installations
            .delete(name, &Default::default())
            .await
            .unwrap();
    }
    let tenants = Api::<Tenant>::namespaced(admin.clone(), &ns);
    tenants.delete("acme", &Default::default()).await.unwrap();
    for name in ["acme-tasks", "acme-missing"] {
        wait_gone(&installations, name).await;
    }
    wait_gone(&rollouts, "everyone").await;
    wait_gone(&tenants, "acme").await;
    wait_gone(&servers, &server).await;
    body
}

#[tokio::test]
async fn dashboards_and_alerts_use_only_what_the_operator_exports() {
    let mut queries = rule_queries();
    let mut panels = Vec::new();
    dashboard_queries(&dashboard(), "", &mut panels);
    assert!(queries.len() >= 5, "alert rules: {}", queries.len());
    assert!(panels.len() >= 5, "dashboard queries: {}", panels.len());
    let panel_metrics: BTreeSet<String> = panels
        .iter()
        .flat_map(|q| refs(&q.expr).metrics.into_keys())
        .collect();
    queries.extend(panels);

    let text = scrape_a_working_operator().await;
    let samples = exported(&text);
    assert!(
        samples.keys().any(|s| s.starts_with("landlord_")),
        "no landlord metric in /metrics:\n{text}"
    );

    let mut problems = Vec::new();
    for query in &queries {
        let found = refs(&query.expr);
        assert!(
            !found.metrics.is_empty(),
            "{}: no metric in {}",
            query.source,
            query.expr
        );
        let mut available: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
        for (metric, matchers) in &found.metrics {
            let Some(sample) = samples.get(metric) else {
                problems.push(format!("{}: {metric} is not exported", query.source));
                continue;
            };
            let mut labels = sample.labels.clone();
            if metric.ends_with("_bucket") {
                labels.insert("le".into());
            }
            if !matchers.is_empty() && labels.is_empty() {
                problems.push(format!(
                    "{}: {metric} had no sample in the scrape, its labels cannot be checked",
                    query.source
                ));
            }
            for label in matchers.difference(&labels) {
                problems.push(format!("{}: {metric} has no label {label}", query.source));
            }
            available.extend(labels);
        }
        for label in found.grouping.difference(&available) {
            problems.push(format!(
                "{}: groups by {label}, which none of its metrics has",
                query.source
            ));
        }
        for label in query.printed.difference(&available) {
            problems.push(format!(
                "{}: prints {label}, which none of its metrics has",
                query.source
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\n/metrics:\n{text}",
        problems.join("\n")
    );

    // Every metric the operator exports is on the dashboard.
    let exported_families: BTreeSet<&str> = samples.values().map(|s| s.family.as_str()).collect();
    let on_panels: BTreeSet<&str> = panel_metrics
        .iter()
        .filter_map(|m| samples.get(m))
        .map(|s| s.family.as_str())
        .collect();
    let missing: Vec<&&str> = exported_families.difference(&on_panels).collect();
    assert!(
        missing.is_empty(),
        "exported but on no dashboard panel: {missing:?}"
    );
}
