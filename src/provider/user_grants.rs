//! The grants that act for a user: `authorization_code` (RFC 6749 §4.1.3, OIDC Core
//! §3.1.3), the device code (RFC 8628 §3.4) and `refresh_token` with rotation and reuse
//! detection (RFC 6749 §6, RFC 9700 §4.14.2), and the issuance of access, ID and refresh
//! tokens they share.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::aead::NONCE_LEN;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use serde_json::{Map, Value};

use super::error::ApiError;
use super::federation;
use super::state::Provider;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::keys::JwtType;
use crate::model::{ClientRecord, Grant, RefreshToken, UserRecord};
use crate::protocol::claims::Audience;
use crate::protocol::device;
use crate::protocol::id_token::{IdTokenClaims, at_hash};
use crate::protocol::refresh_reuse::{self, Reuse};
use crate::protocol::token::{self, TokenResponse};
use crate::protocol::userinfo::{id_token_user_claims, released_claims};
use crate::secrets::{self, SecretError};
use crate::store::{Consumed, StoreError, ending};
use crate::vocabulary::GrantType;
use crate::vocabulary::OAuthError;
use crate::vocabulary::Scope;

/// Reads of a device authorization one poll makes at most when concurrent polls or the
/// user's decision keep changing it under it.
const DEVICE_POLL_ATTEMPTS: usize = 3;

/// How long a concurrent reuse waits, at most, for the first use to store its successor
/// (see [`repeat_successor`]), and how often it looks.
const SUCCESSOR_WAIT: Duration = Duration::from_secs(2);
const SUCCESSOR_POLL: Duration = Duration::from_millis(50);

/// Bytes of randomness in token ids and refresh tokens.
const JTI_BYTES: usize = 16;
const REFRESH_TOKEN_BYTES: usize = 32;

/// Who redeems a code or refresh token, as the store records it: a digest of the client id
/// and, for a code, the PKCE verifier (the verifier itself is a secret).
fn redeemer(client_id: &str, code_verifier: Option<&str>) -> String {
    let verifier = code_verifier.unwrap_or_default();
    secrets::token_digest(&format!("{}:{client_id}{}:{verifier}", client_id.len(), verifier.len()))
}

