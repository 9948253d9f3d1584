//! The controller layer's errors. Each variant reads as what went wrong, knows the condition reason it
//! reports and whether time can fix it; `error_policy` alone turns that into a requeue.

use crate::crd::Reason;
use crate::db::{self, TenantOwner};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Database(#[from] db::Error),
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// The object itself is gone (deleted while queued): nothing left to do or to report.
    #[error("the object was deleted")]
    Gone,

    #[error("spec.slug {slug:?} cannot be used: {source}")]
    SlugUnusable {
        slug: String,
        source: Box<db::Error>,
    },
    #[error("spec.extensions holds a name PostgreSQL cannot take safely: {source}")]
    ExtensionsUnusable { source: Box<db::Error> },
    #[error("the {kind} has no UID yet")]
    NoUid { kind: &'static str },
    #[error(
        "metadata.name cannot name the tenant's credentials Secret: {problem}. Recreate the Tenant under a \
         name of at most {max} characters (spec.slug can keep the database name).",
        max = crate::crd::MAX_LABEL_VALUE
    )]
    TenantNameUnusable { problem: String },
    #[error("{field} is not a valid label selector: {problem}")]
    InvalidSelector {
        field: &'static str,
        problem: String,
    },
    #[error(
        "ModuleInstallation {installer} already manages module {module} for tenant {tenant}; delete this one \
         or that one."
    )]
    AlreadyManaged {
        installer: String,
        module: String,
        tenant: String,
    },
    #[error(
        "Slug {slug} already belongs to {owner}; this Tenant leaves that database alone. Choose another \
         spec.slug or delete this Tenant."
    )]
    SlugConflict { slug: String, owner: TenantOwner },
    #[error(
        "Secret {secret} already exists and was not written by Landlord for this Tenant: Landlord leaves it \
         untouched. Delete or rename it so that Landlord can write the tenant's credentials there."
    )]
    SecretNotOurs { secret: String },
    #[error(
        "Database tenant_{slug} was kept (deletionPolicy Retain) for {owner}; only a Tenant of that namespace \
         and name adopts it. Choose another spec.slug."
    )]
    SlugRetained { slug: String, owner: TenantOwner },
    #[error(
        "Database {database} was made by Landlord for this Tenant but is no longer on the server, which answers \
         (dropped or lost outside Landlord); Landlord does not make it again empty behind your back. Restore it \
         under that name, owned by role {database}, to have it adopted, or set annotation {annotation} to a new \
         value to create it anew, empty (its modules are then installed again).",
        annotation = crate::crd::RECREATE_DATABASE_ANNOTATION
    )]
    DatabaseMissing { database: String },
    #[error(
        "Tenant {tenant} does not exist in namespace {namespace}; create it or fix spec.tenant."
    )]
    TenantNotFound { tenant: String, namespace: String },
    #[error("Tenant {tenant} is not Ready yet; installing once it is.")]
    TenantNotReady { tenant: String },
    #[error("Module {module} is not in the catalog; available modules: {}.", available.join(", "))]
    ModuleNotFound {
        module: String,
        available: Vec<String>,
    },
    #[error(
        "Module {module} is no longer in the catalog, so its down migrations cannot run for uninstallPolicy \
         Rollback. Put the module back in the catalog, or set uninstallPolicy: Retain to keep its tables and \
         let the deletion finish."
    )]
    RollbackOfMissingModule { module: String },
    #[error(
        "Module {module} has no release {}; releases: {}.",
        version.as_deref().unwrap_or("(newest)"),
        releases.join(", ")
    )]
    VersionNotFound {
        module: String,
        version: Option<String>,
        releases: Vec<String>,
    },
    /// `unmet`: each dependency as a person reads it, e.g. `tasks >=1.0.0 (not installed)`.
    #[error("Module {module} needs, for this tenant: {}.", unmet.join("; "))]
    DependencyMissing { module: String, unmet: Vec<String> },
    /// `dependents`: each as `<module> (ModuleInstallation <name>)`.
    #[error(
        "Module {module} cannot be uninstalled while installed modules depend on it: {}. Delete those first.",
        dependents.join(", ")
    )]
    DependentsInstalled {
        module: String,
        dependents: Vec<String>,
    },
    #[error(
        "Deletion waits for the ModuleInstallations of this tenant to be deleted first: {}.",
        installations.join(", ")
    )]
    InstallationsRemain { installations: Vec<String> },
    #[error(
        "Deletion waits for its {} installations to be deleted (their uninstallPolicy applies): {}.",
        installations.len(),
        installations.join(", ")
    )]
    RolloutInstallationsRemain { installations: Vec<String> },
    #[error(
        "Refusing to drop database {database} in production; set deletionPolicy: Retain to let the deletion \
         finish and keep the data."
    )]
    DropRefusedInProduction { database: String },
    /// `steps`: as `describe` writes them; `undo`: what the person changes back.
    #[error(
        "Module {module} would run {steps} in the {scope} scope, dropping data: refused in production; {undo}."
    )]
    StepDownRefusedInProduction {
        module: String,
        steps: String,
        scope: crate::catalog::Scope,
        undo: &'static str,
    },
    #[error(
        "Rolling back a module drops its data and is refused in production; set uninstallPolicy: Retain to \
         let the deletion finish."
    )]
    RollbackRefusedInProduction,
    #[error("Deletion waits until spec.paused is unset.")]
    DeletionPaused,

    /// `why`: each server considered and what keeps it from taking the Tenant.
    #[error(
        "No server may take this tenant now: {}. It is placed as soon as a DatabaseServer changes (a raised \
         maxTenants, an uncordon, a new server).",
        why.join("; ")
    )]
    NoServerAvailable { why: Vec<String> },
    #[error(
        "DatabaseServer {server} does not admit Tenants of namespace {namespace} (its spec.namespaceSelector); \
         name another server in spec.server, or ask its owners to admit this namespace."
    )]
    ServerRefusesNamespace { server: String, namespace: String },
    #[error(
        "spec.server says {asked}, but Landlord's records place this tenant's database on {recorded} (kept \
         from an earlier Tenant of this name); recreate the Tenant without spec.server or with {recorded}."
    )]
    ServerMismatch { asked: String, recorded: String },
    #[error(
        "Server {server}, where Landlord's records place this tenant, is not usable now: {problem}; waiting \
         for it."
    )]
    ServerUnavailable { server: String, problem: String },
    #[error(
        "Deletion waits: Landlord's records place {tenants} tenant database(s) on this server; delete or move \
         them first."
    )]
    ServerInUse { tenants: i64 },
    /// A move under way (or waiting to start): the whole sentence, with its progress.
    #[error("{message}")]
    Moving { message: String },
    #[error(
        "Cannot move to server {target}: it {why}. The tenant stays on {from}; change or remove annotation \
         tenancy.landlord.dev/move-to."
    )]
    MoveRefused {
        target: String,
        from: String,
        why: String,
    },
    #[error(
        "Moving to server {target} is refused in production until annotation \
         tenancy.landlord.dev/move-approved says \"{target}\" too."
    )]
    MoveRefusedInProduction { target: String },
    #[error(
        "The admin URL cannot be read: {problem}. Put a PostgreSQL URL under that key of a Secret in the \
         operator's namespace {namespace}."
    )]
    AdminSecretUnusable { namespace: String, problem: String },
    #[error(
        "The admin role {problem}; it needs CREATEDB and CREATEROLE and must not be a superuser (a \
         superuser's session in a tenant database would hold every tenant's privileges)."
    )]
    AdminRoleUnfit { problem: String },
}

