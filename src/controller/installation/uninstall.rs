//! Deleting a ModuleInstallation. Only the installation the landlord's records name as the module's installer
//! for a Tenant that owns its slug removes anything: a refused duplicate, or an installation whose Tenant lost
//! its slug claim, leaves with nothing touched. Never under a module that depends on it; Retain keeps the
//! tables; Rollback runs the down migrations (tenant scope as the tenant's role, then the shared landlord
//! scope only when no other tenant has the module, decided under the lock); never a rollback in production.

use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::super::{Context, Error};
use super::gather::{self, InstallationFacts, connect};
use crate::catalog::{Catalog, Module, Scope};
use crate::crd::{InstallScope, ModuleInstallation, UninstallPolicy};
use crate::db::mirror;
use crate::db::{self, Allowed, Password, TenantNames, Track};

#[derive(Debug)]
enum Uninstall<'c> {
    /// Nothing recorded is this installation's: forget whatever carries its UID, touch nothing else.
    NothingOurs,
    Retain {
        names: TenantNames,
    },
    Rollback {
        names: TenantNames,
        password: Password,
        /// The server Landlord's records place the tenant's database on.
        server: String,
        module: &'c Module,
        scopes: Vec<Scope>,
    },
}

pub async fn cleanup(mi: &ModuleInstallation, ctx: &Context) -> Result<Action, Error> {
    let world = gather::gather(mi, ctx).await?;
    let uninstall = plan(mi, world, &ctx.catalog, ctx.config.is_production())?;
    apply(mi, uninstall, ctx).await?;
    Ok(Action::await_change())
}

fn plan<'c>(
    mi: &ModuleInstallation,
    world: InstallationFacts,
    catalog: &'c Catalog,
    production: bool,
) -> Result<Uninstall<'c>, Error> {
    let uid = mi.uid().unwrap_or_default();
    let Some(tenant) = &world.tenant else {
        return Ok(Uninstall::NothingOurs);
    };
    let Ok(tenant) = super::super::tenant::validate_spec(tenant) else {
        return Ok(Uninstall::NothingOurs);
    };
    let server = world
        .slug
        .as_ref()
        .filter(|record| record.is_owned_by(&tenant.owner.uid))
        .map(|record| record.server.clone());
    let installs_module = world
        .installed
        .iter()
        .any(|m| m.module == mi.spec.module && m.installer.uid == uid);
    let (Some(server), true) = (server, installs_module) else {
        return Ok(Uninstall::NothingOurs);
    };
    // Whatever the policy, a module others depend on stays until they are gone: removing it would turn
    // their Ready into DependencyMissing.
    let installed = world.installed.iter().map(|m| m.module.as_str());
    let dependents: Vec<mirror::InstalledModule> = catalog
        .dependents(&mi.spec.module, installed)
        .into_iter()
        .filter_map(|name| world.installed.iter().find(|m| m.module == name))
        .cloned()
        .collect();
    if !dependents.is_empty() {
        return Err(blocked(&mi.spec.module, &dependents));
    }
    let names = tenant.names;
    if mi.spec.uninstall_policy == UninstallPolicy::Retain {
        return Ok(Uninstall::Retain { names });
    }
    if production {
        return Err(Error::RollbackRefusedInProduction);
    }
    // Its down migrations are gone with it: keeping the tables instead must be the user's choice.
    let Some(module) = catalog.module(&mi.spec.module) else {
        return Err(Error::RollbackOfMissingModule {
            module: mi.spec.module.clone(),
        });
    };
    let password = world.password.ok_or_else(|| Error::TenantNotReady {
        tenant: mi.spec.tenant.clone(),
    })?;
    // The tenant scope first: its tables may refer to the landlord scope's.
    let scopes = [Scope::Tenant, Scope::Landlord]
        .into_iter()
        .filter(|scope| match mi.spec.scope {
            InstallScope::All => true,
            InstallScope::Tenant => *scope == Scope::Tenant,
            InstallScope::Landlord => *scope == Scope::Landlord,
        })
        .collect();
    Ok(Uninstall::Rollback {
        names,
        password,
        server,
        module,
        scopes,
    })
}

