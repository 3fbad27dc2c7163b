//! Extractors of request parameters. Their rejections are our own errors, so a malformed
//! request gets an RFC 6749 body (or an error page), never a framework default.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;

use super::error::{ApiError, PageError};
use super::state::Provider;
use crate::protocol::form::FormParams;
use crate::vocabulary::OAuthError;

/// The media type of OAuth form bodies.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// An `application/x-www-form-urlencoded` body, strictly parsed: the parameters of the
/// token, introspection and revocation endpoints.
pub struct OAuthForm(pub FormParams);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(read_form(request).await?))
    }
}

/// The parameters of a browser request: the query of a `GET`, the form body of a `POST`
/// (OIDC Core §3.1.2.1, RP-Initiated Logout §2). A malformed one gets the error page.
pub struct BrowserParams(pub FormParams);

impl FromRequest<Arc<Provider>> for BrowserParams {
    type Rejection = Response;

    async fn from_request(request: Request, provider: &Arc<Provider>) -> Result<Self, Self::Rejection> {
        let params = if request.method() == Method::POST {
            read_form(request).await
        } else {
            FormParams::parse(request.uri().query().unwrap_or_default().as_bytes())
        };
        params.map(Self).map_err(|error| PageError::BadRequest(error.description).render(provider))
    }
}

/// The access token of a protected-resource request: from `Authorization: Bearer` or, in a
/// POST form body, `access_token` — never both (RFC 6750 §2.1, §2.2).
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequest<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let header_token = bearer_header(request.headers())?.map(str::to_owned);
        let has_form = request.method() == Method::POST && has_media_type(request.headers(), FORM);
        let body_token = if has_form {
            let form = read_form(request).await.map_err(|_| ApiError::BearerRequest("malformed form body"))?;
            form.get("access_token")
                .map_err(|_| ApiError::BearerRequest("access_token is included more than once"))?
                .map(str::to_owned)
        } else {
            None
        };
        match (header_token, body_token) {
            (Some(_), Some(_)) => Err(ApiError::BearerRequest("send the access token in one place only")),
            (Some(token), None) | (None, Some(token)) => Ok(Self(token)),
            (None, None) => Err(ApiError::TokenMissing),
        }
    }
}

/// RFC 6750 §2.1: the token of an `Authorization: Bearer` header, if one is sent; any
/// other or malformed `Authorization` header is an error.
pub fn bearer_header(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::BearerRequest("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::BearerRequest("use the Bearer authentication scheme")),
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
async fn read_form(request: Request) -> Result<FormParams, OAuthError> {
    if !has_media_type(request.headers(), FORM) {
        return Err(OAuthError::invalid_request("the request body must be application/x-www-form-urlencoded"));
    }
    let body: Body = request.into_body();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| OAuthError::invalid_request(format!("the request body exceeds {MAX_BODY_BYTES} bytes")))?;
    FormParams::parse(&bytes)
}
