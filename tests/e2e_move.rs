//! Moving a Tenant between two real PostgreSQL servers through the real operator: a tenant with modules and
//! 100k rows arrives whole (every row, every ledger row), an application session is ended after the grace
//! period and reconnects to the target through the updated Secret, installations go on there; a move to a
//! cordoned server is refused; the operator SIGKILLed at each phase ends, once restarted, with exactly one
//! serving copy; a copy that differs when verified is rolled back and the source serves.

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use landlord::crd::{DatabaseServer, ModuleInstallation, Tenant};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use support::kube::{
    apply_yaml, client, condition, events, namespace, secret_value, wait_condition, wait_ready,
    wait_until,
};
use support::operator::{Operator, second_server};
use support::pg::Server;
use support::unique_slug;

const MOVE_TO: &str = "tenancy.landlord.dev/move-to";
/// Rows the application writes before the move.
const ROWS: i64 = 100_000;

/// A namespace, its operator (a short grace period), and server 2 as a DatabaseServer of that operator.
struct Fleet {
    client: Client,
    ns: String,
    operator: Operator,
    /// The DatabaseServer on server 2.
    two: String,
}

fn operator_env(halt: Option<&str>) -> Vec<(&'static str, String)> {
    let mut env = vec![("LANDLORD_MOVE_GRACE_PERIOD", "3s".to_string())];
    if let Some(phase) = halt {
        env.push(("LANDLORD_MOVE_HALT_AFTER", phase.to_string()));
    }
    env
}

fn start_operator(ns: &str, halt: Option<&str>) -> Operator {
    let env = operator_env(halt);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Operator::start(ns, &env)
}

impl Fleet {
    async fn start(prefix: &str, halt: Option<&str>) -> Fleet {
        let client = client().await;
        let ns = namespace(&client, prefix).await;
        let operator = start_operator(&ns, halt);
        let two = second_server(&client, &ns, "two").await;
        Fleet {
            client,
            ns,
            operator,
            two,
        }
    }

    fn tenants(&self) -> Api<Tenant> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// A Tenant on `default` (server 1) with extension ltree, module tasks installed and `ROWS` rows its
    /// application wrote (some in an ltree column);
    /// its slug, once Ready.
    async fn tenant(&self, name: &str) -> String {
        let slug = unique_slug(name);
        apply_yaml(
            &self.ns,
            &format!(
                "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {{name: {name}}}\n\
                 spec: {{slug: {slug}, server: default, deletionPolicy: Delete, extensions: [ltree]}}\n"
            ),
        );
        let tenant = wait_ready(&self.tenants(), name).await;
        assert_eq!(tenant.status.unwrap().server.as_deref(), Some("default"));
        apply_yaml(
            &self.ns,
            &format!(
                "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\n\
                 metadata: {{name: {name}-tasks}}\nspec: {{tenant: {name}, module: tasks}}\n"
            ),
        );
        wait_ready(&self.installations(), &format!("{name}-tasks")).await;
        let mut app = self.application(name).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE bulk (id bigint PRIMARY KEY, note text NOT NULL, path ltree);
             INSERT INTO bulk SELECT g, md5(g::text), ('top.n' || g)::ltree FROM generate_series(1, {ROWS}) g;
             INSERT INTO tasks (title, created_by) SELECT 'task ' || g, 'app' FROM generate_series(1, 50) g;"
        )))
        .execute(&mut app)
        .await
        .expect("the application writes its rows");
        app.close().await.ok();
        slug
    }

    fn installations(&self) -> Api<ModuleInstallation> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn secret(&self, name: &str) -> Secret {
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .get(&format!("{name}-db"))
            .await
            .expect("the tenant's Secret")
    }

    /// A session as the application logs in: the Secret's URI.
    async fn application(&self, name: &str) -> PgConnection {
        let uri = secret_value(&self.secret(name).await, "uri");
        PgConnection::connect(&uri)
            .await
            .expect("the application logs in")
    }

    async fn ask_move(&self, name: &str, to: Option<&str>) {
        self.tenants()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "annotations": { MOVE_TO: to } } })),
            )
            .await
            .expect("annotate the tenant");
    }

    /// Waits until `Moved` is True; the Tenant then.
    async fn moved(&self, name: &str) -> Tenant {
        wait_condition_long(&self.tenants(), name, "Moved", "True", "Reconciled").await
    }

    /// The operator SIGKILLed, and another started (without a halt).
    fn restart(&mut self) {
        self.operator.stop();
        self.operator = start_operator(&self.ns, None);
    }
}

