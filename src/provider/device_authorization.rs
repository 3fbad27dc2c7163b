//! `POST /device_authorization` (RFC 8628 §3.1–§3.2): a client on a device without a
//! browser asks for a device code, and a user code for its user to enter at `/device`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::browser::client_ip;
use super::client_auth::authenticate_client;
use super::error::ApiError;
use super::extract::OAuthForm;
use super::respond::no_store;
use super::state::{DEVICE_CODE_TTL, Provider};
use crate::protocol::device::{self, DeviceAuthorizationResponse};
use crate::protocol::form::FormParams;
use crate::protocol::{scope, token};
use crate::secrets;
use crate::store::Budget;
use crate::vocabulary::{GrantType, Scope};

/// Device authorizations one address may start within [`START_WINDOW`] seconds: each is
/// state a caller with a public client's id alone can create, so it is bounded in number
/// as in lifetime.
const MAX_STARTS_PER_ADDRESS: u32 = 30;
const START_WINDOW: u64 = DEVICE_CODE_TTL;
/// Bytes of randomness in a device code.
const DEVICE_CODE_BYTES: usize = 32;
/// Random bytes drawn for one user code: enough for its characters after rejection
/// sampling but in the rarest case.
const USER_CODE_RANDOM_BYTES: usize = 16;
/// User codes drawn at most before giving up (each live one is taken, or too few bytes
/// were usable).
const USER_CODE_DRAWS: usize = 8;

/// RFC 8628 §3.1: client authentication as at the token endpoint (public clients by
/// `client_id`), the grant type registered, the scope narrowed to the client's allowance.
pub async fn device_authorization(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    OAuthForm(form): OAuthForm,
) -> Response {
    match start(&provider, &headers, &form, &client_ip(peer)).await {
        Ok(response) => no_store(Json(response)),
        Err(error) => error.into_response(),
    }
}

async fn start(
    provider: &Provider,
    headers: &HeaderMap,
    form: &FormParams,
    address: &str,
) -> Result<DeviceAuthorizationResponse, ApiError> {
    let client = authenticate_client(provider, headers, form, address).await?;
    token::check_grant_allowed(&client, GrantType::DeviceCode)?;
    let requested = form.get("scope")?.map(Scope::parse).transpose()?;
    let scope = scope::grant(requested.as_ref(), &client.scopes)?;
    let now = provider.clock.now();
    let budget = Budget { key: &format!("device-start:{address}"), limit: MAX_STARTS_PER_ADDRESS };
    let reservation = provider.store.reserve(&[budget], now + START_WINDOW).await?;
    if !reservation.allowed {
        return Err(ApiError::RateLimited {
            description: "too many device authorizations from this address, retry later",
            retry_after: reservation.retry_after,
        });
    }
    let device_code = secrets::random_token(DEVICE_CODE_BYTES)?;
    let grant = device::new_grant(&client.client_id, scope, now, DEVICE_CODE_TTL);
    for _ in 0..USER_CODE_DRAWS {
        let Some(user_code) = device::user_code_from_random(&secrets::random_bytes(USER_CODE_RANDOM_BYTES)?) else {
            continue;
        };
        let user_code_hash = secrets::token_digest(&user_code);
        let device_code_hash = secrets::token_digest(&device_code);
        let kept_until = grant.expires_at + device::KEPT_AFTER_EXPIRY;
        if provider.store.put_device_grant(&device_code_hash, &user_code_hash, &grant, kept_until).await? {
            return Ok(device::authorization_response(
                &provider.config.issuer,
                device_code,
                &user_code,
                DEVICE_CODE_TTL,
            ));
        }
    }
    Err(ApiError::Internal("no free user code after several draws".to_owned()))
}
