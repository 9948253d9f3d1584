//! Tenant provisioning against the real PostgreSQL: validation before SQL, isolation between tenants,
//! idempotence and adoption, extensions, the connection limit.

mod support;

use std::time::Duration;

use landlord::db::{
    self, Databases, Dropped, Ensured, Error, Found, Ident, Limits, Password, Provisioned,
    TenantNames, TenantOwner, TenantRequest,
};
use sqlx::{Connection, PgConnection};
use support::db::{TestTenant, databases, landlord_schema, owner};
use support::pg;
use support::{TestEnv, unique_slug};

/// What a controller does with a Tenant's spec: validate, then provision.
async fn provision_spec(
    databases: &Databases,
    slug: &str,
    extensions: &[&str],
) -> Result<Provisioned, Error> {
    let tenant = TenantNames::new(slug)?;
    let extensions = Ident::all(extensions)?;
    let password = Password::generate()?;
    ensure(databases, &tenant, &owner(slug), &password, &extensions).await
}

async fn ensure(
    databases: &Databases,
    tenant: &TenantNames,
    owner: &TenantOwner,
    password: &Password,
    extensions: &[Ident],
) -> Result<Provisioned, Error> {
    let (provisioned, conn) = db::ensure_tenant(
        databases,
        &TenantRequest {
            tenant,
            owner,
            password,
            extensions,
            templates: None,
            may_create_database: true,
        },
    )
    .await?;
    conn.close().await?;
    Ok(provisioned)
}

const BAD_SLUGS: &[&str] = &[
    "acme;drop",
    "a\"b",
    "x; DROP DATABASE landlord",
    "x\"; DROP DATABASE landlord; --",
    "acme' OR '1'='1",
    "Acme",
    "ACME",
    "acmé",
    "テナント",
    "",
    "_acme",
    "9acme",
    // tenant_ + 57 bytes = 64 bytes: PostgreSQL would truncate it.
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

const BAD_EXTENSIONS: &[&str] = &[
    "ltree; DROP DATABASE landlord",
    "a\"b",
    "LTREE",
    "ltree--",
    "\"ltree\"",
    "btree gin",
    "ltrée",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

#[tokio::test]
async fn injection_attempts_are_rejected_before_any_sql_runs() {
    // Nothing listens on port 1: any attempt to talk to PostgreSQL would fail as DatabaseUnavailable.
    let nowhere = Databases::new(
        "postgres://nobody:x@127.0.0.1:1/postgres",
        "postgres://nobody:x@127.0.0.1:1/landlord",
        Limits {
            connect_timeout: Duration::from_secs(2),
            ..Limits::default()
        },
    )
    .unwrap();
    assert_eq!(BAD_SLUGS.last().unwrap().len() + "tenant_".len(), 64);
    for slug in BAD_SLUGS {
        let err = provision_spec(&nowhere, slug, &[]).await.unwrap_err();
        assert!(matches!(err, Error::InvalidIdent { .. }), "{slug:?}: {err}");
        assert!(!err.is_retryable());
    }
    for extension in BAD_EXTENSIONS {
        let err = provision_spec(&nowhere, "acme", &["ltree", extension])
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidIdent { .. }),
            "{extension:?}: {err}"
        );
    }
    // The control: valid input does reach for the server.
    let err = provision_spec(&nowhere, "acme", &["ltree"])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Connect { .. } | Error::ConnectTimeout { .. }),
        "{err}"
    );

    // And against the real server nothing happened.
    let real = databases();
    for slug in BAD_SLUGS {
        assert!(provision_spec(&real, slug, &[]).await.is_err());
    }
    let mut su = pg::connect("postgres").await;
    let landlord: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'landlord')")
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert!(landlord);
    let odd: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_database WHERE datname ~ '[^a-z0-9_]')
              + (SELECT count(*) FROM pg_roles WHERE rolname ~ '[^a-z0-9_]' AND rolname !~ '^pg_')",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    assert_eq!(odd, 0);
}

