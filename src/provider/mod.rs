//! The HTTP face of Portcullis: an axum router whose handlers are thin stages over the
//! pure rules in [`crate::protocol`].

mod client_auth;
mod error;
mod form;
mod headers;
mod introspect;
mod metadata;
mod pages;
mod revoke;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;

pub use error::ProtocolError;

use crate::clock::Clock;
use crate::keys::SharedKeyring;
use crate::protocol::discovery;
use crate::protocol::endpoints as path;
use crate::secrets::ClientSecretVerifier;
use crate::store::Store;

/// Settings of the provider that do not change while it runs.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The issuer identifier, exactly as configured (`--issuer`).
    pub issuer: String,
    /// Default access-token lifetime in seconds.
    pub access_token_ttl: u64,
}

/// Shared state of every request.
pub struct Provider {
    pub config: ProviderConfig,
    pub store: Arc<dyn Store>,
    pub keys: SharedKeyring,
    pub clock: Clock,
    pub secrets: Arc<ClientSecretVerifier>,
    /// The discovery document, serialized once.
    discovery: Bytes,
}

impl Provider {
    pub fn new(
        config: ProviderConfig,
        store: Arc<dyn Store>,
        keys: SharedKeyring,
        clock: Clock,
    ) -> Result<Self, serde_json::Error> {
        let algorithms = keys.load().algorithms();
        let discovery = Bytes::from(serde_json::to_vec(&discovery::metadata(&config.issuer, &algorithms))?);
        Ok(Self { config, store, keys, clock, secrets: Arc::default(), discovery })
    }
}

/// The router, separate from any socket so tests can drive it directly too.
pub fn app(provider: Arc<Provider>) -> Router {
    let router = Router::new()
        .route(path::OPENID_CONFIGURATION, get(metadata::discovery))
        .route(path::OAUTH_AUTHORIZATION_SERVER, get(metadata::discovery))
        .route(path::JWKS, get(metadata::jwks))
        .route(path::WELL_KNOWN_JWKS, get(metadata::jwks))
        .route(path::TOKEN, post(token::token).fallback(metadata::post_only))
        .route(path::INTROSPECT, post(introspect::introspect).fallback(metadata::post_only))
        .route(path::REVOKE, post(revoke::revoke).fallback(metadata::post_only))
        .route(path::HEALTH, get(metadata::health))
        .fallback(metadata::not_found)
        .with_state(provider);
    headers::apply(router)
}
