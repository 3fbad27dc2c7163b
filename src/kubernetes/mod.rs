//! Portcullis inside Kubernetes: the controller that reconciles the custom resources into
//! Secrets and Redis, its leader election ([`lease`]) and metrics ([`metrics`]), and the
//! signing-key Secrets that `serve --kubernetes` watches ([`key_secrets`]).
//!
//! The controller has the shape of kube-rs's `controller-rs`: [`run::run`] elects a leader and
//! runs one `kube-runtime` controller per kind — [`clients`], [`users`], [`connectors`],
//! [`signing_keys`] — whose thin `reconcile` hands the resource to [`finalizer`] and on to
//! `apply` or `cleanup`. Those read the inputs (the resource, its Secret, the peers in the reflector
//! caches, what the store holds), ask the pure decisions of `crate::controller::decide`
//! what to do and carry out exactly that ([`context`] holds what they share, [`status`]
//! writes the status, [`events`] the Events, [`index`] finds peers in the caches). [`sweep`] removes what no resource declares any more, and
//! [`run`] re-applies everything at once when the store's data epoch changes.

pub mod clients;
pub mod config;
pub mod connectors;
pub mod context;
pub mod events;
pub mod finalizer;
pub mod index;
pub mod key_secrets;
pub mod lease;
pub mod metrics;
pub mod run;
pub mod signing_keys;
pub mod status;
pub mod sweep;
pub mod users;

pub use config::{ControllerConfig, LeaseConfig, WatchNamespaces};

/// The field manager of every write the controller makes (server-side apply of status,
/// creates and patches), so `managedFields` say which fields are the controller's.
pub const MANAGER: &str = "portcullis-controller";

/// Options of a create or replace by the controller.
pub fn create_params() -> kube::api::PostParams {
    kube::api::PostParams { field_manager: Some(MANAGER.into()), ..kube::api::PostParams::default() }
}

/// Options of a merge patch by the controller.
pub fn patch_params() -> kube::api::PatchParams {
    kube::api::PatchParams { field_manager: Some(MANAGER.into()), ..kube::api::PatchParams::default() }
}

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

/// A client from the in-cluster configuration or `KUBECONFIG`. Its requests carry a
/// `User-Agent`, which names the manager of any write made without a field manager.
pub async fn client() -> Result<kube::Client, kube::Error> {
    let mut config = kube::Config::infer().await.map_err(kube::Error::InferConfig)?;
    config.headers.push((
        axum::http::header::USER_AGENT,
        axum::http::HeaderValue::from_static(concat!("portcullis/", env!("CARGO_PKG_VERSION"))),
    ));
    kube::Client::try_from(config)
}