/// OIDC Core §3.1.3.2: exchanges a code once. A second use revokes every token issued from
/// the first (RFC 6749 §4.1.2) — the revocation is kept although the request fails.
///
/// Except for the client's own retry of a redemption the store applied after it had timed
/// out (the client got a 503, the code was used up all the same): the same client with the
/// same verifier, when the store says the timing fits (see [`Consumed::Reused`]). That is
/// refused with `invalid_grant` too, but revokes nothing: RFC 6749 §4.1.2 has the server
/// revoke "when possible", against a stolen code, and whoever presents the same client
/// credentials and PKCE verifier holds everything the client has anyway. The tokens cannot
/// be issued again without having been stored, so the client starts a new authorization.
pub async fn authorization_code(
    provider: &Provider,
    client: &ClientRecord,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenResponse, ApiError> {
    let by = redeemer(&client.client_id, code_verifier);
    let code = match provider.store.consume_code(&secrets::token_digest(code), &by).await? {
        Consumed::Fresh(code) => code,
        Consumed::Reused { by: first, may_be_retry: true, .. } if first == by => {
            tracing::info!(client_id = %client.client_id, "a retried code redemption the store had applied late; nothing is revoked");
            return Err(OAuthError::invalid_grant("the authorization code was already used").into());
        }
        Consumed::Reused { value: code, .. } => {
            revoke_grant(provider, &code.grant_id).await?;
            tracing::warn!(client_id = %client.client_id, "authorization code reused; its grant is revoked");
            return Err(OAuthError::invalid_grant("the authorization code was already used").into());
        }
        Consumed::Unknown => {
            return Err(OAuthError::invalid_grant("the authorization code is invalid or expired").into());
        }
    };
    token::check_code(&code, &client.client_id, redirect_uri, code_verifier)?;
    let user = require_active_user(provider, &code.subject).await?;
    let refresh = issues_refresh_tokens(client, &code.scope);
    let now = provider.clock.now();
    let lifetime = if refresh { provider.config.refresh_token_ttl } else { provider.config.access_token_ttl };
    let mut grant = Grant {
        id: code.grant_id,
        client_id: client.client_id.clone(),
        subject: code.subject,
        scope: code.scope.clone(),
        auth_time: code.auth_time,
        session_id: code.session_id,
        expires_at: now + lifetime,
        access_tokens: Vec::new(),
        claims: code.claims,
    };
    let refresh_scope = refresh.then_some(&code.scope);
    let response = issue(provider, client, &user, &mut grant, &code.scope, code.nonce, refresh_scope).await?;
    let fields = AuditFields::client(&client.client_id)
        .subject(&grant.subject)
        .grant_type(GrantType::AuthorizationCode.as_str());
    audit::emit(AuditEvent::TokenIssued, fields);
    Ok(response)
}

/// RFC 8628 §3.4–§3.5: one poll with a device code. The decision (see [`device::poll`]) is
/// swapped in only over the very state it was made from, so of concurrent polls on any
/// replicas exactly one redeems an approval; a poll that loses the swap decides again on
/// what won. The tokens are those of the code grant: the same grant record, ID token and,
/// with `offline_access`, refresh token.
pub async fn device_code(
    provider: &Provider,
    client: &ClientRecord,
    device_code: &str,
) -> Result<TokenResponse, ApiError> {
    let digest = secrets::token_digest(device_code);
    let mut attempts = 0;
    let (approval, scope) = loop {
        let Some(stored) = provider.store.device_grant(&digest).await? else {
            return Err(OAuthError::invalid_grant("the device code is invalid or expired").into());
        };
        let polled = device::poll(&stored, &client.client_id, provider.clock.now());
        let swapped = match &polled.next {
            Some(next) => provider.store.swap_device_grant(&digest, &stored, next).await?,
            None => true,
        };
        attempts += 1;
        if swapped {
            break (polled.answer?, stored.scope);
        }
        if attempts == DEVICE_POLL_ATTEMPTS {
            return Err(OAuthError::temporarily_unavailable().into());
        }
    };
    let user = require_active_user(provider, &approval.subject).await?;
    let refresh = issues_refresh_tokens(client, &scope);
    let now = provider.clock.now();
    let lifetime = if refresh { provider.config.refresh_token_ttl } else { provider.config.access_token_ttl };
    let mut grant = Grant {
        id: secrets::random_token(16)?,
        client_id: client.client_id.clone(),
        subject: approval.subject,
        scope: scope.clone(),
        auth_time: approval.auth_time,
        session_id: approval.session_id,
        expires_at: now + lifetime,
        access_tokens: Vec::new(),
        claims: Default::default(),
    };
    provider.store.put_grant(&grant).await?;
    let response = issue(provider, client, &user, &mut grant, &scope, None, refresh.then_some(&scope)).await?;
    let fields =
        AuditFields::client(&client.client_id).subject(&grant.subject).grant_type(GrantType::DeviceCode.as_str());
    audit::emit(AuditEvent::TokenIssued, fields);
    Ok(response)
}

/// RFC 6749 §6 with rotation: the presented refresh token dies, a new one of the same scope
/// is issued, and presenting a rotated-out token revokes the whole family (RFC 9700
/// §4.14.2), except within the client's reuse interval, where it gets the first use's
/// successor again, and for the client's retry of a use a stalled store applied late (see
/// [`refresh_reuse::decide`]). Refresh tokens are bound to their client.
pub async fn refresh_token(
    provider: &Provider,
    client: &ClientRecord,
    presented: &str,
    requested: Option<&Scope>,
) -> Result<TokenResponse, ApiError> {
    let digest = secrets::token_digest(presented);
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    // A request refused for its client or scope must not burn a valid token: the store uses
    // only a token of this client, and a narrower scope is checked on a look first (the
    // usual refresh, asking for no scope, costs no look).
    if let Some(requested) = requested
        && let Consumed::Fresh(token) = provider.store.peek_refresh_token(&digest).await?
        && token.client_id == client.client_id
    {
        token::refresh_scope(Some(requested), &token.scope)?;
    }
    let by = redeemer(&client.client_id, None);
    let token = match provider.store.consume_refresh_token(&digest, &by, &client.client_id).await? {
        Consumed::Fresh(token) | Consumed::Reused { value: token, .. } if token.client_id != client.client_id => {
            return Err(OAuthError::invalid_grant("the refresh token was issued to another client").into());
        }
        Consumed::Fresh(token) => token,
        Consumed::Reused { value: token, by: first, at, may_be_retry } => {
            let interval = client.policy.refresh_reuse_interval;
            return match refresh_reuse::decide(interval, first == by, at, may_be_retry, provider.clock.now()) {
                Reuse::Repeat => repeat_successor(provider, &token, presented, &digest).await,
                Reuse::Retry => Err(concurrent_use().into()),
                Reuse::Replay => {
                    let subject = provider.store.grant(&token.grant_id).await?.map(|grant| grant.subject);
                    revoke_grant(provider, &token.grant_id).await?;
                    tracing::warn!(client_id = %client.client_id, "refresh token reused; its grant is revoked");
                    let fields = AuditFields { subject: subject.as_deref(), ..AuditFields::client(&client.client_id) };
                    audit::emit(AuditEvent::RefreshReuseDetected, fields);
                    Err(OAuthError::invalid_grant("the refresh token was already used; the grant is revoked").into())
                }
            };
        }
        Consumed::Unknown => return Err(invalid().into()),
    };
    let mut grant = provider.store.grant(&token.grant_id).await?.ok_or_else(invalid)?;
    let user = match federation::refreshed_user(provider, &grant.subject).await? {
        Some(user) if !user.disabled => user,
        _ => {
            revoke_grant(provider, &grant.id).await?;
            return Err(invalid().into());
        }
    };
    let scope = token::refresh_scope(requested, &token.scope)?;
    let response = issue(provider, client, &user, &mut grant, &scope, None, Some(&token.scope)).await?;
    let interval = client.policy.refresh_reuse_interval;
    if interval > 0 {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| SecretError::Random)?;
        let sealed = refresh_reuse::seal_successor(presented, &response, nonce)
            .map_err(|error| ApiError::Internal(error.to_string()))?;
        let until = provider.clock.now() + interval;
        provider.store.put_refresh_successor(&digest, &sealed, until).await?;
    }
    let fields =
        AuditFields::client(&client.client_id).subject(&grant.subject).grant_type(GrantType::RefreshToken.as_str());
    audit::emit(AuditEvent::TokenRefreshed, fields);
    Ok(response)
}