fn is_permission_denied(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.code().as_deref() == Some("42501"))
}

#[tokio::test]
async fn tenant_credentials_open_only_their_own_database() {
    let databases = databases();
    let a = TestTenant::provision(&databases, "iso_a", &[]).await;
    let b = TestTenant::provision(&databases, "iso_b", &[]).await;

    let mut own = a.connect_as_tenant(a.database()).await.unwrap();
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut own)
        .await
        .unwrap();
    assert_eq!(user, a.database());
    own.close().await.unwrap();

    for (who, whose) in [(&a, &b), (&b, &a)] {
        let err = who.connect_as_tenant(whose.database()).await.unwrap_err();
        assert!(is_permission_denied(&err), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "permission denied for database \"{}\"",
                whose.database()
            )),
            "{message}"
        );
    }
    let err = a.connect_as_tenant("landlord").await.unwrap_err();
    assert!(is_permission_denied(&err), "{err}");

    // The password is what lets it in.
    let options = pg::options(a.database())
        .username(a.names.role().as_str())
        .password("not-the-password");
    let err = PgConnection::connect_with(&options).await.unwrap_err();
    assert_eq!(
        err.as_database_error().and_then(|e| e.code()).as_deref(),
        Some("28P01")
    );
}

#[tokio::test]
async fn provisioning_twice_adopts_and_the_role_follows_the_secrets_password() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "twice", &["ltree"]).await;
    let extensions = Ident::all(&["ltree"]).unwrap();
    let again = ensure(
        &databases,
        &tenant.names,
        &tenant.owner,
        &tenant.password,
        &extensions,
    )
    .await
    .unwrap();
    assert_eq!(
        again,
        Provisioned {
            role: Ensured::Existed,
            database: Ensured::Existed,
            password_set: false,
            cloned: false,
        }
    );

    // A hand-edited Secret: the role is set to the password it now holds, the old one stops working.
    let first = tenant.password.clone();
    let edited = Password::new("chosen-by-hand").unwrap();
    let after = ensure(&databases, &tenant.names, &tenant.owner, &edited, &[])
        .await
        .unwrap();
    assert!(after.password_set);
    let database = tenant.database();
    tenant
        .connect_with_password(database, &edited)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    assert!(
        tenant
            .connect_with_password(database, &first)
            .await
            .is_err()
    );

    let credentials = databases.tenant_credentials(&tenant.names, edited.clone());
    let mut via_uri = PgConnection::connect(&credentials.uri()).await.unwrap();
    sqlx::query("SELECT 1").execute(&mut via_uri).await.unwrap();
    via_uri.close().await.unwrap();
    assert!(!format!("{credentials:?}").contains(edited.expose()));

    assert_eq!(
        db::drop_tenant(&databases, &tenant.names, &tenant.owner)
            .await
            .unwrap(),
        (Dropped::Dropped, Dropped::Dropped)
    );
    assert_eq!(
        db::drop_tenant(&databases, &tenant.names, &tenant.owner)
            .await
            .unwrap(),
        (Dropped::AlreadyGone, Dropped::AlreadyGone)
    );
}

