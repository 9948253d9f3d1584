//! `landlord run`: load the catalog, serve health and metrics, wait for the CRDs, then reconcile only
//! while this replica holds the leader Lease — two replicas never reconcile at once, and losing the
//! Lease stops reconciling until it is won back.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::{info, warn};

use super::Context;
use super::context::{BACKOFF_BASE, BACKOFF_CAP};
use crate::catalog::{Catalog, Scope};
use crate::config::Config;
use crate::db::{Databases, Limits, Track};
use crate::metrics::Metrics;

const LEASE_NAME: &str = "landlord";
/// The `controller` label of the core landlord migrations each leadership runs before any reconcile.
const LANDLORD_DATABASE: &str = "landlord-database";
const CRDS: [&str; 4] = [
    "tenants.tenancy.landlord.dev",
    "moduleinstallations.tenancy.landlord.dev",
    "modulerollouts.tenancy.landlord.dev",
    "databaseservers.tenancy.landlord.dev",
];

pub async fn run(config: Config) -> anyhow::Result<()> {
    let catalog = Catalog::load(&config.modules_dir, &config.migrations_dir).map_err(|errors| {
        let list: Vec<String> = errors.problems.iter().map(|p| p.to_string()).collect();
        anyhow::anyhow!(
            "{errors} (run `landlord catalog check`):\n{}",
            list.join("\n")
        )
    })?;
    info!(modules = catalog.modules.len(), "catalog loaded");
    let limits = Limits {
        max_connections: config.max_db_connections,
        ..Limits::default()
    };
    let databases = Databases::new(&config.admin_database_url, &config.database_url, limits)?;
    let client = Client::try_default().await?;
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context::new(
        client.clone(),
        catalog,
        databases,
        config,
        metrics.clone(),
    ));
    let refresh = {
        let ctx = ctx.clone();
        Arc::new(move || ctx.refresh_resource_metrics())
    };
    crate::serve::serve(ctx.config.http_addr, metrics.clone(), refresh).await?;

    wait_for_crds(&client).await?;
    metrics.set_ready();

    let duration = ctx.config.lease_duration_seconds.max(2);
    let lease = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(ctx.config.lease_namespace.clone())
        .with_identity(ctx.config.identity.clone())
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .build()
        .await?;
    let (mut leader, lease_task) = lease.watch().await;
    info!(identity = %ctx.config.identity, namespace = %ctx.config.lease_namespace, "waiting for the leader lease");

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            held = until(&mut leader, true) => held?,
        }
        info!(identity = %ctx.config.identity, "leading: reconciling");
        metrics.set_leader(true);
        let work = async {
            migrate_landlord_core(&ctx).await;
            check_landlord_database(&ctx).await;
            super::server::prime(&ctx).await;
            let (due, senders) = super::drift::triggers();
            ctx.visits.wake_tenants_with(Some(&senders));
            let tenants = super::tenant::controller(ctx.clone(), due.tenants);
            let installations = super::installation::controller(ctx.clone(), due.installations);
            let rollouts = super::rollout::controller(ctx.clone());
            let servers = super::server::controller(ctx.clone());
            futures::join!(
                tenants.for_each(|_| async {}),
                installations.for_each(|_| async {}),
                rollouts.for_each(|_| async {}),
                servers.for_each(|_| async {}),
                super::drift::run(&ctx, senders),
                super::server::look_at_default(&ctx)
            );
        };
        // Dropping `work` cancels in-flight reconciles: an interrupted migration's transaction rolls back
        // and its advisory lock goes with the connection.
        tokio::select! {
            _ = &mut shutdown => break,
            _ = work => break,
            lost = until(&mut leader, false) => {
                lost?;
                metrics.set_leader(false);
                ctx.forget_caches();
                metrics.forget_rollouts();
                metrics.forget_servers();
                warn!(identity = %ctx.config.identity, "lost the leader lease: reconciling stopped");
            }
        }
    }
    metrics.set_leader(false);
    // Closing the channel makes the lease task release the Lease, so a standby takes over at once.
    drop(leader);
    let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
    info!("stopped");
    Ok(())
}

/// Waits until the lease state is `held`; an error when the lease task has died.
async fn until(leader: &mut watch::Receiver<bool>, held: bool) -> anyhow::Result<()> {
    leader
        .wait_for(|state| *state == held)
        .await
        .map(drop)
        .map_err(|_| anyhow::anyhow!("the leader election task stopped"))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    info!("shutdown requested");
}

async fn wait_for_crds(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in CRDS {
        info!(crd = name, "waiting for the CRD to be established");
        await_condition(crds.clone(), name, conditions::is_crd_established()).await?;
    }
    Ok(())
}

/// Warns loudly (log and metric) when tenants' credentials could open the landlord database, or the
/// maintenance database (where the admin role works).
async fn check_landlord_database(ctx: &Context) {
    match ctx.databases.landlord_open_to_public().await {
        Ok(public) => {
            ctx.metrics.set_public_landlord_database(public);
            if public {
                warn!(
                    "PUBLIC may CONNECT to the landlord database: every tenant's credentials can open it and \
                     read the mirror. Run REVOKE CONNECT, TEMPORARY ON DATABASE <landlord> FROM PUBLIC"
                );
            }
        }
        Err(err) => warn!(%err, "could not check who may connect to the landlord database"),
    }
    match ctx.databases.maintenance_open_to_public().await {
        Ok(public) => {
            ctx.metrics.set_public_maintenance_database(public);
            if public {
                warn!(
                    "PUBLIC may CONNECT to the admin URL's database: every tenant's credentials can open it \
                     and disturb the admin role's work there. Run REVOKE CONNECT, TEMPORARY ON DATABASE \
                     <maintenance database> FROM PUBLIC and GRANT CONNECT on it to the admin role"
                );
            }
        }
        Err(err) => warn!(%err, "could not check who may connect to the maintenance database"),
    }
}

/// Core landlord migrations run once per leadership, before any reconcile; retried until the landlord
/// database answers.
async fn migrate_landlord_core(ctx: &Context) {
    let track = Track::core(&ctx.catalog, Scope::Landlord);
    let mut delay = BACKOFF_BASE;
    loop {
        let started = std::time::Instant::now();
        let result = async {
            let mut conn = ctx.databases.landlord().await?;
            let report = ctx
                .migrator
                .apply(&mut conn, &track, ctx.catalog.core_landlord.latest())
                .await;
            conn.close().await?;
            report
        }
        .await;
        match result {
            Ok(report) => {
                ctx.metrics
                    .reconciled::<super::Error>(LANDLORD_DATABASE, started, Ok(()));
                ctx.metrics
                    .migrations_applied("landlord", report.executed.len());
                info!(
                    applied = report.executed.len(),
                    "landlord database migrated"
                );
                return;
            }
            Err(err) => {
                // Nothing reconciles until this succeeds, while this replica holds the Lease: counted as a
                // failure (alert LandlordReconcileFailing), not only logged.
                let err = super::Error::from(err);
                ctx.metrics
                    .reconciled(LANDLORD_DATABASE, started, Err(&err));
                warn!(%err, ?delay, "could not migrate the landlord database, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(BACKOFF_CAP);
            }
        }
    }
}
