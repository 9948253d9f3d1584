//! Every read a rollout's reconcile needs: the Tenants and ModuleInstallations of its namespace, from the
//! API rather than a cache, so that how many installations are in flight comes from the cluster (an operator
//! that restarts mid-rollout counts the same); and the server each tenant is on, from Landlord's records.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::ListParams;

use super::super::{Context, Error};
use crate::crd::{ModuleInstallation, ModuleRollout, Tenant};
use crate::db::mirror;

pub struct RolloutFacts {
    pub tenants: Vec<Tenant>,
    pub installations: Vec<ModuleInstallation>,
    /// The server of each tenant slug Landlord's records place (a tenant not placed yet has none).
    pub servers: BTreeMap<String, String>,
}

pub async fn gather(rollout: &ModuleRollout, ctx: &Context) -> Result<RolloutFacts, Error> {
    let namespace = rollout.namespace().unwrap_or_default();
    let tenants = ctx
        .api::<Tenant>(&namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let installations = ctx
        .api::<ModuleInstallation>(&namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let slugs: Vec<String> = tenants.iter().map(Tenant::slug).collect();
    let servers = mirror::servers_of(ctx.databases.landlord_pool(), &slugs).await?;
    Ok(RolloutFacts {
        tenants,
        installations,
        servers,
    })
}
