//! The form-body extractor of the token, introspection and revocation endpoints. Its
//! rejections are protocol errors, so a malformed request gets an RFC 6749 body, not a
//! framework default.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};

use super::error::ProtocolError;
use crate::protocol::OAuthError;
use crate::protocol::form::FormParams;

/// The media type of OAuth form bodies.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An `application/x-www-form-urlencoded` body, strictly parsed.
pub struct OAuthForm(pub FormParams);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ProtocolError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(read_form(request).await?))
    }
}

/// Whether the request's `Content-Type` is `media` (parameters such as `charset` allowed).
pub fn has_media_type(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|sent| sent.trim().eq_ignore_ascii_case(media))
}

/// Reads and strictly parses an `application/x-www-form-urlencoded` body.
pub async fn read_form(request: Request) -> Result<FormParams, OAuthError> {
    if !has_media_type(request.headers(), FORM) {
        return Err(OAuthError::invalid_request("the request body must be application/x-www-form-urlencoded"));
    }
    let body: Body = request.into_body();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| OAuthError::invalid_request(format!("the request body exceeds {MAX_BODY_BYTES} bytes")))?;
    FormParams::parse(&bytes)
}
