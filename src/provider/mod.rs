//! The HTTP face of Portcullis: an axum router whose handlers are thin stages over the
//! pure rules in [`crate::protocol`].

mod authorize;
mod browser;
mod client_auth;
mod error;
mod form;
mod headers;
mod interaction;
mod introspect;
mod limits;
mod logout;
mod metadata;
mod observe;
mod pages;
mod readiness;
mod register;
mod respond;
mod revoke;
mod text;
mod token;
mod user_grants;
mod userinfo;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use bytes::Bytes;

/// The request-header parsers, public for the fuzz targets (`fuzz/`).
pub use browser::{cookie, tokens_match};
pub use error::ProtocolError;
pub use limits::{MAX_HEADER_BYTES, MAX_HEADERS};
pub use observe::REQUEST_ID;
pub use readiness::Readiness;
pub use register::RegistrationPolicy;
pub use user_grants::REFRESH_RACE_GRACE;
pub use userinfo::{BearerError, bearer_header};

use crate::clock::Clock;
use crate::keys::SharedKeyring;
use crate::metrics::Metrics;
use crate::protocol::discovery;
use crate::protocol::endpoints as path;
use crate::protocol::scope::Scope;
use crate::secrets::ClientSecretVerifier;
use crate::store::{InstrumentedStore, Store};

/// Settings of the provider that do not change while it runs. Lifetimes are in seconds.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The issuer identifier, exactly as configured (`--issuer`).
    pub issuer: String,
    /// Default access-token (and ID token) lifetime.
    pub access_token_ttl: u64,
    /// Lifetime of a refresh-token family: the longest a grant lives without a new login.
    pub refresh_token_ttl: u64,
    /// Lifetime of an SSO session.
    pub session_ttl: u64,
    /// Who may register clients dynamically (RFC 7591).
    pub registration: RegistrationPolicy,
    /// The most a dynamically registered client may ask for.
    pub registration_scopes: Scope,
}

/// Authorization codes live this long (OIDC Core §3.1.3.1 asks for a short lifetime).
pub const CODE_TTL: u64 = 60;
/// A login or consent page may be answered within this time.
pub const INTERACTION_TTL: u64 = 600;
/// Consent is remembered this long.
pub const CONSENT_TTL: u64 = 365 * 24 * 3600;

impl ProviderConfig {
    /// The issuer's path without a trailing slash, `""` at the root: the prefix of every
    /// URL the browser sees.
    pub fn path_prefix(&self) -> &str {
        let after_scheme = self.issuer.split_once("://").map_or("", |(_, rest)| rest);
        after_scheme.find('/').map_or("", |i| after_scheme[i..].trim_end_matches('/'))
    }

    /// The cookie path: the issuer's path, or `/`.
    pub fn base_path(&self) -> &str {
        match self.path_prefix() {
            "" => "/",
            prefix => prefix,
        }
    }

    /// Cookies are `Secure` whenever the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// A path on this provider as the browser sees it.
    pub fn browser_path(&self, path: &str) -> String {
        format!("{}{path}", self.path_prefix())
    }
}

/// Shared state of every request.
pub struct Provider {
    pub config: ProviderConfig,
    pub store: Arc<dyn Store>,
    pub keys: SharedKeyring,
    pub clock: Clock,
    pub secrets: Arc<ClientSecretVerifier>,
    /// This provider's Prometheus registry.
    pub metrics: Arc<Metrics>,
    /// What `/ready` checks.
    pub readiness: Readiness,
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
        let id_token_algorithm = keys.load().signer(None).map(|key| key.algorithm());
        let registration = config.registration != RegistrationPolicy::Disabled;
        let discovery =
            Bytes::from(serde_json::to_vec(&discovery::metadata(&config.issuer, id_token_algorithm, registration))?);
        let metrics = Arc::new(Metrics::new());
        let store: Arc<dyn Store> = Arc::new(InstrumentedStore::new(store, &metrics));
        let readiness = Readiness::default();
        Ok(Self { config, store, keys, clock, secrets: Arc::default(), metrics, readiness, discovery })
    }

    /// Makes `/ready` wait for a key watch (`serve --kubernetes`): not ready while `synced`
    /// is false. Without this, there is no watch to wait for.
    pub fn with_key_watch(mut self, synced: Arc<AtomicBool>) -> Self {
        self.readiness = Readiness::with_key_watch(synced);
        self
    }
}

/// The router, separate from any socket so tests can drive it directly too.
pub fn app(provider: Arc<Provider>) -> Router {
    let router = Router::new()
        .route(path::OPENID_CONFIGURATION, get(metadata::discovery))
        .route(path::OAUTH_AUTHORIZATION_SERVER, get(metadata::discovery))
        .route(path::JWKS, get(metadata::jwks))
        .route(path::WELL_KNOWN_JWKS, get(metadata::jwks))
        .route(path::AUTHORIZE, get(authorize::authorize).post(authorize::authorize))
        .route(path::LOGIN, post(interaction::login))
        .route(path::CONSENT, post(interaction::consent))
        .route(path::USERINFO, get(userinfo::userinfo).post(userinfo::userinfo))
        .route(path::LOGOUT, get(logout::logout).post(logout::logout))
        .route(path::STYLESHEET, get(pages::stylesheet))
        .route(path::REGISTER, post(register::register).fallback(metadata::post_only))
        .route(
            &format!("{}/{{client_id}}", path::REGISTER),
            get(register::read).put(register::update).delete(register::delete),
        )
        .route(path::TOKEN, post(token::token).fallback(metadata::post_only))
        .route(path::INTROSPECT, post(introspect::introspect).fallback(metadata::post_only))
        .route(path::REVOKE, post(revoke::revoke).fallback(metadata::post_only))
        .route(path::HEALTH, get(metadata::health))
        .route(path::READY, get(metadata::ready))
        .route(path::METRICS, get(observe::metrics))
        .route_layer(middleware::from_fn(observe::record_route))
        .fallback(metadata::not_found)
        .with_state(Arc::clone(&provider));
    // Every route layer is cloned per request, so the limits and response headers live in
    // the one outer middleware rather than in layers of their own.
    router.layer(headers::catch_panics()).layer(middleware::from_fn_with_state(provider, observe::observe))
}

/// The router of `--metrics-listen`: `/metrics`, `/health` and `/ready` only, so the
/// scrape port can stay inside the cluster while the main port faces users.
pub fn metrics_app(provider: Arc<Provider>) -> Router {
    Router::new()
        .route(path::METRICS, get(observe::metrics))
        .route(path::HEALTH, get(metadata::health))
        .route(path::READY, get(metadata::ready))
        .fallback(metadata::not_found)
        .with_state(provider)
}
