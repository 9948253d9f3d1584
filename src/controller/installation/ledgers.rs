//! What each managed scope holds, read only once `validate` has authorised the installation: Landlord's
//! records (enough for a resync of what is in place), or the ledgers themselves, the tenant database's
//! through a session that `apply` goes on using.

use super::super::conditions::{Stopped, stop_at};
use super::super::{Context, Error};
use super::gather::{condition_of, connect};
use super::validate::ValidInstallation;
use crate::catalog::Scope;
use crate::db::records::{self, Recorded};
use crate::db::{DbConnection, LedgerEntry, Track};

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
                .map(|r| records::as_ledger(&Track::of(valid.module, scope), r))
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
            let mut conn =
                connect(ctx, scope, &valid.server, &valid.names, &valid.password).await?;
            let status = ctx
                .migrator
                .status(&mut conn, &Track::of(valid.module, scope))
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
