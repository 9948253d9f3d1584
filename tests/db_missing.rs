//! A tenant database Landlord made and that is gone, at the database layer: provisioning that may not create
//! it says `DatabaseMissing` and makes nothing (with and without the template), a tenant login to it says
//! so after confirming it in the catalog, and one that may create it (a recreate) does.

mod support;

use landlord::db::Migrator;
use landlord::db::{self, Ensured, Error, Templates, TenantRequest};
use support::db::{TestTenant, core_catalog, databases};
use support::pg;

#[tokio::test]
async fn a_database_that_may_not_be_made_is_missing_and_stays_missing() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "vanish", &[]).await;
    pg::drop_database(tenant.database()).await;

    // A tenant login tells the missing database from a server that does not answer.
    let err = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DatabaseMissing { .. }), "{err}");
    assert!(!err.is_retryable());

    let catalog = core_catalog();
    let templates = Templates::new(&catalog.core_tenant, Migrator::new());
    for template in [None, Some(&templates)] {
        let request = TenantRequest {
            tenant: &tenant.names,
            owner: &tenant.owner,
            password: &tenant.password,
            extensions: &[],
            templates: template,
            may_create_database: false,
        };
        let err = db::ensure_tenant(&databases, &request).await.unwrap_err();
        assert!(matches!(err, Error::DatabaseMissing { .. }), "{err}");
        assert!(
            !pg::database_exists(tenant.database()).await,
            "made again (template: {})",
            template.is_some()
        );
    }

    // Asked for (a recreate): made anew, empty.
    let request = TenantRequest {
        tenant: &tenant.names,
        owner: &tenant.owner,
        password: &tenant.password,
        extensions: &[],
        templates: None,
        may_create_database: true,
    };
    let (provisioned, conn) = db::ensure_tenant(&databases, &request).await.unwrap();
    conn.close().await.unwrap();
    assert_eq!(provisioned.database, Ensured::Created);
}
