//! Pure checks of a rollout before it touches any installation: its module and release exist in the catalog,
//! its selectors parse.

use kube::core::Selector;

use super::super::Error;
use super::super::installation::resolve;
use crate::catalog::Catalog;
use crate::crd::{ModuleInstallationSpec, ModuleRollout};

#[derive(Debug)]
pub struct ValidRollout {
    /// What every installation of the rollout says.
    pub spec: ModuleInstallationSpec,
    /// Which Tenants it is for (every one when the spec has no selector).
    pub tenants: Selector,
    pub canaries: Option<Selector>,
    /// `<release>` for messages: the one asked for, or the newest.
    pub release: String,
}

pub fn validate(rollout: &ModuleRollout, catalog: &Catalog) -> Result<ValidRollout, Error> {
    let spec = ModuleInstallationSpec {
        tenant: String::new(),
        module: rollout.spec.module.clone(),
        version: rollout.spec.version.clone(),
        scope: rollout.spec.scope,
        uninstall_policy: rollout.spec.uninstall_policy,
        dry_run: rollout.spec.dry_run,
    };
    let (_, release) = resolve(catalog, &spec)?;
    let selector =
        |field: &'static str,
         selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>| {
            selector
                .cloned()
                .map(Selector::try_from)
                .transpose()
                .map_err(|e| Error::InvalidSelector {
                    field,
                    problem: e.to_string(),
                })
        };
    let tenants =
        selector("spec.tenantSelector", rollout.spec.tenant_selector.as_ref())?.unwrap_or_default();
    let canaries = selector(
        "spec.strategy.canary",
        rollout.spec.strategy.canary.as_ref(),
    )?;
    Ok(ValidRollout {
        spec,
        tenants,
        canaries,
        release: release.version.to_string(),
    })
}
