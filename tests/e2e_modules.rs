//! The ModuleInstallation reconciler end to end: install, upgrade, downgrade, uninstall, dependencies,
//! dry runs, and the ways a request is refused.

mod support;

use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use landlord::crd::{Direction, ModuleInstallation, Tenant};
use serde_json::json;
use support::kube::{
    acme_yaml, apply_yaml, client, condition, events, installation_yaml, namespace, wait_condition,
    wait_gone, wait_ready, wait_until,
};
use support::operator::Operator;
use support::{pg, unique_slug};

/// A namespace with its own operator and a Ready tenant; returns (namespace, tenant database, operator).
async fn tenant_ready(
    prefix: &str,
    extra_env: &[(&str, &str)],
) -> (kube::Client, String, String, Operator) {
    let client = client().await;
    let ns = namespace(&client, prefix).await;
    let operator = Operator::start(&ns, extra_env);
    let slug = unique_slug("mod");
    apply_yaml(&ns, &acme_yaml(&slug));
    wait_ready(&Api::<Tenant>::namespaced(client.clone(), &ns), "acme").await;
    (client, ns, format!("tenant_{slug}"), operator)
}

fn message<K: support::kube::Conditions>(object: &K, type_: &str) -> String {
    object
        .conditions()
        .into_iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.message)
        .unwrap_or_default()
}

async fn set_version(api: &Api<ModuleInstallation>, name: &str, version: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"version": version}})),
    )
    .await
    .unwrap();
}

async fn wait_version(
    api: &Api<ModuleInstallation>,
    name: &str,
    version: &str,
) -> ModuleInstallation {
    wait_until(api, name, &format!("Ready at {version}"), |mi| {
        condition(mi, "Ready") == Some(("True".into(), "Reconciled".into()))
            && mi
                .status
                .as_ref()
                .and_then(|s| s.installed_version.as_deref())
                == Some(version)
            && mi.status.as_ref().and_then(|s| s.observed_generation) == mi.metadata.generation
    })
    .await
}

#[tokio::test]
async fn install_upgrade_downgrade_and_roll_back() {
    let (client, ns, db, _operator) = tenant_ready("e2e-lifecycle", &[]).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    apply_yaml(
        &ns,
        &installation_yaml(
            "acme-expenses",
            "expenses",
            "  version: \"1.0.0\"\n  uninstallPolicy: Rollback\n",
        ),
    );

    let expenses = wait_version(&installs, "acme-expenses", "1.0.0").await;
    let status = expenses.status.clone().unwrap();
    assert_eq!(status.applied.as_ref().map(|a| a.tenant), Some(2));
    assert!(status.plan.is_empty());
    for type_ in [
        "DependenciesSatisfied",
        "LandlordMigrated",
        "TenantMigrated",
    ] {
        assert_eq!(
            condition(&expenses, type_).map(|c| c.0),
            Some("True".to_string()),
            "{type_}"
        );
    }
    let tables = pg::tables(&db).await;
    for table in ["expense_categories", "expenses", "tasks", "task_comments"] {
        assert!(
            tables.contains(&table.to_string()),
            "{table} missing: {tables:?}"
        );
    }
    assert!(
        !pg::columns(&db, "expenses")
            .await
            .contains(&"reimbursed_at".to_string())
    );
    let permissions = pg::strings(
        &db,
        "SELECT name FROM permissions WHERE module = 'expenses' ORDER BY 1",
    )
    .await;
    assert_eq!(
        permissions,
        [
            "expenses.create",
            "expenses.delete",
            "expenses.edit",
            "expenses.view"
        ]
    );
    let grants = pg::strings(
        &db,
        "SELECT r.name || ':' || p.name FROM roles r JOIN role_permissions rp ON rp.role_id = r.id \
         JOIN permissions p ON p.id = rp.permission_id WHERE r.name = 'expenses_viewer'",
    )
    .await;
    assert_eq!(grants, ["expenses_viewer:expenses.view"]);
    let mirrored = pg::strings(
        "landlord",
        "SELECT module || ' ' || coalesce(version, '-') || ' ' || status FROM tenant_modules ORDER BY 1",
    )
    .await;
    assert!(
        mirrored.contains(&"expenses 1.0.0 Installed".to_string()),
        "{mirrored:?}"
    );

    set_version(&installs, "acme-expenses", "1.1.0").await;
    let upgraded = wait_version(&installs, "acme-expenses", "1.1.0").await;
    assert_eq!(upgraded.status.unwrap().applied.map(|a| a.tenant), Some(4));
    assert!(
        pg::columns(&db, "expenses")
            .await
            .contains(&"reimbursed_at".to_string())
    );

    set_version(&installs, "acme-expenses", "1.0.0").await;
    wait_version(&installs, "acme-expenses", "1.0.0").await;
    assert!(
        !pg::columns(&db, "expenses")
            .await
            .contains(&"reimbursed_at".to_string())
    );

    installs
        .delete("acme-expenses", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&installs, "acme-expenses").await;
    let tables = pg::tables(&db).await;
    assert!(
        !tables.contains(&"expenses".to_string())
            && !tables.contains(&"expense_categories".to_string()),
        "{tables:?}"
    );
    assert!(
        tables.contains(&"tasks".to_string()),
        "tasks must be untouched: {tables:?}"
    );
    assert!(
        pg::strings(
            &db,
            "SELECT name FROM permissions WHERE module = 'expenses'"
        )
        .await
        .is_empty()
    );
    assert!(
        pg::strings(&db, "SELECT name FROM roles WHERE module = 'expenses'")
            .await
            .is_empty()
    );

    installs
        .delete("acme-tasks", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&installs, "acme-tasks").await;
    assert!(
        pg::tables(&db).await.contains(&"tasks".to_string()),
        "uninstallPolicy Retain keeps the tables"
    );
    teardown(&client, &ns).await;
}

