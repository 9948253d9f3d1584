//! Deleting a Tenant: nothing while paused or while installations remain. Retain keeps database, role and
//! credentials Secret (its owner reference removed, so garbage collection keeps it too) for the next
//! Tenant of the same namespace and name; Delete drops what Landlord made for this Tenant, refused in
//! production. A Tenant that never owned its slug removes nothing at all.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use serde_json::json;
use tracing::info;

use super::super::credentials::is_ours;
use super::super::{Context, Error};
use super::validate::{ValidTenant, validate, validate_spec};
use crate::crd::{DeletionPolicy, ModuleInstallation, Tenant};
use crate::db::mirror::{self, MoveRecord, SlugRecord};
use crate::db::{self, Dropped};

struct DeletionFacts {
    slug: Option<SlugRecord>,
    /// A move under way: the deletion waits for it to end (done or rolled back).
    moving: Option<MoveRecord>,
    secret: Option<Secret>,
    /// ModuleInstallations of this tenant still in the namespace.
    remaining: Vec<String>,
}

#[derive(Debug)]
enum Deletion {
    /// The slug is not this Tenant's (never claimed, lost to another, invalid): remove nothing.
    NothingOurs,
    Retain {
        valid: ValidTenant,
        secret: Option<String>,
        /// Landlord's records say the database was made: its absence now is worth a warning.
        made: bool,
        /// The server Landlord's records place the database on.
        server: String,
    },
    Drop {
        valid: ValidTenant,
        secret: Option<String>,
        made: bool,
        server: String,
    },
}

pub async fn cleanup(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    if tenant.spec.paused {
        return Err(Error::DeletionPaused);
    }
    let world = gather(tenant, ctx).await?;
    let deletion = plan(tenant, world, ctx.config.is_production())?;
    let released = match &deletion {
        Deletion::NothingOurs => None,
        Deletion::Retain { valid, .. } | Deletion::Drop { valid, .. } => {
            Some(valid.names.slug().to_string())
        }
    };
    apply(tenant, deletion, ctx).await?;
    // Tenants refused the slug while this one held it are refused until they change, and nothing in
    // Kubernetes changes them: they are told now.
    if let (Some(slug), Some(cache)) = (released, ctx.tenants.get()) {
        for claimant in claimants(&cache.state(), &slug, tenant) {
            ctx.visits.wake_tenant(claimant);
        }
    }
    Ok(Action::await_change())
}

/// The other live Tenants that name `slug`.
fn claimants(tenants: &[Arc<Tenant>], slug: &str, releasing: &Tenant) -> Vec<ObjectRef<Tenant>> {
    tenants
        .iter()
        .filter(|t| t.metadata.deletion_timestamp.is_none() && t.uid() != releasing.uid())
        .filter(|t| validate_spec(t).is_ok_and(|valid| valid.names.slug() == slug))
        .map(|t| ObjectRef::from_obj(&**t))
        .collect()
}

async fn gather(tenant: &Tenant, ctx: &Context) -> Result<DeletionFacts, Error> {
    let found = super::gather::gather(tenant, ctx).await?;
    // A move under way goes on (an operator restarted since resumes it here); the deletion waits for it.
    if found.moving.as_ref().is_some_and(|m| m.phase.active())
        && let Ok((valid, _)) = validate(tenant, &found)
    {
        super::moving::resume(tenant, &valid, &found, ctx).await?;
    }
    // The API, not the cache: a deletion must not miss an installation created a moment ago.
    let mut remaining: Vec<String> = ctx
        .api::<ModuleInstallation>(&tenant.namespace().unwrap_or_default())
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter(|mi| mi.spec.tenant == tenant.name_any())
        .map(|mi| mi.name_any())
        .collect();
    remaining.sort();
    Ok(DeletionFacts {
        slug: found.slug,
        moving: found.moving.filter(|m| m.phase.active()),
        secret: found.secret,
        remaining,
    })
}

