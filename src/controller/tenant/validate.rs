//! Pure checks of a Tenant before anything touches a database.

use crate::crd::{Reason, Tenant};
use crate::db::{Ident, TenantNames};

use super::super::Error;

/// A Tenant whose slug and extensions are safe to use in SQL.
#[derive(Debug)]
pub struct ValidatedTenant {
    pub names: TenantNames,
    pub extensions: Vec<Ident>,
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

pub fn validate(tenant: &Tenant) -> Result<ValidatedTenant, Error> {
    let invalid = |what: String| Error::refused(Reason::InvalidSpec, what);
    let slug = tenant.slug();
    // The apiserver enforces the same rules; this guards against a CRD installed without them.
    let names = TenantNames::new(&slug)
        .map_err(|e| invalid(format!("spec.slug {slug:?} cannot be used: {e}")))?;
    let extensions = Ident::all(&tenant.spec.extensions).map_err(|e| {
        invalid(format!(
            "spec.extensions holds a name PostgreSQL cannot take safely: {e}"
        ))
    })?;
    Ok(ValidatedTenant {
        names,
        extensions,
        uid: tenant
            .metadata
            .uid
            .clone()
            .ok_or_else(|| invalid("the Tenant has no UID yet".into()))?,
        namespace: tenant.metadata.namespace.clone().unwrap_or_default(),
        name: tenant.metadata.name.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::TenantSpec;

    fn tenant(yaml: &str) -> Tenant {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn valid_tenant_gets_its_names() {
        let t = tenant(
            "apiVersion: tenancy.landlord.dev/v1alpha1\nkind: Tenant\nmetadata: {name: acme-corp, namespace: ns, uid: u1}\nspec: {extensions: [ltree]}",
        );
        let v = validate(&t).unwrap();
        assert_eq!(v.names.database().as_str(), "tenant_acme_corp");
        assert_eq!(v.extensions[0].as_str(), "ltree");
    }

    #[test]
    fn injection_is_invalid_spec() {
        let mut t = Tenant::new(
            "acme",
            TenantSpec {
                slug: Some("acme;drop".into()),
                ..Default::default()
            },
        );
        t.metadata.uid = Some("u1".into());
        let err = validate(&t).unwrap_err();
        assert_eq!(err.reason(), Reason::InvalidSpec);
        t.spec.slug = None;
        t.spec.extensions = vec!["x\"; DROP DATABASE landlord; --".into()];
        assert_eq!(validate(&t).unwrap_err().reason(), Reason::InvalidSpec);
    }
}
