//! kube test support (filled in by the foundation e2e tests).
