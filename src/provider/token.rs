//! The token endpoint (RFC 6749 §3.2): client authentication, then one stage per grant.

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
use super::user_grants;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::keys::JwtType;
use crate::model::ClientRecord;
use crate::protocol::form::FormParams;
use crate::protocol::token::{self, GrantRequest, TokenResponse};
use crate::secrets;
use crate::vocabulary::OAuthError;
use crate::vocabulary::Scope;
use crate::vocabulary::{GrantType, TokenEndpointAuthMethod};

/// Bytes of randomness in a token id (`jti`).
const JTI_BYTES: usize = 16;

pub async fn token(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Result<Response, ApiError> {
    let grant_type = grant_type_label(&form);
    match exchange(&provider, &headers, &form, &client_ip(peer)).await {
        Ok((client, response)) => {
            provider.metrics.token_issued(grant_type, &client);
            Ok(no_store(Json(response)))
        }
        Err(error) => {
            provider.metrics.token_error(grant_type, error.code());
            Err(error)
        }
    }
}

/// The `grant_type` label: one of the grants we know, so a made-up value adds no series.
fn grant_type_label(form: &FormParams) -> &'static str {
    match form.get("grant_type").ok().flatten() {
        Some(name) => name.parse::<GrantType>().map_or("unsupported", GrantType::as_str),
        None => "none",
    }
}

async fn exchange(
    provider: &Provider,
    headers: &HeaderMap,
    form: &FormParams,
    address: &str,
) -> Result<(Arc<ClientRecord>, TokenResponse), ApiError> {
    let client = authenticate_client(provider, headers, form, address).await?;
    let grant = token::parse_grant_request(form)?;
    token::check_grant_allowed(&client, grant.grant_type())?;
    let response = match grant {
        GrantRequest::AuthorizationCode { code, redirect_uri, code_verifier } => {
            user_grants::authorization_code(provider, &client, &code, redirect_uri.as_deref(), code_verifier.as_deref())
                .await?
        }
        GrantRequest::RefreshToken { refresh_token, scope } => {
            user_grants::refresh_token(provider, &client, &refresh_token, scope.as_ref()).await?
        }
        GrantRequest::ClientCredentials { scope } => client_credentials(provider, &client, scope.as_ref())?,
    };
    Ok((client, response))
}

/// RFC 6749 §4.4: one signature, no store write (the data epoch is the one last seen).
fn client_credentials(
    provider: &Provider,
    client: &ClientRecord,
    requested: Option<&Scope>,
) -> Result<TokenResponse, ApiError> {
    if client.auth_method == TokenEndpointAuthMethod::None {
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
