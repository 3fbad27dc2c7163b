//! The token endpoint (RFC 6749 §3.2): client authentication, then one stage per grant.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
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
use super::user_grants;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::keys::JwtType;
use crate::metrics::{NO_GRANT, UNSUPPORTED_GRANT};
use crate::model::ClientRecord;
use crate::protocol::form::FormParams;
use crate::protocol::token::{self, GrantRequest, TokenResponse};
use crate::secrets;
use crate::vocabulary::GrantType;
use crate::vocabulary::OAuthError;
use crate::vocabulary::Scope;

/// Bytes of randomness in a token id (`jti`).
const JTI_BYTES: usize = 16;

pub async fn token(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    let grant_type = grant_type_label(&form);
    let client = match authenticate_client(&provider, &headers, &form, &client_ip(peer)).await {
        Ok(client) => client,
        Err(error) => {
            provider.metrics.token_error(grant_type, error.code());
            return error.into_response();
        }
    };
    let response = match exchange(&provider, &client, &form).await {
        Ok(response) => {
            provider.metrics.token_issued(grant_type, &client);
            no_store(Json(response))
        }
        Err(error) => {
            provider.metrics.token_error(grant_type, error.code());
            error.into_response()
        }
    };
    cors::for_client(response, &client)
}

/// The `grant_type` label: one of the grants we know, so a made-up value adds no series.
fn grant_type_label(form: &FormParams) -> &'static str {
    match form.get("grant_type").ok().flatten() {
        Some(name) => name.parse::<GrantType>().map_or(UNSUPPORTED_GRANT, GrantType::as_str),
        None => NO_GRANT,
    }
}

/// The grant stage, once the client is authenticated: its answers are the client's to read.
async fn exchange(provider: &Provider, client: &ClientRecord, form: &FormParams) -> Result<TokenResponse, ApiError> {
    let grant = token::parse_grant_request(form)?;
    token::check_grant_allowed(client, grant.grant_type())?;
    let response = match grant {
        GrantRequest::AuthorizationCode { code, redirect_uri, code_verifier } => {
            user_grants::authorization_code(provider, client, &code, redirect_uri.as_deref(), code_verifier.as_deref())
                .await?
        }
        GrantRequest::RefreshToken { refresh_token, scope } => {
            user_grants::refresh_token(provider, client, &refresh_token, scope.as_ref()).await?
        }
        GrantRequest::ClientCredentials { scope } => client_credentials(provider, client, scope.as_ref())?,
        GrantRequest::DeviceCode { device_code } => user_grants::device_code(provider, client, &device_code).await?,
    };
    Ok(response)
}

/// RFC 6749 §4.4: one signature, no store write (the data epoch is the one last seen).
fn client_credentials(
    provider: &Provider,
    client: &ClientRecord,
    requested: Option<&Scope>,
) -> Result<TokenResponse, ApiError> {
    if client.is_public() {
        return Err(OAuthError::unauthorized_client("public clients cannot use the client_credentials grant").into());
    }
    let scope = token::client_credentials_scope(client, requested)?;
    let now = provider.clock.now();
    let jti = secrets::random_token(JTI_BYTES)?;
    let epoch = provider.store_status.epoch();
    let grant = token::client_credentials_token(&provider.issuance(&epoch), client, &scope, jti, now);
    let access_token = provider.keys.load().sign(None, JwtType::AccessToken, &grant.claims)?;
    audit::emit(
        AuditEvent::TokenIssued,
        AuditFields::client(&client.client_id).grant_type(GrantType::ClientCredentials.as_str()),
    );
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: grant.expires_in,
        scope: grant.claims.scope,
        refresh_token: None,
        id_token: None,
    })
}