/// Like `wait_condition`, for as long as a move of 100k rows may take on a loaded machine.
async fn wait_condition_long(
    api: &Api<Tenant>,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> Tenant {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let tenant = api.get(name).await.expect("get tenant");
        if condition(&tenant, type_) == Some((status.to_string(), reason.to_string())) {
            return tenant;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never had {type_}={status} ({reason}): {:#?}",
            tenant.status
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The message of a condition.
fn message(tenant: &Tenant, type_: &str) -> String {
    tenant
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// One text column of Landlord's records about `slug`, read in the landlord database.
async fn landlord_record(query: &'static str, slug: &str) -> Option<String> {
    let mut conn = Server::One.connect("landlord").await;
    let value = sqlx::query_scalar(query)
        .bind(slug)
        .fetch_optional(&mut conn)
        .await
        .expect("read Landlord's records");
    conn.close().await.ok();
    value
}

/// Landlord's record of the move: its phase, if any.
async fn move_phase(slug: &str) -> Option<String> {
    landlord_record(
        "SELECT phase FROM tenant_moves WHERE tenant_slug = $1",
        slug,
    )
    .await
}

async fn until_phase(slug: &str, phase: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let now = move_phase(slug).await;
        if now.as_deref() == Some(phase) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the move of {slug} never reached {phase}: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Landlord's record of the tenant's server.
async fn recorded_server(slug: &str) -> String {
    landlord_record("SELECT server FROM tenants WHERE slug = $1", slug)
        .await
        .expect("the tenant is recorded")
}

/// The tenant's one copy is on server 2, recorded there, and serves through its Secret every row and the
/// ledger it had on server 1.
async fn serves_whole_from_two(fleet: &Fleet, slug: &str, ledger: &[(String, i64)]) {
    assert_eq!(holder(slug).await, Server::Two);
    assert_eq!(recorded_server(slug).await, fleet.two);
    let (bulk, tasks, port) = served(fleet, "acme").await;
    assert_eq!((bulk, tasks), (ROWS, 50));
    assert_eq!(port, port_of(Server::Two));
    assert_eq!(
        Server::Two
            .ledger_rows(&format!("tenant_{slug}"), "tenant")
            .await,
        ledger
    );
}

/// The movers on `server` of Tenants of namespace `ns` (their mark names it).
async fn movers(server: Server, ns: &str) -> Vec<String> {
    let mut conn = server.connect("postgres").await;
    let movers = sqlx::query_scalar(
        "SELECT rolname::text FROM pg_catalog.pg_roles
          WHERE pg_catalog.shobj_description(oid, 'pg_authid') LIKE 'landlord mover of %' || $1 || '/%'",
    )
    .bind(ns)
    .fetch_all(&mut conn)
    .await
    .expect("list the movers");
    conn.close().await.ok();
    movers
}

/// Which server holds `tenant_<slug>`: exactly one must.
async fn holder(slug: &str) -> Server {
    let database = format!("tenant_{slug}");
    match (
        Server::One.database_exists(&database).await,
        Server::Two.database_exists(&database).await,
    ) {
        (true, false) => Server::One,
        (false, true) => Server::Two,
        other => panic!("{database} on (server 1, server 2): {other:?}"),
    }
}

/// The port of server 2, as a Secret written for it says.
fn port_of(server: Server) -> String {
    let url = server.admin_url();
    let host = url.rsplit_once('@').map(|(_, h)| h).unwrap();
    host.split_once(':')
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .0
        .to_string()
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
}

/// What the tenant serves, read through its Secret as the application would: rows of both tables, and
/// the server's port it reached.
async fn served(fleet: &Fleet, name: &str) -> (i64, i64, String) {
    let secret = fleet.secret(name).await;
    let mut app = fleet.application(name).await;
    let rows = (
        count(&mut app, "bulk").await,
        count(&mut app, "tasks").await,
    );
    app.close().await.ok();
    (rows.0, rows.1, secret_value(&secret, "port"))
}

#[tokio::test]
async fn a_tenant_moves_with_every_row_and_ledger_row_and_its_application_follows() {
    let fleet = Fleet::start("move-whole", None).await;
    let slug = fleet.tenant("acme").await;
    let database = format!("tenant_{slug}");
    let ledger = Server::One.ledger_rows(&database, "tenant").await;
    assert!(ledger.iter().any(|(m, _)| m == "tasks"), "{ledger:?}");

    // An application session stays open across the move.
    let mut app = fleet.application("acme").await;
    assert_eq!(count(&mut app, "bulk").await, ROWS);
    fleet.ask_move("acme", Some(&fleet.two)).await;

    // It is told how many sessions are left, then its session ends after the grace period (3 s).
    let quiescing = wait_until(&fleet.tenants(), "acme", "sessions left", |t| {
        message(t, "Moved").contains("sessions left")
    })
    .await;
    assert_eq!(
        condition(&quiescing, "Moved"),
        Some(("False".into(), "Moving".into()))
    );
    assert_eq!(
        condition(&quiescing, "Ready"),
        Some(("False".into(), "Moving".into()))
    );
    // New sessions are refused meanwhile.
    let uri = secret_value(&fleet.secret("acme").await, "uri");
    let Err(refused) = PgConnection::connect(&uri).await else {
        panic!("a new session was let in while the tenant is quiesced");
    };
    assert!(
        refused.to_string().contains("too many connections"),
        "{refused}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sqlx::query("SELECT 1").execute(&mut app).await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the session was never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let moved = fleet.moved("acme").await;
    let text = message(&moved, "Moved");
    assert!(text.contains("copied in"), "{text}");
    assert_eq!(
        moved.status.as_ref().unwrap().server.as_deref(),
        Some(fleet.two.as_str())
    );
    wait_ready(&fleet.tenants(), "acme").await;

    // One copy, on server 2, recorded there; the application reconnects through the updated Secret.
    serves_whole_from_two(&fleet, &slug, &ledger).await;
    assert_eq!(move_phase(&slug).await.as_deref(), Some("Done"));
    // This move's movers are gone from both servers.
    for server in [Server::One, Server::Two] {
        let left = movers(server, &fleet.ns).await;
        assert!(left.is_empty(), "{left:?}");
    }
    let seen = events(&fleet.client, &fleet.ns, "acme").await;
    assert!(
        seen.iter().any(|e| e.starts_with("Normal MoveStarted")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| e.starts_with("Normal Moved")),
        "{seen:?}"
    );

    // Installations go on there: a new module lands on server 2, and the tenant's own keeps its rows.
    apply_yaml(
        &fleet.ns,
        "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: ModuleInstallation\n\
         metadata: {name: acme-expenses}\nspec: {tenant: acme, module: expenses}\n",
    );
    wait_ready(&fleet.installations(), "acme-expenses").await;
    assert!(
        Server::Two
            .tables(&database)
            .await
            .contains(&"expenses".to_string())
    );

    // The annotation removed: no Moved condition any more, the tenant stays where it is.
    fleet.ask_move("acme", None).await;
    wait_until(&fleet.tenants(), "acme", "no Moved condition", |t| {
        condition(t, "Moved").is_none()
    })
    .await;
    assert_eq!(holder(&slug).await, Server::Two);
}

#[tokio::test]
async fn a_move_to_an_unfit_server_is_refused_and_the_tenant_serves_where_it_is() {
    let fleet = Fleet::start("move-refused", None).await;
    let slug = fleet.tenant("acme").await;
    let servers: Api<DatabaseServer> = Api::all(fleet.client.clone());
    servers
        .patch(
            &fleet.two,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "cordoned": true } })),
        )
        .await
        .expect("cordon server 2");
    wait_until(&servers, &fleet.two, "the cordon observed", |s| {
        s.status.as_ref().and_then(|s| s.observed_generation) == s.metadata.generation
    })
    .await;
    fleet.ask_move("acme", Some(&fleet.two)).await;
    let refused = wait_condition(&fleet.tenants(), "acme", "Moved", "False", "InvalidSpec").await;
    assert!(
        message(&refused, "Moved").contains("cordoned"),
        "{}",
        message(&refused, "Moved")
    );
    assert_eq!(
        condition(&refused, "Ready"),
        Some(("True".into(), "Reconciled".into()))
    );
    // A server that does not exist is refused the same way.
    fleet.ask_move("acme", Some("nowhere")).await;
    wait_until(&fleet.tenants(), "acme", "the refusal names nowhere", |t| {
        message(t, "Moved").contains("nowhere")
    })
    .await;
    assert_eq!(holder(&slug).await, Server::One);
    assert_eq!(move_phase(&slug).await, None);
    let (bulk, _, port) = served(&fleet, "acme").await;
    assert_eq!(bulk, ROWS);
    assert_eq!(port, port_of(Server::One));
}

#[tokio::test]
async fn with_retain_the_source_copy_is_kept_closed_and_never_adopted() {
    let fleet = Fleet::start("move-retain", None).await;
    let slug = fleet.tenant("acme").await;
    let database = format!("tenant_{slug}");
    fleet
        .tenants()
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "deletionPolicy": "Retain" } })),
        )
        .await
        .unwrap();
    fleet.ask_move("acme", Some(&fleet.two)).await;
    fleet.moved("acme").await;
    wait_ready(&fleet.tenants(), "acme").await;
    assert_eq!(recorded_server(&slug).await, fleet.two);
    let (bulk, _, port) = served(&fleet, "acme").await;
    assert_eq!((bulk, port), (ROWS, port_of(Server::Two)));
    // The source copy is still on server 1: closed to every login and marked as moved.
    let mut one = Server::One.connect("postgres").await;
    let (role_limit, database_limit, mark): (i32, i32, String) = sqlx::query_as(
        "SELECT r.rolconnlimit, d.datconnlimit, pg_catalog.shobj_description(r.oid, 'pg_authid')
           FROM pg_catalog.pg_roles r JOIN pg_catalog.pg_database d ON d.datdba = r.oid
          WHERE d.datname = $1",
    )
    .bind(&database)
    .fetch_one(&mut one)
    .await
    .expect("the kept copy on server 1");
    one.close().await.ok();
    assert_eq!((role_limit, database_limit), (0, 0));
    assert!(mark.starts_with("landlord moved "), "{mark}");
    assert!(
        mark.ends_with(&format!("to server {}", fleet.two)),
        "{mark}"
    );
    // Both copies exist; only the one on server 2 serves.
    wait_ready(&fleet.tenants(), "acme").await;
    assert!(Server::One.database_exists(&database).await);
    assert!(Server::Two.database_exists(&database).await);
}

