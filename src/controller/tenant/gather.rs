//! Every read a Tenant's reconcile needs, before anything is decided: the landlord's record of the slug, the
//! credentials Secret, the servers known, and (while it is still to be placed) its namespace's labels.
//! Nothing here judges what it found.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{Api, ResourceExt};

use super::super::credentials::secret_name;
use super::super::registry::Server;
use super::super::{Context, Error};
use crate::crd::{MOVE_TO_ANNOTATION, Tenant};
use crate::db::mirror::{self, MoveRecord, SlugRecord, TenantState};
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
    /// The tenant's move, under way or the last one (None: none, or the slug is not recorded).
    pub moving: Option<MoveRecord>,
    /// Every server this process knows, as it stands now.
    pub servers: Vec<Arc<Server>>,
    /// The labels of the Tenant's namespace, read only while it is still to be placed (or a move is asked)
    /// and some server admits only some namespaces.
    pub namespace_labels: BTreeMap<String, String>,
}

pub async fn gather(tenant: &Tenant, ctx: &Context) -> Result<TenantFacts, Error> {
    let namespace = tenant.namespace().unwrap_or_default();
    let pool = ctx.databases.landlord_pool();
    let slug = mirror::slug_record(pool, &tenant.slug()).await?;
    let moving = match &slug {
        Some(_) => mirror::move_of(pool, &tenant.slug()).await?,
        None => None,
    };
    let move_asked = tenant.annotations().contains_key(MOVE_TO_ANNOTATION);
    let secret = ctx
        .api::<Secret>(&namespace)
        .get_opt(&secret_name(&tenant.name_any()))
        .await?;
    let extensions = extension_trust(tenant, slug.as_ref(), ctx).await?;
    let servers = ctx.servers.all();
    let limited = servers.iter().any(|s| s.rules.namespaces.is_some());
    let namespace_labels = if (slug.is_none() || move_asked) && limited {
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        namespaces
            .get_opt(&namespace)
            .await?
            .map(|ns| ns.labels().clone())
            .unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    Ok(TenantFacts {
        slug,
        secret,
        extensions,
        moving,
        fresh_password: Password::generate()?,
        servers,
        namespace_labels,
    })
}

/// Until its database is made (the slug recorded, not yet Ready), what its server says of the extensions
/// asked for. A slug not yet placed has no server to ask: apply asks the one it is placed on.
async fn extension_trust(
    tenant: &Tenant,
    slug: Option<&SlugRecord>,
    ctx: &Context,
) -> Result<Option<BTreeMap<String, bool>>, Error> {
    let Some(record) = slug.filter(|s| s.status != TenantState::Ready) else {
        return Ok(None);
    };
    let Some(server) = ctx.servers.get(&record.server) else {
        return Ok(None);
    };
    extensions_on(tenant, &server).await
}

/// What `server` says of the extensions `tenant` asks for (None: it asks for none PostgreSQL could take).
pub async fn extensions_on(
    tenant: &Tenant,
    server: &Server,
) -> Result<Option<BTreeMap<String, bool>>, Error> {
    // A name PostgreSQL cannot take is validate's to refuse; none is looked up.
    let Ok(extensions) = Ident::all(&tenant.spec.extensions) else {
        return Ok(None);
    };
    if extensions.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        db::available_extensions(&server.databases, &extensions).await?,
    ))
}
