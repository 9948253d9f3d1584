//! Every read a Tenant's reconcile needs, before anything is decided: the landlord's record of the slug and
//! the credentials Secret. Nothing here judges what it found.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::super::credentials::secret_name;
use super::super::{Context, Error};
use crate::crd::Tenant;
use crate::db::Password;
use crate::db::mirror::{self, SlugRecord};

pub struct World {
    /// Who the landlord database says owns the slug (None: nobody yet).
    pub slug: Option<SlugRecord>,
    /// Whatever Secret has the credentials' name, ours or not.
    pub secret: Option<Secret>,
    /// A password for the tenant's role if the Secret holds none (randomness is I/O too).
    pub fresh_password: Password,
}

pub async fn gather(tenant: &Tenant, ctx: &Context) -> Result<World, Error> {
    let namespace = tenant.namespace().unwrap_or_default();
    let slug = mirror::slug_record(ctx.databases.landlord_pool(), &tenant.slug()).await?;
    let secret = ctx
        .api::<Secret>(&namespace)
        .get_opt(&secret_name(&tenant.name_any()))
        .await?;
    Ok(World {
        slug,
        secret,
        fresh_password: Password::generate()?,
    })
}
