//! Issue 20, database side, against the real PostgreSQL: a tenant cannot reach the template build lock and
//! a session that holds it makes provisioning fail within the documented bound, retryably; a login loop
//! with another tenant's credentials never gets into a new tenant database (or the template) while it is
//! made; an idle session in `template1` blocks nothing; a database a crash left closed is finished.

mod support;

use std::time::{Duration, Instant};

use landlord::db::{self, Databases, Ensured, Error, LOCK_WAIT, Migrator, Templates};
use sqlx::{Connection, PgConnection};
use support::attack::{LoginLoop, sessions_of};
use support::db::{TestTenant, databases, landlord_schema, migration, set};
use support::{TestEnv, pg, unique};

/// Tests that build templates run one at a time: a build drops every other template of the server.
static TEMPLATE_BUILDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Tests that hold every comment write run alone (write); the others share (read). Taken after
/// `TEMPLATE_BUILDS`.
static ALONE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A template of its own (a one-migration "core schema" unique to this call), so that it is not built yet;
/// dropped with `drop_template`.
fn fresh_templates() -> Templates {
    let up = format!("CREATE TABLE hardening (id int); -- {}", unique("tpl"));
    let core = set(vec![migration(1, "hardening", &up, None)]);
    Templates::new(&core, Migrator::new())
}

async fn drop_template(templates: &Templates) {
    let name = templates.name().unwrap();
    let mut su = pg::connect("postgres").await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut su)
    .await
    .unwrap();
}

/// The maintenance database opened to one role for the length of a test, as PostgreSQL's default opens it
/// to everyone (revoked again before the role is dropped).
struct ConnectGrant(String);

impl ConnectGrant {
    async fn new(role: &str) -> ConnectGrant {
        pg::superuser_exec(
            "postgres",
            format!("GRANT CONNECT ON DATABASE postgres TO \"{role}\""),
        )
        .await;
        ConnectGrant(role.to_string())
    }
}

impl Drop for ConnectGrant {
    fn drop(&mut self) {
        let role = self.0.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(pg::superuser_exec(
                    "postgres",
                    format!("REVOKE CONNECT ON DATABASE postgres FROM \"{role}\""),
                ))
        })
        .join();
    }
}

async fn take_advisory_lock(conn: &mut PgConnection, key: i64) {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_template_build_lock_is_out_of_a_tenants_reach_and_a_holder_costs_a_bounded_retryable_error()
 {
    let _serial = TEMPLATE_BUILDS.lock().await;
    let _shared = ALONE.read().await;
    let databases = databases();
    landlord_schema(&databases).await;
    let attacker = TestTenant::provision(&databases, "squatter", &[]).await;
    let _grant = ConnectGrant::new(attacker.names.role().as_str()).await;

    // A tenant cannot open the landlord database, where the build lock is taken. Even where it may open
    // the maintenance database (PostgreSQL's default), holding the build lock's key there stalls nothing.
    let templates = fresh_templates();
    let key = templates.build_lock_key("default").unwrap();
    assert!(attacker.connect_as_tenant("landlord").await.is_err());
    let mut squatter = attacker
        .connect_as_tenant("postgres")
        .await
        .expect("the maintenance database is open to the attacker for this test");
    take_advisory_lock(&mut squatter, key).await;
    let tenant = TestTenant::unprovisioned("aftersquat");
    let provisioned = tokio::time::timeout(
        LOCK_WAIT * 3,
        tenant.ensure(&databases, &[], Some(&templates)),
    )
    .await
    .expect("a tenant's lock in the maintenance database must not stall provisioning")
    .expect("provisioned");
    assert!(provisioned.cloned, "cloned from the template it built");
    squatter.close().await.unwrap();
    drop_template(&templates).await;

    // A session with the landlord's rights holds the lock: of two provisionings needing the template, one
    // goes on without it at once (nothing in the process waits for the other), the other gives up after
    // LOCK_WAIT with a retryable error that says what it waited for.
    let templates = fresh_templates();
    let mut holder = PgConnection::connect(TestEnv::get().landlord_url())
        .await
        .unwrap();
    take_advisory_lock(&mut holder, templates.build_lock_key("default").unwrap()).await;
    let (first, second) = (
        TestTenant::unprovisioned("heldone"),
        TestTenant::unprovisioned("heldtwo"),
    );
    let started = Instant::now();
    let timed = |tenant| {
        let (databases, templates) = (&databases, &templates);
        async move {
            let result = TestTenant::ensure(tenant, databases, &[], Some(templates)).await;
            (result, started.elapsed())
        }
    };
    let both = futures::future::join(timed(&first), timed(&second));
    let ((one, one_took), (two, two_took)) = tokio::time::timeout(LOCK_WAIT * 3, both)
        .await
        .expect("bounded");
    let ((done, done_took), (busy, busy_took)) = match (one, two) {
        (Ok(done), Err(busy)) => ((done, one_took), (busy, two_took)),
        (Err(busy), Ok(done)) => ((done, two_took), (busy, one_took)),
        other => panic!("one provisioning goes on, the other waits for the lock: {other:?}"),
    };
    assert!(!done.cloned && done.database == Ensured::Created);
    assert!(
        matches!(busy, Error::LockBusy { .. }) && busy.is_retryable(),
        "{busy}"
    );
    let message = busy.to_string();
    assert!(
        message.contains("waited") && message.contains("the template build lock"),
        "{message}"
    );
    assert!(busy_took >= LOCK_WAIT, "gave up after {busy_took:?}");
    assert!(done_took < busy_took, "{done_took:?} vs {busy_took:?}");
    // Once the holder is gone, the next try builds and clones.
    holder.close().await.unwrap();
    let retried = TestTenant::unprovisioned("heldretry");
    assert!(
        retried
            .ensure(&databases, &[], Some(&templates))
            .await
            .unwrap()
            .cloned
    );
    drop_template(&templates).await;
}

/// Holds every comment write (`LOCK TABLE pg_shdescription IN EXCLUSIVE MODE`, as the superuser): the
/// database's mark, the statement Landlord runs right after `CREATE DATABASE`, then waits, and the moment
/// between a database's creation and its end of provisioning lasts until the test has seen the loop try.
async fn hold_comments() -> PgConnection {
    let mut su = pg::connect("postgres").await;
    sqlx::raw_sql("BEGIN; LOCK TABLE pg_catalog.pg_shdescription IN EXCLUSIVE MODE")
        .execute(&mut su)
        .await
        .unwrap();
    su
}

/// Whether a session waits for the comment lock the test holds.
async fn a_comment_waits() -> bool {
    let mut su = pg::connect("postgres").await;
    let waiting: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_locks
                         WHERE NOT granted AND relation = 'pg_catalog.pg_shdescription'::regclass)",
    )
    .fetch_one(&mut su)
    .await
    .unwrap();
    su.close().await.unwrap();
    waiting
}