async fn teardown(client: &kube::Client, ns: &str) {
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), ns);
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "acme").await;
}

#[tokio::test]
async fn dependencies_order_installs_and_block_uninstalls() {
    let (client, ns, db, _operator) = tenant_ready("e2e-deps", &[]).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(&ns, &installation_yaml("acme-expenses", "expenses", ""));
    let waiting = wait_condition(
        &installs,
        "acme-expenses",
        "Ready",
        "False",
        "DependencyMissing",
    )
    .await;
    assert!(
        message(&waiting, "DependenciesSatisfied").contains("tasks >=1.0.0"),
        "{waiting:?}"
    );
    assert!(!pg::tables(&db).await.contains(&"expenses".to_string()));

    apply_yaml(
        &ns,
        &installation_yaml("acme-tasks", "tasks", "  uninstallPolicy: Rollback\n"),
    );
    wait_ready(&installs, "acme-tasks").await;
    wait_version(&installs, "acme-expenses", "1.1.0").await;

    // Rolling back tasks under expenses is refused; expenses stays Ready.
    installs
        .delete("acme-tasks", &DeleteParams::default())
        .await
        .unwrap();
    let blocked = wait_condition(
        &installs,
        "acme-tasks",
        "Ready",
        "False",
        "UninstallBlocked",
    )
    .await;
    assert!(
        message(&blocked, "Ready").contains("acme-expenses"),
        "{blocked:?}"
    );
    assert!(pg::tables(&db).await.contains(&"tasks".to_string()));
    assert_eq!(
        condition(&installs.get("acme-expenses").await.unwrap(), "Ready"),
        Some(("True".into(), "Reconciled".into()))
    );

    // Once expenses is rolled back too (its tables refer to tasks), tasks rolls back.
    installs
        .patch(
            "acme-expenses",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"uninstallPolicy": "Rollback"}})),
        )
        .await
        .unwrap();
    installs
        .delete("acme-expenses", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&installs, "acme-tasks").await;
    let tables = pg::tables(&db).await;
    assert!(!tables.contains(&"tasks".to_string()), "{tables:?}");
    teardown(&client, &ns).await;
}

#[tokio::test]
async fn dry_run_publishes_the_plan_and_applies_nothing() {
    let (client, ns, db, _operator) = tenant_ready("e2e-dryrun", &[]).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(
        &ns,
        &installation_yaml("acme-tasks", "tasks", "  dryRun: true\n"),
    );
    let planned = wait_condition(&installs, "acme-tasks", "Ready", "False", "DryRun").await;
    let plan = planned.status.unwrap().plan;
    let steps: Vec<(String, String, Direction)> = plan
        .into_iter()
        .map(|s| (s.scope, s.migration, s.direction))
        .collect();
    assert_eq!(
        steps,
        [
            (
                "Tenant".into(),
                "20251001090000_create_tasks".into(),
                Direction::Up
            ),
            (
                "Tenant".into(),
                "20251001090100_create_task_comments".into(),
                Direction::Up
            )
        ]
    );
    assert!(!pg::tables(&db).await.contains(&"tasks".to_string()));

    installs
        .patch(
            "acme-tasks",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"dryRun": false}})),
        )
        .await
        .unwrap();
    wait_version(&installs, "acme-tasks", "1.0.0").await;
    assert!(pg::tables(&db).await.contains(&"tasks".to_string()));
    // What ran is what the dry run published, step for step: the engine runs the plan it is given.
    let published: Vec<String> = steps
        .iter()
        .map(|(_, migration, direction)| {
            format!("{migration} {}", format!("{direction:?}").to_lowercase())
        })
        .collect();
    let ran = format!(
        "Normal Migrated: Ran {} in the tenant scope of module tasks.",
        published.join(", ")
    );
    let found = events(&client, &ns, "acme-tasks").await;
    assert!(found.contains(&ran), "{ran:?} not in {found:#?}");
    installs
        .delete("acme-tasks", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&installs, "acme-tasks").await;
    teardown(&client, &ns).await;
}

