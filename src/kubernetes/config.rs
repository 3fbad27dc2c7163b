//! What the controller is configured with: `portcullis controller`'s flags, parsed.

use std::time::Duration;

/// Which namespaces hold the `OidcClient`s to reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchNamespaces {
    /// Every namespace (`*`).
    All,
    /// These namespaces.
    List(Vec<String>),
}

impl WatchNamespaces {
    /// Parses `--watch-namespaces`: `*`, or a comma-separated list; empty means `own`.
    pub fn parse(value: Option<&str>, own: &str) -> Self {
        match value.map(str::trim) {
            Some("*") => Self::All,
            Some(list) if !list.is_empty() => {
                let mut names: Vec<String> =
                    list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
                names.sort();
                names.dedup();
                Self::List(names)
            }
            _ => Self::List(vec![own.to_owned()]),
        }
    }
}

/// Everything the controller is configured with.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Holds the `SigningKey`s, the `OidcUser`s and the Lease.
    pub namespace: String,
    pub watch_namespaces: WatchNamespaces,
    /// Written into generated client Secrets (`issuer`, `discoveryUrl`).
    pub issuer: String,
    pub lease: LeaseConfig,
    /// How often every resource is reconciled, and the store swept, without a change.
    pub resync_period: Duration,
    /// How long a new key is published before it signs (at least the JWKS cache lifetime).
    pub key_publish_delay: Duration,
    /// How long a retired key stays published (at least the longest token lifetime).
    pub key_retire_after: Duration,
    /// The most reconciles running at once, per kind (and per watched namespace).
    pub concurrency: u16,
}

/// Who competes for which Lease.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub name: String,
    /// This replica's identity (the pod name, or host name plus a random suffix).
    pub identity: String,
    /// How long a silent holder keeps the Lease.
    pub duration: Duration,
}
