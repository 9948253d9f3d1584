//! The reads that decide whether an installation may act at all: its Tenant, the landlord's records of the
//! tenant's slug and modules, the tenant's credentials (what each managed scope's ledger holds is read
//! only once `validate` has said yes: `ledgers`).

use kube::ResourceExt;
use kube::api::ListParams;

use super::super::credentials::{self, secret_name};
use super::super::{Context, Error};
use crate::catalog::Scope;
use crate::crd::{ConditionType, ModuleInstallation, Tenant};
use crate::db::mirror::{self, InstalledModule, SlugRecord};
use crate::db::{DbConnection, Password, TenantNames};

pub struct InstallationFacts {
    pub tenant: Option<Tenant>,
    /// The landlord's record of the tenant's slug: who owns it, whether it is provisioned.
    pub slug: Option<SlugRecord>,
    /// The landlord's record of the tenant's modules, and who installed each.
    pub installed: Vec<InstalledModule>,
    /// Whether the installation recorded as this module's installer (if another) still exists.
    pub installer_exists: bool,
    /// The tenant's password, from a credentials Secret that Landlord wrote for this Tenant.
    pub password: Option<Password>,
}

pub async fn gather(mi: &ModuleInstallation, ctx: &Context) -> Result<InstallationFacts, Error> {
    let namespace = mi.namespace().unwrap_or_default();
    let tenant = ctx.tenant(&namespace, &mi.spec.tenant).await?;
    let Some(tenant_object) = &tenant else {
        return Ok(InstallationFacts {
            tenant,
            slug: None,
            installed: Vec::new(),
            installer_exists: false,
            password: None,
        });
    };
    let pool = ctx.databases.landlord_pool();
    let slug = tenant_object.slug();
    let record = mirror::slug_record(pool, &slug).await?;
    let installed = mirror::installed_modules(pool, &slug).await?;
    let uid = mi.uid().unwrap_or_default();
    let other_installer = installed
        .iter()
        .find(|m| m.module == mi.spec.module && m.installer.uid != uid)
        .map(|m| m.installer.uid.clone());
    // The API, not the cache: taking over a record is only right when its installer is really gone.
    let installer_exists = match other_installer {
        Some(other) => ctx
            .api::<ModuleInstallation>(&namespace)
            .list(&ListParams::default())
            .await?
            .iter()
            .any(|m| m.uid().as_deref() == Some(other.as_str())),
        None => false,
    };
    let secret = ctx
        .secret(&namespace, &secret_name(&tenant_object.name_any()))
        .await?;
    let tenant_uid = tenant_object.uid().unwrap_or_default();
    let password = secret
        .filter(|s| credentials::is_ours(s, &tenant_object.name_any(), &tenant_uid))
        .and_then(|s| credentials::password(&s));
    Ok(InstallationFacts {
        tenant,
        slug: record,
        installed,
        installer_exists,
        password,
    })
}

/// The landlord database as Landlord's own role, a tenant database (on `server`, where Landlord's records
/// place it) as the tenant's own role.
pub async fn connect(
    ctx: &Context,
    scope: Scope,
    server: &str,
    names: &TenantNames,
    password: &Password,
) -> Result<DbConnection, Error> {
    Ok(match scope {
        Scope::Landlord => ctx.databases.landlord().await?,
        Scope::Tenant => {
            ctx.server(server)?
                .databases
                .tenant(names, password)
                .await?
        }
    })
}

pub fn condition_of(scope: Scope) -> ConditionType {
    match scope {
        Scope::Landlord => ConditionType::LandlordMigrated,
        Scope::Tenant => ConditionType::TenantMigrated,
    }
}
