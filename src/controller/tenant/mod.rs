//! The Tenant pipeline: validate → claim the slug → provision database, role, extensions → credentials
//! Secret → core tenant migrations → mirror → status. Deletion runs behind the finalizer.

mod status;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use tracing::info;

use self::status::{Progress, desired_status};
use self::validate::{ValidatedTenant, validate};
use super::conditions::Step;
use super::context::{conclude, error_policy, refuse_cleanup};
use super::pipeline::{self, Pipeline, reconcile};
use super::{Context, Error, TENANT_CONTROLLER};
use crate::catalog::Scope;
use crate::crd::{
    ConditionType, DeletionPolicy, DesiredCondition, ModuleInstallation, Reason, Tenant,
};
use crate::db::mirror::{self, Claim, TenantOwner, TenantRecord};
use crate::db::{ModuleScope, Password, TenantRequest, ensure_tenant};

/// Label on the Secrets Landlord writes, so it watches only those.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "landlord");
const RESYNC: Duration = Duration::from_secs(300);

pub fn controller(
    ctx: Arc<Context>,
) -> impl Stream<Item = Result<(ObjectRef<Tenant>, Action), controller::Error<Error, watcher::Error>>>
{
    let namespace = ctx.config.watch_namespace.as_deref();
    let tenants: Api<Tenant> = scoped(&ctx, namespace);
    let secrets: Api<Secret> = scoped(&ctx, namespace);
    let installations: Api<ModuleInstallation> = scoped(&ctx, namespace);
    let managed = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let controller = Controller::new(tenants, watcher::Config::default());
    let _ = ctx.tenants.set(controller.store());
    controller
        .owns(secrets, watcher::Config::default().labels(&managed))
        // A deleted installation may unblock its tenant's deletion.
        .watches(installations, watcher::Config::default(), |mi| {
            mi.namespace()
                .map(|ns| ObjectRef::new(&mi.spec.tenant).within(&ns))
        })
        .with_config(controller::Config::default().concurrency(ctx.config.concurrency))
        .run(reconcile::<Tenant>, error_policy, ctx)
}

pub(super) fn scoped<K>(ctx: &Context, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    }
}

impl Pipeline for Tenant {
    const CONTROLLER: &'static str = TENANT_CONTROLLER;

    async fn apply(&self, ctx: &Context) -> Result<Action, Error> {
        apply(self, ctx).await
    }

    async fn cleanup(&self, ctx: &Context) -> Result<Action, Error> {
        cleanup(self, ctx).await
    }
}

async fn apply(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    let mut progress = Progress {
        paused: tenant.spec.paused,
        ..Default::default()
    };
    let result = if tenant.spec.paused {
        Ok(())
    } else {
        provision(tenant, ctx, &mut progress).await
    };
    publish(tenant, ctx, progress).await?;
    match result {
        Ok(()) if tenant.spec.paused => Ok(Action::await_change()),
        Ok(()) => Ok(Action::requeue(RESYNC)),
        Err(err) => conclude(tenant, ctx, "Reconcile", err).await,
    }
}

async fn publish(tenant: &Tenant, ctx: &Context, progress: Progress) -> Result<(), Error> {
    let status = desired_status(tenant, progress, &ctx.now());
    pipeline::publish(ctx, tenant, tenant.status.as_ref(), &status).await
}