#[tokio::test]
async fn unknown_module_and_missing_release_are_refused_with_a_reason() {
    let (client, ns, _db, _operator) = tenant_ready("e2e-unknown", &[]).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(&ns, &installation_yaml("acme-payroll", "payroll", ""));
    apply_yaml(
        &ns,
        &installation_yaml("acme-tasks", "tasks", "  version: \"9.9.9\"\n"),
    );
    let unknown = wait_condition(
        &installs,
        "acme-payroll",
        "Ready",
        "False",
        "ModuleNotFound",
    )
    .await;
    assert!(
        message(&unknown, "Ready").contains("expenses, tasks"),
        "{unknown:?}"
    );
    let missing =
        wait_condition(&installs, "acme-tasks", "Ready", "False", "VersionNotFound").await;
    assert!(
        message(&missing, "Ready").contains("releases: 1.0.0"),
        "{missing:?}"
    );

    // Fixing the spec recovers.
    set_version(&installs, "acme-tasks", "1.0.0").await;
    wait_version(&installs, "acme-tasks", "1.0.0").await;

    // A second installation of the same module for the same tenant would fight over its ledger.
    apply_yaml(&ns, &installation_yaml("acme-tasks-again", "tasks", ""));
    let duplicate = wait_condition(
        &installs,
        "acme-tasks-again",
        "Ready",
        "False",
        "InvalidSpec",
    )
    .await;
    assert!(
        message(&duplicate, "Ready").contains("acme-tasks already manages module tasks"),
        "{duplicate:?}"
    );
    for name in ["acme-payroll", "acme-tasks-again", "acme-tasks"] {
        installs
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        wait_gone(&installs, name).await;
    }
    teardown(&client, &ns).await;
}

#[tokio::test]
async fn a_module_on_a_missing_tenant_waits_and_installs_when_it_appears() {
    let client = client().await;
    let ns = namespace(&client, "e2e-wait").await;
    let _operator = Operator::start(&ns, &[]);
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_condition(&installs, "acme-tasks", "Ready", "False", "TenantNotFound").await;
    let slug = unique_slug("late");
    apply_yaml(&ns, &acme_yaml(&slug));
    wait_version(&installs, "acme-tasks", "1.0.0").await;

    // The tenant is not torn down while it still has installations.
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    let blocked = wait_condition(&tenants, "acme", "Ready", "False", "UninstallBlocked").await;
    assert!(message(&blocked, "Ready").contains("acme-tasks"));
    assert!(pg::database_exists(&format!("tenant_{slug}")).await);
    installs
        .delete("acme-tasks", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "acme").await;
    assert!(!pg::database_exists(&format!("tenant_{slug}")).await);
}

#[tokio::test]
async fn landlord_scope_runs_in_the_landlord_database() {
    let (client, ns, db, _operator) = tenant_ready("e2e-landlord", &[]).await;
    let installs: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    apply_yaml(&ns, &installation_yaml("acme-card", "digital_card", ""));
    let card = wait_version(&installs, "acme-card", "1.0.0").await;
    assert_eq!(
        card.status.unwrap().applied.map(|a| (a.landlord, a.tenant)),
        Some((1, 2))
    );
    assert!(
        pg::tables("landlord")
            .await
            .contains(&"digital_card_global_settings".to_string())
    );
    let tables = pg::tables(&db).await;
    assert!(
        tables.contains(&"digital_cards".to_string())
            && tables.contains(&"card_templates".to_string())
    );
    assert!(
        !tables.contains(&"digital_card_global_settings".to_string()),
        "landlord tables stay out of tenants"
    );
    let ledger = pg::strings(
        "landlord",
        "SELECT module || ' ' || scope || ' ' || version FROM landlord_migrations.ledger WHERE module = 'digital_card'",
    )
    .await;
    assert_eq!(ledger, ["digital_card landlord 20251010120000"]);
    installs
        .delete("acme-card", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&installs, "acme-card").await;
    teardown(&client, &ns).await;
}
