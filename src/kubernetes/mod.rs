//! Portcullis inside Kubernetes: the controller that reconciles the custom resources into
//! Secrets and Redis ([`controller`]), its leader election ([`lease`]) and metrics
//! ([`metrics`]), and the signing-key Secrets that `serve --kubernetes` watches
//! ([`key_secrets`]).

pub mod controller;
pub mod key_secrets;
pub mod lease;
pub mod metrics;

/// Where a pod finds its own namespace.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The namespace to work in: the flag (or `POD_NAMESPACE`), else the in-cluster namespace
/// file, else `default`.
pub fn resolve_namespace(flag: Option<String>) -> String {
    flag.filter(|ns| !ns.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string(NAMESPACE_FILE).ok().map(|ns| ns.trim().to_owned()).filter(|ns| !ns.is_empty())
        })
        .unwrap_or_else(|| "default".to_owned())
}

/// A client from the in-cluster configuration or `KUBECONFIG`.
pub async fn client() -> Result<kube::Client, kube::Error> {
    kube::Client::try_default().await
}
