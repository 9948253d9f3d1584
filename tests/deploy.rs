//! `deploy/`: what `kubectl apply -k deploy/` (and `-k deploy/samples/`, `-k deploy/samples/base/`) would install, rendered with
//! `kubectl kustomize` and checked object by object: kinds and namespaces, every RBAC rule, the hardened and
//! probed Deployment, the metrics Service, CRDs identical to `crds/`, and the objects' fields accepted by a
//! real kube-apiserver (server-side dry run with strict field validation).

mod helm;
mod support;

use std::collections::{BTreeMap, BTreeSet};

use helm::{documents, kustomize as render};
use serde_json::{Value, json};
use support::kube::{client, kubectl_with_input, namespace};
use support::repo_root;

const NAMESPACE: &str = "landlord-system";
const SAMPLES: &str = "landlord-samples";

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// The one object of `kind` named `name`.
fn find<'a>(objects: &'a [Value], kind_: &str, name_: &str) -> &'a Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| kind(o) == kind_ && name(o) == name_)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind_} {name_}");
    found[0]
}

/// The one object of `kind_` among `objects`; `what` says what the samples should hold.
fn the_one<'a>(objects: &'a [Value], kind_: &str, what: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| kind(o) == kind_).collect();
    assert_eq!(found.len(), 1, "{what}");
    found[0]
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A rule as (apiGroups, resources, resourceNames, verbs), each sorted: order in the YAML does not matter.
type Rule = (Vec<String>, Vec<String>, Vec<String>, BTreeSet<String>);

fn rules(role: &Value) -> BTreeSet<Rule> {
    let sorted = |v: &Value| {
        let mut items: Vec<String> = strings(v).into_iter().map(String::from).collect();
        items.sort();
        items
    };
    role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            let keys: BTreeSet<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
            assert!(
                keys.is_subset(&BTreeSet::from([
                    "apiGroups",
                    "resources",
                    "resourceNames",
                    "verbs"
                ])),
                "unexpected rule fields (nonResourceURLs?): {r}"
            );
            (
                sorted(&r["apiGroups"]),
                sorted(&r["resources"]),
                sorted(&r["resourceNames"]),
                strings(&r["verbs"]).into_iter().map(String::from).collect(),
            )
        })
        .collect()
}

fn rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> Rule {
    let sorted = |items: &[&str]| {
        let mut items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        items.sort();
        items
    };
    (
        sorted(groups),
        sorted(resources),
        sorted(names),
        verbs.iter().map(|s| s.to_string()).collect(),
    )
}

