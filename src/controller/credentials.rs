//! The tenant's credentials Secret `<tenant>-db`: which Secret is Landlord's, what it holds, what it must
//! hold. Its password is the one the tenant's role accepts — a hand-edited password is set on the role at
//! the Tenant's next reconcile — and the one the operator itself logs in with. Pure, but for `write`.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};

use super::TENANT_CONTROLLER;
use crate::crd::Tenant;
use crate::db::{Password, TenantCredentials};

/// Label on every Secret Landlord writes (the tenant controller watches only those).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "landlord");
/// Label naming the Tenant a Secret was written for; it outlives the owner reference when a Tenant is
/// deleted with deletionPolicy Retain, so the next Tenant of that name finds its credentials again.
pub const TENANT_LABEL: &str = "tenancy.landlord.dev/tenant";

pub fn secret_name(tenant: &str) -> String {
    format!("{tenant}-db")
}

/// Landlord wrote this Secret for the Tenant `name` with `uid`: our label, and either a controller
/// reference to that Tenant or (kept by a retained deletion) none and the Tenant's name.
pub fn is_ours(secret: &Secret, name: &str, uid: &str) -> bool {
    let labels = secret.labels();
    if labels.get(MANAGED_BY.0).map(String::as_str) != Some(MANAGED_BY.1) {
        return false;
    }
    match secret
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
    {
        [] => labels.get(TENANT_LABEL).map(String::as_str) == Some(name),
        owners => owners
            .iter()
            .any(|o| o.controller == Some(true) && o.kind == "Tenant" && o.uid == uid),
    }
}

/// The password the Secret hands out, if it holds one PostgreSQL can take.
pub fn password(secret: &Secret) -> Option<Password> {
    let bytes = secret.data.as_ref()?.get("password")?;
    Password::new(String::from_utf8(bytes.0.clone()).ok()?).ok()
}

/// What the Secret must hold for these credentials.
pub fn data(credentials: &TenantCredentials) -> BTreeMap<String, ByteString> {
    [
        ("host", credentials.host.clone()),
        ("port", credentials.port.to_string()),
        ("database", credentials.database.clone()),
        ("username", credentials.username.clone()),
        ("password", credentials.password.expose().to_string()),
        ("uri", credentials.uri()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect()
}

/// The Secret as Landlord writes it: marked, and owned by the Tenant.
pub fn desired(tenant: &Tenant, data: BTreeMap<String, ByteString>) -> Secret {
    let name = tenant.name_any();
    Secret {
        metadata: ObjectMeta {
            name: Some(secret_name(&name)),
            namespace: tenant.namespace(),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
                (TENANT_LABEL.to_string(), name),
            ])),
            owner_references: tenant.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// Writes the Secret without taking over one that appeared since gather looked: created when gather found
/// none (a Secret made in between fails it with 409 Conflict, and the next reconcile judges that one), else
/// patched only at the resourceVersion gather read (409 when it changed since). Never a forced apply.
pub async fn write(
    api: &Api<Secret>,
    secret: &Secret,
    found_version: Option<&str>,
) -> Result<Secret, kube::Error> {
    let Some(version) = found_version else {
        let params = PostParams {
            field_manager: Some(TENANT_CONTROLLER.into()),
            ..Default::default()
        };
        return api.create(&params, secret).await;
    };
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": version,
            "labels": secret.metadata.labels,
            "ownerReferences": secret.metadata.owner_references,
        },
        "data": secret.data,
    });
    let params = PatchParams {
        field_manager: Some(TENANT_CONTROLLER.into()),
        ..Default::default()
    };
    api.patch(&secret.name_any(), &params, &Patch::Merge(&patch))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::TenantSpec;

    fn tenant(uid: &str) -> Tenant {
        let mut tenant = Tenant::new("acme", TenantSpec::default());
        tenant.metadata.namespace = Some("team-a".into());
        tenant.metadata.uid = Some(uid.into());
        tenant
    }

    fn ours(uid: &str) -> Secret {
        desired(&tenant(uid), BTreeMap::new())
    }

    #[test]
    fn a_secret_is_ours_only_with_our_mark_for_this_tenant() {
        assert!(is_ours(&ours("u1"), "acme", "u1"));
        // Another Tenant's controller reference.
        assert!(!is_ours(&ours("u1"), "acme", "u2"));
        // Kept by a retained deletion (no owner): the same name only.
        let mut kept = ours("u1");
        kept.metadata.owner_references = None;
        assert!(is_ours(&kept, "acme", "u2"));
        assert!(!is_ours(&kept, "globex", "u2"));
        // Written by a user: no label.
        let mut users = ours("u1");
        users.metadata.labels = None;
        assert!(!is_ours(&users, "acme", "u1"));
    }

    #[test]
    fn password_must_be_usable() {
        let mut secret = ours("u1");
        assert_eq!(password(&secret), None);
        let with = |value: &str| {
            BTreeMap::from([(
                "password".to_string(),
                ByteString(value.as_bytes().to_vec()),
            )])
        };
        secret.data = Some(with("s3cret"));
        assert_eq!(password(&secret).unwrap().expose(), "s3cret");
        secret.data = Some(with("line\nbreak"));
        assert_eq!(password(&secret), None);
    }
}
