//! Placement at the database layer, against the real landlord database: a new slug goes to the candidate
//! with the fewest tenants under its cap (ties by name), a recorded slug keeps its server whatever the
//! candidates, many claims racing for a server's last slots get exactly its cap, and a landlord database
//! of the single-server Landlord is upgraded with every tenant on `default`, without touching any tenant.

mod support;

use landlord::catalog::Scope;
use landlord::db::mirror::{self, Candidate, Claimed, TenantRecord};
use landlord::db::{self, Databases, Migrator, TenantOwner};
use support::db::{core_catalog, databases, landlord_schema, limits, owner};
use support::{TestEnv, pg, unique, unique_slug};

fn candidate(server: &str, max_tenants: Option<i64>) -> Candidate {
    Candidate {
        server: server.into(),
        max_tenants,
    }
}

/// A Tenant of this test: its slug and owner.
struct Claimant {
    slug: String,
    owner: TenantOwner,
}

impl Claimant {
    fn new(prefix: &str) -> Claimant {
        let slug = unique_slug(prefix);
        Claimant {
            owner: owner(&slug),
            slug,
        }
    }

    async fn claim(&self, databases: &Databases, candidates: &[Candidate]) -> Claimed {
        let database = format!("tenant_{}", self.slug);
        let record = TenantRecord {
            slug: &self.slug,
            database: &database,
            display_name: None,
        };
        mirror::claim_tenant(databases.landlord_pool(), &record, &self.owner, candidates)
            .await
            .expect("claim")
    }

    async fn forget(&self, databases: &Databases) {
        mirror::forget_tenant(databases.landlord_pool(), &self.slug, &self.owner.uid)
            .await
            .expect("forget");
    }
}

fn server_of(claimed: &Claimed) -> &str {
    match claimed {
        Claimed::Ours { server } => server,
        other => panic!("not placed: {other:?}"),
    }
}

#[tokio::test]
async fn a_new_slug_goes_to_the_fewest_under_the_cap_and_a_recorded_one_stays() {
    let databases = databases();
    landlord_schema(&databases).await;
    // Server names of this test alone: the landlord database is shared with every other test.
    let (a, b) = (unique("pa"), unique("pb"));
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    let both = [candidate(&a, None), candidate(&b, Some(2))];
    let tenants: Vec<Claimant> = (0..5).map(|_| Claimant::new("place")).collect();
    let mut placed = Vec::new();
    for tenant in &tenants {
        placed.push(server_of(&tenant.claim(&databases, &both).await).to_string());
    }
    // Ties by name, then the fewest: a, b, a, b; b is full at 2, so a takes the fifth.
    assert_eq!(placed, [&a, &b, &a, &b, &a].map(|s| s.clone()));
    let counts = mirror::tenants_per_server(databases.landlord_pool())
        .await
        .unwrap();
    assert_eq!((counts[&a], counts[&b]), (3, 2));
    // Recorded: the slug stays where it is, whatever the candidates say now.
    let again = tenants[1].claim(&databases, &[candidate(&a, None)]).await;
    assert_eq!(server_of(&again), b);
    // Nothing has room: nothing is written.
    let full = Claimant::new("place");
    assert_eq!(
        full.claim(&databases, &[candidate(&b, Some(2))]).await,
        Claimed::NoServer
    );
    assert!(
        mirror::slug_record(databases.landlord_pool(), &full.slug)
            .await
            .unwrap()
            .is_none()
    );
    for tenant in &tenants {
        tenant.forget(&databases).await;
    }
}

#[tokio::test]
async fn claims_racing_for_the_last_slots_get_exactly_the_cap() {
    // A pool as wide as the race, so that every claim runs at once.
    let env = TestEnv::get();
    let wide = landlord::db::Limits {
        landlord_pool: 12,
        ..limits()
    };
    let databases =
        std::sync::Arc::new(Databases::new(env.admin_url(), env.landlord_url(), wide).unwrap());
    landlord_schema(&databases).await;
    let server = unique("race");
    let tenants: Vec<std::sync::Arc<Claimant>> = (0..12)
        .map(|_| std::sync::Arc::new(Claimant::new("race")))
        .collect();
    let claims = tenants.iter().map(|tenant| {
        let databases = databases.clone();
        let tenant = tenant.clone();
        let candidates = [candidate(&server, Some(3))];
        tokio::spawn(async move { tenant.claim(&databases, &candidates).await })
    });
    let results: Vec<Claimed> = futures::future::join_all(claims)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let won = results
        .iter()
        .filter(|c| matches!(c, Claimed::Ours { .. }))
        .count();
    let waiting = results.iter().filter(|c| **c == Claimed::NoServer).count();
    assert_eq!((won, waiting), (3, 9), "{results:?}");
    let counts = mirror::tenants_per_server(databases.landlord_pool())
        .await
        .unwrap();
    assert_eq!(counts[&server], 3);
    for tenant in &tenants {
        tenant.forget(&databases).await;
    }
}

