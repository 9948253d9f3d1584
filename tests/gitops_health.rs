//! Flux and Argo CD read every state of every kind right: the real `landlord run`, kube-apiserver and
//! PostgreSQL drive Tenants, ModuleInstallations and ModuleRollouts into each state of
//! `support::gitops::STATES` (where the expectations and their reasons are); the objects, read back from the
//! apiserver as the operator wrote them, go through the real client libraries (`landlord-health`, hack/gitops):
//! Flux's kstatus (`sigs.k8s.io/cli-utils` v0.37.2 `status.Compute`) and Argo CD v2.14's `util/lua` with the
//! health checks of `deploy/argocd/` loaded from argocd-cm by Argo CD's settings manager.
//!
//! The objects are also the fixtures of `tests/argocd_health.rs`: this test fails when the operator's
//! conditions drift from them; `LANDLORD_SAVE_FIXTURES=1` writes them anew.

mod support;

use kube::Api;
use landlord::crd::{ModuleInstallation, ModuleRollout, Tenant};
use serde_json::{Value, json};
use support::gitops::{self, MI, Reading, STATES, State, TN, expected_messages};
use support::kube::{apply_yaml, client, kubectl, kubectl_with_input, namespace, wait_condition};
use support::operator::Operator;
use support::{pg, repo_root, unique_slug};

fn tenant(name: &str, slug: &str, labels: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}, labels: {{{labels}}}}}\nspec: {{slug: {slug}, deletionPolicy: Delete{extra}}}\n"
    )
}

fn installation(name: &str, tenant: &str, module: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {{name: {name}}}\nspec: {{tenant: {tenant}, module: {module}{extra}}}\n"
    )
}

fn rollout(name: &str, module: &str, selector: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleRollout\nmetadata: {{name: {name}}}\nspec: {{module: {module}, tenantSelector: {{matchLabels: {{{selector}}}}}{extra}}}\n"
    )
}

/// Every Tenant, ModuleInstallation and ModuleRollout of `ns` as the apiserver serves them.
fn get_all(ns: &str) -> Value {
    let (ok, out, err) = kubectl(&[
        "get",
        "-n",
        ns,
        "tenants,moduleinstallations,modulerollouts",
        "-o",
        "json",
    ]);
    assert!(ok, "kubectl get failed: {err}");
    serde_json::from_str(&out).expect("kubectl's JSON")
}

fn object<'a>(list: &'a Value, kind: &str, name: &str) -> &'a Value {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the namespace"))
}

/// What a fixture must keep in step with the operator: deletion, generations and (type, status, reason) of
/// every condition. Names, messages and times differ from run to run.
fn shape(obj: &Value) -> Value {
    let conditions: Vec<Value> = obj["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| json!([c["type"], c["status"], c["reason"]]))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "deleting": obj["metadata"]["deletionTimestamp"].is_string(),
        "generation": obj["metadata"]["generation"],
        "observedGeneration": obj["status"]["observedGeneration"],
        "conditions": conditions,
    })
}

/// Reads the states of one phase with both clients and checks them; checks (or with LANDLORD_SAVE_FIXTURES=1
/// writes) their fixtures. Returns what was read wrong.
fn check(list: &Value, states: &[&State]) -> Vec<String> {
    let objects: Vec<Value> = states
        .iter()
        .map(|s| object(list, s.kind, s.name).clone())
        .collect();
    let readings: Vec<Reading> = gitops::read(&objects);
    assert_eq!(readings.len(), states.len());
    let save = std::env::var_os("LANDLORD_SAVE_FIXTURES").is_some();
    let mut wrong = Vec::new();
    for ((s, obj), r) in states.iter().zip(&objects).zip(&readings) {
        assert_eq!((r.kind.as_str(), r.name.as_str()), (s.kind, s.name));
        let argocd = r.argocd.as_ref().expect("Argo CD has a health check");
        let (kstatus_message, argocd_message) = expected_messages(obj, s);
        let got = (
            r.kstatus.status.as_str(),
            r.kstatus.message.as_str(),
            argocd.status.as_str(),
            argocd.message.as_str(),
        );
        let want = (
            s.kstatus,
            kstatus_message.as_str(),
            s.argocd,
            argocd_message.as_str(),
        );
        if got != want {
            wrong.push(format!(
                "{} {}: read {got:?}, want {want:?}",
                s.kind, s.name
            ));
        }
        let path = repo_root().join("tests/fixtures/argocd").join(s.fixture);
        let mut saved = obj.clone();
        if let Some(metadata) = saved["metadata"].as_object_mut() {
            metadata.remove("managedFields");
        }
        // A fixture is rewritten only when it is missing or drifted, so a save does not churn the others.
        let fixture: Option<Value> = std::fs::read_to_string(&path)
            .ok()
            .map(|text| serde_json::from_str(&text).expect("fixture JSON"));
        if fixture.as_ref().map(shape) == Some(shape(&saved)) {
            continue;
        }
        assert!(
            save,
            "{} is missing or drifted from what the operator writes for {} {}: save the fixtures anew with \
             LANDLORD_SAVE_FIXTURES=1 scripts/test --test gitops_health\nfixture: {}\nnow: {}",
            s.fixture,
            s.kind,
            s.name,
            fixture.as_ref().map(shape).unwrap_or_default(),
            shape(&saved)
        );
        let text = serde_json::to_string_pretty(&saved).expect("JSON") + "\n";
        std::fs::write(&path, text).expect("write the fixture");
    }
    wrong
}

