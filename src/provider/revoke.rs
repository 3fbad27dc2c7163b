//! Token revocation (RFC 7009).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::browser::client_ip;
use super::client_auth::authenticate_client;
use super::cors;
use super::error::ApiError;
use super::extract::OAuthForm;
use super::respond::no_store;
use super::state::Provider;
use super::user_grants::revoke_grant;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::keys::JwtType;
use crate::model::ClientRecord;
use crate::protocol::claims::AccessTokenClaims;
use crate::protocol::form::FormParams;
use crate::secrets;
use crate::store::Consumed;
use crate::vocabulary::OAuthError;

/// RFC 7009 §2.1: the client revokes a token issued to it. A JWT access token goes on the
/// deny-list until it would have expired anyway; a refresh token takes its whole grant.
/// RFC 7009 §2.2: an invalid, expired or unknown token is answered with 200.
pub async fn revoke(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Result<Response, ApiError> {
    let client = authenticate_client(&provider, &headers, &form, &client_ip(peer)).await?;
    Ok(cors::for_client(revoke_for(&provider, &client, &form).await.into_response(), &client))
}

/// Revocation once the client is known: the answer, errors included, is that client's to read.
async fn revoke_for(provider: &Provider, client: &ClientRecord, form: &FormParams) -> Result<Response, ApiError> {
    let token = form.require("token")?;
    let not_yours = || OAuthError::unauthorized_client("the token was not issued to this client");
    let verified = provider.keys.load().verify::<AccessTokenClaims>(
        token,
        JwtType::AccessToken,
        &provider.config.issuer,
        provider.clock.now(),
    );
    if let Ok(claims) = verified {
        if claims.client_id != client.client_id {
            return Err(not_yours().into());
        }
        provider.store.revoke_token(&claims.jti, claims.exp).await?;
        provider.metrics.token_revoked();
        audit::emit(AuditEvent::TokenRevoked, AuditFields::client(&client.client_id).subject(&claims.sub));
    } else if let Consumed::Fresh(refresh) | Consumed::Reused { value: refresh, .. } =
        provider.store.peek_refresh_token(&secrets::token_digest(token)).await?
    {
        if refresh.client_id != client.client_id {
            return Err(not_yours().into());
        }
        // RFC 7009 §2.1: revoking a refresh token revokes the grant's access tokens too.
        let subject = provider.store.grant(&refresh.grant_id).await?.map(|grant| grant.subject);
        revoke_grant(provider, &refresh.grant_id).await?;
        provider.metrics.token_revoked();
        let fields = AuditFields { subject: subject.as_deref(), ..AuditFields::client(&client.client_id) };
        audit::emit(AuditEvent::TokenRevoked, fields);
    }
    Ok(no_store(()))
}