#[tokio::test]
async fn an_upgraded_landlord_database_has_every_tenant_on_default() {
    // A landlord database as the single-server Landlord left it (core migrations up to 6), in a scratch
    // database of its own.
    let scratch = unique_slug("upgrade");
    pg::superuser_exec("postgres", format!("CREATE DATABASE {scratch}")).await;
    let url = TestEnv::get()
        .superuser_url()
        .rsplit_once('/')
        .map(|(server, _)| format!("{server}/{scratch}"))
        .unwrap();
    let old = Databases::new(TestEnv::get().admin_url(), &url, limits()).unwrap();
    let catalog = core_catalog();
    let track = db::Track::core(&catalog, Scope::Landlord);
    let mut conn = old.landlord().await.unwrap();
    Migrator::new()
        .apply(&mut conn, &track, Some(20250101000006))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO tenants (slug, database_name, status, resource_uid, namespace, name, database_made)
         VALUES ('kept', 'tenant_kept', 'Retained', '', 'ns', 'kept', true),
                ('live', 'tenant_live', 'Ready', 'u1', 'ns', 'live', true)",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let report = Migrator::new()
        .apply(&mut conn, &track, catalog.core_landlord.latest())
        .await
        .unwrap();
    conn.close().await.unwrap();
    let ran: Vec<i64> = report.executed.iter().map(|e| e.step.version).collect();
    assert_eq!(
        ran,
        [20250101000007, 20250101000008],
        "only the servers' and the moves' migrations ran"
    );
    let counts = mirror::tenants_per_server(old.landlord_pool())
        .await
        .unwrap();
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [("default".to_string(), 2)]
    );
    // The retained database is re-adopted where it is, whatever the candidates.
    let record = TenantRecord {
        slug: "kept",
        database: "tenant_kept",
        display_name: None,
    };
    let mut adopter = owner("kept");
    adopter.namespace = "ns".into();
    let claimed = mirror::claim_tenant(
        old.landlord_pool(),
        &record,
        &adopter,
        &[candidate("elsewhere", None)],
    )
    .await
    .unwrap();
    assert_eq!(server_of(&claimed), "default");
    old.landlord_pool().close().await;
    pg::superuser_exec("postgres", format!("DROP DATABASE {scratch} WITH (FORCE)")).await;
}

#[tokio::test]
async fn a_servers_budget_bounds_its_connections_within_the_global_limit() {
    let env = TestEnv::get();
    let quick = landlord::db::Limits {
        max_connections: 4,
        connect_timeout: std::time::Duration::from_secs(2),
        ..limits()
    };
    let base = Databases::new(env.admin_url(), env.landlord_url(), quick).unwrap();
    let second = base
        .on_server(db::ServerAccess {
            name: "second",
            admin_url: env.server2_admin_url(),
            endpoint: None,
            max_connections: Some(1),
        })
        .unwrap();
    assert_eq!(second.server(), "second");
    let held = second.admin().await.expect("the server's one slot");
    // The server's budget is spent: the next one waits, and gives up at the connect timeout.
    let err = second.admin().await.unwrap_err();
    assert!(matches!(err, db::Error::ConnectTimeout { .. }), "{err}");
    // The global limit still has room for the other server.
    let other = base.admin().await.expect("a slot on the first server");
    assert_eq!(base.available_connections(), 2);
    drop(held);
    let again = second.admin().await.expect("the slot, given back");
    drop((other, again));
    // And the admin role there is fit for its work.
    let role = second.admin_role().await.unwrap();
    assert!(role.create_database && role.create_role && !role.superuser);
}