fn concurrent_use() -> OAuthError {
    OAuthError::invalid_grant("the refresh token was just used by a concurrent request")
}

/// A reuse within the client's interval: the response the first use got, once that use has
/// stored it (a concurrent request may arrive while it is still being issued). If it never
/// appears, the first use failed or its interval ended, and this one is refused without
/// revoking anything. The family must still be alive: a revoked grant's tokens are dead.
async fn repeat_successor(
    provider: &Provider,
    token: &RefreshToken,
    presented: &str,
    digest: &str,
) -> Result<TokenResponse, ApiError> {
    let deadline = tokio::time::Instant::now() + SUCCESSOR_WAIT;
    let sealed = loop {
        if let Some(sealed) = provider.store.refresh_successor(digest).await? {
            break sealed;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(concurrent_use().into());
        }
        tokio::time::sleep(SUCCESSOR_POLL).await;
    };
    if provider.store.grant(&token.grant_id).await?.is_none() {
        return Err(OAuthError::invalid_grant("the refresh token is invalid, expired or revoked").into());
    }
    tracing::info!(client_id = %token.client_id, "refresh token reused within its interval; same successor sent again");
    refresh_reuse::open_successor(presented, &sealed)
        .ok_or_else(|| ApiError::Internal("the sealed refresh successor does not open".to_owned()))
}