#[test]
fn deploy_renders_every_object_in_its_namespace() {
    let objects = render("deploy/");
    let got: BTreeSet<(String, String)> = objects
        .iter()
        .map(|o| (kind(o).to_string(), name(o).to_string()))
        .collect();
    let want: BTreeSet<(String, String)> = [
        ("Namespace", NAMESPACE),
        ("CustomResourceDefinition", "tenants.tenancy.landlord.dev"),
        (
            "CustomResourceDefinition",
            "moduleinstallations.tenancy.landlord.dev",
        ),
        (
            "CustomResourceDefinition",
            "modulerollouts.tenancy.landlord.dev",
        ),
        (
            "CustomResourceDefinition",
            "databaseservers.tenancy.landlord.dev",
        ),
        ("ServiceAccount", "landlord"),
        ("ClusterRole", "landlord"),
        ("ClusterRoleBinding", "landlord"),
        ("Role", "landlord-leader-election"),
        ("RoleBinding", "landlord-leader-election"),
        ("Role", "landlord-admin-secrets"),
        ("RoleBinding", "landlord-admin-secrets"),
        ("Deployment", "landlord"),
        ("PodDisruptionBudget", "landlord"),
        ("Service", "landlord-metrics"),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(got, want, "rendered objects");
    assert_eq!(objects.len(), want.len(), "no object rendered twice");

    let cluster_scoped = [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
    ];
    for object in &objects {
        let ns = object["metadata"]["namespace"].as_str();
        if cluster_scoped.contains(&kind(object)) {
            assert_eq!(
                ns,
                None,
                "{} {} is cluster-scoped",
                kind(object),
                name(object)
            );
        } else {
            assert_eq!(
                ns,
                Some(NAMESPACE),
                "{} {} namespace",
                kind(object),
                name(object)
            );
        }
    }
    // The database Secret is the user's to create: an example ships, a real one never renders.
    assert!(!objects.iter().any(|o| kind(o) == "Secret"));
    let example = std::fs::read_to_string(repo_root().join("deploy/secret.example.yaml")).unwrap();
    assert!(
        example
            .lines()
            .all(|l| l.trim().is_empty() || l.starts_with('#')),
        "deploy/secret.example.yaml must stay a comment (not an applyable Secret)"
    );
}

#[test]
fn cluster_role_grants_exactly_what_the_operator_uses() {
    let objects = render("deploy/");
    let group = "tenancy.landlord.dev";
    let want = BTreeSet::from([
        rule(
            &[group],
            &["tenants", "modulerollouts"],
            &[],
            &["get", "list", "watch", "patch", "update"],
        ),
        // A ModuleRollout creates and deletes the installations it owns.
        rule(
            &[group],
            &["moduleinstallations"],
            &[],
            &[
                "get", "list", "watch", "create", "patch", "update", "delete",
            ],
        ),
        rule(
            &[group],
            &[
                "tenants/status",
                "moduleinstallations/status",
                "modulerollouts/status",
            ],
            &[],
            &["get", "patch", "update"],
        ),
        rule(
            &[group],
            &[
                "tenants/finalizers",
                "moduleinstallations/finalizers",
                "modulerollouts/finalizers",
            ],
            &[],
            &["update"],
        ),
        rule(
            &[""],
            &["secrets"],
            &[],
            &[
                "get", "list", "watch", "create", "patch", "update", "delete",
            ],
        ),
        rule(&["events.k8s.io"], &["events"], &[], &["create", "patch"]),
        rule(
            &["apiextensions.k8s.io"],
            &["customresourcedefinitions"],
            &[
                "tenants.tenancy.landlord.dev",
                "moduleinstallations.tenancy.landlord.dev",
                "modulerollouts.tenancy.landlord.dev",
                "databaseservers.tenancy.landlord.dev",
            ],
            &["get", "list", "watch"],
        ),
        // DatabaseServers are cluster-scoped: watched, finalizer and status written; never created or deleted.
        rule(
            &[group],
            &["databaseservers"],
            &[],
            &["get", "list", "watch", "patch", "update"],
        ),
        rule(
            &[group],
            &["databaseservers/status"],
            &[],
            &["get", "patch", "update"],
        ),
        rule(&[group], &["databaseservers/finalizers"], &[], &["update"]),
        // A Tenant's namespace labels, for a server's namespaceSelector: one GET by name.
        rule(&[""], &["namespaces"], &[], &["get"]),
    ]);
    assert_eq!(
        rules(find(&objects, "ClusterRole", "landlord")),
        want,
        "ClusterRole landlord"
    );

    let binding = find(&objects, "ClusterRoleBinding", "landlord");
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "landlord"})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "landlord", "namespace": NAMESPACE}])
    );
}

