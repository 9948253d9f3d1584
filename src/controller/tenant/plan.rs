//! What a Tenant's reconcile will do, decided before anything is written. Pure.

use k8s_openapi::api::core::v1::Secret;

use super::super::credentials;
use super::gather::World;
use super::validate::ValidTenant;
use crate::catalog::Catalog;
use crate::crd::Tenant;
use crate::db::mirror::SlugRecord;
use crate::db::{Databases, Password};

pub struct TenantPlan {
    /// The password the tenant's role must accept: the Secret's, or a new one when it holds none.
    pub password: Password,
    /// The Secret as it must be, when it does not say so already.
    pub secret: Option<Secret>,
    /// The core tenant schema's last migration.
    pub core_target: Option<i64>,
    /// The resourceVersion of the Secret as found (None: there is none yet).
    pub credentials_version: Option<String>,
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
            .field("secret", &secret)
            .field("core_target", &self.core_target)
            .field("credentials_version", &self.credentials_version)
            .finish()
    }
}

pub fn plan(
    tenant: &Tenant,
    valid: &ValidTenant,
    world: World,
    databases: &Databases,
    catalog: &Catalog,
) -> TenantPlan {
    let password = world
        .secret
        .as_ref()
        .and_then(credentials::password)
        .unwrap_or(world.fresh_password);
    let credentials = databases.tenant_credentials(&valid.names, password.clone());
    let desired = credentials::desired(tenant, credentials::data(&credentials));
    let secret = world
        .secret
        .as_ref()
        .is_none_or(|current| needs_write(current, &desired))
        .then_some(desired);
    TenantPlan {
        password,
        credentials_version: world
            .secret
            .as_ref()
            .and_then(|s| s.metadata.resource_version.clone()),
        secret,
        core_target: catalog.core_tenant.latest(),
    }
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
        s.core_version == plan.core_target
            && s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == "True"
                    && c.observed_generation == tenant.metadata.generation
            })
    });
    let verified = slug.is_some_and(|r| {
        r.is_ready_for(&valid.owner.uid)
            && plan.credentials_version.is_some()
            && r.credentials_version == plan.credentials_version
    });
    ready && verified && plan.secret.is_none()
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
    use crate::crd::TenantSpec;
    use crate::db::{Limits, TenantNames, TenantOwner};

    fn fixture() -> (Tenant, ValidTenant, Databases) {
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
        (tenant, valid, databases)
    }

    fn world(secret: Option<Secret>) -> World {
        World {
            slug: None,
            secret,
            extensions: None,
            fresh_password: Password::new("fresh").unwrap(),
        }
    }

    #[tokio::test]
    async fn a_missing_secret_gets_a_fresh_password() {
        let (tenant, valid, databases) = fixture();
        let plan = plan(
            &tenant,
            &valid,
            world(None),
            &databases,
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
        let (tenant, valid, databases) = fixture();
        let planned = plan(
            &tenant,
            &valid,
            world(None),
            &databases,
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
        let (tenant, valid, databases) = fixture();
        let first = plan(
            &tenant,
            &valid,
            world(None),
            &databases,
            &Catalog::default(),
        );
        let written = first.secret.unwrap();
        let again = plan(
            &tenant,
            &valid,
            world(Some(written.clone())),
            &databases,
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
            world(Some(edited)),
            &databases,
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
        let (mut tenant, valid, databases) = fixture();
        tenant.metadata.generation = Some(2);
        let mut secret = plan(
            &tenant,
            &valid,
            world(None),
            &databases,
            &Catalog::default(),
        )
        .secret
        .unwrap();
        secret.metadata.resource_version = Some("41".into());
        let planned = plan(
            &tenant,
            &valid,
            world(Some(secret)),
            &databases,
            &Catalog::default(),
        );
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
            status: status.into(),
            credentials_version: version.map(String::from),
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
