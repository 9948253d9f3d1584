//! Tenant isolation end to end, one test per attack: the real `landlord run`, kube-apiserver and PostgreSQL.
//! Each test first proves that the operator acted (a condition it wrote, planted code it ran), then that the
//! victim's rows survive and nothing was granted.

mod support;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use landlord::crd::{ModuleInstallation, Tenant};
use serde_json::json;
use sqlx::Connection;
use support::kube::{
    apply_yaml, client, condition, installation_yaml, namespace, secret_value, tenant_yaml,
    wait_condition, wait_gone, wait_ready, wait_until,
};
use support::operator::Operator;
use support::{pg, unique_slug};

/// A namespace of its own with an operator and the Ready Tenant `acme` (deletionPolicy Delete). Bind
/// `_operator` when taking it apart: dropping it stops the operator.
struct Ready {
    client: kube::Client,
    ns: String,
    _operator: Operator,
    slug: String,
    tenants: Api<Tenant>,
    secrets: Api<Secret>,
}

async fn ready_tenant(prefix: &str) -> Ready {
    let client = client().await;
    let ns = namespace(&client, prefix).await;
    let operator = Operator::start(&ns, &[]);
    let slug = unique_slug("acme");
    apply_yaml(
        &ns,
        &tenant_yaml("acme", &slug, "  deletionPolicy: Delete\n"),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);
    wait_ready(&tenants, "acme").await;
    let secrets = Api::namespaced(client.clone(), &ns);
    Ready {
        client,
        ns,
        _operator: operator,
        slug,
        tenants,
        secrets,
    }
}

async fn count(database: &str, query: &'static str) -> i64 {
    let mut conn = pg::connect(database).await;
    let n: i64 = sqlx::query_scalar(query)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n
}

/// A victim with the module `tasks` installed and one row in it.
async fn victim(client: &kube::Client, ns: &str, slug: &str) {
    apply_yaml(ns, &tenant_yaml("acme", slug, "  deletionPolicy: Delete\n"));
    apply_yaml(ns, &installation_yaml("acme-tasks", "tasks", ""));
    let installations: Api<ModuleInstallation> = Api::namespaced(client.clone(), ns);
    wait_ready(&installations, "acme-tasks").await;
    pg::superuser_exec(
        &format!("tenant_{slug}"),
        "INSERT INTO tasks (title, created_by) VALUES ('precious', 'victim')",
    )
    .await;
}

async fn victim_intact(client: &kube::Client, ns: &str, slug: &str) {
    let database = format!("tenant_{slug}");
    assert_eq!(
        count(
            &database,
            "SELECT count(*) FROM tasks WHERE title = 'precious'"
        )
        .await,
        1,
        "the victim's rows survive"
    );
    let recorded = pg::strings(
        "landlord",
        "SELECT tenant_slug || '/' || module FROM tenant_modules",
    )
    .await;
    assert!(recorded.contains(&format!("{slug}/tasks")), "{recorded:?}");
    let installations: Api<ModuleInstallation> = Api::namespaced(client.clone(), ns);
    let owner = installations.get("acme-tasks").await.unwrap();
    assert_eq!(
        condition(&owner, "Ready"),
        Some(("True".into(), "Reconciled".into()))
    );
}