/// The RoleBinding `name` in the operator's namespace binds the Role of that name to the service account.
fn binds_its_role_to_the_operator(objects: &[Value], name_: &str) {
    let binding = find(objects, "RoleBinding", name_);
    assert_eq!(binding["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name_})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "landlord", "namespace": NAMESPACE}])
    );
}

#[test]
fn leases_and_admin_secrets_only_in_roles_of_the_operator_namespace() {
    let objects = render("deploy/");
    let role = find(&objects, "Role", "landlord-leader-election");
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        rules(role),
        BTreeSet::from([rule(
            &["coordination.k8s.io"],
            &["leases"],
            &[],
            &["get", "list", "watch", "create", "update", "patch"],
        )])
    );
    binds_its_role_to_the_operator(&objects, "landlord-leader-election");
    // The admin Secrets of DatabaseServers: read by name, never listed or watched, in this namespace only.
    let secrets = find(&objects, "Role", "landlord-admin-secrets");
    assert_eq!(secrets["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        rules(secrets),
        BTreeSet::from([rule(&[""], &["secrets"], &[], &["get"])])
    );
    binds_its_role_to_the_operator(&objects, "landlord-admin-secrets");
    // Exactly these two Roles and one ClusterRole, and nothing is bound to a role not shipped here.
    assert_eq!(objects.iter().filter(|o| kind(o) == "Role").count(), 2);
    assert_eq!(
        objects.iter().filter(|o| kind(o) == "ClusterRole").count(),
        1
    );
}

#[test]
fn no_wildcards_escalation_or_cluster_wide_leases_in_any_role() {
    let objects = render("deploy/");
    let roles: Vec<&Value> = objects
        .iter()
        .filter(|o| matches!(kind(o), "Role" | "ClusterRole"))
        .collect();
    assert!(!roles.is_empty());
    for role in roles {
        let cluster = kind(role) == "ClusterRole";
        for rule in role["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "resourceNames", "verbs"] {
                assert!(
                    !strings(&rule[field]).iter().any(|s| s.contains('*')),
                    "{} {}: `*` in {field}: {rule}",
                    kind(role),
                    name(role)
                );
            }
            assert!(rule.get("nonResourceURLs").is_none(), "{rule}");
            let verbs = strings(&rule["verbs"]);
            for forbidden in ["escalate", "bind", "impersonate", "deletecollection"] {
                assert!(!verbs.contains(&forbidden), "{forbidden} in {rule}");
            }
            let resources = strings(&rule["resources"]);
            if cluster {
                assert!(
                    !resources.iter().any(|r| r.starts_with("leases")),
                    "leases belong in the namespaced Role, not the ClusterRole: {rule}"
                );
                for r in &resources {
                    assert!(
                        [
                            "tenants",
                            "moduleinstallations",
                            "modulerollouts",
                            "tenants/status",
                            "moduleinstallations/status",
                            "modulerollouts/status",
                            "tenants/finalizers",
                            "moduleinstallations/finalizers",
                            "modulerollouts/finalizers",
                            "databaseservers",
                            "databaseservers/status",
                            "databaseservers/finalizers",
                            "secrets",
                            "namespaces",
                            "events",
                            "customresourcedefinitions",
                        ]
                        .contains(r),
                        "unexpected resource {r} in the ClusterRole"
                    );
                }
            } else {
                assert!(
                    resources == ["leases"] || (resources == ["secrets"] && verbs == ["get"]),
                    "the Roles are for leader election and reading admin Secrets only: {rule}"
                );
            }
            // Tenants, ModuleRollouts and DatabaseServers are the user's to create and delete; the operator
            // creates and deletes only the installations a rollout owns.
            if strings(&rule["apiGroups"]).contains(&"tenancy.landlord.dev") {
                for verb in ["create", "delete"] {
                    if verbs.contains(&verb) {
                        assert_eq!(resources, ["moduleinstallations"], "{verb} in {rule}");
                    }
                }
            }
            // Tenant Secrets are written only with these verbs, admin Secrets and namespaces only read by name,
            // and nothing else in the core group is touched.
            if strings(&rule["apiGroups"]).contains(&"") {
                let verbs: BTreeSet<&str> = verbs.into_iter().collect();
                let allowed = match (cluster, resources.as_slice()) {
                    (true, ["secrets"]) => BTreeSet::from([
                        "get", "list", "watch", "create", "patch", "update", "delete",
                    ]),
                    (false, ["secrets"]) | (true, ["namespaces"]) => BTreeSet::from(["get"]),
                    _ => panic!("unexpected core resources in {rule}"),
                };
                assert_eq!(verbs, allowed, "{rule}");
            }
        }
    }
}