#[tokio::test]
async fn in_production_a_move_waits_for_its_approval() {
    let mut fleet = Fleet::start("move-production", None).await;
    fleet.operator.stop();
    fleet.operator = Operator::start(
        &fleet.ns,
        &[
            ("LANDLORD_MOVE_GRACE_PERIOD", "3s"),
            ("LANDLORD_ENVIRONMENT", "production"),
        ],
    );
    let slug = fleet.tenant("acme").await;
    fleet.ask_move("acme", Some(&fleet.two)).await;
    let blocked = wait_condition(
        &fleet.tenants(),
        "acme",
        "Moved",
        "False",
        "DestructiveActionBlocked",
    )
    .await;
    assert!(
        message(&blocked, "Moved").contains("move-approved"),
        "{}",
        message(&blocked, "Moved")
    );
    assert_eq!(
        condition(&blocked, "Ready"),
        Some(("True".into(), "Reconciled".into()))
    );
    assert_eq!(move_phase(&slug).await, None);
    // An approval naming another server approves nothing (the operator looked at it: a reconcile since).
    let looked = fleet.operator.reconciles("landlord-tenant").await;
    fleet
        .tenants()
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                "tenancy.landlord.dev/move-approved": "default" } } })),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while fleet.operator.reconciles("landlord-tenant").await <= looked {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tenant was not looked at again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(move_phase(&slug).await, None);
    let still = fleet.tenants().get("acme").await.unwrap();
    assert_eq!(
        condition(&still, "Moved"),
        Some(("False".into(), "DestructiveActionBlocked".into()))
    );
    fleet
        .tenants()
        .patch(
            "acme",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": {
                "tenancy.landlord.dev/move-approved": fleet.two } } })),
        )
        .await
        .unwrap();
    fleet.moved("acme").await;
    assert_eq!(holder(&slug).await, Server::Two);
}

