//! Pure checks of a Tenant and what gather found, before anything is written: names safe for SQL, the slug
//! ours by the landlord's record (never by a status field), the credentials Secret ours or absent, the
//! server it is on (or may go to) usable.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::ResourceExt;

use super::super::Error;
use super::super::credentials;
use super::super::registry::Server;
use super::super::server::placement;
use super::gather::TenantFacts;
use crate::crd::{Tenant, label_value_problem, object_name_problem};
use crate::db::mirror::{Candidate, Claim, MovePhase};
use crate::db::{self, Ident, TenantNames, TenantOwner};

/// Where the tenant's database is, or may go.
#[derive(Debug)]
pub enum Placement {
    /// Landlord's records place it on this server (a retained database is re-adopted where it is).
    Recorded(Arc<Server>),
    /// Not placed yet: on one of these, chosen with the slug claim.
    Choose(Vec<Candidate>),
}

/// A Tenant whose slug and extensions are safe to use in SQL, and which may act on its slug.
#[derive(Debug)]
pub struct ValidTenant {
    pub names: TenantNames,
    pub extensions: Vec<Ident>,
    pub owner: TenantOwner,
}

pub fn validate(tenant: &Tenant, world: &TenantFacts) -> Result<(ValidTenant, Placement), Error> {
    let valid = validate_spec(tenant)?;
    check_names(tenant)?;
    check_extensions(&valid, world.extensions.as_ref())?;
    if let Some(record) = &world.slug {
        check_claim(valid.names.slug(), record.claim_for(&valid.owner))?;
    }
    if let Some(secret) = &world.secret
        && !credentials::is_ours(secret, &valid.owner.name, &valid.owner.uid)
    {
        return Err(Error::SecretNotOurs {
            secret: secret.name_any(),
        });
    }
    let placement = match &world.slug {
        Some(record) => {
            // spec.server governs placement: a slug this Tenant holds already was placed by it (and may
            // have moved since); a retained database is adopted only where spec.server says, unless a move
            // took it from there.
            let judged = record.is_owned_by(&valid.owner.uid)
                || world
                    .moving
                    .as_ref()
                    .is_some_and(|m| m.phase == MovePhase::Done && m.target == record.server);
            if let Some(asked) = tenant
                .spec
                .server
                .as_ref()
                .filter(|a| **a != record.server && !judged)
            {
                return Err(Error::ServerMismatch {
                    asked: asked.clone(),
                    recorded: record.server.clone(),
                });
            }
            let server = world.servers.iter().find(|s| s.name() == record.server);
            Placement::Recorded(server.cloned().ok_or_else(|| Error::ServerUnavailable {
                server: record.server.clone(),
                problem: "no DatabaseServer of that name has a readable admin Secret".into(),
            })?)
        }
        None => Placement::Choose(placement::candidates(
            tenant,
            &world.namespace_labels,
            &world.servers,
        )?),
    };
    Ok((valid, placement))
}

/// The names and identity a Tenant acts with; the apiserver enforces the same rules, this guards against a
/// CRD installed without them.
pub fn validate_spec(tenant: &Tenant) -> Result<ValidTenant, Error> {
    let slug = tenant.slug();
    let names = TenantNames::new(&slug).map_err(|source| Error::SlugUnusable {
        slug: slug.clone(),
        source: Box::new(source),
    })?;
    let extensions =
        Ident::all(&tenant.spec.extensions).map_err(|source| Error::ExtensionsUnusable {
            source: Box::new(source),
        })?;
    let uid = tenant
        .metadata
        .uid
        .clone()
        .ok_or(Error::NoUid { kind: "Tenant" })?;
    Ok(ValidTenant {
        names,
        extensions,
        owner: TenantOwner {
            uid,
            namespace: tenant.namespace().unwrap_or_default(),
            name: tenant.name_any(),
        },
    })
}

/// The Tenant's name labels its Secret and names it `<name>-db`: refused here, before anything is claimed or
/// created, when the API would refuse the Secret (the CRD's rule says the same; this guards against a CRD
/// installed without it).
fn check_names(tenant: &Tenant) -> Result<(), Error> {
    let name = tenant.name_any();
    let secret = credentials::secret_name(&name);
    let problem = label_value_problem(&name).or_else(|| object_name_problem(&secret));
    match problem {
        None => Ok(()),
        Some(problem) => Err(Error::TenantNameUnusable {
            problem: problem.to_string(),
        }),
    }
}

