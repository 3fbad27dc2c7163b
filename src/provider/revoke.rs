//! Token revocation (RFC 7009).

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::Provider;
use super::client_auth::authenticate_client;
use super::error::ProtocolError;
use super::form::OAuthForm;
use super::token::no_store;
use crate::keys::JwtType;
use crate::protocol::OAuthError;
use crate::protocol::claims::AccessTokenClaims;

/// RFC 7009 §2.1: the client revokes a token issued to it. A JWT access token goes on the
/// deny-list until it would have expired anyway. RFC 7009 §2.2: an invalid, expired or
/// unknown token is answered with 200 like a revoked one.
pub async fn revoke(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Result<Response, ProtocolError> {
    let client = authenticate_client(&provider, &headers, &form).await?;
    let token = form.require("token")?;
    if let Ok(claims) =
        provider.keys.load().verify::<AccessTokenClaims>(token, JwtType::AccessToken, &provider.config.issuer)
    {
        if claims.client_id != client.client_id {
            return Err(OAuthError::unauthorized_client("the token was not issued to this client").into());
        }
        provider.store.revoke_token(&claims.jti, claims.exp).await?;
    }
    Ok(no_store(()))
}