fn env_map(container: &Value) -> BTreeMap<String, Value> {
    container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

#[test]
fn deployment_is_highly_available_hardened_and_probed() {
    let objects = render("deploy/");
    let deployment = find(&objects, "Deployment", "landlord");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2, "two replicas share the leader Lease");
    let pod_labels = &spec["template"]["metadata"]["labels"];
    for (key, value) in spec["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&pod_labels[key], value, "selector label {key} on the pods");
    }
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "landlord");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert!(pod["securityContext"]["runAsUser"].as_u64().unwrap() > 0);

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(
        c["image"], "landlord:dev",
        "the default tag, set by images:"
    );
    assert_eq!(c["args"], json!(["run"]));
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(sc["capabilities"].get("add").is_none());
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");

    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "http"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "http"})
    );
    for kind_ in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][kind_][resource].is_string(),
                "resources.{kind_}.{resource}"
            );
        }
    }

    let env = env_map(c);
    let secret_ref = |name: &str| env[name]["valueFrom"]["secretKeyRef"].clone();
    assert_eq!(
        secret_ref("LANDLORD_ADMIN_DATABASE_URL"),
        json!({"name": "landlord-database", "key": "admin-url"})
    );
    assert_eq!(
        secret_ref("LANDLORD_DATABASE_URL"),
        json!({"name": "landlord-database", "key": "landlord-url"})
    );
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(env["LANDLORD_LOG_FORMAT"]["value"], "json");
    assert_eq!(env["LANDLORD_HTTP_ADDR"]["value"], "0.0.0.0:8080");
    // No password in the manifests: URLs only ever come from the Secret.
    for (name, var) in &env {
        let value = var["value"].as_str().unwrap_or_default();
        assert!(!value.contains("postgres://"), "{name} holds a URL inline");
    }

    let pdb = find(&objects, "PodDisruptionBudget", "landlord");
    assert_eq!(pdb["spec"]["selector"], spec["selector"]);
}

#[test]
fn metrics_service_selects_the_operator_pods() {
    let objects = render("deploy/");
    let service = find(&objects, "Service", "landlord-metrics");
    let annotations = &service["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "8080");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(
        service["spec"]["ports"],
        json!([{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}])
    );
    let pod_labels =
        &find(&objects, "Deployment", "landlord")["spec"]["template"]["metadata"]["labels"];
    let selector = service["spec"]["selector"].as_object().unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(&pod_labels[key], value, "Service selector {key}");
    }
}

#[test]
fn image_is_overridable_with_kustomize_images() {
    // kustomize takes bases by relative path only: an overlay two levels below the repository.
    let target = repo_root().join("target");
    std::fs::create_dir_all(&target).unwrap();
    let dir = tempfile::Builder::new()
        .prefix("deploy-overlay-")
        .tempdir_in(&target)
        .unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../deploy\nimages:\n  - name: landlord\n    newName: registry.example.com/landlord\n    newTag: v9.9.9\n",
    )
    .unwrap();
    let objects = render(dir.path().to_str().unwrap());
    let deployment = find(&objects, "Deployment", "landlord");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.com/landlord:v9.9.9"
    );
}

/// kustomize writes `minimum: 0.0` as `0`: the same number to the apiserver, so compare numbers by value.
fn numbers_as_floats(value: Value) -> Value {
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

#[test]
fn crds_in_the_render_equal_the_crds_directory() {
    let rendered: BTreeMap<String, Value> = render("deploy/")
        .into_iter()
        .filter(|o| kind(o) == "CustomResourceDefinition")
        .map(|o| (name(&o).to_string(), o))
        .collect();
    let committed: BTreeMap<String, Value> =
        documents(&std::fs::read_to_string(repo_root().join("crds/landlord.yaml")).unwrap())
            .into_iter()
            .map(|o| (name(&o).to_string(), o))
            .collect();
    assert_eq!(committed.len(), 4);
    assert!(
        numbers_as_floats(json!(rendered)) == numbers_as_floats(json!(committed)),
        "deploy/ must install crds/landlord.yaml unchanged (no labels or patches on the CRDs)"
    );
}

/// A module's manifest in the catalog the image ships (`modules/<module>/module.yaml`).
fn catalog_module(module: &str) -> Value {
    let path = repo_root().join("modules").join(module).join("module.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{module} is not in modules/ ({}: {e})", path.display()));
    serde_yaml::from_str(&text).expect("module.yaml")
}