async fn provision(tenant: &Tenant, ctx: &Context, progress: &mut Progress) -> Result<(), Error> {
    let valid = validate(tenant).inspect_err(|e| progress.database_step = Some(Step::failed(e)))?;
    progress.database = Some(valid.names.database().to_string());
    claim(tenant, &valid, ctx)
        .await
        .inspect_err(|e| progress.database_step = Some(Step::failed(e)))?;

    let secret_name = secret_name(tenant);
    let database = valid.names.database().to_string();
    let provisioned = async {
        let secrets: Api<Secret> = ctx.api(&valid.namespace);
        let existing = secrets.get_opt(&secret_name).await?.and_then(|s| s.data);
        let (password, reset) = current_password(existing.as_ref())?;
        let request = TenantRequest {
            tenant: &valid.names,
            password: &password,
            reset_password: reset,
            extensions: &valid.extensions,
        };
        let provisioned = ensure_tenant(&ctx.databases, &request).await?;
        write_secret(
            tenant,
            ctx,
            &valid,
            &secret_name,
            password,
            existing.as_ref(),
        )
        .await?;
        Ok::<_, Error>(provisioned)
    }
    .await
    .inspect_err(|e| progress.database_step = Some(Step::failed(e)))?;
    if provisioned.database == crate::db::Ensured::Created {
        let note = format!("Created database {database} owned by its own role.");
        ctx.event(tenant, false, "Provisioned", "Provision", note)
            .await;
    }
    progress.secret_name = Some(secret_name.clone());
    progress.database_step = Some(Step::Done(format!(
        "Database {database} and its role exist; credentials are in Secret {secret_name}."
    )));

    let core_version = migrate_core(tenant, ctx, &valid)
        .await
        .inspect_err(|e| progress.migrated_step = Some(Step::failed(e)))?;
    progress.core_version = core_version;
    progress.migrated_step = Some(Step::Done(match core_version {
        Some(version) => format!("Core tenant schema is at version {version}."),
        None => "The catalog has no core tenant migrations.".to_string(),
    }));
    Ok(())
}

/// The slug belongs to the first resource that claims it; every other claimant is refused untouched.
async fn claim(tenant: &Tenant, valid: &ValidatedTenant, ctx: &Context) -> Result<(), Error> {
    let record = TenantRecord {
        slug: valid.names.slug(),
        database: valid.names.database().as_str(),
        display_name: tenant.spec.display_name.as_deref(),
    };
    match mirror::claim_tenant(ctx.databases.landlord_pool(), &record, &owner(valid)).await? {
        Claim::Ours => Ok(()),
        Claim::Taken(other) => Err(Error::refused(
            Reason::SlugConflict,
            format!(
                "Slug {} already belongs to Tenant {}/{}; this Tenant leaves that database alone. \
                 Choose another spec.slug or delete this Tenant.",
                valid.names.slug(),
                other.namespace,
                other.name
            ),
        )),
    }
}

fn owner(valid: &ValidatedTenant) -> TenantOwner {
    TenantOwner {
        uid: valid.uid.clone(),
        namespace: valid.namespace.clone(),
        name: valid.name.clone(),
    }
}

fn secret_name(tenant: &Tenant) -> String {
    format!("{}-db", tenant.name_any())
}

/// The password already handed out in the Secret, or a new one that the role must be set to.
fn current_password(
    existing: Option<&BTreeMap<String, ByteString>>,
) -> Result<(Password, bool), Error> {
    let handed_out = existing
        .and_then(|data| data.get("password"))
        .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
        .and_then(|text| Password::new(text).ok());
    match handed_out {
        Some(password) => Ok((password, false)),
        None => Ok((Password::generate()?, true)),
    }
}

/// Writes the credentials Secret unless it already holds exactly these values.
async fn write_secret(
    tenant: &Tenant,
    ctx: &Context,
    valid: &ValidatedTenant,
    name: &str,
    password: Password,
    existing: Option<&BTreeMap<String, ByteString>>,
) -> Result<(), Error> {
    let credentials = ctx.databases.tenant_credentials(&valid.names, password);
    let data: BTreeMap<String, ByteString> = [
        ("host", credentials.host.clone()),
        ("port", credentials.port.to_string()),
        ("database", credentials.database.clone()),
        ("username", credentials.username.clone()),
        ("password", credentials.password.expose().to_string()),
        ("uri", credentials.uri()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
    .collect();
    if existing == Some(&data) {
        return Ok(());
    }
    let secrets: Api<Secret> = ctx.api(&valid.namespace);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(valid.namespace.clone()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )])),
            owner_references: tenant.controller_owner_ref(&()).map(|r| vec![r]),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    secrets
        .patch(
            name,
            &PatchParams::apply(TENANT_CONTROLLER).force(),
            &Patch::Apply(&secret),
        )
        .await?;
    Ok(())
}