impl Error {
    pub fn reason(&self) -> Reason {
        match self {
            Error::Database(e) => database_reason(e),
            Error::Kube(_) | Error::Finalizer(_) | Error::Gone => Reason::Progressing,
            Error::SlugUnusable { .. }
            | Error::ExtensionsUnusable { .. }
            | Error::NoUid { .. }
            | Error::TenantNameUnusable { .. }
            | Error::InvalidSelector { .. }
            | Error::AlreadyManaged { .. } => Reason::InvalidSpec,
            Error::SlugConflict { .. } => Reason::SlugConflict,
            Error::SecretNotOurs { .. } | Error::SlugRetained { .. } => Reason::AdoptionRefused,
            Error::DatabaseMissing { .. } => Reason::DatabaseMissing,
            Error::TenantNotFound { .. } => Reason::TenantNotFound,
            Error::TenantNotReady { .. } => Reason::TenantNotReady,
            Error::ModuleNotFound { .. } | Error::RollbackOfMissingModule { .. } => {
                Reason::ModuleNotFound
            }
            Error::VersionNotFound { .. } => Reason::VersionNotFound,
            Error::DependencyMissing { .. } => Reason::DependencyMissing,
            Error::DependentsInstalled { .. }
            | Error::InstallationsRemain { .. }
            | Error::RolloutInstallationsRemain { .. } => Reason::UninstallBlocked,
            Error::DropRefusedInProduction { .. }
            | Error::StepDownRefusedInProduction { .. }
            | Error::RollbackRefusedInProduction => Reason::DestructiveActionBlocked,
            Error::DeletionPaused => Reason::Paused,
            Error::NoServerAvailable { .. } => Reason::NoServerAvailable,
            Error::ServerRefusesNamespace { .. }
            | Error::ServerMismatch { .. }
            | Error::AdminSecretUnusable { .. }
            | Error::AdminRoleUnfit { .. } => Reason::InvalidSpec,
            Error::ServerUnavailable { .. } => Reason::DatabaseUnavailable,
            Error::ServerInUse { .. } => Reason::ServerInUse,
            Error::Moving { .. } => Reason::Moving,
            Error::MoveRefused { .. } => Reason::InvalidSpec,
            Error::MoveRefusedInProduction { .. } => Reason::DestructiveActionBlocked,
        }
    }