/// Whether a Tenant's labels satisfy a selector of `matchLabels` only (what the samples use).
fn selects(selector: &Value, tenant: &Value) -> bool {
    let keys: BTreeSet<&str> = selector
        .as_object()
        .expect("tenantSelector")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["matchLabels"]),
        "sample selectors use matchLabels only"
    );
    selector["matchLabels"]
        .as_object()
        .unwrap()
        .iter()
        .all(|(key, value)| &tenant["metadata"]["labels"][key] == value)
}

#[test]
fn samples_render_two_tenants_their_modules_and_a_rollout() {
    let objects = render("deploy/samples/");
    find(&objects, "Namespace", SAMPLES);
    let tenants: BTreeMap<&str, &Value> = objects
        .iter()
        .filter(|o| kind(o) == "Tenant")
        .map(|o| (name(o), o))
        .collect();
    assert_eq!(tenants.len(), 2, "two sample Tenants");
    let installations: Vec<&Value> = objects
        .iter()
        .filter(|o| kind(o) == "ModuleInstallation")
        .collect();
    let modules: BTreeSet<&str> = installations
        .iter()
        .filter_map(|mi| mi["spec"]["module"].as_str())
        .collect();
    assert_eq!(
        modules,
        BTreeSet::from(["tasks", "expenses", "digital_card"]),
        "every sample module"
    );
    for object in &objects {
        if kind(object) == "Namespace" {
            continue;
        }
        assert_eq!(object["apiVersion"], "tenancy.landlord.dev/v1alpha1");
        // A DatabaseServer is cluster-scoped; everything else lives in the samples' namespace.
        let namespace = if kind(object) == "DatabaseServer" {
            Value::Null
        } else {
            json!(SAMPLES)
        };
        assert_eq!(
            object["metadata"]["namespace"],
            namespace,
            "{} {}",
            kind(object),
            name(object)
        );
    }
    // (tenant, module, installation name) for every installation that will exist: the ones listed, then the
    // ones the rollout creates.
    let mut installed: Vec<(String, String, String)> = installations
        .iter()
        .map(|mi| {
            let tenant = mi["spec"]["tenant"].as_str().unwrap();
            assert!(tenants.contains_key(tenant), "{} names {tenant}", name(mi));
            (
                tenant.to_string(),
                mi["spec"]["module"].as_str().unwrap().to_string(),
                name(mi).to_string(),
            )
        })
        .collect();

    // The rollout selects sample Tenants and conflicts with no installation it does not own: a conflict would
    // be left alone (status.conflicts), which is not what a sample should show.
    let rollout = the_one(&objects, "ModuleRollout", "one sample ModuleRollout");
    let module = rollout["spec"]["module"].as_str().expect("spec.module");
    let selected: Vec<&str> = tenants
        .iter()
        .filter(|(_, tenant)| selects(&rollout["spec"]["tenantSelector"], tenant))
        .map(|(tenant, _)| *tenant)
        .collect();
    assert!(
        !selected.is_empty(),
        "ModuleRollout {} selects no sample Tenant",
        name(rollout)
    );
    for tenant in selected {
        let planned = format!("{tenant}-{}", module.replace('_', "-"));
        for (t, m, n) in &installed {
            assert!(
                !(t == tenant && m == module) && *n != planned,
                "ModuleRollout {} conflicts with installation {n} ({m} for {t})",
                name(rollout)
            );
        }
        installed.push((tenant.to_string(), module.to_string(), planned));
    }

    // Every module is in the catalog the image ships, at a release it has, with its dependencies installed
    // for the same tenant: nothing in the samples waits forever.
    let versioned = installations.iter().chain([&rollout]);
    for object in versioned {
        let module = object["spec"]["module"].as_str().unwrap();
        let manifest = catalog_module(module);
        if let Some(version) = object["spec"]["version"].as_str() {
            let releases: Vec<&str> = manifest["releases"]
                .as_array()
                .expect("releases")
                .iter()
                .filter_map(|r| r["version"].as_str())
                .collect();
            assert!(
                releases.contains(&version),
                "{} {}: {module} has no release {version} ({releases:?})",
                kind(object),
                name(object)
            );
        }
    }
    for (tenant, module, name_) in &installed {
        let manifest = catalog_module(module);
        for dependency in manifest["dependsOn"].as_array().into_iter().flatten() {
            let dependency = dependency["module"].as_str().expect("dependsOn[].module");
            assert!(
                installed
                    .iter()
                    .any(|(t, m, _)| t == tenant && m == dependency),
                "{name_}: {module} needs {dependency} for {tenant}"
            );
        }
    }
}

