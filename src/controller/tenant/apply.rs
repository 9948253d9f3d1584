//! Carrying out a Tenant's plan: claim the slug, role and database (adopted only with Landlord's mark),
//! the credentials Secret, the core tenant migrations as the tenant's own role, the mirror. Each failure
//! names the condition it blames.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::super::conditions::{Stopped, stop_at};
use super::super::registry::Server;
use super::super::server::placement;
use super::super::{Context, Error, credentials};
use super::gather::extensions_on;
use super::plan::TenantPlan;
use super::validate::{Placement, ValidTenant, check_extensions};
use crate::catalog::Scope;
use crate::crd::{ConditionType, RECREATE_DATABASE_ANNOTATION, Tenant};
use crate::db::mirror::{self, Candidate, Claimed, TenantRecord, TenantState};
use crate::db::{self, Ensured, TenantRequest, Track};

/// What a reconcile that went through leaves behind.
#[derive(Debug)]
pub struct TenantOutcome {
    pub core_version: Option<i64>,
    /// The server the database is on.
    pub server: String,
}

pub async fn apply(
    tenant: &Tenant,
    valid: &ValidTenant,
    mut plan: TenantPlan,
    ctx: &Context,
) -> Result<TenantOutcome, Stopped> {
    let pool = ctx.databases.landlord_pool();
    let server = claim(tenant, valid, &plan.placement, ctx)
        .await
        .map_err(stop_at(ConditionType::DatabaseReady))?;
    let secret = plan.secret_on(tenant, valid, &server);
    let request = TenantRequest {
        tenant: &valid.names,
        owner: &valid.owner,
        password: &plan.password,
        extensions: &valid.extensions,
        templates: server.templates.as_deref(),
        may_create_database: plan.may_create_database,
    };
    let provisioned = match db::ensure_tenant(&server.databases, &request).await {
        Ok(provisioned) => provisioned,
        Err(db::Error::DatabaseMissing { database }) => {
            // Installations read readiness from here: they wait until the database is back.
            let _ = mirror::set_tenant_status(
                pool,
                valid.names.slug(),
                &valid.owner.uid,
                TenantState::Missing,
            )
            .await;
            return Err(stop_at(ConditionType::DatabaseReady)(
                Error::DatabaseMissing { database },
            ));
        }
        Err(err) => return Err(stop_at(ConditionType::DatabaseReady)(err)),
    };
    let (provisioned, mut conn) = provisioned;
    let database = valid.names.database();
    if plan.record_database {
        mirror::record_database_made(
            pool,
            valid.names.slug(),
            &valid.owner.uid,
            plan.recreate.as_deref(),
        )
        .await
        .map_err(stop_at(ConditionType::DatabaseReady))?;
    }
    match provisioned.database {
        Ensured::Created if plan.recreate.is_some() => {
            ctx.metrics.database_created(provisioned.cloned);
            let note = format!(
                "Created database {database} anew, empty, as annotation {RECREATE_DATABASE_ANNOTATION} asked; \
                 its modules are installed again."
            );
            ctx.event(tenant, false, "Recreated", "Provision", note)
                .await;
        }
        Ensured::Created => {
            ctx.metrics.database_created(provisioned.cloned);
            let from = if provisioned.cloned {
                ", cloned from Landlord's template of the core schema"
            } else {
                ""
            };
            let note = format!("Created database {database} owned by its own role{from}.");
            ctx.event(tenant, false, "Provisioned", "Provision", note)
                .await;
        }
        Ensured::Readopted => {
            let note =
                format!("Adopted database {database}, kept for this Tenant's namespace and name.");
            ctx.event(tenant, false, "Readopted", "Provision", note)
                .await;
        }
        Ensured::Existed => {}
    }
    if provisioned.password_set && provisioned.role != Ensured::Created {
        let note = format!(
            "Set the password of role {} to the one in the tenant's Secret.",
            valid.names.role()
        );
        ctx.event(tenant, false, "PasswordSet", "Provision", note)
            .await;
    }
    let mut credentials_version = plan.credentials_version;
    if let Some(secret) = secret {
        let api = ctx.api::<Secret>(&secret.namespace().unwrap_or_default());
        let written = credentials::write(&api, &secret, credentials_version.as_deref())
            .await
            .map_err(Error::from)
            .map_err(stop_at(ConditionType::DatabaseReady))?;
        credentials_version = written.metadata.resource_version;
    }

    let track = Track::core(&ctx.catalog, Scope::Tenant);
    // A clone's ledger, and Landlord's copy of it, are the template's: every core migration of this
    // catalog, written moments ago by Landlord. A later reconcile migrates it like any other database.
    let executed = if provisioned.cloned {
        Ok(Vec::new())
    } else {
        ctx.migrator
            .apply(&mut conn, &track, plan.core_target)
            .await
            .map(|report| report.executed)
    };
    conn.close().await.ok();
    let executed = match executed {
        Ok(executed) => executed,
        Err(err) => {
            // Installations read readiness from here: it must not say Ready any longer.
            let _ = mirror::set_tenant_status(
                pool,
                valid.names.slug(),
                &valid.owner.uid,
                TenantState::Failed,
            )
            .await;
            return Err(stop_at(ConditionType::Migrated)(err));
        }
    };
    ctx.metrics.migrations_applied("tenant", executed.len());
    if !executed.is_empty() {
        let names: Vec<String> = executed.iter().map(|e| e.step.name.clone()).collect();
        let note = format!("Applied core tenant migrations: {}.", names.join(", "));
        ctx.event(tenant, false, "Migrated", "Migrate", note).await;
    }
    // The password logged in above: until the Secret changes, a resync need not log in to know it.
    let verified = credentials_version.as_deref();
    mirror::record_tenant_ready(pool, valid.names.slug(), &valid.owner.uid, verified)
        .await
        .map_err(stop_at(ConditionType::Ready))?;
    Ok(TenantOutcome {
        core_version: plan.core_target,
        server: server.name().to_string(),
    })
}

/// Claims the slug (the race-free form of validate's check: two Tenants applying at once cannot both win),
/// placing it on a server if it has none yet, and returns that server. A tenant placed just now has its
/// extensions checked there before its role and database are made.
async fn claim(
    tenant: &Tenant,
    valid: &ValidTenant,
    placement: &Placement,
    ctx: &Context,
) -> Result<std::sync::Arc<Server>, Error> {
    let record = TenantRecord {
        slug: valid.names.slug(),
        database: valid.names.database().as_str(),
        display_name: tenant.spec.display_name.as_deref(),
    };
    let candidates = match placement {
        Placement::Recorded(server) => vec![Candidate {
            server: server.name().to_string(),
            max_tenants: None,
        }],
        Placement::Choose(candidates) => candidates.clone(),
    };
    let pool = ctx.databases.landlord_pool();
    let slug = valid.names.slug().to_string();
    let server = match mirror::claim_tenant(pool, &record, &valid.owner, &candidates).await? {
        Claimed::Ours { server } => ctx.server(&server)?,
        Claimed::Taken(owner) => return Err(Error::SlugConflict { slug, owner }),
        Claimed::Retained(owner) => return Err(Error::SlugRetained { slug, owner }),
        Claimed::NoServer => return Err(placement::all_full(&candidates)),
    };
    if matches!(placement, Placement::Choose(_)) {
        ctx.servers.count_changed(server.name());
        check_extensions(valid, extensions_on(tenant, &server).await?.as_ref())?;
    }
    Ok(server)
}
