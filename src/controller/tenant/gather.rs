//! Every read a Tenant's reconcile needs, before anything is decided: the landlord's record of the slug and
//! the credentials Secret. Nothing here judges what it found.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::super::credentials::secret_name;
use super::super::{Context, Error};
use crate::crd::Tenant;
use crate::db::mirror::{self, SlugRecord, TenantState};
use crate::db::{self, Ident, Password};

pub struct TenantFacts {
    /// Who the landlord database says owns the slug (None: nobody yet).
    pub slug: Option<SlugRecord>,
    /// Whatever Secret has the credentials' name, ours or not.
    pub secret: Option<Secret>,
    /// Before the database is made: the extensions asked for that the server has, and whether each is
    /// trusted (None: not looked up).
    pub extensions: Option<BTreeMap<String, bool>>,
    /// A password for the tenant's role if the Secret holds none (randomness is I/O too).
    pub fresh_password: Password,
}

pub async fn gather(tenant: &Tenant, ctx: &Context) -> Result<TenantFacts, Error> {
    let namespace = tenant.namespace().unwrap_or_default();
    let slug = mirror::slug_record(ctx.databases.landlord_pool(), &tenant.slug()).await?;
    let secret = ctx
        .api::<Secret>(&namespace)
        .get_opt(&secret_name(&tenant.name_any()))
        .await?;
    let extensions = extension_trust(tenant, slug.as_ref(), ctx).await?;
    Ok(TenantFacts {
        slug,
        secret,
        extensions,
        fresh_password: Password::generate()?,
    })
}

/// Until its database is made (the slug not yet Ready), what the server says of the extensions asked for.
async fn extension_trust(
    tenant: &Tenant,
    slug: Option<&SlugRecord>,
    ctx: &Context,
) -> Result<Option<BTreeMap<String, bool>>, Error> {
    if tenant.spec.extensions.is_empty() || slug.is_some_and(|s| s.status == TenantState::Ready) {
        return Ok(None);
    }
    // A name PostgreSQL cannot take is validate's to refuse; none is looked up.
    let Ok(extensions) = Ident::all(&tenant.spec.extensions) else {
        return Ok(None);
    };
    Ok(Some(
        db::available_extensions(&ctx.databases, &extensions).await?,
    ))
}