#[tokio::test]
async fn claimants_of_another_tenants_slug_roll_back_nothing() {
    let client = client().await;
    let owner_ns = namespace(&client, "e2e-iso-owner").await;
    let attacker_ns = namespace(&client, "e2e-iso-attacker").await;
    let _owner_operator = Operator::start(&owner_ns, &[]);
    let _attacker_operator = Operator::start(&attacker_ns, &[]);
    let slug = unique_slug("victim");
    victim(&client, &owner_ns, &slug).await;

    // Another namespace names the same slug; its installation asks for a rollback on deletion.
    apply_yaml(
        &attacker_ns,
        &tenant_yaml("acme", &slug, "  deletionPolicy: Delete\n"),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &attacker_ns);
    wait_condition(&tenants, "acme", "Ready", "False", "SlugConflict").await;
    apply_yaml(
        &attacker_ns,
        &installation_yaml("acme-tasks", "tasks", "  uninstallPolicy: Rollback\n"),
    );
    let attackers: Api<ModuleInstallation> = Api::namespaced(client.clone(), &attacker_ns);
    wait_condition(&attackers, "acme-tasks", "Ready", "False", "TenantNotReady").await;
    // Its status forged to Ready authorises nothing either.
    let forged = json!({"status": {"conditions": [{
        "type": "Ready", "status": "True", "reason": "Reconciled", "message": "forged",
        "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    tenants
        .patch_status("acme", &PatchParams::default(), &Patch::Merge(&forged))
        .await
        .unwrap();
    apply_yaml(
        &attacker_ns,
        &installation_yaml("acme-cards", "digital_card", ""),
    );
    wait_condition(&attackers, "acme-cards", "Ready", "False", "TenantNotReady").await;
    assert_eq!(
        count(
            &format!("tenant_{slug}"),
            "SELECT count(*) FROM pg_tables WHERE tablename = 'digital_cards'"
        )
        .await,
        0
    );
    for name in ["acme-tasks", "acme-cards"] {
        attackers
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        wait_gone(&attackers, name).await;
    }

    // A refused duplicate in the owner's own namespace.
    apply_yaml(
        &owner_ns,
        &installation_yaml("acme-tasks-again", "tasks", "  uninstallPolicy: Rollback\n"),
    );
    let installations: Api<ModuleInstallation> = Api::namespaced(client.clone(), &owner_ns);
    wait_condition(
        &installations,
        "acme-tasks-again",
        "Ready",
        "False",
        "InvalidSpec",
    )
    .await;
    installations
        .delete("acme-tasks-again", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&installations, "acme-tasks-again").await;

    victim_intact(&client, &owner_ns, &slug).await;
    pg::drop_tenant(&format!("tenant_{slug}")).await;
}

#[tokio::test]
async fn code_a_tenant_plants_runs_with_the_tenants_privileges_only() {
    let Ready {
        client,
        ns,
        slug,
        secrets,
        _operator,
        ..
    } = ready_tenant("e2e-iso-plant").await;
    let secret = secrets.get("acme-db").await.unwrap();
    let role = secret_value(&secret, "username");

    // With nothing but its own credentials, the tenant replaces the ledger by a view over a function that
    // tries to give itself CREATEROLE and CREATEDB (called by reads of the view and by a trigger on the
    // rows it records), and shadows the search path.
    let mut tenant = sqlx::PgConnection::connect(&secret_value(&secret, "uri"))
        .await
        .unwrap();
    let plant = format!(
        "CREATE TABLE public.evil_calls (session_user_name text, current_user_name text);
         CREATE FUNCTION public.evil() RETURNS boolean LANGUAGE plpgsql AS $$
         BEGIN
           INSERT INTO public.evil_calls VALUES (session_user, current_user);
           BEGIN
             RESET ROLE;
             EXECUTE 'ALTER ROLE {role} CREATEROLE CREATEDB';
           EXCEPTION WHEN OTHERS THEN NULL;
           END;
           RETURN true;
         END $$;
         ALTER TABLE landlord_migrations.ledger RENAME TO ledger_kept;
         CREATE VIEW landlord_migrations.ledger AS
           SELECT * FROM landlord_migrations.ledger_kept WHERE public.evil();
         CREATE FUNCTION public.evil_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM public.evil(); RETURN NEW; END $$;
         CREATE TRIGGER evil AFTER INSERT ON landlord_migrations.ledger_kept
           FOR EACH ROW EXECUTE FUNCTION public.evil_trigger();
         CREATE SCHEMA shadow;
         ALTER ROLE {role} SET search_path = shadow, public;
         ALTER DATABASE {role} SET search_path = shadow, public;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(plant))
        .execute(&mut tenant)
        .await
        .unwrap();
    tenant.close().await.unwrap();

    // A reconcile that runs migrations in that database.
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    let installations: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_until(
        &installations,
        "acme-tasks",
        "a verdict",
        |mi| matches!(condition(mi, "Ready"), Some((status, _)) if status != "Unknown"),
    )
    .await;

    let database = format!("tenant_{slug}");
    let callers = pg::strings(
        &database,
        "SELECT DISTINCT session_user_name || ' ' || current_user_name FROM public.evil_calls",
    )
    .await;
    assert!(!callers.is_empty(), "the planted function ran");
    assert_eq!(
        callers,
        [format!("{role} {role}")],
        "only ever as the tenant itself"
    );
    let privileges = pg::strings(
        "postgres",
        "SELECT rolname || ' ' || rolcreaterole || ' ' || rolcreatedb || ' ' || rolsuper FROM pg_roles
          WHERE rolname LIKE 'tenant\\_%'",
    )
    .await;
    assert!(
        privileges.contains(&format!("{role} false false false")),
        "{privileges:?}"
    );
    pg::drop_tenant(&database).await;
}

#[tokio::test]
async fn squatted_role_database_and_secret_are_refused_and_left_as_they_were() {
    let client = client().await;
    let ns = namespace(&client, "e2e-iso-squat").await;
    let _operator = Operator::start(&ns, &[]);
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &ns);

    let role_slug = unique_slug("squatrole");
    pg::superuser_exec(
        "postgres",
        &format!("CREATE ROLE tenant_{role_slug} LOGIN PASSWORD 'squatter'"),
    )
    .await;
    let role_state = "SELECT rolpassword || ' ' || (SELECT count(*) FROM pg_auth_members m WHERE m.roleid = a.oid)
                        FROM pg_authid a WHERE rolname LIKE 'tenant\\_squatrole%'";
    let before = pg::strings("postgres", role_state).await;
    apply_yaml(
        &ns,
        &tenant_yaml("role", &role_slug, "  deletionPolicy: Delete\n"),
    );
    wait_condition(&tenants, "role", "Ready", "False", "AdoptionRefused").await;
    assert_eq!(pg::strings("postgres", role_state).await, before);
    assert!(!pg::database_exists(&format!("tenant_{role_slug}")).await);

    let db_slug = unique_slug("squatdb");
    pg::superuser_exec("postgres", &format!("CREATE DATABASE tenant_{db_slug}")).await;
    apply_yaml(
        &ns,
        &tenant_yaml("database", &db_slug, "  deletionPolicy: Delete\n"),
    );
    wait_condition(&tenants, "database", "Ready", "False", "AdoptionRefused").await;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let users_secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "secret-db"},
        "stringData": {"password": "the user's own"}
    }))
    .unwrap();
    secrets
        .create(&Default::default(), &users_secret)
        .await
        .unwrap();
    let secret_slug = unique_slug("squatsecret");
    apply_yaml(
        &ns,
        &tenant_yaml("secret", &secret_slug, "  deletionPolicy: Delete\n"),
    );
    wait_condition(&tenants, "secret", "Ready", "False", "AdoptionRefused").await;
    tenants
        .delete("secret", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "secret").await;
    let kept = secrets.get("secret-db").await.unwrap();
    assert_eq!(secret_value(&kept, "password"), "the user's own");
    assert_eq!(
        kept.data.as_ref().unwrap().len(),
        1,
        "nothing was written into it"
    );

    // Deleting the refused Tenants drops nothing of the squatters'.
    for name in ["role", "database"] {
        tenants
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        wait_gone(&tenants, name).await;
    }
    assert!(pg::role_exists(&format!("tenant_{role_slug}")).await);
    assert!(pg::database_exists(&format!("tenant_{db_slug}")).await);
    for slug in [role_slug, db_slug, secret_slug] {
        pg::drop_tenant(&format!("tenant_{slug}")).await;
    }
}

