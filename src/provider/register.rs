//! Dynamic client registration (RFC 7591) and its management (RFC 7592), under the
//! operator's policy: open, initial access token, or disabled.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::browser::{client_ip, tokens_match};
use super::client_auth::verify_secret;
use super::error::ApiError;
use super::extract::{MAX_BODY_BYTES, bearer_header, has_media_type};
use super::respond::no_store;
use super::state::{Provider, RegistrationPolicy};
use crate::audit::{self, AuditEvent, AuditFields};
use crate::model::{ClientPolicy, ClientRecord, Registration};
use crate::protocol::cors::web_origins;
use crate::protocol::endpoints;
use crate::protocol::registration::{
    CLIENT_ID_PREFIX, ClientInformation, Registrant, RegistrationError, RegistrationErrorCode, validate,
};
use crate::secrets;
use crate::store::{Budget, ending};
use crate::vocabulary::{ClientMetadata, TokenEndpointAuthMethod};

/// Registrations allowed per client address within [`RATE_WINDOW`] seconds.
const RATE_LIMIT: u32 = 20;
const RATE_WINDOW: u64 = 600;

fn invalid(description: &str) -> ApiError {
    ApiError::Registration(RegistrationError {
        code: RegistrationErrorCode::InvalidClientMetadata,
        description: description.to_owned(),
    })
}

/// The Bearer token of the request; a malformed header counts as none.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    bearer_header(headers).ok().flatten()
}

/// The JSON body of a registration request, bounded and strictly typed.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    if !has_media_type(headers, "application/json") {
        return Err(invalid("the request body must be application/json"));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(invalid("the request body is too large"));
    }
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(invalid("the request body must be a JSON object")),
    }
}

fn metadata_of(map: serde_json::Map<String, serde_json::Value>) -> Result<ClientMetadata, ApiError> {
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| invalid(&format!("malformed client metadata: {e}")))
}

