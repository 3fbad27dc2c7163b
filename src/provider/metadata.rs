//! Discovery, JWKS, the stylesheet, health, readiness, the metrics scrape, and the
//! fallbacks.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::pages::{FORM_POST_SCRIPT, FRONTCHANNEL_LOGOUT_SCRIPT, STYLESHEET};
use super::state::Provider;

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

/// OIDC Discovery §4 / RFC 8414 §3: the provider metadata, following the keyring.
pub async fn discovery(State(provider): State<Arc<Provider>>) -> Result<Response, ApiError> {
    let document = provider.discovery_document().map_err(|e| ApiError::Internal(format!("discovery: {e}")))?;
    Ok(json(document, PUBLIC_CACHE))
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
    let missing =
        provider.readiness.missing(provider.store.as_ref(), &provider.keys.load(), &provider.store_status).await;
    let (status, body) = if missing.is_empty() {
        (StatusCode::OK, serde_json::json!({"status": "ready"}))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, serde_json::json!({"status": "not ready", "missing": missing}))
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves the stylesheet of every page.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Serves the script of `form_post` response pages.
pub async fn form_post_script() -> Response {
    script(FORM_POST_SCRIPT)
}

/// Serves the script of front-channel logout pages.
pub async fn frontchannel_logout_script() -> Response {
    script(FRONTCHANNEL_LOGOUT_SCRIPT)
}

fn script(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        ],
        body,
    )
        .into_response()
}

/// `GET /metrics`: the Prometheus text exposition format.
pub async fn metrics(State(provider): State<Arc<Provider>>) -> Response {
    const SESSIONS_TIMEOUT: Duration = Duration::from_secs(1);
    let sessions = match tokio::time::timeout(SESSIONS_TIMEOUT, provider.store.active_sessions()).await {
        Ok(Ok(count)) => Some(count),
        Ok(Err(error)) => {
            tracing::warn!(%error, "metrics: cannot count the active sessions");
            None
        }
        Err(_) => None,
    };
    let body = provider.metrics.render(sessions, &provider.keys.load(), provider.clock.now());
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// Endpoints that only accept POST answer other methods with 405 and an OAuth error body.
pub async fn post_only() -> ApiError {
    ApiError::MethodNotAllowed("POST")
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stylesheet_is_served_as_css() {
        let response = stylesheet().await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=86400");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let css = String::from_utf8(bytes.to_vec()).expect("utf-8");
        assert!(css.contains("prefers-color-scheme: dark"));
        assert!(css.contains(".error"));
        assert!(!css.contains("@import") && !css.contains("url("), "no external assets");
    }
}