    /// Whether the same reconcile can succeed later without anyone changing the resource.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Database(e) => e.is_retryable(),
            Error::Kube(_) | Error::Finalizer(_) | Error::ServerUnavailable { .. } => true,
            _ => self.is_waiting(),
        }
    }

    /// Waiting on another object (a tenant, a dependency, a dependent): not a failure of this one. Status says
    /// so, the watches wake the reconcile when that object changes, and nothing backs off or raises a Warning.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            Error::TenantNotReady { .. }
                | Error::TenantNotFound { .. }
                | Error::DependencyMissing { .. }
                | Error::DependentsInstalled { .. }
                | Error::InstallationsRemain { .. }
                | Error::RolloutInstallationsRemain { .. }
                | Error::NoServerAvailable { .. }
                | Error::ServerInUse { .. }
                | Error::Moving { .. }
        )
    }

    /// Whether a person should hear of it in a Warning Event: not waiting on another object, and not a
    /// plan refused because another process moved the ledger first (it is made again at once; installations
    /// of a module sharing one landlord scope race for it in every rollout wave).
    pub fn is_worth_a_warning(&self) -> bool {
        !self.is_waiting() && !matches!(self, Error::Database(db::Error::PlanOutdated { .. }))
    }

    /// A failure a person fixes outside the resource (the data a migration trips on, a squatted role, a
    /// rewritten ledger): nothing in Kubernetes would wake the reconcile, so it is retried, slowly.
    pub fn is_fixed_elsewhere(&self) -> bool {
        use db::Error::*;
        match self {
            Error::SecretNotOurs { .. }
            | Error::SlugRetained { .. }
            | Error::DatabaseMissing { .. }
            | Error::AdminSecretUnusable { .. }
            | Error::AdminRoleUnfit { .. } => true,
            Error::Database(e) => matches!(
                e,
                MigrationFailed(_)
                    | ChecksumMismatch { .. }
                    | UnknownAppliedMigration { .. }
                    | LedgerMismatch { .. }
                    | AdoptionRefused { .. }
                    | DatabaseMissing { .. }
                    | ExtensionUntrusted { .. }
            ),
            _ => false,
        }
    }

    /// Label for metrics: the reason, never an object name.
    pub fn metric_label(&self) -> &'static str {
        self.reason().as_str()
    }
}