/// The role's password verifier, membership of the admin role, and comment: what adoption must not touch.
async fn role_state(role: &str) -> (Option<String>, i64, Option<String>) {
    let mut su = pg::connect("postgres").await;
    let state = sqlx::query_as(
        "SELECT a.rolpassword,
                (SELECT count(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                  WHERE g.rolname = $1),
                shobj_description(a.oid, 'pg_authid')
           FROM pg_authid a WHERE a.rolname = $1",
    )
    .bind(role)
    .fetch_one(&mut su)
    .await
    .unwrap();
    su.close().await.unwrap();
    state
}

#[tokio::test]
async fn a_role_landlord_did_not_mark_is_refused_and_left_as_it_was() {
    let databases = databases();
    landlord_schema(&databases).await;
    let names = TenantNames::new(&unique_slug("squat")).unwrap();
    let role = names.role().as_str().to_string();
    pg::superuser_exec(
        "postgres",
        format!(
            "CREATE ROLE {} LOGIN PASSWORD 'squatter'",
            names.role().quoted()
        ),
    )
    .await;
    let before = role_state(&role).await;

    let err = provision_spec(&databases, names.slug(), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::AdoptionRefused {
                object: "role",
                found: Found::Unmarked,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_retryable());
    // No password reset, no grant to the admin role, no comment, no database.
    assert_eq!(role_state(&role).await, before);
    assert_eq!(before.1, 0);
    let mut su = pg::connect("postgres").await;
    let database: Option<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname = $1")
            .bind(names.database().as_str())
            .fetch_optional(&mut su)
            .await
            .unwrap();
    assert_eq!(database, None);
    su.close().await.unwrap();
    // Nor is it dropped.
    assert_eq!(
        db::drop_tenant(&databases, &names, &owner(names.slug()))
            .await
            .unwrap(),
        (Dropped::AlreadyGone, Dropped::NotOurs)
    );
    assert_eq!(role_state(&role).await, before);
    pg::drop_tenant_blocking(&role);
}

#[tokio::test]
async fn a_role_marked_for_another_tenant_is_refused_and_one_of_the_same_name_readopted() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "marked", &[]).await;
    let role = tenant.names.role().as_str().to_string();
    let before = role_state(&role).await;

    // Another namespace's Tenant: refused, untouched.
    let elsewhere = TenantOwner {
        uid: "other-uid".into(),
        namespace: "team-b".into(),
        name: tenant.owner.name.clone(),
    };
    let err = ensure(
        &databases,
        &tenant.names,
        &elsewhere,
        &Password::generate().unwrap(),
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::AdoptionRefused { found: Found::OwnedBy(o), .. } if *o == tenant.owner),
        "{err}"
    );
    assert_eq!(role_state(&role).await, before);
    assert_eq!(
        db::drop_tenant(&databases, &tenant.names, &elsewhere)
            .await
            .unwrap(),
        (Dropped::NotOurs, Dropped::NotOurs)
    );

    // The same namespace and name with a new UID (deleted with Retain, applied again): re-adopted and
    // re-marked, the password kept.
    let again = TenantOwner {
        uid: "new-uid".into(),
        ..tenant.owner.clone()
    };
    let readopted = ensure(&databases, &tenant.names, &again, &tenant.password, &[])
        .await
        .unwrap();
    assert_eq!(
        readopted,
        Provisioned {
            role: Ensured::Readopted,
            database: Ensured::Existed,
            password_set: false,
            cloned: false,
        }
    );
    let after = role_state(&role).await;
    assert_eq!(after.0, before.0, "the password is kept");
    assert_eq!(after.2, Some(again.mark()));
}

#[tokio::test]
async fn a_database_owned_by_another_role_is_not_adopted() {
    let databases = databases();
    landlord_schema(&databases).await;
    let names = TenantNames::new(&unique_slug("foreign")).unwrap();
    pg::superuser_exec(
        "postgres",
        format!(
            "CREATE DATABASE {} OWNER landlord",
            names.database().quoted()
        ),
    )
    .await;

    let err = provision_spec(&databases, names.slug(), &[])
        .await
        .unwrap_err();
    let Error::AdoptionRefused {
        object: "database",
        found: Found::OwnedByRole(owner),
        ..
    } = &err
    else {
        panic!("expected AdoptionRefused, got {err:?}");
    };
    assert_eq!(owner, "landlord");
    assert!(!err.is_retryable());
    // Nor is it dropped: the role is ours now, the database is not.
    let dropped = db::drop_tenant(&databases, &names, &owner_of_slug(&names)).await;
    assert!(dropped.is_ok(), "{dropped:?}");
    let mut su = pg::connect("postgres").await;
    let kept: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(names.database().as_str())
            .fetch_one(&mut su)
            .await
            .unwrap();
    assert!(kept);
    su.close().await.unwrap();
    pg::drop_tenant_blocking(names.database().as_str());
}