#[tokio::test]
async fn a_retained_database_goes_back_only_to_its_namespace_and_name() {
    let client = client().await;
    let home = namespace(&client, "e2e-iso-home").await;
    let elsewhere = namespace(&client, "e2e-iso-else").await;
    let _home_operator = Operator::start(&home, &[]);
    let _else_operator = Operator::start(&elsewhere, &[]);
    let slug = unique_slug("kept");
    let database = format!("tenant_{slug}");
    apply_yaml(
        &home,
        &tenant_yaml("acme", &slug, "  deletionPolicy: Retain\n"),
    );
    let tenants: Api<Tenant> = Api::namespaced(client.clone(), &home);
    wait_ready(&tenants, "acme").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &home);
    let password = secret_value(&secrets.get("acme-db").await.unwrap(), "password");
    pg::superuser_exec(
        &database,
        "INSERT INTO audit_log (actor, action) VALUES ('victim', 'secret business')",
    )
    .await;
    tenants
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&tenants, "acme").await;
    let verifier = "SELECT rolpassword FROM pg_authid WHERE rolname LIKE 'tenant\\_kept%'";
    let before = pg::strings("postgres", verifier).await;

    // Another namespace names the slug: refused, the password untouched, no credentials handed out.
    apply_yaml(
        &elsewhere,
        &tenant_yaml("acme", &slug, "  deletionPolicy: Delete\n"),
    );
    let others: Api<Tenant> = Api::namespaced(client.clone(), &elsewhere);
    wait_condition(&others, "acme", "Ready", "False", "AdoptionRefused").await;
    assert_eq!(pg::strings("postgres", verifier).await, before);
    let other_secrets: Api<Secret> = Api::namespaced(client.clone(), &elsewhere);
    assert!(other_secrets.get_opt("acme-db").await.unwrap().is_none());
    others
        .delete("acme", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&others, "acme").await;
    assert!(pg::database_exists(&database).await);

    // The same namespace and name (a cluster rebuilt from Git): its data back, its password kept.
    apply_yaml(
        &home,
        &tenant_yaml("acme", &slug, "  deletionPolicy: Delete\n"),
    );
    wait_ready(&tenants, "acme").await;
    let secret = secrets.get("acme-db").await.unwrap();
    assert_eq!(secret_value(&secret, "password"), password);
    let mut conn = sqlx::PgConnection::connect(&secret_value(&secret, "uri"))
        .await
        .unwrap();
    let action: String = sqlx::query_scalar("SELECT action FROM audit_log WHERE actor = 'victim'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(action, "secret business");
    conn.close().await.unwrap();
    pg::drop_tenant(&database).await;
}