/// A login loop of `attacker` on a new tenant's database, from before it is made until after, while the
/// moment after its creation is stretched: it must never get in. Returns whether it was cloned.
async fn raced(
    databases: &Databases,
    attacker: &TestTenant,
    templates: Option<&Templates>,
    what: &str,
) -> bool {
    let tenant = TestTenant::unprovisioned("raced");
    // The role first, so that the one comment written while the test holds them is the database's.
    let mut admin = databases.admin().await.unwrap();
    db::ensure_tenant_role(&mut admin, &tenant.names, &tenant.owner, &tenant.password)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let login = LoginLoop::start(attacker, &[tenant.database().to_string()]);
    login.attempts_more(10).await;
    let mut held = Some(hold_comments().await);
    let provisioning = tenant.ensure(databases, &[], templates);
    tokio::pin!(provisioning);
    let provisioned = loop {
        tokio::select! {
            provisioned = &mut provisioning => break provisioned.expect("provisioned"),
            () = async {
                while !a_comment_waits().await {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                login.attempts_more(20).await;
            }, if held.is_some() => {
                let mut su = held.take().unwrap();
                sqlx::raw_sql("COMMIT").execute(&mut su).await.unwrap();
                su.close().await.unwrap();
            }
        }
    };
    assert!(held.is_none(), "{what}: provisioning never wrote a comment");
    login.attempts_more(10).await;
    let inside = sessions_of(attacker.names.role().as_str(), tenant.database()).await;
    let entered = login.stop().await;
    assert_eq!(
        (entered, inside),
        (Vec::<String>::new(), 0),
        "{what}: another tenant's credentials got in"
    );
    provisioned.cloned
}

#[tokio::test]
async fn a_login_loop_of_another_tenant_never_enters_a_new_database_without_the_template() {
    let _alone = ALONE.write().await;
    let databases = databases();
    let attacker = TestTenant::provision(&databases, "looper", &[]).await;
    assert!(!raced(&databases, &attacker, None, "template off").await);
}

#[tokio::test]
async fn a_login_loop_of_another_tenant_never_enters_the_template_being_built_nor_a_database_made_without_it()
 {
    let _serial = TEMPLATE_BUILDS.lock().await;
    let _alone = ALONE.write().await;
    let databases = databases();
    let attacker = TestTenant::provision(&databases, "looptpl", &[]).await;
    // The template's build, with the loop on it and on the first clone.
    let templates = fresh_templates();
    let template = templates.name().unwrap();
    let tenant = TestTenant::unprovisioned("raced");
    let targets = [tenant.database().to_string(), template.to_string()];
    let login = LoginLoop::start(&attacker, &targets);
    login.attempts_more(10).await;
    let provisioned = tenant.ensure(&databases, &[], Some(&templates)).await;
    login.attempts_more(10).await;
    assert_eq!(login.stop().await, Vec::<String>::new());
    assert!(provisioned.expect("cloned").cloned);
    // A session in the template (a DBA's) makes PostgreSQL refuse to clone: the database is made the
    // ordinary way, as closed as a clone.
    pg::superuser_exec(
        "postgres",
        format!("ALTER DATABASE \"{template}\" ALLOW_CONNECTIONS true"),
    )
    .await;
    let inside = pg::connect(template.as_str()).await;
    assert!(!raced(&databases, &attacker, Some(&templates), "template in use").await);
    inside.close().await.unwrap();
    drop_template(&templates).await;
}

#[tokio::test]
async fn an_idle_session_in_template1_blocks_no_database_landlord_creates() {
    let _serial = TEMPLATE_BUILDS.lock().await;
    let _shared = ALONE.read().await;
    let databases = databases();
    let attacker = TestTenant::provision(&databases, "idler", &[]).await;
    // Any login may open template1 (PostgreSQL's default), and CREATE DATABASE copies it by default.
    let idle = attacker
        .connect_as_tenant("template1")
        .await
        .expect("template1 is open to PUBLIC");
    assert_eq!(
        sessions_of(attacker.names.role().as_str(), "template1").await,
        1
    );

    let plain = TestTenant::unprovisioned("idleplain");
    let provisioned = plain.ensure(&databases, &[], None).await.expect("created");
    assert_eq!(provisioned.database, Ensured::Created);

    let templates = fresh_templates();
    let cloned = TestTenant::unprovisioned("idletpl");
    assert!(
        cloned
            .ensure(&databases, &[], Some(&templates))
            .await
            .expect("template built and cloned")
            .cloned
    );
    drop_template(&templates).await;

    let scratch = db::scratch_name(&db::scratch_run_id().unwrap(), "idle").unwrap();
    let mut admin = databases.admin().await.unwrap();
    db::create_scratch(&mut admin, &scratch, None)
        .await
        .expect("scratch database created");
    db::drop_scratch(&mut admin, &scratch).await.unwrap();
    admin.close().await.unwrap();
    idle.close().await.unwrap();
}

#[tokio::test]
async fn a_database_a_crash_left_closed_is_finished_and_foreign_sessions_are_ended() {
    let _shared = ALONE.read().await;
    let databases = databases();
    landlord_schema(&databases).await;
    let attacker = TestTenant::provision(&databases, "lingerer", &[]).await;
    let tenant = TestTenant::unprovisioned("crashed");
    let mut admin = databases.admin().await.unwrap();
    db::ensure_tenant_role(&mut admin, &tenant.names, &tenant.owner, &tenant.password)
        .await
        .unwrap();
    admin.close().await.unwrap();
    // What an older Landlord could leave: created open to PUBLIC, another tenant got in; then closed.
    let database = tenant.database();
    let role = tenant.names.role().as_str();
    pg::superuser_exec(
        "postgres",
        format!("CREATE DATABASE \"{database}\" OWNER \"{role}\" TEMPLATE template0"),
    )
    .await;
    let lingering = attacker
        .connect_as_tenant(database)
        .await
        .expect("open to PUBLIC");
    pg::superuser_exec(
        "postgres",
        format!("ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS false"),
    )
    .await;

    let provisioned = tenant
        .ensure(&databases, &[], None)
        .await
        .expect("finished");
    assert_eq!(provisioned.database, Ensured::Existed);
    assert_eq!(
        sessions_of(attacker.names.role().as_str(), database).await,
        0,
        "the other tenant's session was ended"
    );
    drop(lingering);
    assert!(attacker.connect_as_tenant(database).await.is_err());
    let mut su = pg::connect("postgres").await;
    let state: (bool, bool) = sqlx::query_as(
        "SELECT datallowconn, has_database_privilege('public', datname, 'CONNECT')
           FROM pg_database WHERE datname = $1",
    )
    .bind(database)
    .fetch_one(&mut su)
    .await
    .unwrap();
    su.close().await.unwrap();
    assert_eq!(state, (true, false), "open, but not to PUBLIC");
    tenant
        .connect_as_tenant(database)
        .await
        .expect("its own role logs in")
        .close()
        .await
        .unwrap();
}
