//! ModuleRollout end to end: the real `landlord run`, kube-apiserver and PostgreSQL, YAML as a platform engineer
//! writes it, and `kubectl get mro` as they read it.

mod support;

use std::time::{Duration, Instant};

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use landlord::crd::{ModuleInstallation, ModuleRollout, ROLLOUT_LABEL, Tenant};
use serde_json::json;
use support::kube::{
    apply_yaml, client, condition, kubectl, namespace, wait_condition, wait_gone, wait_ready,
    wait_until,
};
use support::operator::Operator;
use support::{pg, unique_slug};

/// Tenants `names` with their labels (`key=value,…`), slugs under `prefix`, deletionPolicy Delete.
fn tenants_yaml(prefix: &str, tenants: &[(&str, &str)]) -> String {
    tenants
        .iter()
        .map(|(name, labels)| {
            let labels: Vec<String> = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| format!("{k}: \"{v}\""))
                .collect();
            format!(
                "---\napiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}, labels: {{{}}}}}\nspec: {{slug: {prefix}_{name}, deletionPolicy: Delete}}\n",
                labels.join(", ")
            )
        })
        .collect()
}

fn rollout_yaml(strategy: &str, extra: &str) -> String {
    format!(
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleRollout\nmetadata: {{name: tasks-pro}}\nspec:\n  module: tasks\n  tenantSelector: {{matchLabels: {{plan: pro}}}}\n  uninstallPolicy: Rollback\n  strategy: {strategy}\n{extra}"
    )
}

async fn ours(installs: &Api<ModuleInstallation>) -> Vec<ModuleInstallation> {
    installs
        .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}=tasks-pro")))
        .await
        .unwrap()
        .items
}

fn is_ready(mi: &ModuleInstallation) -> bool {
    mi.status.as_ref().is_some_and(|s| {
        s.conditions.iter().any(|c| {
            c.type_ == "Ready"
                && c.status == "True"
                && c.observed_generation == mi.metadata.generation
        })
    })
}

async fn drop_tenants(prefix: &str, names: &[&str]) {
    for name in names {
        pg::drop_tenant(&format!("tenant_{prefix}_{name}")).await;
    }
}