async fn migrate_core(
    tenant: &Tenant,
    ctx: &Context,
    valid: &ValidatedTenant,
) -> Result<Option<i64>, Error> {
    let target = ctx.catalog.core_tenant.latest();
    let track = ModuleScope::core(&ctx.catalog, Scope::Tenant);
    let mut conn = ctx.databases.tenant(&valid.names).await?;
    let report = ctx.migrator.apply(&mut conn, &track, target).await;
    conn.close().await?;
    let report = report?;
    ctx.metrics
        .migrations_applied("tenant", report.executed.len());
    if !report.executed.is_empty() {
        let names: Vec<String> = report
            .executed
            .iter()
            .map(|e| e.step.name.clone())
            .collect();
        let note = format!("Applied core tenant migrations: {}.", names.join(", "));
        ctx.event(tenant, false, "Migrated", "Migrate", note).await;
    }
    mirror::set_tenant_status(
        ctx.databases.landlord_pool(),
        valid.names.slug(),
        &valid.uid,
        "Ready",
    )
    .await?;
    Ok(target)
}

/// Deletion: nothing happens while paused, while installations remain, or (Delete) in production. What
/// holds it up is published as the `Ready` condition and a Warning Event; the finalizer stays.
async fn cleanup(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    match teardown(tenant, ctx).await {
        Ok(action) => Ok(action),
        Err(err) => {
            let ready = DesiredCondition::new(
                ConditionType::Ready,
                Some(false),
                err.reason(),
                err.to_string(),
            );
            let progress = Progress {
                paused: tenant.spec.paused,
                deleting: Some(ready),
                ..Default::default()
            };
            publish(tenant, ctx, progress).await?;
            refuse_cleanup(tenant, ctx, "Delete", err).await
        }
    }
}

async fn teardown(tenant: &Tenant, ctx: &Context) -> Result<Action, Error> {
    if tenant.spec.paused {
        return Err(Error::refused(
            Reason::Paused,
            "Deletion waits until spec.paused is unset.",
        ));
    }
    // An invalid slug never reached a database, and a slug owned by someone else is not ours to clean.
    let Ok(valid) = validate(tenant) else {
        return Ok(Action::await_change());
    };
    let pool = ctx.databases.landlord_pool();
    match mirror::owner_of(pool, valid.names.slug()).await? {
        Some(owner) if owner.uid == valid.uid => {}
        _ => return Ok(Action::await_change()),
    }

    let installations: Api<ModuleInstallation> = ctx.api(&valid.namespace);
    let mut remaining: Vec<String> = installations
        .list(&ListParams::default())
        .await?
        .into_iter()
        .filter(|mi| mi.spec.tenant == valid.name)
        .map(|mi| mi.name_any())
        .collect();
    if !remaining.is_empty() {
        remaining.sort();
        return Err(Error::refused(
            Reason::UninstallBlocked,
            format!(
                "Deletion waits for the ModuleInstallations of this tenant to be deleted first: {}.",
                remaining.join(", ")
            ),
        ));
    }

    let database = valid.names.database().to_string();
    match tenant.spec.deletion_policy {
        DeletionPolicy::Retain => {
            mirror::release_tenant(pool, valid.names.slug(), &valid.uid).await?;
            let note = format!("Kept database {database} and its role (deletionPolicy Retain).");
            ctx.event(tenant, false, "Retained", "Delete", note).await;
        }
        DeletionPolicy::Delete if ctx.config.is_production() => {
            return Err(Error::refused(
                Reason::DestructiveActionBlocked,
                format!(
                    "Refusing to drop database {database} in production; set deletionPolicy: Retain to let \
                     the deletion finish and keep the data."
                ),
            ));
        }
        DeletionPolicy::Delete => {
            crate::db::drop_tenant(&ctx.databases, &valid.names).await?;
            let secrets: Api<Secret> = ctx.api(&valid.namespace);
            match secrets
                .delete(&secret_name(tenant), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err.into()),
            }
            mirror::forget_tenant(pool, valid.names.slug(), &valid.uid).await?;
            let note = format!("Dropped database {database} and its role (deletionPolicy Delete).");
            ctx.event(tenant, false, "Deleted", "Delete", note).await;
        }
    }
    info!(database, policy = ?tenant.spec.deletion_policy, "tenant cleaned up");
    Ok(Action::await_change())
}