fn plan(tenant: &Tenant, world: DeletionFacts, production: bool) -> Result<Deletion, Error> {
    // An invalid slug never reached a database, and a slug owned by someone else is not ours to clean.
    let Ok(valid) = validate_spec(tenant) else {
        return Ok(Deletion::NothingOurs);
    };
    let Some(record) = world
        .slug
        .as_ref()
        .filter(|record| record.is_owned_by(&valid.owner.uid))
    else {
        return Ok(Deletion::NothingOurs);
    };
    let made = record.database_made;
    let server = record.server.clone();
    if let Some(moving) = world.moving {
        return Err(Error::Moving {
            message: format!(
                "Deletion waits for the move from server {} to {} to end ({}).",
                moving.source, moving.target, moving.phase
            ),
        });
    }
    if !world.remaining.is_empty() {
        return Err(Error::InstallationsRemain {
            installations: world.remaining,
        });
    }
    let secret = world
        .secret
        .filter(|s| is_ours(s, &valid.owner.name, &valid.owner.uid))
        .map(|s| s.name_any());
    match tenant.spec.deletion_policy {
        DeletionPolicy::Retain => Ok(Deletion::Retain {
            valid,
            secret,
            made,
            server,
        }),
        DeletionPolicy::Delete if production => Err(Error::DropRefusedInProduction {
            database: valid.names.database().to_string(),
        }),
        DeletionPolicy::Delete => Ok(Deletion::Drop {
            valid,
            secret,
            made,
            server,
        }),
    }
}

async fn apply(tenant: &Tenant, deletion: Deletion, ctx: &Context) -> Result<(), Error> {
    let pool = ctx.databases.landlord_pool();
    let namespace = tenant.namespace().unwrap_or_default();
    let secrets = ctx.api::<Secret>(&namespace);
    match deletion {
        Deletion::NothingOurs => {}
        Deletion::Retain {
            valid,
            secret,
            made,
            server,
        } => {
            if let Some(name) = secret {
                let unowned = json!({"metadata": {"ownerReferences": null}});
                secrets
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&unowned))
                    .await?;
            }
            // Asked before anything changes: a server that does not answer stops the deletion here.
            let exists = !made
                || ctx
                    .server(&server)?
                    .databases
                    .database_exists(valid.names.database())
                    .await?;
            mirror::release_tenant(pool, valid.names.slug(), &valid.owner.uid).await?;
            if exists {
                let note = format!(
                    "Kept database {} with its role and credentials Secret (deletionPolicy Retain) for a Tenant \
                     of the same namespace and name.",
                    valid.names.database()
                );
                ctx.event(tenant, false, "Retained", "Delete", note).await;
            } else {
                warn_already_gone(ctx, tenant, &valid).await;
            }
        }
        Deletion::Drop {
            valid,
            secret,
            made,
            server,
        } => {
            let server = ctx.server(&server)?;
            let (database, role) =
                db::drop_tenant(&server.databases, &valid.names, &valid.owner).await?;
            if let Some(name) = secret {
                match secrets.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(err) => return Err(err.into()),
                }
            }
            mirror::forget_tenant(pool, valid.names.slug(), &valid.owner.uid).await?;
            ctx.servers.count_changed(server.name());
            let kept: Vec<&str> = [(database, "database"), (role, "role")]
                .into_iter()
                .filter(|(dropped, _)| *dropped == Dropped::NotOurs)
                .map(|(_, what)| what)
                .collect();
            let lost = made && database == Dropped::AlreadyGone;
            if lost {
                warn_already_gone(ctx, tenant, &valid).await;
            }
            let note = if !kept.is_empty() {
                format!(
                    "Left the {} named {} untouched: Landlord did not create it for this Tenant.",
                    kept.join(" and "),
                    valid.names.database()
                )
            } else if lost {
                format!(
                    "Dropped the role of database {} (deletionPolicy Delete).",
                    valid.names.database()
                )
            } else {
                format!(
                    "Dropped database {} and its role (deletionPolicy Delete).",
                    valid.names.database()
                )
            };
            ctx.event(tenant, !kept.is_empty(), "Deleted", "Delete", note)
                .await;
        }
    }
    info!(policy = ?tenant.spec.deletion_policy, "tenant cleaned up");
    Ok(())
}

