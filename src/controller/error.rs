use crate::crd::Reason;
use crate::db;

/// Errors of the controller layer. Each knows the condition reason it reports and whether retrying with
/// backoff can help; the rest waits for a change of the resource.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Database(#[from] db::Error),
    #[error("Kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    #[error("{message}")]
    Refused { reason: Reason, message: String },
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl Error {
    pub fn refused(reason: Reason, message: impl Into<String>) -> Self {
        Error::Refused {
            reason,
            message: message.into(),
        }
    }

    pub fn reason(&self) -> Reason {
        match self {
            Error::Database(e) => e.reason(),
            Error::Kube(_) | Error::Finalizer(_) => Reason::Progressing,
            Error::Refused { reason, .. } => *reason,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Database(e) => e.is_retryable(),
            Error::Kube(_) | Error::Finalizer(_) => true,
            Error::Refused { .. } => self.is_waiting(),
        }
    }

    /// Waiting on another object (a tenant, a dependency, a dependent): not a failure. Status says so, the
    /// watches wake the reconcile when that object changes, and nothing backs off or raises a Warning.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            Error::Refused {
                reason: Reason::TenantNotReady
                    | Reason::TenantNotFound
                    | Reason::DependencyMissing
                    | Reason::UninstallBlocked,
                ..
            }
        )
    }

    /// Label for metrics: the reason, never an object name.
    pub fn metric_label(&self) -> &'static str {
        self.reason().as_str()
    }
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    /// Keeps the reconcile's own error (and so its reason) when it passed through the finalizer helper.
    fn from(err: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match err {
            F::ApplyFailed(e) | F::CleanupFailed(e) => e,
            F::AddFinalizer(e) | F::RemoveFinalizer(e) => Error::Kube(e),
            other => Error::Finalizer(other.to_string()),
        }
    }
}
