//! What a Tenant's reconcile will do, decided before anything is written. Pure.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::super::credentials;
use super::super::registry::Server;
use super::gather::TenantFacts;
use super::validate::{Placement, ValidTenant};
use crate::catalog::Catalog;
use crate::crd::{RECREATE_DATABASE_ANNOTATION, Tenant, is_ready_at};
use crate::db::Password;
use crate::db::mirror::SlugRecord;

pub struct TenantPlan {
    /// The password the tenant's role must accept: the Secret's, or a new one when it holds none.
    pub password: Password,
    /// Where the database is, or may go.
    pub placement: Placement,
    /// The Secret as it must be on the recorded server, when it does not say so already (a tenant still to
    /// be placed gets `secret_on` its server once placed).
    pub secret: Option<Secret>,
    /// The Secret as gather found it.
    found_secret: Option<Secret>,
    /// The core tenant schema's last migration.
    pub core_target: Option<i64>,
    /// The resourceVersion of the Secret as found (None: there is none yet).
    pub credentials_version: Option<String>,
    /// Whether an absent database may be made: never made yet, or a person asked for a new one.
    pub may_create_database: bool,
    /// A re-creation the annotation asks for that the records do not hold yet: carried out (if the database
    /// is missing) and recorded once, whatever it finds.
    pub recreate: Option<String>,
    /// The records do not say yet that the database was made, or a re-creation is to be recorded.
    pub record_database: bool,
}

/// By hand: the Secret to write holds the password (and the URI with it); only its name and keys show.
impl std::fmt::Debug for TenantPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = self.secret.as_ref().map(|s| {
            let keys: Vec<&String> = s.data.iter().flat_map(|d| d.keys()).collect();
            format!(
                "Secret {} with keys {keys:?}",
                s.metadata.name.as_deref().unwrap_or_default()
            )
        });
        f.debug_struct("TenantPlan")
            .field("password", &self.password)
            .field("placement", &self.placement)
            .field("secret", &secret)
            .field("core_target", &self.core_target)
            .field("credentials_version", &self.credentials_version)
            .field("may_create_database", &self.may_create_database)
            .field("recreate", &self.recreate)
            .field("record_database", &self.record_database)
            .finish()
    }
}

pub fn plan(
    tenant: &Tenant,
    valid: &ValidTenant,
    placement: Placement,
    world: TenantFacts,
    catalog: &Catalog,
) -> TenantPlan {
    let password = world
        .secret
        .as_ref()
        .and_then(credentials::password)
        .unwrap_or(world.fresh_password);
    let secret = match &placement {
        Placement::Recorded(server) => {
            secret_to_write(tenant, valid, world.secret.as_ref(), server, &password)
        }
        Placement::Choose(_) => None,
    };
    let made = world.slug.as_ref().is_some_and(|r| r.database_made);
    let recorded = world.slug.as_ref().and_then(|r| r.recreated.as_deref());
    let recreate = tenant
        .annotations()
        .get(RECREATE_DATABASE_ANNOTATION)
        .filter(|asked| Some(asked.as_str()) != recorded)
        .cloned();
    TenantPlan {
        may_create_database: !made || recreate.is_some(),
        record_database: !made || recreate.is_some(),
        recreate,
        password,
        placement,
        found_secret: world.secret.clone(),
        credentials_version: world
            .secret
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone()),
        secret,
        core_target: catalog.core_tenant.latest(),
    }
}

impl TenantPlan {
    /// The Secret to write once the tenant is placed on `server` (the plan's own when it was placed already).
    pub fn secret_on(
        &mut self,
        tenant: &Tenant,
        valid: &ValidTenant,
        server: &Server,
    ) -> Option<Secret> {
        match self.placement {
            Placement::Recorded(_) => self.secret.take(),
            Placement::Choose(_) => secret_to_write(
                tenant,
                valid,
                self.found_secret.as_ref(),
                server,
                &self.password,
            ),
        }
    }
}

/// The Secret as it must be for the tenant's database on `server`, unless `found` says so already.
fn secret_to_write(
    tenant: &Tenant,
    valid: &ValidTenant,
    found: Option<&Secret>,
    server: &Server,
    password: &Password,
) -> Option<Secret> {
    let credentials = server
        .databases
        .tenant_credentials(&valid.names, password.clone());
    let desired = credentials::desired(tenant, credentials::data(&credentials));
    found
        .is_none_or(|current| needs_write(current, &desired))
        .then_some(desired)
}

