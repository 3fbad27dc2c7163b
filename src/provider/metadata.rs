//! Discovery, JWKS, health and the fallbacks.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Provider;
use super::error::ProtocolError;
use crate::protocol::OAuthError;

/// How long clients may cache discovery and the JWKS. Keys are published well before they
/// sign, so a cached JWKS never misses a new key.
const PUBLIC_CACHE: &str = "public, max-age=300";

fn json(body: bytes::Bytes, cache_control: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache_control)),
        ],
        body,
    )
        .into_response()
}

/// OIDC Discovery §4 / RFC 8414 §3: the provider metadata.
pub async fn discovery(State(provider): State<Arc<Provider>>) -> Response {
    json(provider.discovery.clone(), PUBLIC_CACHE)
}

/// RFC 7517 §5: the public keys.
pub async fn jwks(State(provider): State<Arc<Provider>>) -> Response {
    json(provider.keys.load().jwks_json(), PUBLIC_CACHE)
}

/// Liveness: the process answers.
pub async fn health() -> Response {
    json(bytes::Bytes::from_static(br#"{"status":"ok"}"#), "no-store")
}

/// Readiness: 200 only when the store answers, a signing key is loaded and (with a key
/// watch) the watch has synced; otherwise 503 naming what is missing, so a load balancer
/// stops sending traffic until it recovers.
pub async fn ready(State(provider): State<Arc<Provider>>) -> Response {
    let missing = provider.readiness.missing(provider.store.as_ref(), &provider.keys.load()).await;
    let (status, body) = if missing.is_empty() {
        (StatusCode::OK, serde_json::json!({"status": "ready"}))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": "not ready", "missing": missing}))
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Endpoints that only accept POST answer other methods with 405 and an OAuth error body.
pub async fn post_only() -> Response {
    let mut response = ProtocolError(OAuthError::invalid_request("this endpoint only accepts POST")).into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n").into_response()
}
