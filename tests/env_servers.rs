//! The test environment's two PostgreSQL servers, as scripts/lib.sh makes them: server 1 with the landlord
//! database, server 2 with only an admin role that may create databases and roles, and no way in for PUBLIC.

mod support;

use sqlx::{Connection, PgConnection};
use support::pg::{self, Server};
use support::{TestEnv, unique_slug};
use tokio::sync::RwLock;

/// One test here stops server 2: it holds this for writing, the others for reading, so none sees it down.
static SERVER2: RwLock<()> = RwLock::const_new(());

async fn port(server: Server) -> String {
    server
        .strings("postgres", "SELECT current_setting('port')")
        .await
        .concat()
}

#[tokio::test]
async fn both_servers_answer_on_ports_of_their_own() {
    let _running = SERVER2.read().await;
    let (one, two) = (port(Server::One).await, port(Server::Two).await);
    assert!(!one.is_empty() && !two.is_empty());
    assert_ne!(one, two, "server 2 is server 1");
    assert!(Server::One.database_exists("landlord").await);
    assert!(!Server::Two.database_exists("landlord").await);
    assert!(!Server::Two.role_exists("landlord").await);
}

#[tokio::test]
async fn server2_admin_may_create_databases_and_roles_but_is_no_superuser() {
    let _running = SERVER2.read().await;
    let mut conn = Server::Two.connect("postgres").await;
    let flags: (bool, bool, bool, bool) = sqlx::query_as(
        "SELECT rolcanlogin, rolcreatedb, rolcreaterole, rolsuper FROM pg_roles
         WHERE rolname = 'landlord_admin'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("landlord_admin on server 2");
    assert_eq!(flags, (true, true, true, false));
}

#[tokio::test]
async fn server2_admin_url_logs_in_to_server2() {
    let _running = SERVER2.read().await;
    let mut conn = PgConnection::connect(TestEnv::get().server2_admin_url())
        .await
        .expect("log in with LANDLORD_DEV_SERVER2_ADMIN_URL");
    let (user, port_seen): (String, String) =
        sqlx::query_as("SELECT current_user::text, current_setting('port')")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(user, "landlord_admin");
    assert_eq!(port_seen, port(Server::Two).await);
}

#[tokio::test]
async fn public_cannot_connect_to_server2s_maintenance_database() {
    let _running = SERVER2.read().await;
    let privileges = Server::Two
        .strings(
            "postgres",
            "SELECT has_database_privilege('public', 'postgres', 'CONNECT')::text || ' '
                 || has_database_privilege('landlord_admin', 'postgres', 'CONNECT')::text",
        )
        .await;
    assert_eq!(privileges, ["false true"]);

    // A login with no grant of its own is turned away.
    let nobody = unique_slug("nobody");
    Server::Two
        .superuser_exec(
            "postgres",
            format!("CREATE ROLE \"{nobody}\" LOGIN PASSWORD 'not-a-secret'"),
        )
        .await;
    let options = Server::Two
        .options("postgres")
        .username(&nobody)
        .password("not-a-secret");
    let refused = PgConnection::connect_with(&options).await.err();
    Server::Two.drop_tenant(&nobody).await;
    let code = refused
        .as_ref()
        .and_then(|e| e.as_database_error())
        .and_then(|e| e.code().map(|c| c.to_string()));
    assert_eq!(code.as_deref(), Some("42501"), "{refused:?}");
}

#[tokio::test]
async fn server2_stops_and_starts_again_on_its_port() {
    let _alone = SERVER2.write().await;
    let before = port(Server::Two).await;
    pg::stop_server2();
    let down = PgConnection::connect_with(&Server::Two.options("postgres")).await;
    let one_answers = Server::One.database_exists("landlord").await;
    pg::start_server2();
    assert!(down.is_err(), "server 2 answered while stopped");
    assert!(one_answers, "server 1 went down with server 2");
    assert_eq!(port(Server::Two).await, before);
}
