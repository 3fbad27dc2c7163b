//! Authenticating the calling client: the first stage of the token, introspection and
//! revocation pipelines.

use std::sync::Arc;

use axum::http::{HeaderMap, header};

use super::error::ApiError;
use super::state::Provider;
use crate::metrics::Argon2Purpose;
use crate::model::ClientRecord;
use crate::protocol::client_auth::{ClientAuthError, SecretCheck, check_method, presented_client, secret_check};
use crate::protocol::form::FormParams;
use crate::secrets;
use crate::store::Budget;
use crate::vocabulary::OAuthError;

/// Failed client authentications allowed per client id, and per client address, within
/// [`FAILURE_WINDOW`] seconds. A client that knows its secret never fails; ten tries a
/// minute leave room for a deployment rolling out a new one.
const MAX_FAILURES_PER_CLIENT: u32 = 10;
const MAX_FAILURES_PER_ADDRESS: u32 = 60;
const FAILURE_WINDOW: u64 = 60;

/// Identifies and authenticates the client (RFC 6749 §2.3.1) calling from `address`.
/// Public clients are identified by `client_id` alone; callers decide whether that is enough.
pub async fn authenticate_client(
    provider: &Provider,
    headers: &HeaderMap,
    form: &FormParams,
    address: &str,
) -> Result<Arc<ClientRecord>, ApiError> {
    let authorization = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(
            value.to_str().map_err(|_| refused(None, ClientAuthError::Failed("a non-ASCII Authorization header")))?,
        ),
        None => None,
    };
    let presented = presented_client(authorization, form).map_err(|error| refused(None, error))?;
    let client_id = Some(presented.client_id.as_str());
    let client = provider
        .store
        .client(&presented.client_id)
        .await?
        .ok_or_else(|| refused(client_id, ClientAuthError::Failed("unknown client")))?;
    let refuse = |error| refused(client_id, error);
    check_method(client.auth_method, &presented).map_err(refuse)?;
    let (secret, hash) = match secret_check(client.auth_method, &presented, client.secret_hash.as_deref()) {
        Ok(SecretCheck::Public) => return Ok(client),
        Ok(SecretCheck::Verify { secret, hash }) => (secret, hash),
        Err(error) => return Err(refuse(error)),
    };
    if check_secret(provider, &client, secret, hash, address).await? {
        Ok(client)
    } else {
        Err(refuse(ClientAuthError::Failed("wrong secret")))
    }
}

/// The answer to a refused client: the same `invalid_client` for every failure, with why
/// in the log only.
fn refused(client_id: Option<&str>, error: ClientAuthError) -> ApiError {
    if let ClientAuthError::Failed(detail) = &error {
        tracing::info!(client_id, detail, "client authentication failed");
    }
    OAuthError::from(error).into()
}

/// A generated secret is checked against its digest, and the memo answers an argon2-hashed
/// secret verified before, both at no cost: the hot path touches neither the store nor
/// argon2. Any other secret is a failure until argon2 says otherwise, so it is
/// reserved from the client's and the address's budgets first (in the store, so the budgets
/// hold across replicas), and refused with 429 once either is spent. Concurrent first
/// requests of one client take turns, so only the first pays a reservation and argon2; the
/// others find the memo filled.
async fn check_secret(
    provider: &Provider,
    client: &ClientRecord,
    secret: &str,
    hash: &str,
    address: &str,
) -> Result<bool, ApiError> {
    if let Some(matched) = secrets::check_generated(secret, hash) {
        return if matched { Ok(true) } else { reserve(provider, client, address).await.map(|_| false) };
    }
    let client_id = client.client_id.as_str();
    match provider.secrets.check_memo(client_id, secret, hash) {
        Some(true) => return Ok(true),
        Some(false) => return reserve(provider, client, address).await.map(|_| false),
        None => {}
    }
    let _turn = provider.secrets.turn(client_id).await;
    match provider.secrets.check_memo(client_id, secret, hash) {
        Some(true) => return Ok(true),
        Some(false) => return reserve(provider, client, address).await.map(|_| false),
        None => {}
    }
    let counted = reserve(provider, client, address).await?;
    provider.metrics.argon2_verification(Argon2Purpose::ClientSecret);
    let verified = provider.secrets.verify_with_argon2(client_id, secret, hash).await.ok_or_else(check_failed)?;
    if verified {
        provider.store.refund(&counted.each_ref().map(String::as_str)).await?;
    }
    Ok(verified)
}

/// Counts a presumed failure against the client's and the address's budgets; the keys it
/// was counted under, or 429 when a budget is spent.
async fn reserve(provider: &Provider, client: &ClientRecord, address: &str) -> Result<[String; 2], ApiError> {
    let keys = [format!("client-auth:{}", client.client_id), format!("client-auth-address:{address}")];
    let budgets = [
        Budget { key: &keys[0], limit: MAX_FAILURES_PER_CLIENT },
        Budget { key: &keys[1], limit: MAX_FAILURES_PER_ADDRESS },
    ];
    let reservation = provider.store.reserve(&budgets, provider.clock.now() + FAILURE_WINDOW).await?;
    if reservation.allowed {
        Ok(keys)
    } else {
        provider.metrics.client_auth_throttled(client);
        Err(ApiError::RateLimited {
            description: "too many failed client authentications, retry later",
            retry_after: reservation.retry_after,
        })
    }
}

fn check_failed() -> ApiError {
    ApiError::Internal("the client secret check could not run".to_owned())
}

/// Checks a client secret against its stored hash: the in-memory digest when this client's
/// current hash was verified before, argon2 (off the async workers, a few at a time)
/// otherwise. For callers that have authenticated otherwise already (RFC 7592 updates).
pub async fn verify_secret(provider: &Provider, client_id: &str, secret: &str, hash: &str) -> Result<bool, ApiError> {
    provider.secrets.verify_client_secret(client_id, secret, hash).await.ok_or_else(check_failed)
}