/// What a database error means for a resource.
fn database_reason(error: &db::Error) -> Reason {
    use db::Error::*;
    match error {
        InvalidIdent { .. }
        | InvalidPassword(_)
        | InvalidLiteral(_)
        | InvalidUrl { .. }
        | ExtensionUnavailable { .. }
        | ExtensionUntrusted { .. }
        | WrongDirection { .. } => Reason::InvalidSpec,
        ToolUnavailable { .. } | CopyFailed { .. } | CopyDiffers { .. } => Reason::MoveFailed,
        Randomness(_)
        | Connect { .. }
        | ConnectTimeout { .. }
        | Sql { .. }
        | MigrationInterrupted { .. }
        | TenantLoginRefused { .. } => Reason::DatabaseUnavailable,
        AdoptionRefused { .. } => Reason::AdoptionRefused,
        DatabaseMissing { .. } => Reason::DatabaseMissing,
        // Another session holds what Landlord waited for, boundedly (or moved the ledger first): still
        // under way, retried with backoff.
        LockTimeout { .. } | LockNotAvailable { .. } | LockBusy { .. } | PlanOutdated { .. } => {
            Reason::Progressing
        }
        UnknownTarget { .. } => Reason::VersionNotFound,
        ChecksumMismatch { .. } | UnknownAppliedMigration { .. } | LedgerMismatch { .. } => {
            Reason::ChecksumMismatch
        }
        IrreversibleMigration { .. } => Reason::IrreversibleMigration,
        MigrationFailed(_) => Reason::MigrationFailed,
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    /// Keeps the reconcile's own error (and so its reason) when it passed through the finalizer helper; a
    /// 404 on the finalizer's own patch means the object is gone.
    fn from(err: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match err {
            F::ApplyFailed(e) | F::CleanupFailed(e) => e,
            F::AddFinalizer(kube::Error::Api(status))
            | F::RemoveFinalizer(kube::Error::Api(status))
                if status.code == 404 =>
            {
                Error::Gone
            }
            F::AddFinalizer(e) | F::RemoveFinalizer(e) => Error::Kube(e),
            other => Error::Finalizer(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_retried_quietly_and_refusals_wait_for_a_change() {
        let waiting = Error::TenantNotReady {
            tenant: "acme".into(),
        };
        assert!(waiting.is_waiting() && waiting.is_retryable());
        let refused = Error::RollbackRefusedInProduction;
        assert!(!refused.is_waiting() && !refused.is_retryable());
        assert_eq!(refused.reason(), Reason::DestructiveActionBlocked);
    }

    #[test]
    fn database_errors_map_to_reasons() {
        let adoption = Error::from(db::Error::AdoptionRefused {
            object: "role",
            name: "tenant_acme".into(),
            found: db::Found::Unmarked,
        });
        assert_eq!(adoption.reason(), Reason::AdoptionRefused);
        assert!(!adoption.is_retryable());
        let login = Error::from(db::Error::TenantLoginRefused {
            database: "tenant_acme".into(),
        });
        assert_eq!(login.reason(), Reason::DatabaseUnavailable);
        assert!(login.is_retryable());
        let ledger = Error::from(db::Error::LedgerMismatch {
            database: "tenant_acme".into(),
            module: "tasks".into(),
            differences: "migration 1 was added to it".into(),
        });
        assert_eq!(ledger.reason(), Reason::ChecksumMismatch);
        assert!(!ledger.is_retryable());
        let busy = Error::from(db::Error::LockBusy {
            action: "building the tenant template".into(),
            lock: "the template build lock".into(),
            database: "landlord".into(),
            waited_ms: 10_000,
        });
        assert_eq!(busy.reason(), Reason::Progressing);
        assert!(busy.is_retryable() && !busy.is_fixed_elsewhere());
    }
}