/// Extensions the server does not have, or that only a superuser may create, refused before the role and
/// database exist (`available` is None once the database was made: the tenant's own session judges).
pub fn check_extensions(
    valid: &ValidTenant,
    available: Option<&BTreeMap<String, bool>>,
) -> Result<(), Error> {
    let Some(available) = available else {
        return Ok(());
    };
    let database = valid.names.database().to_string();
    for extension in &valid.extensions {
        match available.get(extension.as_str()) {
            Some(true) => {}
            Some(false) => {
                return Err(Error::Database(db::Error::ExtensionUntrusted {
                    extension: extension.to_string(),
                    database,
                }));
            }
            None => {
                return Err(Error::Database(db::Error::ExtensionUnavailable {
                    extension: extension.to_string(),
                    database,
                    message: "it is not installed on the PostgreSQL server".into(),
                }));
            }
        }
    }
    Ok(())
}

/// The slug belongs to the first Tenant that claims it (and, once retained, to its namespace and name).
pub fn check_claim(slug: &str, claim: Claim) -> Result<(), Error> {
    match claim {
        Claim::Ours => Ok(()),
        Claim::Taken(owner) => Err(Error::SlugConflict {
            slug: slug.to_string(),
            owner,
        }),
        Claim::Retained(owner) => Err(Error::SlugRetained {
            slug: slug.to_string(),
            owner,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Reason, TenantSpec};
    use crate::db::Password;
    use crate::db::mirror::SlugRecord;
    use crate::db::mirror::TenantState;

    fn tenant(yaml: &str) -> Tenant {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn acme() -> Tenant {
        tenant(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: acme-corp, namespace: ns, uid: u1}\nspec: {extensions: [ltree]}",
        )
    }

    fn world(slug: Option<SlugRecord>) -> TenantFacts {
        TenantFacts {
            slug,
            secret: None,
            extensions: None,
            fresh_password: Password::new("x").unwrap(),
            servers: vec![default_server()],
            namespace_labels: Default::default(),
            moving: None,
        }
    }

    fn default_server() -> Arc<Server> {
        let databases = crate::db::Databases::new(
            "postgres://a:a@db:5432/postgres",
            "postgres://l:l@db:5432/landlord",
            crate::db::Limits::default(),
        )
        .unwrap();
        crate::controller::registry::Servers::new(Arc::new(databases), None, false)
            .all()
            .remove(0)
    }

    fn record(uid: &str, namespace: &str, name: &str) -> SlugRecord {
        SlugRecord {
            owner: TenantOwner {
                uid: uid.into(),
                namespace: namespace.into(),
                name: name.into(),
            },
            status: TenantState::Ready,
            credentials_version: None,
            database_made: true,
            recreated: None,
            server: "default".into(),
        }
    }

    #[tokio::test]
    async fn valid_tenant_gets_its_names() {
        let (v, _) = validate(&acme(), &world(None)).unwrap();
        assert_eq!(v.names.database().as_str(), "tenant_acme_corp");
        assert_eq!(v.extensions[0].as_str(), "ltree");
        assert_eq!(v.owner.namespace, "ns");
    }

    #[tokio::test]
    async fn injection_is_invalid_spec() {
        let mut t = Tenant::new(
            "acme",
            TenantSpec {
                slug: Some("acme;drop".into()),
                ..Default::default()
            },
        );
        t.metadata.uid = Some("u1".into());
        assert_eq!(
            validate(&t, &world(None)).unwrap_err().reason(),
            Reason::InvalidSpec
        );
        t.spec.slug = None;
        t.spec.extensions = vec!["x\"; DROP DATABASE landlord; --".into()];
        assert_eq!(
            validate(&t, &world(None)).unwrap_err().reason(),
            Reason::InvalidSpec
        );
    }

    #[tokio::test]
    async fn only_the_slugs_owner_goes_on() {
        let reason = |slug| {
            validate(&acme(), &world(Some(slug)))
                .err()
                .map(|e| e.reason())
        };
        assert_eq!(reason(record("u1", "ns", "acme-corp")), None);
        assert_eq!(
            reason(record("u9", "other", "acme-corp")),
            Some(Reason::SlugConflict)
        );
        // Retained for this namespace and name: re-adopted; for another: refused.
        assert_eq!(reason(record("", "ns", "acme-corp")), None);
        assert_eq!(
            reason(record("", "other", "acme-corp")),
            Some(Reason::AdoptionRefused)
        );
    }

    #[tokio::test]
    async fn a_name_the_secret_cannot_carry_is_refused_before_anything() {
        let mut t = acme();
        t.metadata.name = Some("a".repeat(70));
        t.spec.slug = Some("acme".into());
        let err = validate(&t, &world(None)).unwrap_err();
        assert!(matches!(err, Error::TenantNameUnusable { .. }), "{err:?}");
        assert!(err.to_string().contains("at most 63"), "{err}");
        t.metadata.name = Some("a".repeat(63));
        assert!(validate(&t, &world(None)).is_ok());
    }

    #[tokio::test]
    async fn an_extension_the_server_will_not_let_the_tenant_create_is_refused_before_anything() {
        let with = |trusted: &[(&str, bool)]| {
            let mut w = world(None);
            w.extensions = Some(trusted.iter().map(|(n, t)| (n.to_string(), *t)).collect());
            w
        };
        assert!(validate(&acme(), &with(&[("ltree", true)])).is_ok());
        assert!(matches!(
            validate(&acme(), &with(&[("ltree", false)])),
            Err(Error::Database(db::Error::ExtensionUntrusted { .. }))
        ));
        assert!(matches!(
            validate(&acme(), &with(&[])),
            Err(Error::Database(db::Error::ExtensionUnavailable { .. }))
        ));
        // Not looked up (the database exists): the tenant's session decides, as before.
        assert!(validate(&acme(), &world(None)).is_ok());
    }

    #[tokio::test]
    async fn a_secret_someone_else_wrote_is_refused() {
        let mut w = world(None);
        w.secret = Some(k8s_openapi::api::core::v1::Secret {
            metadata: kube::api::ObjectMeta {
                name: Some("acme-corp-db".into()),
                ..Default::default()
            },
            ..Default::default()
        });
        let err = validate(&acme(), &w).unwrap_err();
        assert_eq!(err.reason(), Reason::AdoptionRefused);
        assert!(err.to_string().contains("acme-corp-db"), "{err}");
    }

    #[tokio::test]
    async fn a_recorded_server_is_where_the_tenant_stays() {
        // Recorded on default: the plan is there.
        let (_, placement) =
            validate(&acme(), &world(Some(record("u1", "ns", "acme-corp")))).unwrap();
        assert!(matches!(placement, Placement::Recorded(s) if s.name() == "default"));
        // A database retained elsewhere is not adopted where spec.server does not say.
        let mut pinned = acme();
        pinned.spec.server = Some("b".into());
        let mut retained = record("", "ns", "acme-corp");
        retained.status = TenantState::Retained;
        let err = validate(&pinned, &world(Some(retained.clone()))).unwrap_err();
        assert!(matches!(err, Error::ServerMismatch { .. }), "{err:?}");
        assert_eq!(err.reason(), Reason::InvalidSpec);
        // The Tenant's own slug was placed by spec.server and may have moved since.
        let (_, placement) =
            validate(&pinned, &world(Some(record("u1", "ns", "acme-corp")))).unwrap();
        assert!(matches!(placement, Placement::Recorded(s) if s.name() == "default"));
        // A retained database a move took from there is adopted where it is.
        let mut moved = world(Some(retained));
        moved.moving = Some(crate::db::mirror::MoveRecord {
            slug: "acme_corp".into(),
            source: "b".into(),
            target: "default".into(),
            phase: crate::db::mirror::MovePhase::Done,
            connection_limit: Some(-1),
            bytes: 1,
            problem: None,
            started_at: jiff::Timestamp::UNIX_EPOCH,
            took_ms: Some(1),
        });
        let (_, placement) = validate(&pinned, &moved).unwrap();
        assert!(matches!(placement, Placement::Recorded(s) if s.name() == "default"));
        // A recorded server this process cannot reach: waited for, never re-placed.
        let mut elsewhere = record("u1", "ns", "acme-corp");
        elsewhere.server = "gone".into();
        let err = validate(&acme(), &world(Some(elsewhere))).unwrap_err();
        assert!(matches!(err, Error::ServerUnavailable { .. }), "{err:?}");
        assert_eq!(err.reason(), Reason::DatabaseUnavailable);
        assert!(err.is_retryable());
        // Not recorded yet: the candidates.
        let (_, placement) = validate(&acme(), &world(None)).unwrap();
        assert!(matches!(placement, Placement::Choose(c) if c.len() == 1));
    }
}
