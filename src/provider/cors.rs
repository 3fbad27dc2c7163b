//! CORS for browser apps (the Fetch Standard's CORS protocol), endpoint by endpoint:
//! - discovery and JWKS are public: `Access-Control-Allow-Origin: *`, the same answer for
//!   every origin, so no `Vary` (RFC 8414 §3, OpenID Connect Discovery 1.0 §4).
//! - token, userinfo and revocation answer the web origins of the client the request turned
//!   out to be for ([`ClientRecord::web_origins`]): the handler attaches the client to its
//!   response ([`for_client`]), and [`client_endpoint`] allows the request's `Origin` when it
//!   is one of that client's, and audits it when it is not. `Vary: Origin` on every answer.
//! - registration answers any origin while it is open (the client does not exist yet, and
//!   anyone may register), and none under an initial access token or when disabled.
//! - a preflight (`OPTIONS`) of a client endpoint is answered for any origin: it carries no
//!   client id, and answering only the origins some client declared would tell strangers
//!   which origins are registered. No answer can be read until the real request passes the
//!   client's check, and the methods and headers allowed are only those the endpoint needs.
//! - never on `/authorize`, the login and consent pages or `/logout` (RFC 9700 §4.13): those
//!   routes have no CORS layer.
//!
//! Nowhere `Access-Control-Allow-Credentials`: tokens travel in headers and bodies, never in
//! cookies, so no cross-origin request needs the browser's cookies.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::{Provider, RegistrationPolicy};
use crate::audit::{self, AuditEvent, AuditFields};
use crate::model::ClientRecord;

/// How long a browser may cache a preflight answer (seconds); Chromium caps it at two hours.
const PREFLIGHT_MAX_AGE: HeaderValue = HeaderValue::from_static("600");
/// The request headers a browser app needs: `Authorization` for client credentials and
/// bearer tokens, `Content-Type` for form and JSON bodies (`DPoP` once DPoP is supported).
const ALLOWED_HEADERS: HeaderValue = HeaderValue::from_static("Authorization, Content-Type");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");

/// The client a response was for, handed from the handler to [`client_endpoint`].
#[derive(Clone)]
struct CorsClient(Arc<ClientRecord>);

/// Marks `response` as an answer to `client`, whose web origins may read it.
pub fn for_client(mut response: Response, client: &Arc<ClientRecord>) -> Response {
    response.extensions_mut().insert(CorsClient(Arc::clone(client)));
    response
}

/// The layer of the token, userinfo and revocation routes.
pub async fn client_endpoint(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    let client = response.extensions_mut().remove::<CorsClient>();
    response.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
    if let (Some(origin), Some(CorsClient(client))) = (origin, client) {
        if origin.to_str().is_ok_and(|origin| client.web_origins.iter().any(|allowed| allowed == origin)) {
            response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        } else {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            let fields = AuditFields { origin: Some(&origin), ..AuditFields::client(&client.client_id) };
            audit::emit(AuditEvent::CorsOriginRefused, fields);
        }
    }
    response
}

/// The preflight of an endpoint answering `POST` (token, revocation).
pub async fn preflight_post(headers: HeaderMap) -> Response {
    preflight(headers.get(header::ORIGIN).cloned(), "POST")
}

/// The preflight of userinfo, which answers `GET` and `POST` (OIDC Core §5.3.1).
pub async fn preflight_get_post(headers: HeaderMap) -> Response {
    preflight(headers.get(header::ORIGIN).cloned(), "GET, POST")
}

/// 204 with the methods and headers allowed, for `origin` (`*` for public documents).
fn preflight(origin: Option<HeaderValue>, methods: &'static str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(origin) = origin {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS);
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE);
    }
    response
}

/// Discovery and JWKS: readable from any origin.
pub async fn public(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    response
}

/// The preflight of discovery and JWKS.
pub async fn public_preflight() -> Response {
    preflight(Some(ANY_ORIGIN), "GET")
}

/// Registration: readable from any origin while registration is open.
pub async fn registration(State(provider): State<Arc<Provider>>, response: Response) -> Response {
    if matches!(provider.config.registration, RegistrationPolicy::Open) { public(response).await } else { response }
}

/// The preflight of registration: allowed while registration is open.
pub async fn registration_preflight(State(provider): State<Arc<Provider>>) -> Response {
    let open = matches!(provider.config.registration, RegistrationPolicy::Open);
    preflight(open.then_some(ANY_ORIGIN), "POST")
}
