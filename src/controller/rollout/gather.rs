//! Every read a rollout's reconcile needs: the Tenants and ModuleInstallations of its namespace, from the
//! API rather than a cache, so that how many installations are in flight comes from the cluster (an operator
//! that restarts mid-rollout counts the same).

use kube::ResourceExt;
use kube::api::ListParams;

use super::super::{Context, Error};
use crate::crd::{ModuleInstallation, ModuleRollout, Tenant};

pub struct RolloutFacts {
    pub tenants: Vec<Tenant>,
    pub installations: Vec<ModuleInstallation>,
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
    Ok(RolloutFacts {
        tenants,
        installations,
    })
}