#[tokio::test]
async fn canaries_first_then_a_few_at_a_time_onto_every_matching_tenant() {
    let client = client().await;
    let ns = namespace(&client, "e2e-rollout").await;
    let mut operator = Operator::start(&ns, &[]);
    let prefix = unique_slug("wave");
    let names = ["a", "b", "c", "d", "e", "free"];
    apply_yaml(
        &ns,
        &tenants_yaml(
            &prefix,
            &[
                ("a", "plan=pro"),
                ("b", "plan=pro"),
                ("c", "plan=pro,canary=yes"),
                ("d", "plan=pro"),
                ("e", "plan=pro"),
                ("free", "plan=free"),
            ],
        ),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    for name in names {
        wait_ready(&tenants, name).await;
    }
    apply_yaml(
        &ns,
        &rollout_yaml(
            "{maxParallel: 2, canary: {matchLabels: {canary: \"yes\"}}}",
            "",
        ),
    );

    // Watch it roll: the canary alone first, never more than two in flight.
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    let rollouts: Api<ModuleRollout> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut most_in_flight = 0;
    let mut restarted = false;
    loop {
        let current = ours(&installs).await;
        // Mid-rollout the operator restarts: the bound holds, counted from the cluster.
        if !restarted && current.len() >= 3 {
            operator.stop();
            operator = Operator::start(&ns, &[]);
            restarted = true;
        }
        let in_flight = current.iter().filter(|mi| !is_ready(mi)).count();
        most_in_flight = most_in_flight.max(in_flight);
        let canary_ready = current
            .iter()
            .any(|mi| mi.spec.tenant == "c" && is_ready(mi));
        if !canary_ready {
            let others: Vec<String> = current
                .iter()
                .filter(|mi| mi.spec.tenant != "c")
                .map(|mi| mi.name_any())
                .collect();
            assert!(
                others.is_empty(),
                "started before the canary was Ready: {others:?}"
            );
        }
        let rollout = rollouts.get("tasks-pro").await.unwrap();
        if condition(&rollout, "Ready") == Some(("True".into(), "Reconciled".into())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rollout never finished: {:?}",
            rollout.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(restarted, "the operator was restarted mid-rollout");
    assert!(most_in_flight >= 1, "something was seen in flight");
    assert!(
        most_in_flight <= 2,
        "{most_in_flight} installations were in flight at once"
    );

    let status = rollouts.get("tasks-pro").await.unwrap().status.unwrap();
    assert_eq!(
        (status.tenants, status.updated, status.ready, status.failed),
        (5, 5, 5, 0)
    );
    let mut installed: Vec<String> = ours(&installs)
        .await
        .iter()
        .map(|mi| mi.name_any())
        .collect();
    installed.sort();
    assert_eq!(
        installed,
        ["a-tasks", "b-tasks", "c-tasks", "d-tasks", "e-tasks"]
    );
    assert!(
        pg::tables(&format!("tenant_{prefix}_free"))
            .await
            .iter()
            .all(|t| t != "tasks")
    );
    let (ok, out, err) = kubectl(&["get", "mro", "-n", &ns]);
    assert!(ok, "{err}");
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..5], ["tasks-pro", "tasks", "5", "5", "0"], "{out}");

    // Deleting the rollout deletes its installations (Rollback: the tables go) and then the rollout.
    rollouts
        .delete("tasks-pro", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&rollouts, "tasks-pro").await;
    assert!(ours(&installs).await.is_empty());
    assert!(
        pg::tables(&format!("tenant_{prefix}_a"))
            .await
            .iter()
            .all(|t| t != "tasks")
    );
    drop_tenants(&prefix, &names).await;
}

#[tokio::test]
async fn a_failing_canary_halts_the_rollout_until_it_is_fixed() {
    let client = client().await;
    let ns = namespace(&client, "e2e-rollout-fail").await;
    let _operator = Operator::start(&ns, &[]);
    let prefix = unique_slug("halt");
    let names = ["a", "b", "c"];
    apply_yaml(
        &ns,
        &tenants_yaml(
            &prefix,
            &[
                ("a", "plan=pro,canary=yes"),
                ("b", "plan=pro"),
                ("c", "plan=pro"),
            ],
        ),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    for name in names {
        wait_ready(&tenants, name).await;
    }
    // The canary's database already has a table of the module's name: its migration fails.
    let canary_db = format!("tenant_{prefix}_a");
    let mut su = pg::connect(&canary_db).await;
    sqlx::raw_sql("CREATE TABLE tasks (id int)")
        .execute(&mut su)
        .await
        .unwrap();
    apply_yaml(
        &ns,
        &rollout_yaml(
            "{maxParallel: 1, maxFailures: 0, canary: {matchLabels: {canary: \"yes\"}}}",
            "",
        ),
    );
    let rollouts: Api<ModuleRollout> = Api::namespaced(client.clone(), &ns);
    let halted = wait_condition(
        &rollouts,
        "tasks-pro",
        "Ready",
        "False",
        "FailureBudgetExceeded",
    )
    .await;
    let status = halted.status.unwrap();
    assert_eq!(status.failed, 1);
    assert_eq!(status.failed_tenants[0].tenant, "a");
    assert_eq!(status.failed_tenants[0].reason, "MigrationFailed");
    assert!(
        status.failed_tenants[0].message.contains("already exists"),
        "{:?}",
        status.failed_tenants
    );
    // Nobody else started.
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    let started: Vec<String> = ours(&installs)
        .await
        .iter()
        .map(|mi| mi.spec.tenant.clone())
        .collect();
    assert_eq!(started, ["a"]);

    // Fixed in the database: the installation retries by itself and the rollout resumes, one at a time,
    // until b, in the middle, fails too: halted again, c not started.
    let mut middle = pg::connect(&format!("tenant_{prefix}_b")).await;
    sqlx::raw_sql("CREATE TABLE tasks (id int)")
        .execute(&mut middle)
        .await
        .unwrap();
    sqlx::raw_sql("DROP TABLE tasks")
        .execute(&mut su)
        .await
        .unwrap();
    let halted = wait_until(&rollouts, "tasks-pro", "halted on b", |r| {
        let failed: Vec<&str> = r
            .status
            .iter()
            .flat_map(|s| s.failed_tenants.iter().map(|f| f.tenant.as_str()))
            .collect();
        failed == ["b"]
            && condition(r, "Ready") == Some(("False".into(), "FailureBudgetExceeded".into()))
    })
    .await;
    assert_eq!(halted.status.unwrap().ready, 1, "the canary recovered");
    let mut started: Vec<String> = ours(&installs)
        .await
        .iter()
        .map(|mi| mi.spec.tenant.clone())
        .collect();
    started.sort();
    assert_eq!(started, ["a", "b"]);
    sqlx::raw_sql("DROP TABLE tasks")
        .execute(&mut middle)
        .await
        .unwrap();
    let done = wait_until(&rollouts, "tasks-pro", "finished after the fix", |r| {
        condition(r, "Ready") == Some(("True".into(), "Reconciled".into()))
    })
    .await;
    assert_eq!(done.status.unwrap().ready, 3);
    let rollouts_deleted = rollouts.delete("tasks-pro", &DeleteParams::default()).await;
    assert!(rollouts_deleted.is_ok());
    wait_gone(&rollouts, "tasks-pro").await;
    drop_tenants(&prefix, &names).await;
}

#[tokio::test]
async fn pause_conflicts_and_tenants_that_stop_matching() {
    let client = client().await;
    let ns = namespace(&client, "e2e-rollout-misc").await;
    let _operator = Operator::start(&ns, &[]);
    let prefix = unique_slug("misc");
    let names = ["a", "b", "c"];
    apply_yaml(
        &ns,
        &tenants_yaml(
            &prefix,
            &[("a", "plan=pro"), ("b", "plan=pro"), ("c", "plan=pro")],
        ),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    for name in names {
        wait_ready(&tenants, name).await;
    }
    // b already has tasks from an installation of its own: left alone, listed as a conflict.
    apply_yaml(
        &ns,
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\nmetadata: {name: b-own-tasks}\nspec: {tenant: b, module: tasks}\n",
    );
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_ready(&installs, "b-own-tasks").await;

    // Paused from the start: nothing is created, and it says so.
    apply_yaml(&ns, &rollout_yaml("{maxParallel: 5}", "  paused: true\n"));
    let rollouts: Api<ModuleRollout> = Api::namespaced(client.clone(), &ns);
    let paused = wait_condition(&rollouts, "tasks-pro", "Ready", "False", "Paused").await;
    assert_eq!(paused.status.unwrap().conflicts, ["b"]);
    assert!(ours(&installs).await.is_empty());

    apply_yaml(&ns, &rollout_yaml("{maxParallel: 5}", "  paused: false\n"));
    let done = wait_condition(&rollouts, "tasks-pro", "Ready", "True", "Reconciled").await;
    let status = done.status.unwrap();
    assert_eq!(
        (status.tenants, status.ready, status.conflicts.clone()),
        (3, 2, vec!["b".to_string()])
    );
    let own = installs.get("b-own-tasks").await.unwrap();
    assert!(
        own.labels().get(ROLLOUT_LABEL).is_none(),
        "the user's installation is untouched"
    );

    // c stops matching: its installation goes (Rollback), the rollout covers the rest.
    tenants
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"plan": "free"}}})),
        )
        .await
        .unwrap();
    wait_gone(&installs, "c-tasks").await;
    let after = wait_until(&rollouts, "tasks-pro", "two tenants", |r| {
        r.status.as_ref().is_some_and(|s| s.tenants == 2)
    })
    .await;
    assert_eq!(
        condition(&after, "Ready"),
        Some(("True".into(), "Reconciled".into()))
    );
    assert!(
        pg::tables(&format!("tenant_{prefix}_c"))
            .await
            .iter()
            .all(|t| t != "tasks")
    );

    // Deleting a Tenant: the rollout lets its installation go, and the Tenant's deletion can finish.
    tenants.delete("a", &DeleteParams::default()).await.unwrap();
    wait_gone(&installs, "a-tasks").await;
    wait_gone(&tenants, "a").await;
    let after = wait_until(&rollouts, "tasks-pro", "one tenant", |r| {
        r.status.as_ref().is_some_and(|s| s.tenants == 1)
    })
    .await;
    assert_eq!(after.status.unwrap().conflicts, ["b"]);

    rollouts
        .delete("tasks-pro", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&rollouts, "tasks-pro").await;
    installs
        .delete("b-own-tasks", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&installs, "b-own-tasks").await;
    drop_tenants(&prefix, &names).await;
}