fn patch(ns: &str, resource: &str, name: &str, patch: &str) {
    let (ok, _, err) = kubectl(&[
        "patch", "-n", ns, resource, name, "--type", "merge", "-p", patch,
    ]);
    assert!(ok, "kubectl patch {resource} {name}: {err}");
}

#[tokio::test]
async fn flux_and_argocd_read_every_state_of_every_kind() {
    let client = client().await;
    let ns = namespace(&client, "e2e-gitops").await;
    let mut operator = Operator::start(&ns, &[]);
    let p = unique_slug("gitops");
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    let rollouts: Api<ModuleRollout> = Api::namespaced(client.clone(), &ns);

    // The Secret `squat-db` exists before its Tenant, made by someone else.
    let (ok, _, err) = kubectl_with_input(
        &["create", "-n", &ns, "-f", "-"],
        "apiVersion: v1\nkind: Secret\nmetadata: {name: squat-db}\nstringData: {password: mine}\n",
    );
    assert!(ok, "{err}");
    apply_yaml(
        &ns,
        &[
            tenant("acme", &format!("{p}_acme"), "", ""),
            tenant("globex", &format!("{p}_globex"), "ring: one", ""),
            tenant("hold", &format!("{p}_hold"), "wave: slow", ", paused: true"),
            tenant("later", &format!("{p}_later"), "wave: slow", ""),
            tenant("broken", &format!("{p}_broken"), "ring: broken", ""),
            tenant("squat", &format!("{p}_squat"), "", ""),
            tenant("leaving", &format!("{p}_leaving"), "", ""),
            tenant(
                "homeless",
                &format!("{p}_homeless"),
                "",
                ", server: nowhere",
            ),
        ]
        .concat(),
    );
    for name in ["acme", "globex", "later", "broken", "leaving"] {
        wait_condition(&tenants, name, "Ready", "True", "Reconciled").await;
    }
    // Claimed second: acme holds the slug.
    apply_yaml(&ns, &tenant("copycat", &format!("{p}_acme"), "", ""));
    // A table of the module's name in broken's database: its installation of `tasks` fails.
    let mut su = pg::connect(&format!("tenant_{p}_broken")).await;
    sqlx::raw_sql("CREATE TABLE tasks (id int)")
        .execute(&mut su)
        .await
        .expect("create the table in the way");
    drop(su);
    apply_yaml(
        &ns,
        &[
            installation("acme-tasks", "acme", "tasks", ""),
            installation("leaving-tasks", "leaving", "tasks", ""),
            installation(
                "acme-digital-card",
                "acme",
                "digital_card",
                ", dryRun: true",
            ),
            installation("globex-expenses", "globex", "expenses", ""),
            installation("ghost-tasks", "ghost", "tasks", ""),
            installation("acme-payroll", "acme", "payroll", ""),
            installation("globex-tasks", "globex", "tasks", ", version: \"9.9.9\""),
            rollout("cards", "digital_card", "ring: one", ""),
            rollout(
                "slow",
                "tasks",
                "wave: slow",
                ", strategy: {maxParallel: 1}",
            ),
            rollout("frozen", "tasks", "ring: none", ", paused: true"),
            rollout("preview", "tasks", "ring: none", ", dryRun: true"),
            rollout(
                "halted",
                "tasks",
                "ring: broken",
                ", strategy: {maxFailures: 0}",
            ),
            rollout("unknown", "payroll", "ring: one", ""),
        ]
        .concat(),
    );

    // Deleted with an installation left: the Tenant waits for it.
    wait_condition(&installs, "leaving-tasks", "Ready", "True", "Reconciled").await;
    let (ok, _, err) = kubectl(&["delete", "-n", &ns, "tenant", "leaving", "--wait=false"]);
    assert!(ok, "{err}");

    let (seen, unseen): (Vec<&State>, Vec<&State>) =
        STATES.iter().partition(|s| s.reason.is_some());
    for s in &seen {
        let reason = s.reason.expect("seen");
        let status = if reason == "Reconciled" {
            "True"
        } else {
            "False"
        };
        match s.kind {
            TN => drop(wait_condition(&tenants, s.name, "Ready", status, reason).await),
            MI => drop(wait_condition(&installs, s.name, "Ready", status, reason).await),
            _ => drop(wait_condition(&rollouts, s.name, "Ready", status, reason).await),
        }
    }
    let list = get_all(&ns);
    let mut wrong = check(&list, &seen);
    // `slow` started nothing while `hold-tasks` waits.
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    assert!(!names.contains(&"later-tasks"), "{names:?}");

    // With the operator gone: spec edits it has not seen yet, and objects it has never seen.
    operator.stop();
    patch(
        &ns,
        "tenant",
        "acme",
        r#"{"spec":{"displayName":"Acme Corp"}}"#,
    );
    patch(
        &ns,
        "moduleinstallation",
        "acme-tasks",
        r#"{"spec":{"version":"1.0.0"}}"#,
    );
    patch(
        &ns,
        "modulerollout",
        "cards",
        r#"{"spec":{"strategy":{"maxParallel":3}}}"#,
    );
    apply_yaml(
        &ns,
        &[
            tenant("unseen", &format!("{p}_unseen"), "", ""),
            installation("unseen-tasks", "unseen", "tasks", ""),
            rollout("unseen", "tasks", "ring: unseen", ""),
        ]
        .concat(),
    );
    wrong.extend(check(&get_all(&ns), &unseen));
    assert!(wrong.is_empty(), "read wrong:\n{}", wrong.join("\n"));

    for name in ["acme", "globex", "later", "broken", "leaving"] {
        pg::drop_tenant(&format!("tenant_{p}_{name}")).await;
    }
}
