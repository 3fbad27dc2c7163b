//! Token introspection (RFC 7662).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::browser::client_ip;
use super::client_auth::authenticate_client;
use super::error::ApiError;
use super::extract::OAuthForm;
use super::respond::no_store;
use super::state::Provider;
use crate::keys::JwtType;
use crate::protocol::claims::AccessTokenClaims;
use crate::protocol::client_auth::AUTHENTICATION_FAILED;
use crate::protocol::epoch::issued_in_current_epoch;
use crate::protocol::introspection::{IntrospectionResponse, introspect_access_token, introspect_refresh_token};
use crate::protocol::session_end::issued_in_ended_session;
use crate::secrets;
use crate::store::Consumed;
use crate::vocabulary::OAuthError;

/// RFC 7662 §2.1: an authenticated client asks about a token; `token_type_hint` is only a
/// hint and every token kind (JWT access token, refresh token) is looked up anyway.
pub async fn introspect(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Result<Response, ApiError> {
    let client = authenticate_client(&provider, &headers, &form, &client_ip(peer)).await?;
    if client.is_public() {
        tracing::info!(client_id = client.client_id, "client authentication failed: a public client cannot introspect");
        return Err(OAuthError::invalid_client(AUTHENTICATION_FAILED).into());
    }
    let token = form.require("token")?;
    let now = provider.clock.now();
    let verified =
        provider.keys.load().verify::<AccessTokenClaims>(token, JwtType::AccessToken, &provider.config.issuer, now);
    let response = match verified {
        Ok(claims) => {
            let (check, session_ended_at) = match claims.sid.as_deref() {
                Some(sid) => {
                    let check = provider.store.session_token_check(&claims.jti, sid).await?;
                    (check.token, check.session_ended_at)
                }
                None => (provider.store.token_check(&claims.jti).await?, None),
            };
            // A deleted client's tokens die with it (RFC 7592 §2.3), and so does every
            // token issued before the store lost its data (and its revocations), every
            // token of a session that has ended (OIDC Core §11), and every token of a
            // user (one with a `sid`) who is disabled or gone: the controller revokes
            // their grants too, this holds from the moment the directory says so.
            let revoked = check.revoked
                || issued_in_ended_session(session_ended_at, claims.iat)
                || !issued_in_current_epoch(claims.epoch.as_deref(), check.epoch.as_deref())
                || provider.store.client(&claims.client_id).await?.is_none()
                || (claims.sid.is_some() && !user_may_act(&provider, &claims.sub).await?);
            introspect_access_token(claims, revoked, &client.client_id, now)
        }
        Err(_) => match provider.store.peek_refresh_token(&secrets::token_digest(token)).await? {
            Consumed::Fresh(refresh) => {
                let grant = provider.store.grant(&refresh.grant_id).await?;
                introspect_refresh_token(
                    &refresh,
                    grant.as_ref(),
                    false,
                    &client.client_id,
                    &provider.config.issuer,
                    now,
                )
            }
            Consumed::Reused { .. } | Consumed::Unknown => IntrospectionResponse::inactive(),
        },
    };
    Ok(no_store(Json(response)))
}

/// Whether the user `subject` exists and is not disabled (a cached directory read).
async fn user_may_act(provider: &Provider, subject: &str) -> Result<bool, ApiError> {
    Ok(provider.user_by_subject(subject).await?.is_some_and(|user| !user.disabled))
}
