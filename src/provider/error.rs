//! The one place where errors become HTTP responses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::keys::KeyError;
use crate::protocol::{ErrorCode, OAuthError, error_description};
use crate::secrets::SecretError;
use crate::store::StoreError;

/// An error answered as RFC 6749 §5.2 JSON.
#[derive(Debug)]
pub struct ProtocolError(pub OAuthError);

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    error_description: &'a str,
}

impl From<OAuthError> for ProtocolError {
    fn from(error: OAuthError) -> Self {
        Self(error)
    }
}

impl From<StoreError> for ProtocolError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store operation failed");
        Self(OAuthError::temporarily_unavailable())
    }
}

impl From<KeyError> for ProtocolError {
    fn from(error: KeyError) -> Self {
        tracing::error!(%error, "signing failed");
        Self(OAuthError::server_error())
    }
}

impl From<SecretError> for ProtocolError {
    fn from(error: SecretError) -> Self {
        tracing::error!(%error, "secret generation failed");
        Self(OAuthError::server_error())
    }
}

/// RFC 6749 §5.2 / RFC 6750 §3.1 status for each error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ProtocolError {
    fn into_response(self) -> Response {
        let OAuthError { code, description } = &self.0;
        let description = error_description(description);
        let mut response =
            (status_of(*code), Json(ErrorBody { error: code.as_str(), error_description: &description }))
                .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if *code == ErrorCode::InvalidClient {
            // RFC 6749 §5.2: a 401 names the authentication scheme the client can use.
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"portcullis\""));
        }
        response
    }
}