async fn apply(
    mi: &ModuleInstallation,
    uninstall: Uninstall<'_>,
    ctx: &Context,
) -> Result<(), Error> {
    let pool = ctx.databases.landlord_pool();
    let uid = mi.uid().unwrap_or_default();
    let module = &mi.spec.module;
    match uninstall {
        Uninstall::NothingOurs => {
            if !uid.is_empty() {
                mirror::forget_installation(pool, &uid).await?;
            }
        }
        Uninstall::Retain { names } => {
            if !mark_uninstalling(ctx, &names, module, &uid).await? {
                return Ok(());
            }
            mirror::forget_module(pool, names.slug(), module, &uid).await?;
            let note = format!("Kept the tables of module {module} (uninstallPolicy Retain).");
            ctx.event(mi, false, "Retained", "Uninstall", note).await;
        }
        Uninstall::Rollback {
            names,
            password,
            server,
            module,
            scopes,
        } => {
            // Marked first: from here on no dependent installs on it, and a failed rollback stays
            // Uninstalling (the deletion is retried, never undone).
            if !mark_uninstalling(ctx, &names, &module.name, &uid).await? {
                return Ok(());
            }
            let mut lost = false;
            for scope in scopes {
                match rollback(ctx, (&server, &names, &password), module, scope).await {
                    // Confirmed gone on a server that answers (never a server that is down): nothing is
                    // left in it to roll back; the landlord scope still follows its own rule.
                    Err(Error::Database(db::Error::DatabaseMissing { .. })) => lost = true,
                    other => other?,
                }
            }
            mirror::forget_module(pool, names.slug(), &module.name, &uid).await?;
            let note = if lost {
                format!(
                    "Database {} was already gone (dropped or lost outside Landlord): module {} had nothing \
                     left to roll back there.",
                    names.database(),
                    module.name
                )
            } else {
                format!(
                    "Rolled back module {} and removed its permissions and roles.",
                    module.name
                )
            };
            let reason = if lost {
                "DatabaseMissing"
            } else {
                "RolledBack"
            };
            ctx.event(mi, lost, reason, "Uninstall", note).await;
        }
    }
    Ok(())
}

/// The race-free form of plan's dependents check: true once the record says `Uninstalling`; false when
/// this installation is not the module's installer after all (its record is forgotten, nothing touched).
async fn mark_uninstalling(
    ctx: &Context,
    names: &TenantNames,
    module: &str,
    uid: &str,
) -> Result<bool, Error> {
    let pool = ctx.databases.landlord_pool();
    let dependents = ctx
        .catalog
        .dependents(module, ctx.catalog.modules.keys().map(String::as_str));
    match mirror::mark_uninstalling(pool, names.slug(), module, uid, &dependents).await? {
        mirror::Uninstalling::Marked => Ok(true),
        mirror::Uninstalling::NotRecorded => {
            mirror::forget_installation(pool, uid).await?;
            Ok(false)
        }
        mirror::Uninstalling::Blocked(dependents) => Err(blocked(module, &dependents)),
    }
}

fn blocked(module: &str, dependents: &[mirror::InstalledModule]) -> Error {
    let listed: Vec<String> = dependents
        .iter()
        .map(|m| format!("{} (ModuleInstallation {})", m.module, m.installer.name))
        .collect();
    Error::DependentsInstalled {
        module: module.to_string(),
        dependents: listed,
    }
}

