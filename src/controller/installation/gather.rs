//! Every read an installation's reconcile needs. First what decides whether it may act at all — its Tenant,
//! the landlord's records of the tenant's slug and modules, the tenant's credentials — then, once
//! `validate` has said yes, what each managed scope's ledger holds.

use kube::ResourceExt;
use kube::api::ListParams;

use super::super::conditions::{Stopped, stop_at};
use super::super::credentials::{self, secret_name};
use super::super::{Context, Error};
use super::validate::ValidInstallation;
use crate::catalog::Scope;
use crate::crd::{ConditionType, ModuleInstallation, Tenant};
use crate::db::mirror::{self, InstalledModule, SlugRecord};
use crate::db::records::{self, Recorded};
use crate::db::{DbConnection, LedgerEntry, ModuleScope, Password, TenantNames};

pub struct World {
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

pub async fn gather(mi: &ModuleInstallation, ctx: &Context) -> Result<World, Error> {
    let namespace = mi.namespace().unwrap_or_default();
    let tenant = ctx.tenant(&namespace, &mi.spec.tenant).await?;
    let Some(tenant_object) = &tenant else {
        return Ok(World {
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
    Ok(World {
        tenant,
        slug: record,
        installed,
        installer_exists,
        password,
    })
}

/// What the ledger of each managed scope holds (None: a scope this installation leaves alone).
#[derive(Debug, Default)]
pub struct Ledgers {
    pub landlord: Option<Vec<LedgerEntry>>,
    pub tenant: Option<Vec<LedgerEntry>>,
}

impl Ledgers {
    pub fn of(&self, scope: Scope) -> Option<&[LedgerEntry]> {
        match scope {
            Scope::Landlord => self.landlord.as_deref(),
            Scope::Tenant => self.tenant.as_deref(),
        }
    }
}

/// What Landlord's records hold of each managed scope (a scope without migrations: None). Opens no
/// tenant database.
#[derive(Debug, Default)]
pub struct Records {
    pub landlord: Option<Vec<Recorded>>,
    pub tenant: Option<Vec<Recorded>>,
}

impl Records {
    pub fn of(&self, scope: Scope) -> Option<&[Recorded]> {
        match scope {
            Scope::Landlord => self.landlord.as_deref(),
            Scope::Tenant => self.tenant.as_deref(),
        }
    }

    /// The ledgers the records stand for, for planning (and so for status) as a visit would.
    pub fn as_ledgers(&self, valid: &ValidInstallation<'_>) -> Ledgers {
        let ledger = |scope| {
            self.of(scope)
                .map(|r| records::as_ledger(&ModuleScope::of(valid.module, scope), r))
        };
        Ledgers {
            landlord: ledger(Scope::Landlord),
            tenant: ledger(Scope::Tenant),
        }
    }
}

pub async fn records(valid: &ValidInstallation<'_>, ctx: &Context) -> Result<Records, Error> {
    let pool = ctx.databases.landlord_pool();
    let module = &valid.module.name;
    let mut found = Records::default();
    for &scope in &valid.scopes {
        if valid.module.migrations(scope).is_empty() {
            continue;
        }
        match scope {
            Scope::Landlord => {
                found.landlord = Some(records::landlord_records(pool, module).await?)
            }
            Scope::Tenant => {
                let slug = valid.names.slug();
                found.tenant = Some(records::tenant_records(pool, slug, module).await?)
            }
        }
    }
    Ok(found)
}

/// Each managed scope's ledger. The tenant database's session stays open for `apply` (one login per
/// reconcile); the landlord database's is closed at once, so that no reconcile holds two slots.
pub async fn ledgers(
    valid: &ValidInstallation<'_>,
    ctx: &Context,
) -> Result<(Ledgers, Option<DbConnection>), Stopped> {
    let mut ledgers = Ledgers::default();
    let mut session = None;
    for &scope in &valid.scopes {
        if valid.module.migrations(scope).is_empty() {
            continue;
        }
        let applied = async {
            let mut conn = connect(ctx, scope, &valid.names, &valid.password).await?;
            let status = ctx
                .migrator
                .status(&mut conn, &ModuleScope::of(valid.module, scope))
                .await;
            match (scope, &status) {
                (Scope::Tenant, Ok(_)) => session = Some(conn),
                _ => {
                    conn.close().await.ok();
                }
            }
            Ok::<_, Error>(status?.applied)
        }
        .await
        .map_err(stop_at(condition_of(scope)))?;
        match scope {
            Scope::Landlord => ledgers.landlord = Some(applied),
            Scope::Tenant => ledgers.tenant = Some(applied),
        }
    }
    Ok((ledgers, session))
}

/// The landlord database as Landlord's own role, a tenant database as the tenant's own role.
pub async fn connect(
    ctx: &Context,
    scope: Scope,
    names: &TenantNames,
    password: &Password,
) -> Result<DbConnection, Error> {
    Ok(match scope {
        Scope::Landlord => ctx.databases.landlord().await?,
        Scope::Tenant => ctx.databases.tenant(names, password).await?,
    })
}

pub fn condition_of(scope: Scope) -> ConditionType {
    match scope {
        Scope::Landlord => ConditionType::LandlordMigrated,
        Scope::Tenant => ConditionType::TenantMigrated,
    }
}