/// Any owner: for a database that is not the role's, the answer is the same whoever asks.
fn owner_of_slug(names: &TenantNames) -> TenantOwner {
    owner(names.slug())
}

#[tokio::test]
async fn extensions_are_created_by_the_tenant_and_missing_ones_reported() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "ext", &["ltree", "btree_gin"]).await;
    let mut su = pg::connect(tenant.database()).await;
    let extensions: Vec<(String, String)> = sqlx::query_as(
        "SELECT extname::text, pg_get_userbyid(extowner)::text FROM pg_extension
         WHERE extname <> 'plpgsql' ORDER BY 1",
    )
    .fetch_all(&mut su)
    .await
    .unwrap();
    let owner = tenant.database().to_string();
    assert_eq!(
        extensions,
        [
            ("btree_gin".to_string(), owner.clone()),
            ("ltree".to_string(), owner)
        ]
    );
    su.close().await.unwrap();

    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let missing = Ident::all(&["no_such_extension"]).unwrap();
    let err = db::ensure_extensions(&mut conn, &missing)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExtensionUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("not installed"), "{err}");
    assert!(err.is_retryable(), "a DBA may install the package");
    // Installed but untrusted: only a superuser may create it; refused for good, not retried.
    let untrusted = Ident::all(&["file_fdw"]).unwrap();
    let err = db::ensure_extensions(&mut conn, &untrusted)
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::ExtensionUntrusted { .. }), "{err}");
    assert!(!err.is_retryable());
    // The session survives both.
    db::ensure_extensions(&mut conn, &Ident::all(&["ltree"]).unwrap())
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test]
async fn dedicated_connections_are_bounded_globally() {
    let env = TestEnv::get();
    let databases = Databases::new(
        env.admin_url(),
        env.landlord_url(),
        Limits {
            max_connections: 2,
            landlord_pool: 1,
            connect_timeout: Duration::from_millis(500),
        },
    )
    .unwrap();
    let tenant = TestTenant::provision(&databases, "bound", &[]).await;
    let first = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let _second = databases.admin().await.unwrap();
    assert_eq!(databases.available_connections(), 0);
    let err = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConnectTimeout { .. }), "{err}");
    assert!(err.is_retryable());
    first.close().await.unwrap();
    let mut third = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap();
    let role: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *third)
        .await
        .unwrap();
    assert_eq!(role, tenant.database());
}

#[tokio::test]
async fn drop_waits_for_a_session_it_may_not_terminate() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "dropwait", &[]).await;
    // Like an autovacuum worker, a superuser session cannot be terminated by the admin role; it ends soon.
    let session = pg::connect(tenant.database()).await;
    let ends = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        session.close().await.unwrap();
    });
    assert_eq!(
        db::drop_tenant(&databases, &tenant.names, &tenant.owner)
            .await
            .unwrap(),
        (Dropped::Dropped, Dropped::Dropped)
    );
    ends.await.unwrap();
}

#[tokio::test]
async fn the_operator_notices_a_landlord_or_maintenance_database_open_to_public() {
    // The test environment revokes CONNECT from PUBLIC on the landlord database, as a deployment must.
    // And on the maintenance database, as docs/operations.md advises.
    assert!(!databases().landlord_open_to_public().await.unwrap());
    assert!(!databases().maintenance_open_to_public().await.unwrap());
    // template1 keeps PostgreSQL's default: PUBLIC may connect.
    let env = TestEnv::get();
    let open = |url: &str| url.rsplit_once('/').unwrap().0.to_string() + "/template1";
    let databases = Databases::new(
        &open(env.admin_url()),
        &open(env.landlord_url()),
        support::db::limits(),
    )
    .unwrap();
    assert!(databases.landlord_open_to_public().await.unwrap());
    assert!(databases.maintenance_open_to_public().await.unwrap());
}