async fn rollback(
    ctx: &Context,
    (server, names, password): (&str, &TenantNames, &Password),
    module: &Module,
    scope: Scope,
) -> Result<(), Error> {
    let track = Track::of(module, scope);
    let shared_by = (scope == Scope::Landlord).then(|| names.slug());
    let mut conn = connect(ctx, scope, server, names, password).await?;
    let result = async {
        let report = ctx
            .migrator
            .migrate_guarded(
                &mut conn,
                &track,
                None,
                Allowed::Only(db::Direction::Down),
                shared_by,
            )
            .await?;
        if scope == Scope::Tenant {
            db::remove_module_acl(&mut conn, &module.name).await?;
        }
        Ok::<_, db::Error>(report.executed.len())
    }
    .await;
    conn.close().await.ok();
    let executed = result?;
    ctx.metrics.migrations_applied(scope.as_str(), executed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ModuleInstallationSpec, Reason, Tenant, TenantSpec};
    use crate::db::TenantOwner;
    use crate::db::mirror::{InstalledModule, Installer, ModuleState, SlugRecord, TenantState};

    fn mi(module: &str, uid: &str, policy: UninstallPolicy) -> ModuleInstallation {
        let mut mi = ModuleInstallation::new(
            &format!("acme-{module}"),
            ModuleInstallationSpec {
                tenant: "acme".into(),
                module: module.into(),
                uninstall_policy: policy,
                ..Default::default()
            },
        );
        mi.metadata.uid = Some(uid.into());
        mi
    }

    fn installed(module: &str, uid: &str) -> InstalledModule {
        InstalledModule {
            module: module.into(),
            version: Some("1.0.0".into()),
            status: ModuleState::Installed,
            installer: Installer {
                uid: uid.into(),
                name: format!("acme-{module}"),
            },
            reinstalled: None,
        }
    }

    /// The Tenant `acme` (UID t1) in namespace ns; `slug_owner` is who the landlord's record says owns it.
    fn world(slug_owner: &str, modules: Vec<InstalledModule>) -> InstallationFacts {
        let mut tenant = Tenant::new("acme", TenantSpec::default());
        tenant.metadata.namespace = Some("ns".into());
        tenant.metadata.uid = Some("t1".into());
        InstallationFacts {
            tenant: Some(tenant),
            slug: Some(SlugRecord {
                owner: TenantOwner {
                    uid: slug_owner.into(),
                    namespace: "ns".into(),
                    name: "acme".into(),
                },
                status: TenantState::Ready,
                credentials_version: None,
                database_made: true,
                recreated: None,
                server: "default".into(),
            }),
            installed: modules,
            installer_exists: true,
            password: Some(Password::new("p").unwrap()),
        }
    }

    #[test]
    fn only_the_recorded_installer_of_a_tenant_that_owns_its_slug_rolls_back() {
        let catalog = Catalog::shipped();
        let rollback = mi("tasks", "m1", UninstallPolicy::Rollback);
        let plan = |w| plan(&rollback, w, &catalog, false);
        assert!(matches!(
            plan(world("t1", vec![installed("tasks", "m1")])),
            Ok(Uninstall::Rollback { .. })
        ));
        // A refused duplicate: another installation is recorded.
        assert!(matches!(
            plan(world("t1", vec![installed("tasks", "m0")])),
            Ok(Uninstall::NothingOurs)
        ));
        // A Tenant in another namespace naming the same slug: the slug belongs to someone else.
        assert!(matches!(
            plan(world("victim", vec![installed("tasks", "m1")])),
            Ok(Uninstall::NothingOurs)
        ));
        let mut no_tenant = world("t1", vec![installed("tasks", "m1")]);
        no_tenant.tenant = None;
        assert!(matches!(plan(no_tenant), Ok(Uninstall::NothingOurs)));
    }

    #[test]
    fn a_rollback_of_a_module_gone_from_the_catalog_is_refused_not_retained() {
        let mut catalog = Catalog::shipped();
        catalog.modules.remove("tasks");
        let rollback = mi("tasks", "m1", UninstallPolicy::Rollback);
        let err = plan(
            &rollback,
            world("t1", vec![installed("tasks", "m1")]),
            &catalog,
            false,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::RollbackOfMissingModule { .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("back in the catalog") && message.contains("uninstallPolicy: Retain"),
            "{message}"
        );
        // Retain needs no migrations: it goes on.
        let retain = mi("tasks", "m1", UninstallPolicy::Retain);
        assert!(matches!(
            plan(
                &retain,
                world("t1", vec![installed("tasks", "m1")]),
                &catalog,
                false
            ),
            Ok(Uninstall::Retain { .. })
        ));
    }

    #[test]
    fn dependents_block_and_production_refuses() {
        let catalog = Catalog::shipped();
        let tasks = mi("tasks", "m1", UninstallPolicy::Rollback);
        let both = vec![installed("tasks", "m1"), installed("expenses", "m2")];
        let err = plan(&tasks, world("t1", both), &catalog, false).unwrap_err();
        assert_eq!(err.reason(), Reason::UninstallBlocked);
        assert!(
            err.to_string()
                .contains("expenses (ModuleInstallation acme-expenses)"),
            "{err}"
        );
        let err = plan(
            &tasks,
            world("t1", vec![installed("tasks", "m1")]),
            &catalog,
            true,
        )
        .unwrap_err();
        assert_eq!(err.reason(), Reason::DestructiveActionBlocked);
        let retain = mi("tasks", "m1", UninstallPolicy::Retain);
        assert!(matches!(
            plan(
                &retain,
                world("t1", vec![installed("tasks", "m1")]),
                &catalog,
                true
            ),
            Ok(Uninstall::Retain { .. })
        ));
    }
}