/// The operator halted right after recording `phase`, SIGKILLed there, then restarted: the move ends
/// with exactly one serving copy on the target and every row in it.
async fn killed_at(phase: &str) {
    let mut fleet = Fleet::start(&format!("move-kill-{}", phase.to_lowercase()), Some(phase)).await;
    let slug = fleet.tenant("acme").await;
    let ledger = Server::One
        .ledger_rows(&format!("tenant_{slug}"), "tenant")
        .await;
    fleet.ask_move("acme", Some(&fleet.two)).await;
    until_phase(&slug, phase).await;
    // Halted there: give it a moment to prove it stays.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(move_phase(&slug).await.as_deref(), Some(phase));
    fleet.restart();
    fleet.moved("acme").await;
    wait_ready(&fleet.tenants(), "acme").await;
    serves_whole_from_two(&fleet, &slug, &ledger).await;
}

#[tokio::test]
async fn killed_while_quiescing_the_move_resumes() {
    killed_at("Quiescing").await;
}

#[tokio::test]
async fn killed_while_copying_the_move_resumes() {
    killed_at("Copying").await;
}

#[tokio::test]
async fn killed_while_verifying_the_move_resumes() {
    killed_at("Verifying").await;
}

#[tokio::test]
async fn killed_after_the_switch_the_move_resumes() {
    killed_at("Switched").await;
}