/// Whether the Tenant may already stand where its spec asks, judged before reading any record: Ready for
/// this generation at the core target, its Secret as it must be and at the version whose password the
/// landlord recorded as logging in, the slug provisioned for it.
pub fn may_be_in_place(
    tenant: &Tenant,
    valid: &ValidTenant,
    slug: Option<&SlugRecord>,
    plan: &TenantPlan,
) -> bool {
    let ready = tenant.status.as_ref().is_some_and(|s| {
        s.core_version == plan.core_target && is_ready_at(&s.conditions, tenant.metadata.generation)
    });
    let verified = slug.is_some_and(|r| {
        r.is_ready_for(&valid.owner.uid)
            && plan.credentials_version.is_some()
            && r.credentials_version == plan.credentials_version
    });
    ready && verified && plan.secret.is_none() && !plan.record_database
}

/// Values, labels or owner differ (a hand edit, a Secret kept by a retained deletion, an older Landlord).
fn needs_write(current: &Secret, desired: &Secret) -> bool {
    let labels_missing = desired
        .metadata
        .labels
        .iter()
        .flatten()
        .any(|(k, v)| current.metadata.labels.as_ref().and_then(|l| l.get(k)) != Some(v));
    current.data != desired.data
        || labels_missing
        || current.metadata.owner_references != desired.metadata.owner_references
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::registry::Servers;
    use crate::crd::TenantSpec;
    use crate::db::mirror::TenantState;
    use crate::db::{Databases, Limits, TenantNames, TenantOwner};
    use std::sync::Arc;

    fn on(server: &Arc<Server>) -> Placement {
        Placement::Recorded(server.clone())
    }

    fn fixture() -> (Tenant, ValidTenant, Arc<Server>) {
        let mut tenant = Tenant::new("acme", TenantSpec::default());
        tenant.metadata.namespace = Some("ns".into());
        tenant.metadata.uid = Some("u1".into());
        let valid = ValidTenant {
            names: TenantNames::new("acme").unwrap(),
            extensions: vec![],
            owner: TenantOwner {
                uid: "u1".into(),
                namespace: "ns".into(),
                name: "acme".into(),
            },
        };
        let databases = Databases::new(
            "postgres://admin:a@db:5432/postgres",
            "postgres://landlord:l@db:5432/landlord",
            Limits::default(),
        )
        .unwrap();
        let server = Servers::new(Arc::new(databases), None, false)
            .all()
            .remove(0);
        (tenant, valid, server)
    }

    fn world(secret: Option<Secret>) -> TenantFacts {
        TenantFacts {
            slug: None,
            secret,
            extensions: None,
            moving: None,
            fresh_password: Password::new("fresh").unwrap(),
            servers: vec![],
            namespace_labels: Default::default(),
        }
    }

    fn slug_record(valid: &ValidTenant, made: bool, recreated: Option<&str>) -> SlugRecord {
        SlugRecord {
            owner: valid.owner.clone(),
            status: TenantState::Ready,
            credentials_version: None,
            database_made: made,
            recreated: recreated.map(String::from),
            server: "default".into(),
        }
    }

    #[tokio::test]
    async fn a_database_once_made_is_made_again_only_for_a_new_recreate_value() {
        let (mut tenant, valid, server) = fixture();
        // (made, recorded re-creation, annotation) → (may create, re-creation to carry out, record)
        let cases = [
            (false, None, None, (true, None, true)),
            (true, None, None, (false, None, false)),
            (true, None, Some("1"), (true, Some("1"), true)),
            (true, Some("1"), Some("1"), (false, None, false)),
            (true, Some("1"), Some("2"), (true, Some("2"), true)),
            // Removing the annotation asks for nothing.
            (true, Some("1"), None, (false, None, false)),
        ];
        for (made, recorded, annotation, expected) in cases {
            tenant.metadata.annotations = annotation
                .map(|v| [(RECREATE_DATABASE_ANNOTATION.to_string(), v.to_string())].into());
            let mut found = world(None);
            found.slug = Some(slug_record(&valid, made, recorded));
            let planned = plan(&tenant, &valid, on(&server), found, &Catalog::default());
            let got = (
                planned.may_create_database,
                planned.recreate.as_deref(),
                planned.record_database,
            );
            assert_eq!(got, expected, "{made} {recorded:?} {annotation:?}");
        }
        // A slug nobody recorded yet: its database is still to make.
        let fresh = plan(
            &tenant,
            &valid,
            on(&server),
            world(None),
            &Catalog::default(),
        );
        assert!(fresh.may_create_database && fresh.record_database);
    }

    #[tokio::test]
    async fn a_missing_secret_gets_a_fresh_password() {
        let (tenant, valid, server) = fixture();
        let plan = plan(
            &tenant,
            &valid,
            on(&server),
            world(None),
            &Catalog::default(),
        );
        assert_eq!(plan.password.expose(), "fresh");
        let secret = plan.secret.expect("a Secret to write");
        let uri = &secret.data.as_ref().unwrap()["uri"];
        assert_eq!(
            String::from_utf8_lossy(&uri.0),
            "postgres://tenant_acme:fresh@db:5432/tenant_acme"
        );
    }

    #[tokio::test]
    async fn the_plans_debug_output_holds_no_password() {
        let (tenant, valid, server) = fixture();
        let planned = plan(
            &tenant,
            &valid,
            on(&server),
            world(None),
            &Catalog::default(),
        );
        let shown = format!("{planned:?} {planned:#?}");
        assert!(!shown.contains("fresh"), "{shown}");
        // Nor as the bytes a derived Debug of the Secret's data would print.
        let bytes = format!("{:?}", b"fresh");
        assert!(!shown.contains(&bytes[1..bytes.len() - 1]), "{shown}");
        assert!(shown.contains("acme-db"), "{shown}");
    }

    #[tokio::test]
    async fn a_current_secret_is_left_alone_and_a_hand_edited_one_keeps_its_password() {
        let (tenant, valid, server) = fixture();
        let first = plan(
            &tenant,
            &valid,
            on(&server),
            world(None),
            &Catalog::default(),
        );
        let written = first.secret.unwrap();
        let again = plan(
            &tenant,
            &valid,
            on(&server),
            world(Some(written.clone())),
            &Catalog::default(),
        );
        assert!(again.secret.is_none(), "nothing to write");
        assert_eq!(again.password.expose(), "fresh");

        let mut edited = written;
        let data = edited.data.as_mut().unwrap();
        data.insert(
            "password".into(),
            k8s_openapi::ByteString(b"chosen".to_vec()),
        );
        let after_edit = plan(
            &tenant,
            &valid,
            on(&server),
            world(Some(edited)),
            &Catalog::default(),
        );
        assert_eq!(after_edit.password.expose(), "chosen");
        let uri = &after_edit.secret.unwrap().data.unwrap()["uri"];
        assert!(String::from_utf8_lossy(&uri.0).contains(":chosen@"));
    }

    #[tokio::test]
    async fn only_a_ready_tenant_with_verified_credentials_may_skip_its_database() {
        use crate::crd::TenantStatus;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let (mut tenant, valid, server) = fixture();
        tenant.metadata.generation = Some(2);
        let mut secret = plan(
            &tenant,
            &valid,
            on(&server),
            world(None),
            &Catalog::default(),
        )
        .secret
        .unwrap();
        secret.metadata.resource_version = Some("41".into());
        let mut found = world(Some(secret));
        found.slug = Some(slug_record(&valid, true, None));
        let planned = plan(&tenant, &valid, on(&server), found, &Catalog::default());
        let ready = |generation: i64| {
            let condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Reconciled".into(),
                message: String::new(),
                observed_generation: Some(generation),
                last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH),
            };
            Some(TenantStatus {
                conditions: vec![condition],
                core_version: planned.core_target,
                ..Default::default()
            })
        };
        let record = |status: &str, version: Option<&str>| SlugRecord {
            owner: valid.owner.clone(),
            status: TenantState::parse(status).unwrap(),
            credentials_version: version.map(String::from),
            database_made: true,
            recreated: None,
            server: "default".into(),
        };
        tenant.status = ready(2);
        assert!(may_be_in_place(
            &tenant,
            &valid,
            Some(&record("Ready", Some("41"))),
            &planned
        ));
        // The Secret changed since its password last logged in; never verified; slug not provisioned.
        for slug in [
            record("Ready", Some("40")),
            record("Ready", None),
            record("Provisioning", Some("41")),
        ] {
            assert!(!may_be_in_place(&tenant, &valid, Some(&slug), &planned));
        }
        assert!(!may_be_in_place(&tenant, &valid, None, &planned));
        // A spec the operator has not seen yet, or no status.
        tenant.status = ready(1);
        assert!(!may_be_in_place(
            &tenant,
            &valid,
            Some(&record("Ready", Some("41"))),
            &planned
        ));
        tenant.status = None;
        assert!(!may_be_in_place(
            &tenant,
            &valid,
            Some(&record("Ready", Some("41"))),
            &planned
        ));
    }
}