#[tokio::test]
async fn production_refuses_a_downgrade_and_keeps_the_column() {
    let client = client().await;
    let ns = namespace(&client, "e2e-iso-prod").await;
    let _operator = Operator::start(&ns, &[("LANDLORD_ENVIRONMENT", "production")]);
    let slug = unique_slug("prod");
    apply_yaml(
        &ns,
        &tenant_yaml("acme", &slug, "  deletionPolicy: Retain\n"),
    );
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    apply_yaml(
        &ns,
        &installation_yaml("acme-expenses", "expenses", "  version: \"1.1.0\"\n"),
    );
    let installations: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_ready(&installations, "acme-expenses").await;

    apply_yaml(
        &ns,
        &installation_yaml("acme-expenses", "expenses", "  version: \"1.0.0\"\n"),
    );
    let refused = wait_condition(
        &installations,
        "acme-expenses",
        "Ready",
        "False",
        "DestructiveActionBlocked",
    )
    .await;
    assert_eq!(
        condition(&refused, "TenantMigrated"),
        Some(("False".into(), "DestructiveActionBlocked".into()))
    );
    let database = format!("tenant_{slug}");
    assert!(
        pg::columns(&database, "expenses")
            .await
            .contains(&"reimbursed_at".to_string())
    );
    pg::drop_tenant(&database).await;
}

#[tokio::test]
async fn a_hand_edited_password_is_made_to_work() {
    let Ready {
        slug,
        tenants,
        secrets,
        _operator,
        ..
    } = ready_tenant("e2e-iso-secret").await;
    // Any UTF-8 text: PostgreSQL normalises it with SASLprep, and so does the verifier Landlord sends.
    let edit = json!({"stringData": {"password": "chosen-by-a-pérson-42-☃"}});
    secrets
        .patch("acme-db", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    // The operator rewrites the uri from the new password (percent-encoded) and sets the role to it.
    let secret = wait_until(&secrets, "acme-db", "the uri follows the password", |s| {
        secret_value(s, "uri").contains(":chosen-by-a-p%C3%A9rson-42-%E2%98%83@")
    })
    .await;
    pg::until_login_works(&secret_value(&secret, "uri"), "the edited password").await;
    wait_ready(&tenants, "acme").await;
    pg::drop_tenant(&format!("tenant_{slug}")).await;
}

#[tokio::test]
async fn a_role_password_changed_in_postgresql_is_put_back_when_an_installation_is_refused() {
    let Ready {
        client,
        ns,
        slug,
        secrets,
        _operator,
        ..
    } = ready_tenant("e2e-iso-role-password").await;
    // Once a resync of the Tenant has been decided from Landlord's records, every later one is too: none
    // opens a session that would notice the password change below.
    _operator.until_in_place("landlord-tenant").await;
    // Someone with a superuser session changes the role's password; the Secret still has the old one, and
    // the Tenant's resyncs, decided from Landlord's records, open no session that would notice.
    pg::superuser_exec(
        "postgres",
        &format!("ALTER ROLE tenant_{slug} PASSWORD 'set-behind-landlords-back'"),
    )
    .await;
    let secret = secrets.get("acme-db").await.unwrap();
    let uri = secret_value(&secret, "uri");
    assert!(
        sqlx::PgConnection::connect(&uri).await.is_err(),
        "the Secret's password still opens the database: the role's password was not changed"
    );
    // The next installation is refused a login; the Tenant is visited at once and sets the role's password
    // back to its Secret's, and the installation goes through (well before the Tenant's 5-minute resync).
    apply_yaml(&ns, &installation_yaml("acme-tasks", "tasks", ""));
    let installations: Api<ModuleInstallation> = Api::namespaced(client.clone(), &ns);
    wait_ready(&installations, "acme-tasks").await;
    sqlx::PgConnection::connect(&uri)
        .await
        .expect("the Secret's password opens the database again")
        .close()
        .await
        .unwrap();
    pg::drop_tenant(&format!("tenant_{slug}")).await;
}