#[tokio::test]
async fn killed_while_dropping_the_source_the_move_resumes() {
    killed_at("Dropping").await;
}

#[tokio::test]
async fn killed_in_the_middle_of_the_copy_the_move_starts_it_again() {
    let mut fleet = Fleet::start("move-kill-midcopy", None).await;
    let slug = fleet.tenant("acme").await;
    let database = format!("tenant_{slug}");
    // Enough to be caught copying: about 60 MB more.
    let mut app = fleet.application("acme").await;
    sqlx::raw_sql(
        "CREATE TABLE bulk2 AS SELECT g AS id, repeat(md5(g::text), 4) AS note
           FROM generate_series(1, 400000) g",
    )
    .execute(&mut app)
    .await
    .expect("the application writes more rows");
    app.close().await.ok();
    fleet.ask_move("acme", Some(&fleet.two)).await;
    // pg_restore at work on server 2: the operator is SIGKILLed under it (its children are orphaned).
    let mut target = Server::Two.connect("postgres").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let restoring: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE datname = $1 AND application_name = 'landlord-move')",
        )
        .bind(&database)
        .fetch_one(&mut target)
        .await
        .unwrap();
        if restoring {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pg_restore never ran"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    target.close().await.ok();
    fleet.operator.stop();
    assert_eq!(move_phase(&slug).await.as_deref(), Some("Copying"));
    fleet.restart();
    fleet.moved("acme").await;
    wait_ready(&fleet.tenants(), "acme").await;
    assert_eq!(holder(&slug).await, Server::Two);
    let mut app = fleet.application("acme").await;
    assert_eq!(count(&mut app, "bulk").await, ROWS);
    assert_eq!(count(&mut app, "bulk2").await, 400_000);
    app.close().await.ok();
}

#[tokio::test]
async fn a_copy_that_differs_is_rolled_back_and_the_source_serves() {
    let mut fleet = Fleet::start("move-differs", Some("Verifying")).await;
    let slug = fleet.tenant("acme").await;
    let database = format!("tenant_{slug}");
    fleet.ask_move("acme", Some(&fleet.two)).await;
    until_phase(&slug, "Verifying").await;
    // A mover on each side, until the move ends.
    assert_eq!(movers(Server::One, &fleet.ns).await.len(), 1);
    assert_eq!(movers(Server::Two, &fleet.ns).await.len(), 1);
    // The copy is changed behind the operator's back before it is verified.
    Server::Two
        .superuser_exec(&database, "DELETE FROM bulk WHERE id <= 10")
        .await;
    fleet.restart();
    let failed =
        wait_condition_long(&fleet.tenants(), "acme", "Moved", "False", "MoveFailed").await;
    let text = message(&failed, "Moved");
    assert!(text.contains("bulk"), "{text}");
    wait_ready(&fleet.tenants(), "acme").await;
    // The source serves, the copy is gone, nothing was lost.
    assert_eq!(holder(&slug).await, Server::One);
    assert_eq!(recorded_server(&slug).await, "default");
    let (bulk, tasks, port) = served(&fleet, "acme").await;
    assert_eq!((bulk, tasks), (ROWS, 50));
    assert_eq!(port, port_of(Server::One));
    let seen = events(&fleet.client, &fleet.ns, "acme").await;
    assert!(
        seen.iter().any(|e| e.starts_with("Warning MoveFailed")),
        "{seen:?}"
    );
    for server in [Server::One, Server::Two] {
        let left = movers(server, &fleet.ns).await;
        assert!(left.is_empty(), "{left:?}");
    }

    // A failure is not retried by itself; removing the annotation and asking again is.
    fleet.ask_move("acme", None).await;
    wait_until(&fleet.tenants(), "acme", "no Moved condition", |t| {
        condition(t, "Moved").is_none()
    })
    .await;
    assert_eq!(move_phase(&slug).await, None);
    fleet.ask_move("acme", Some(&fleet.two)).await;
    fleet.moved("acme").await;
    assert_eq!(holder(&slug).await, Server::Two);
}