/// `POST /register` (RFC 7591 §3).
pub async fn register(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    match &provider.config.registration {
        RegistrationPolicy::Disabled => return Err(ApiError::Forbidden("client registration is disabled")),
        RegistrationPolicy::Token(expected) => {
            if !bearer(&headers).is_some_and(|presented| tokens_match(presented, expected)) {
                return Err(ApiError::InvalidToken("a valid initial access token is required"));
            }
        }
        RegistrationPolicy::Open => {}
    }
    let now = provider.clock.now();
    let budget = Budget { key: &format!("register:{}", client_ip(peer)), limit: RATE_LIMIT };
    let reservation = provider.store.reserve(&[budget], now + RATE_WINDOW).await?;
    if !reservation.allowed {
        return Err(ApiError::RateLimited {
            description: "too many registrations, retry later",
            retry_after: RATE_WINDOW,
        });
    }
    let metadata = metadata_of(json_body(&headers, &body)?)?;
    let client_id = format!("{CLIENT_ID_PREFIX}{}", secrets::random_token(16)?);
    let (record, secret, token) = build(&provider, client_id, metadata, None, now).await?;
    provider.store.put_client(record.clone()).await?;
    provider.metrics.client_registered();
    audit::emit(AuditEvent::ClientRegistered, AuditFields::client(&record.client_id));
    let mut response = information(&provider, &record, secret, Some(token));
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// Validates metadata into a client record with a new registration access token; keeps
/// the current secret when the client stays confidential, makes one when it becomes so.
async fn build(
    provider: &Provider,
    client_id: String,
    metadata: ClientMetadata,
    current: Option<&ClientRecord>,
    now: u64,
) -> Result<(ClientRecord, Option<String>, String), ApiError> {
    // Under the token policy every registrant, RFC 7592 updates included, came with the
    // operator's initial access token.
    let registrant = match provider.config.registration {
        RegistrationPolicy::Token(_) => Registrant::Trusted,
        RegistrationPolicy::Open | RegistrationPolicy::Disabled => Registrant::Anonymous,
    };
    let valid = validate(metadata, &provider.config.registration_scopes, registrant).map_err(ApiError::Registration)?;
    let policy = ClientPolicy {
        backchannel_logout_uri: valid.metadata.backchannel_logout_uri.clone(),
        frontchannel_logout_uri: valid.metadata.frontchannel_logout_uri.clone(),
        frontchannel_logout_session_required: valid.metadata.frontchannel_logout_session_required == Some(true),
        ..ClientPolicy::default()
    };
    let (secret, secret_hash) = match (valid.auth_method, current.and_then(|c| c.secret_hash.clone())) {
        (Some(TokenEndpointAuthMethod::None), _) => (None, None),
        (_, Some(hash)) => (None, Some(hash)),
        (_, None) => {
            let secret = secrets::generate_client_secret()?;
            let hash = secrets::hash_generated(&secret);
            (Some(secret), Some(hash))
        }
    };
    let token = secrets::random_token(32)?;
    let issued_at = current.and_then(|c| c.registration.as_ref()).map_or(now, |r| r.client_id_issued_at);
    let record = ClientRecord {
        client_id,
        client_name: valid.metadata.client_name.clone(),
        secret_hash,
        auth_method: valid.auth_method,
        redirect_uris: valid.metadata.redirect_uris.clone(),
        post_logout_redirect_uris: valid.metadata.post_logout_redirect_uris.clone(),
        grant_types: valid.grant_types,
        scopes: valid.scope,
        roles: Vec::new(),
        audience: Vec::new(),
        access_token_ttl: None,
        require_pkce: valid.auth_method == Some(TokenEndpointAuthMethod::None),
        skip_consent: false,
        web_origins: web_origins(&valid.metadata.redirect_uris, &valid.metadata.post_logout_redirect_uris, None),
        registration: Some(Registration {
            metadata: valid.metadata,
            access_token_hash: secrets::token_digest(&token),
            client_id_issued_at: issued_at,
        }),
        policy,
    };
    Ok((record, secret, token))
}

/// RFC 7591 §3.2.1 / RFC 7592 §3: the client information response.
fn information(provider: &Provider, record: &ClientRecord, secret: Option<String>, token: Option<String>) -> Response {
    let registration = record.registration.as_ref();
    let body = ClientInformation {
        client_id: record.client_id.clone(),
        client_secret_expires_at: record.secret_hash.as_ref().map(|_| 0),
        client_secret: secret,
        client_id_issued_at: registration.map_or(0, |r| r.client_id_issued_at),
        registration_access_token: token,
        registration_client_uri: registration_client_uri(provider, &record.client_id),
        metadata: registration.map(|r| r.metadata.clone()).unwrap_or_default(),
    };
    no_store(Json(body))
}

fn registration_client_uri(provider: &Provider, client_id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    format!("{}{}/{encoded}", provider.config.issuer.trim_end_matches('/'), endpoints::REGISTER)
}

/// RFC 7592 §3: the registration access token authorizes management of its one client;
/// a wrong token and an unknown client are answered alike.
async fn managed(provider: &Provider, headers: &HeaderMap, client_id: &str) -> Result<Arc<ClientRecord>, ApiError> {
    let refused = ApiError::InvalidToken("the registration access token is invalid");
    let presented = bearer(headers).ok_or(ApiError::InvalidToken("a registration access token is required"))?;
    let client = provider.store.client(client_id).await?.ok_or(refused)?;
    let matches = client
        .registration
        .as_ref()
        .is_some_and(|r| tokens_match(&secrets::token_digest(presented), &r.access_token_hash));
    if matches { Ok(client) } else { Err(ApiError::InvalidToken("the registration access token is invalid")) }
}

/// `GET /register/{client_id}` (RFC 7592 §2.1). The secret is stored hashed, so it is not
/// returned again.
pub async fn read(
    State(provider): State<Arc<Provider>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let client = managed(&provider, &headers, &client_id).await?;
    Ok(information(&provider, &client, None, None))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): replaces the metadata and rotates the
/// registration access token.
pub async fn update(
    State(provider): State<Arc<Provider>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let current = managed(&provider, &headers, &client_id).await?;
    let mut map = json_body(&headers, &body)?;
    if map.remove("client_id").and_then(|v| v.as_str().map(str::to_owned)).as_deref() != Some(client_id.as_str()) {
        return Err(invalid("client_id must be included and match the registered client"));
    }
    if let Some(secret) = map.remove("client_secret") {
        let matches = match (secret.as_str(), current.secret_hash.as_deref()) {
            (Some(secret), Some(hash)) => verify_secret(&provider, &client_id, secret, hash).await?,
            _ => false,
        };
        if !matches {
            return Err(invalid("client_secret does not match the issued secret"));
        }
    }
    for managed_field in
        ["registration_access_token", "registration_client_uri", "client_id_issued_at", "client_secret_expires_at"]
    {
        map.remove(managed_field);
    }
    let (record, secret, token) =
        build(&provider, client_id, metadata_of(map)?, Some(&current), provider.clock.now()).await?;
    provider.store.put_client(record.clone()).await?;
    Ok(information(&provider, &record, secret, Some(token)))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3). The client's tokens die with it:
/// introspection and UserInfo only accept tokens of clients that exist, and its grants are
/// revoked and its consents deleted ([`ending::remove_client`]), so a client registered
/// again under the same id starts with none of them.
pub async fn delete(
    State(provider): State<Arc<Provider>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    managed(&provider, &headers, &client_id).await?;
    ending::remove_client(&*provider.store, &client_id).await?;
    audit::emit(AuditEvent::ClientDeleted, AuditFields::client(&client_id));
    Ok(no_store(StatusCode::NO_CONTENT))
}
