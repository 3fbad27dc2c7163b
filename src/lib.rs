//! Portcullis: a Kubernetes-native OpenID Connect provider.
//!
//! The tree mirrors the architecture: [`protocol`] holds the pure OAuth 2.0 / OIDC rules,
//! [`keys`] the signing keys, [`store`] the state behind one trait, [`provider`] the thin
//! HTTP handlers, [`crd`] the custom resources and [`controller`] the reconcile functions
//! shared by the Kubernetes controller and the manifests folder.

pub mod audit;
pub mod clock;
pub mod context;
pub mod controller;
pub mod crd;
pub mod keys;
pub mod kubernetes;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod provider;
pub mod secrets;
pub mod server;
pub mod store;
pub mod telemetry;