/// `deploy/samples` puts one Tenant on the sample DatabaseServer (whose admin Secret `scripts/dev up` makes) and
/// leaves the other to placement; `deploy/samples/base`, for one PostgreSQL server, is the same without either.
#[test]
fn samples_spread_tenants_over_the_sample_server_and_base_keeps_one_server() {
    let objects = render("deploy/samples/");
    let server = the_one(&objects, "DatabaseServer", "one sample DatabaseServer");
    let placed: BTreeMap<&str, Option<&str>> = objects
        .iter()
        .filter(|o| kind(o) == "Tenant")
        .map(|t| (name(t), t["spec"]["server"].as_str()))
        .collect();
    assert_eq!(
        placed,
        BTreeMap::from([("acme", None), ("globex", Some(name(server)))]),
        "globex names the sample server, acme is placed by fewest tenants"
    );
    // scripts/lib.sh makes the admin Secret the server names, under its key, before it applies the samples.
    let secret = &server["spec"]["adminSecretRef"];
    assert!(
        secret.get("key").is_none_or(|key| key == "uri"),
        "the playground's Secret holds the key uri: {secret}"
    );
    let lib = std::fs::read_to_string(repo_root().join("scripts/lib.sh")).unwrap();
    let secret_name = secret["name"].as_str().expect("adminSecretRef.name");
    assert!(
        lib.contains(&format!("name: {secret_name}\n")),
        "scripts/lib.sh does not create the Secret {secret_name} the sample DatabaseServer names"
    );

    // The base: the same objects but the server, and no Tenant naming one.
    let without_server: Vec<Value> = objects
        .iter()
        .filter(|o| kind(o) != "DatabaseServer")
        .cloned()
        .map(|mut o| {
            if kind(&o) == "Tenant" {
                o["spec"].as_object_mut().unwrap().remove("server");
            }
            o
        })
        .collect();
    let identity = |o: &Value| (kind(o).to_string(), name(o).to_string());
    let by_identity = |objects: Vec<Value>| -> BTreeMap<(String, String), Value> {
        objects.into_iter().map(|o| (identity(&o), o)).collect()
    };
    assert_eq!(
        by_identity(render("deploy/samples/base/")),
        by_identity(without_server),
        "deploy/samples/base is deploy/samples without the DatabaseServer and spec.server"
    );
}

/// Moves the namespaced objects into `ns` and drops what a dry run cannot take there (the Namespace
/// itself; the CRDs, which `crds_in_the_render_equal_the_crds_directory` covers).
fn into_namespace(objects: Vec<Value>, ns: &str) -> String {
    let mut yaml = String::new();
    for mut object in objects {
        if matches!(kind(&object), "Namespace" | "CustomResourceDefinition") {
            continue;
        }
        if object["metadata"].get("namespace").is_some() {
            object["metadata"]["namespace"] = json!(ns);
        }
        yaml.push_str("---\n");
        yaml.push_str(&serde_yaml::to_string(&object).unwrap());
    }
    yaml
}

/// `kubectl apply --dry-run=server --validate=strict`: the apiserver's schema (built-in kinds and the CRDs)
/// accepts every field; a misspelt field (`readOnlyRootFileSystem`) fails here instead of being dropped.
fn dry_run(yaml: &str) {
    let (ok, out, err) = kubectl_with_input(
        &["apply", "--dry-run=server", "--validate=strict", "-f", "-"],
        yaml,
    );
    assert!(
        ok,
        "server-side dry run rejected the manifests: {err}\n{out}"
    );
}

#[tokio::test]
async fn deploy_and_samples_pass_the_apiserver_schema() {
    let client = client().await;
    let ns = namespace(&client, "deploy-dry-run").await;
    dry_run(&into_namespace(render("deploy/"), &ns));
    dry_run(&into_namespace(render("deploy/samples/"), &ns));
    dry_run(&into_namespace(render("deploy/samples/base/"), &ns));
}
