//! What a DatabaseServer's reconcile finds: the admin URL from its Secret in the operator's namespace, the
//! server's answer and its admin role's privileges, the tenants Landlord's records place there. The registry
//! entry is made anew only when what it is made from changed, so a server's template state survives resyncs.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::core::Selector;

use crate::controller::registry::{PlacementRules, Server};
use crate::controller::{Context, Error};
use crate::crd::DatabaseServer;
use crate::db::{AdminRole, ServerAccess, mirror};
use crate::metrics::ServerView;

/// What one look at a server found.
#[derive(Debug)]
pub struct Observed {
    /// The admin role and version, or why the server could not be asked.
    pub role: Result<AdminRole, Error>,
    pub tenants: i64,
    /// The template database in use there, once built.
    pub template: Option<String>,
}

/// Reads the admin Secret, (re)registers the server, and looks at it. An unreadable Secret or URL leaves
/// the server's earlier entry in place (its tenants keep working), marked not Ready.
pub async fn observe(server: &DatabaseServer, ctx: &Context) -> Result<Observed, Error> {
    let name = server.name_any();
    let entry = match entry(server, ctx).await {
        Ok(entry) => entry,
        Err(err) => {
            if let Some(known) = ctx.servers.get(&name) {
                let mut unready = (*known).clone();
                unready.rules.ready = false;
                ctx.servers.put(unready);
            }
            return Err(err);
        }
    };
    let role = entry
        .databases
        .admin_role()
        .await
        .map_err(Error::from)
        .and_then(|role| fit(&role).map(|()| role));
    let mut registered = entry;
    registered.rules.ready = role.is_ok();
    let template = registered
        .templates
        .as_ref()
        .and_then(|t| t.built())
        .map(|t| t.name.to_string());
    let rules = registered.rules.clone();
    ctx.servers.put(registered);
    let tenants = mirror::tenants_on(ctx.databases.landlord_pool(), &name).await?;
    ctx.metrics.set_server(
        &name,
        ServerView {
            tenants,
            max_tenants: rules.max_tenants,
            up: rules.ready,
            cordoned: rules.cordoned,
        },
    );
    Ok(Observed {
        role,
        tenants,
        template,
    })
}

/// The registry entry the spec and Secret describe: the known one with new rules when its source is
/// unchanged, else a new handle (and template) for the server.
async fn entry(server: &DatabaseServer, ctx: &Context) -> Result<Server, Error> {
    let name = server.name_any();
    let spec = &server.spec;
    let namespace = ctx.config.operator_namespace.clone();
    let unusable = |problem: String| Error::AdminSecretUnusable {
        namespace: namespace.clone(),
        problem,
    };
    let secret_ref = &spec.admin_secret_ref;
    let secret = ctx
        .api::<Secret>(&namespace)
        .get_opt(&secret_ref.name)
        .await?
        .ok_or_else(|| unusable(format!("Secret {} does not exist", secret_ref.name)))?;
    let url = secret
        .data
        .as_ref()
        .and_then(|data| data.get(&secret_ref.key))
        .and_then(|value| String::from_utf8(value.0.clone()).ok())
        .ok_or_else(|| {
            unusable(format!(
                "Secret {} has no key {}",
                secret_ref.name, secret_ref.key
            ))
        })?;
    let endpoint = spec
        .tenant_endpoint
        .as_ref()
        .map(|e| (e.host.clone(), e.port));
    let max_connections = spec
        .max_connections
        .and_then(|max| usize::try_from(max).ok());
    let source = {
        let mut hasher = DefaultHasher::new();
        (url.trim(), &endpoint, max_connections).hash(&mut hasher);
        hasher.finish()
    };
    let namespaces = match &spec.namespace_selector {
        None => None,
        Some(selector) => {
            Some(
                Selector::try_from(selector.clone()).map_err(|e| Error::InvalidSelector {
                    field: "spec.namespaceSelector",
                    problem: e.to_string(),
                })?,
            )
        }
    };
    let rules = PlacementRules {
        ready: false,
        cordoned: spec.cordoned,
        max_tenants: spec.max_tenants.map(i64::from),
        labels: server.labels().clone(),
        namespaces,
    };
    if let Some(known) = ctx.servers.get(&name).filter(|k| k.source == source) {
        return Ok(Server {
            rules,
            ..(*known).clone()
        });
    }
    let databases = ctx
        .databases
        .on_server(ServerAccess {
            name: &name,
            admin_url: url.trim(),
            endpoint,
            max_connections,
        })
        // The parse error names the URL's problem, never the URL (it holds a password).
        .map_err(|e| unusable(e.to_string()))?;
    Ok(Server {
        databases: Arc::new(databases),
        templates: ctx.new_templates(),
        rules,
        source,
    })
}

/// The admin role may create databases and roles, and is no superuser.
fn fit(role: &AdminRole) -> Result<(), Error> {
    let problem = if role.superuser {
        "is a superuser"
    } else if !role.create_database {
        "lacks CREATEDB"
    } else if !role.create_role {
        "lacks CREATEROLE"
    } else {
        return Ok(());
    };
    Err(Error::AdminRoleUnfit {
        problem: problem.into(),
    })
}
