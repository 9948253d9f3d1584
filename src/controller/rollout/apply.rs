//! Carrying out a rollout's plan: installations created, or brought to the rollout's spec at the version
//! the plan read (never a forced apply that would take over one made or changed in between), installations
//! of tenants that no longer match deleted. One installation the API refuses is reported for its tenant;
//! the others go on.

use kube::ResourceExt;
use kube::api::{DeleteParams, PostParams};

use super::super::{Context, Error, ROLLOUT_CONTROLLER};
use super::plan::RolloutPlan;
use crate::crd::{FailedTenant, ModuleInstallation, ModuleRollout, Reason};

/// Returns the tenants whose installation could not be written, with why.
pub async fn apply(
    rollout: &ModuleRollout,
    plan: &RolloutPlan,
    ctx: &Context,
) -> Result<Vec<FailedTenant>, Error> {
    let api = ctx.api::<ModuleInstallation>(&rollout.namespace().unwrap_or_default());
    let mut failed = Vec::new();
    for installation in &plan.start {
        if let Err(err) = write(&api, installation).await {
            failed.push(refused(installation, err));
        }
    }
    for name in &plan.delete {
        delete(&api, name).await?;
    }
    Ok(failed)
}

/// Created when the plan found none (409 if one appeared since), else replaced at the version the plan read
/// (409 if it changed since): the next reconcile looks again.
async fn write(
    api: &kube::Api<ModuleInstallation>,
    installation: &ModuleInstallation,
) -> Result<ModuleInstallation, kube::Error> {
    let params = PostParams {
        field_manager: Some(ROLLOUT_CONTROLLER.into()),
        ..Default::default()
    };
    match installation.metadata.resource_version {
        None => api.create(&params, installation).await,
        Some(_) => {
            api.replace(&installation.name_any(), &params, installation)
                .await
        }
    }
}

/// The tenant's entry in `status.failedTenants`: a refusal of the object itself is InvalidSpec; anything
/// else (a conflict, an outage) is retried by the next reconcile.
fn refused(installation: &ModuleInstallation, err: kube::Error) -> FailedTenant {
    let reason = match &err {
        kube::Error::Api(status) if matches!(status.code, 400 | 403 | 422) => Reason::InvalidSpec,
        _ => Reason::Progressing,
    };
    FailedTenant {
        tenant: installation.spec.tenant.clone(),
        reason: reason.as_str().to_string(),
        message: format!(
            "The rollout could not write installation {}: {}",
            installation.name_any(),
            Error::from(err)
        ),
    }
}

/// Deletes an installation; one already gone is fine.
pub async fn delete(api: &kube::Api<ModuleInstallation>, name: &str) -> Result<(), Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err.into()),
    }
}
