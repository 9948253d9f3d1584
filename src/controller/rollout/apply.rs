//! Carrying out a rollout's plan: installations created or brought to the rollout's spec by server-side
//! apply under the rollout's field manager, installations of tenants that no longer match deleted.

use kube::ResourceExt;
use kube::api::{DeleteParams, Patch, PatchParams};

use super::super::{Context, Error, ROLLOUT_CONTROLLER};
use super::plan::RolloutPlan;
use crate::crd::{ModuleInstallation, ModuleRollout};

pub async fn apply(
    rollout: &ModuleRollout,
    plan: &RolloutPlan,
    ctx: &Context,
) -> Result<(), Error> {
    let api = ctx.api::<ModuleInstallation>(&rollout.namespace().unwrap_or_default());
    for installation in &plan.start {
        api.patch(
            &installation.name_any(),
            &PatchParams::apply(ROLLOUT_CONTROLLER).force(),
            &Patch::Apply(installation),
        )
        .await?;
    }
    for name in &plan.delete {
        delete(&api, name).await?;
    }
    Ok(())
}

/// Deletes an installation; one already gone is fine.
pub async fn delete(api: &kube::Api<ModuleInstallation>, name: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err.into()),
    }
}
