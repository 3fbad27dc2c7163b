//! The UserInfo endpoint (OIDC Core §5.3) and its bearer-token errors (RFC 6750 §3).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Provider;
use super::form::{FORM, has_media_type, read_form};
use super::token::no_store;
use crate::keys::JwtType;
use crate::protocol::claims::AccessTokenClaims;
use crate::protocol::scope::Scope;
use crate::protocol::userinfo::user_claims;

/// RFC 6750 §3.1 errors of a protected resource.
#[derive(Debug)]
pub enum BearerError {
    /// No token at all: a bare challenge, no error code (RFC 6750 §3.1).
    Missing,
    InvalidRequest(&'static str),
    InvalidToken(&'static str),
    InsufficientScope(&'static str),
    Unavailable,
}

#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: &'static str,
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, error, description) = match self {
            BearerError::Missing => (StatusCode::UNAUTHORIZED, None, "an access token is required"),
            BearerError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, Some("invalid_request"), d),
            BearerError::InvalidToken(d) => (StatusCode::UNAUTHORIZED, Some("invalid_token"), d),
            BearerError::InsufficientScope(d) => (StatusCode::FORBIDDEN, Some("insufficient_scope"), d),
            BearerError::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable"), "retry later")
            }
        };
        let challenge = match error {
            Some(error) => {
                format!("Bearer realm=\"portcullis\", error=\"{error}\", error_description=\"{description}\"")
            }
            None => "Bearer realm=\"portcullis\"".to_owned(),
        };
        let body = ErrorBody { error: error.unwrap_or("invalid_request"), error_description: description };
        let mut response = no_store((status, Json(body)));
        if let Ok(challenge) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// RFC 6750 §2.1 and §2.2: the token from `Authorization: Bearer` or, in a POST form body,
/// `access_token` — never both.
/// RFC 6750 §2.1: the token of an `Authorization: Bearer` header, if one is sent; any
/// other or malformed `Authorization` header is an error.
pub fn bearer_header(headers: &HeaderMap) -> Result<Option<&str>, BearerError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| BearerError::InvalidRequest("malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(BearerError::InvalidRequest("use the Bearer authentication scheme")),
    }
}

async fn bearer_token(request: Request) -> Result<String, BearerError> {
    let header_token = bearer_header(request.headers())?.map(str::to_owned);
    let has_form = request.method() == Method::POST && has_media_type(request.headers(), FORM);
    let body_token = if has_form {
        let form = read_form(request).await.map_err(|_| BearerError::InvalidRequest("malformed form body"))?;
        form.get("access_token")
            .map_err(|_| BearerError::InvalidRequest("access_token is included more than once"))?
            .map(str::to_owned)
    } else {
        None
    };
    match (header_token, body_token) {
        (Some(_), Some(_)) => Err(BearerError::InvalidRequest("send the access token in one place only")),
        (Some(token), None) | (None, Some(token)) => Ok(token),
        (None, None) => Err(BearerError::Missing),
    }
}

/// OIDC Core §5.3: the claims of the token's user, released per the token's scope.
pub async fn userinfo(State(provider): State<Arc<Provider>>, request: Request) -> Result<Response, BearerError> {
    let token = bearer_token(request).await?;
    let invalid = || BearerError::InvalidToken("the access token is invalid, expired or revoked");
    let claims = provider
        .keys
        .load()
        .verify::<AccessTokenClaims>(&token, JwtType::AccessToken, &provider.config.issuer, provider.clock.now())
        .map_err(|_| invalid())?;
    let unavailable = |error: crate::store::StoreError| {
        tracing::error!(%error, "store operation failed");
        BearerError::Unavailable
    };
    if provider.store.is_token_revoked(&claims.jti).await.map_err(unavailable)? {
        return Err(invalid());
    }
    let scope = Scope::parse(claims.scope.as_deref().unwrap_or_default()).map_err(|_| invalid())?;
    if !scope.contains("openid") {
        return Err(BearerError::InsufficientScope("the access token was not issued with the openid scope"));
    }
    let user = provider.store.user_by_subject(&claims.sub).await.map_err(unavailable)?.filter(|u| !u.disabled);
    let client = provider.store.client(&claims.client_id).await.map_err(unavailable)?;
    let (Some(user), Some(client)) = (user, client) else { return Err(invalid()) };
    Ok(no_store(Json(user_claims(&user, &client, &scope))))
}
