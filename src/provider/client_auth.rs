//! Authenticating the calling client: the first stage of the token, introspection and
//! revocation pipelines.

use std::sync::Arc;

use axum::http::{HeaderMap, header};

use super::error::ApiError;
use super::state::Provider;
use crate::model::ClientRecord;
use crate::protocol::client_auth::{AUTHENTICATION_FAILED, SecretCheck, check_method, presented_client, secret_check};
use crate::protocol::form::FormParams;
use crate::vocabulary::OAuthError;

/// One message for every failure, so responses do not tell which client ids exist.
const FAILED: &str = AUTHENTICATION_FAILED;

/// Identifies and authenticates the client (RFC 6749 §2.3.1). Public clients are identified
/// by `client_id` alone; callers decide whether that is enough.
pub async fn authenticate_client(
    provider: &Provider,
    headers: &HeaderMap,
    form: &FormParams,
) -> Result<Arc<ClientRecord>, ApiError> {
    let authorization = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(value.to_str().map_err(|_| OAuthError::invalid_client("malformed Authorization header"))?),
        None => None,
    };
    let presented = presented_client(authorization, form)?;
    let client =
        provider.store.client(&presented.client_id).await?.ok_or_else(|| OAuthError::invalid_client(FAILED))?;
    check_method(client.auth_method, &presented)?;
    let (secret, hash) = match secret_check(client.auth_method, &presented, client.secret_hash.as_deref())? {
        SecretCheck::Public => return Ok(client),
        SecretCheck::Verify { secret, hash } => (secret, hash),
    };
    if verify_secret(provider, &client.client_id, secret, hash).await? {
        Ok(client)
    } else {
        Err(OAuthError::invalid_client(FAILED).into())
    }
}

/// Checks a client secret against its stored hash: the in-memory digest when this client's
/// current hash was verified before, argon2 (off the async workers, a few at a time)
/// otherwise.
pub async fn verify_secret(provider: &Provider, client_id: &str, secret: &str, hash: &str) -> Result<bool, ApiError> {
    let verified = provider.secrets.verify_client_secret(client_id, secret, hash).await;
    verified.ok_or_else(|| ApiError::Internal("the client secret check could not run".to_owned()))
}