/// A Warning Event: the database Landlord made was gone before the deletion got to it.
async fn warn_already_gone(ctx: &Context, tenant: &Tenant, valid: &ValidTenant) {
    let note = format!(
        "Database {} was already gone when the Tenant was deleted (dropped or lost outside Landlord): there \
         was nothing in it to keep or drop.",
        valid.names.database()
    );
    ctx.event(tenant, true, "DatabaseMissing", "Delete", note)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Reason, TenantSpec};
    use crate::db::TenantOwner;
    use crate::db::mirror::TenantState;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn tenant(policy: DeletionPolicy) -> Tenant {
        let mut tenant = Tenant::new(
            "acme",
            TenantSpec {
                deletion_policy: policy,
                ..Default::default()
            },
        );
        tenant.metadata.namespace = Some("ns".into());
        tenant.metadata.uid = Some("u1".into());
        tenant
    }

    fn world(owner_uid: &str, remaining: &[&str]) -> DeletionFacts {
        DeletionFacts {
            slug: Some(SlugRecord {
                owner: TenantOwner {
                    uid: owner_uid.into(),
                    namespace: "ns".into(),
                    name: "acme".into(),
                },
                status: TenantState::Ready,
                credentials_version: None,
                database_made: true,
                recreated: None,
                server: "default".into(),
            }),
            secret: None,
            remaining: remaining.iter().map(|s| s.to_string()).collect(),
            moving: None,
        }
    }

    #[test]
    fn only_the_slugs_owner_removes_anything() {
        let plan = |w| plan(&tenant(DeletionPolicy::Delete), w, false);
        assert!(matches!(plan(world("u1", &[])), Ok(Deletion::Drop { .. })));
        assert!(matches!(plan(world("u9", &[])), Ok(Deletion::NothingOurs)));
        assert!(matches!(plan(world("", &[])), Ok(Deletion::NothingOurs)));
        let mut never_claimed = world("u1", &[]);
        never_claimed.slug = None;
        assert!(matches!(plan(never_claimed), Ok(Deletion::NothingOurs)));
    }

    #[test]
    fn installations_block_and_production_refuses_a_drop() {
        let blocked = plan(
            &tenant(DeletionPolicy::Delete),
            world("u1", &["acme-tasks"]),
            false,
        );
        assert!(matches!(blocked, Err(Error::InstallationsRemain { .. })));
        let refused = plan(&tenant(DeletionPolicy::Delete), world("u1", &[]), true).unwrap_err();
        assert_eq!(refused.reason(), Reason::DestructiveActionBlocked);
        assert!(matches!(
            plan(&tenant(DeletionPolicy::Retain), world("u1", &[]), true),
            Ok(Deletion::Retain { .. })
        ));
    }

    #[test]
    fn a_released_slug_wakes_the_other_live_tenants_that_name_it() {
        let named = |name: &str, ns: &str, uid: &str, slug: &str| {
            let mut t = Tenant::new(
                name,
                TenantSpec {
                    slug: Some(slug.into()),
                    ..Default::default()
                },
            );
            t.metadata.namespace = Some(ns.into());
            t.metadata.uid = Some(uid.into());
            Arc::new(t)
        };
        let releasing = named("acme", "ns", "u1", "acme");
        let mut leaving = (*named("gone", "ns3", "u4", "acme")).clone();
        leaving.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        let tenants = [
            releasing.clone(),
            named("acme", "other", "u2", "acme"),
            named("beta", "ns", "u3", "beta"),
            Arc::new(leaving),
            named("Bad Slug", "ns", "u5", "Not A Slug!"),
        ];
        let woken: Vec<String> = claimants(&tenants, "acme", &releasing)
            .iter()
            .map(|r| format!("{}/{}", r.namespace.as_deref().unwrap_or_default(), r.name))
            .collect();
        assert_eq!(woken, ["other/acme"]);
    }
}