/// OIDC Core §11: refresh tokens only with `offline_access`, for clients allowed the grant.
fn issues_refresh_tokens(client: &ClientRecord, scope: &Scope) -> bool {
    scope.contains("offline_access") && client.allows_grant(GrantType::RefreshToken)
}

async fn require_active_user(provider: &Provider, subject: &str) -> Result<Arc<UserRecord>, ApiError> {
    match provider.user_by_subject(subject).await? {
        Some(user) if !user.disabled => Ok(user),
        _ => Err(OAuthError::invalid_grant("the user no longer exists or is disabled").into()),
    }
}

/// Revokes a grant (see [`ending::revoke_grant`]).
pub async fn revoke_grant(provider: &Provider, grant_id: &str) -> Result<(), StoreError> {
    ending::revoke_grant(&*provider.store, grant_id).await
}

/// Issues an access token, an ID token (with `openid`) and, when `refresh_scope` is set, a
/// new refresh token of that scope; records the access token in the grant first, so a later
/// revocation reaches it.
async fn issue(
    provider: &Provider,
    client: &ClientRecord,
    user: &UserRecord,
    grant: &mut Grant,
    scope: &Scope,
    nonce: Option<String>,
    refresh_scope: Option<&Scope>,
) -> Result<TokenResponse, ApiError> {
    let now = provider.clock.now();
    let issuer = &provider.config.issuer;
    let epoch = provider.store_status.epoch();
    let jti = secrets::random_token(JTI_BYTES)?;
    let access = token::user_access_token(&provider.issuance(&epoch), client, grant, scope, jti, now);
    let keys = provider.keys.load();
    let access_token = keys.sign(None, JwtType::AccessToken, &access.claims)?;
    let id_token = match keys.signer(None) {
        Some(signer) if scope.contains("openid") => {
            let claims = IdTokenClaims {
                iss: issuer.clone(),
                sub: grant.subject.clone(),
                aud: Audience(vec![client.client_id.clone()]),
                exp: now + access.expires_in,
                iat: now,
                auth_time: grant.auth_time,
                nonce,
                at_hash: Some(at_hash(&access_token, signer.algorithm())),
                sid: Some(grant.session_id.clone()),
                azp: None,
                user: without_sub(id_token_user_claims(
                    released_claims(user, client, scope, &grant.claims.id_token),
                    client,
                    &grant.claims.id_token,
                )),
            };
            Some(keys.sign(None, JwtType::Jwt, &claims)?)
        }
        _ => None,
    };
    grant.access_tokens.retain(|(_, expires_at)| *expires_at > now);
    grant.access_tokens.push((access.claims.jti.clone(), access.claims.exp));
    let refresh_token = match refresh_scope {
        Some(refresh_scope) => {
            let value = secrets::random_token(REFRESH_TOKEN_BYTES)?;
            let record = RefreshToken {
                grant_id: grant.id.clone(),
                client_id: client.client_id.clone(),
                scope: refresh_scope.clone(),
                expires_at: grant.expires_at,
            };
            Some((secrets::token_digest(&value), record, value))
        }
        None => None,
    };
    let stored = refresh_token.as_ref().map(|(digest, record, _)| (digest.as_str(), record));
    // Revoked meanwhile (a replayed code or refresh token): nothing issued here leaves.
    if !provider.store.update_grant(grant, stored).await? {
        return Err(OAuthError::invalid_grant("the grant was revoked").into());
    }
    let refresh_token = refresh_token.map(|(_, _, value)| value);
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        scope: access.claims.scope,
        refresh_token,
        id_token,
    })
}

/// The user's claims without `sub`, which the ID token carries already.
fn without_sub(mut claims: Map<String, Value>) -> Map<String, Value> {
    claims.remove("sub");
    claims
}
