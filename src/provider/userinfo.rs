//! The UserInfo endpoint (OIDC Core §5.3), a protected resource (RFC 6750).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::cors;
use super::error::ApiError;
use super::extract::BearerToken;
use super::respond::no_store;
use super::state::Provider;
use crate::keys::JwtType;
use crate::model::ClientRecord;
use crate::protocol::claims::AccessTokenClaims;
use crate::protocol::epoch::issued_in_current_epoch;
use crate::protocol::userinfo::released_claims;
use crate::vocabulary::Scope;

/// OIDC Core §5.3: the claims of the token's user, released per the token's scope.
pub async fn userinfo(
    State(provider): State<Arc<Provider>>,
    BearerToken(token): BearerToken,
) -> Result<Response, ApiError> {
    let invalid = || ApiError::InvalidToken("the access token is invalid, expired or revoked");
    let claims = provider
        .keys
        .load()
        .verify::<AccessTokenClaims>(&token, JwtType::AccessToken, &provider.config.issuer, provider.clock.now())
        .map_err(|_| invalid())?;
    let check = provider.store.token_check(&claims.jti).await?;
    if check.revoked || !issued_in_current_epoch(claims.epoch.as_deref(), check.epoch.as_deref()) {
        return Err(invalid());
    }
    let client = provider.store.client(&claims.client_id).await?.ok_or_else(invalid)?;
    Ok(cors::for_client(released(&provider, &claims, &client).await.into_response(), &client))
}

/// The token's claims, once its client is known: the answer, errors included, is that
/// client's to read (the token's `client_id` names the client whose web origins count).
async fn released(
    provider: &Provider,
    claims: &AccessTokenClaims,
    client: &ClientRecord,
) -> Result<Response, ApiError> {
    let invalid = || ApiError::InvalidToken("the access token is invalid, expired or revoked");
    let scope = Scope::parse(claims.scope.as_deref().unwrap_or_default()).map_err(|_| invalid())?;
    if !scope.contains("openid") {
        return Err(ApiError::InsufficientScope("the access token was not issued with the openid scope"));
    }
    let user = provider.user_by_subject(&claims.sub).await?.filter(|u| !u.disabled).ok_or_else(invalid)?;
    Ok(no_store(Json(released_claims(&user, client, &scope, &claims.userinfo_claims))))
}
