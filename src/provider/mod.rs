//! The HTTP face of Portcullis: an axum router whose handlers are thin stages over the
//! pure rules in [`crate::protocol`].
//!
//! Files import downward only, and no endpoint file imports another. From the top:
//! - this router, and the request middleware around it: `observe` (request ids, spans,
//!   metrics, logs), `limits`, `headers`;
//! - one file per endpoint: `authorize`, `login`, `consent`, `logout`, `token`,
//!   `introspect`, `revoke`, `userinfo`, `register`, `device_authorization`, `device`
//!   (the page where a device's user code is entered), `account` (the user's own page),
//!   `federation` (sign-in through an upstream identity provider and its callback),
//!   and `metadata` (discovery, JWKS, the
//!   stylesheet, probes, metrics);
//! - what endpoints share: `flow` (the interaction of authorize, login and consent),
//!   `sealing` (the key its pages are sealed with), `sign_in`, `user_grants`, `client_auth`,
//!   `password_work` (what a password check costs), `extract`
//!   (extractors), `browser` (cookies, sessions);
//! - `error`: [`ApiError`] for JSON endpoints and [`PageError`] for browser endpoints, the
//!   only place errors become responses;
//! - `respond`, `pages`, `text`: response building blocks, templates and their words;
//! - `state`: [`Provider`], its settings and the lifetimes of what it stores.

mod account;
mod authorize;
mod backchannel_logout;
mod browser;
mod client_auth;
mod consent;
mod cors;
mod device;
mod device_authorization;
mod error;
mod extract;
mod federation;
mod flow;
mod headers;
mod icons;
mod introspect;
mod limits;
mod login;
mod logout;
mod metadata;
mod observe;
mod offer;
mod pages;
mod password_work;
mod readiness;
mod register;
mod respond;
mod revoke;
mod sealing;
mod session_end;
mod sign_in;
mod state;
mod text;
mod token;
mod user_grants;
mod userinfo;

use std::sync::Arc;

use axum::Router;
use axum::middleware::{self, from_fn, map_response, map_response_with_state};
use axum::routing::{MethodRouter, get, post};

/// The request-header parsers, public for the fuzz targets (`fuzz/`).
pub use backchannel_logout::{BackchannelSettings, deliver_logouts};
pub use browser::{cookie, tokens_match};
pub use error::{ApiError, PageError};
pub use extract::bearer_header;
pub use limits::{MAX_HEADER_BYTES, MAX_HEADERS};
pub use observe::REQUEST_ID;
pub use readiness::Readiness;
pub use state::{CODE_TTL, CONSENT_TTL, Provider, ProviderConfig, RegistrationPolicy};

use crate::protocol::endpoints as path;

/// The router, separate from any socket so tests can drive it directly too.
pub fn app(provider: Arc<Provider>) -> Router {
    let router = Router::new()
        .route(path::OPENID_CONFIGURATION, public(get(metadata::discovery)))
        .route(path::OAUTH_AUTHORIZATION_SERVER, public(get(metadata::discovery)))
        .route(path::JWKS, public(get(metadata::jwks)))
        .route(path::WELL_KNOWN_JWKS, public(get(metadata::jwks)))
        .route(path::AUTHORIZE, get(authorize::authorize).post(authorize::authorize))
        .route(path::LOGIN, post(login::login))
        .route(path::CONSENT, post(consent::consent))
        .route(path::LOGIN_UPSTREAM, get(federation::start).post(federation::directory))
        .route(&format!("{}/{{connector}}", path::CALLBACK), get(federation::callback))
        .route(
            path::USERINFO,
            get(userinfo::userinfo)
                .post(userinfo::userinfo)
                .options(cors::preflight_get_post)
                .layer(from_fn(cors::client_endpoint)),
        )
        .route(path::LOGOUT, get(logout::logout).post(logout::logout))
        .route(path::STYLESHEET, get(metadata::stylesheet))
        .route(path::FORM_POST_SCRIPT, get(metadata::form_post_script))
        .route(path::FRONTCHANNEL_LOGOUT_SCRIPT, get(metadata::frontchannel_logout_script))
        .route(
            path::REGISTER,
            post(register::register)
                .options(cors::registration_preflight)
                .fallback(metadata::post_only)
                .layer(map_response_with_state(Arc::clone(&provider), cors::registration)),
        )
        .route(
            &format!("{}/{{client_id}}", path::REGISTER),
            get(register::read).put(register::update).delete(register::delete),
        )
        .route(path::TOKEN, for_clients(post(token::token)))
        .route(
            path::DEVICE_AUTHORIZATION,
            post(device_authorization::device_authorization).fallback(metadata::post_only),
        )
        .route(path::DEVICE, get(device::page).post(device::submit))
        .route(path::ACCOUNT, get(account::page).post(account::submit))
        .route(path::INTROSPECT, post(introspect::introspect).fallback(metadata::post_only))
        .route(path::REVOKE, for_clients(post(revoke::revoke)))
        .route(path::HEALTH, get(metadata::health))
        .route(path::READY, get(metadata::ready));
    let router =
        if provider.config.metrics_on_main_port { router.route(path::METRICS, get(metadata::metrics)) } else { router };
    let router = router
        .route_layer(middleware::from_fn(observe::record_route))
        .fallback(metadata::not_found)
        .with_state(Arc::clone(&provider));
    // Every route layer is cloned per request, so the limits and response headers live in
    // the one outer middleware rather than in layers of their own.
    router.layer(headers::catch_panics()).layer(middleware::from_fn_with_state(provider, observe::observe))
}

/// A public document (discovery, JWKS): readable from any origin (see [`cors`]).
fn public(route: MethodRouter<Arc<Provider>>) -> MethodRouter<Arc<Provider>> {
    route.options(cors::public_preflight).layer(map_response(cors::public))
}

/// A `POST` endpoint that a client's browser app may call (token, revocation; see [`cors`]).
fn for_clients(route: MethodRouter<Arc<Provider>>) -> MethodRouter<Arc<Provider>> {
    route.options(cors::preflight_post).fallback(metadata::post_only).layer(from_fn(cors::client_endpoint))
}

/// The router of `--metrics-listen`: `/metrics`, `/health` and `/ready` only, so the
/// scrape port can stay inside the cluster while the main port faces users (which serves
/// `/metrics` only with [`ProviderConfig::metrics_on_main_port`]).
pub fn metrics_app(provider: Arc<Provider>) -> Router {
    Router::new()
        .route(path::METRICS, get(metadata::metrics))
        .route(path::HEALTH, get(metadata::health))
        .route(path::READY, get(metadata::ready))
        .fallback(metadata::not_found)
        .with_state(provider)
}
