//! Portcullis: a Kubernetes-native OpenID Connect provider.
//!
//! The tree mirrors the architecture, in layers that import only downwards
//! (`scripts/check-layers` holds the lowest four to it). From the bottom:
//!
//! - [`vocabulary`]: what travels on the wire — grant types, auth methods, algorithms,
//!   scopes, `prompt`, OAuth error codes, the authorization request, client metadata;
//! - [`model`]: the records the controller writes and the provider reads, built from the
//!   vocabulary alone; [`keys`]: key generation, JWS signing and verification, JWKS;
//!   [`clock`], [`context`] (the request a task serves), [`secrets`], [`telemetry`];
//! - [`protocol`]: the pure OAuth 2.0 / OIDC rules over those records, no I/O, `now`
//!   passed in; [`audit`]: one structured line per security decision;
//! - [`crd`]: the custom resources, re-using the vocabulary; [`metrics`]: the Prometheus
//!   registry;
//! - [`store`]: the state behind small ports per model (memory and Redis, the
//!   instrumenting and caching wrappers);
//! - [`controller`]: the reconcile functions shared by the Kubernetes controller and the
//!   manifests folder; [`provider`]: the thin HTTP handlers (its module doc maps its
//!   files); [`kubernetes`]: the controller's cluster side;
//! - [`server`]: the wiring of `dev` and `serve`, whose sockets [`listener`] bounds;
//!   [`login`]: `portcullis login`, a native-app client of the provider's HTTP interface;
//!   `main.rs`: the command line.

pub mod audit;
pub mod clock;
pub mod connectors;
pub mod context;
pub mod controller;
pub mod crd;
pub mod keys;
pub mod kubernetes;
pub mod listener;
pub mod login;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod protocol;
pub mod provider;
pub mod secrets;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod vocabulary;
