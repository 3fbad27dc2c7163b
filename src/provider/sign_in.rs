//! Signing a person in with a username and password, for every form that asks for them
//! (the login form of an authorization, the device page): throttled per username and per
//! address, padded to the directory's costliest hash, and ending in a new SSO session.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue};

use super::browser::{self, SESSION_COOKIE};
use super::error::PageError;
use super::session_end;
use super::state::Provider;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::metrics::{Argon2Purpose, LoginResult};
use crate::model::{Session, UserRecord};
use crate::protocol::form::FormParams;
use crate::secrets;
use crate::store::Budget;

/// Failed logins allowed per username, and per client address, within [`THROTTLE_WINDOW`]
/// seconds.
const MAX_FAILURES_PER_USER: u32 = 5;
const MAX_FAILURES_PER_ADDRESS: u32 = 20;
const THROTTLE_WINDOW: u64 = 15 * 60;

/// How a sign-in attempt ended.
pub enum SignIn {
    /// The password was right: a new session, and the cookie that carries it.
    SignedIn { session: Session, user: Arc<UserRecord>, cookie: Option<HeaderValue> },
    /// A wrong password, an unknown user or a disabled one, told apart in the audit log only.
    Refused,
    /// A budget is spent; nothing was checked. Seconds until it may be tried again.
    Throttled { retry_after: u64 },
}

/// The budgets a login attempt is reserved from: its username's (among the local users,
/// or within one directory connector, `realm`) and its address's, which every password
/// form shares. The username is keyed by its digest, so a key has the same small size
/// whatever was typed.
pub fn budget_keys(realm: Option<&str>, username: &str, address: &str) -> [String; 2] {
    let user = match realm {
        None => secrets::token_digest(username),
        Some(realm) => secrets::token_digest(&format!("{realm}\0{username}")),
    };
    [format!("login-user:{user}"), format!("login-address:{address}")]
}

/// Reserves one attempt from the budgets `keys` (see [`sign_in`]), atomically in the
/// store; `Some(seconds)` until one may be tried again when a budget is spent, and the
/// attempt must not be made.
pub async fn reserve_attempt(
    provider: &Provider,
    keys: &[String; 2],
    client_id: Option<&str>,
) -> Result<Option<u64>, PageError> {
    let budgets = [
        Budget { key: &keys[0], limit: MAX_FAILURES_PER_USER },
        Budget { key: &keys[1], limit: MAX_FAILURES_PER_ADDRESS },
    ];
    let reservation = provider.store.reserve(&budgets, provider.clock.now() + THROTTLE_WINDOW).await?;
    if reservation.allowed {
        return Ok(None);
    }
    provider.metrics.login(LoginResult::Throttled);
    audit::emit(AuditEvent::LoginThrottled, AuditFields { client_id, ..AuditFields::default() });
    Ok(Some(reservation.retry_after))
}

/// The form's `username`, as it is looked up.
pub fn username(form: &FormParams) -> String {
    form.get("username").ok().flatten().unwrap_or("").trim().to_owned()
}

/// Checks the form's `username` and `password` for `client_id` (named in the audit log;
/// `None` for the account page, which signs in for no client).
///
/// The attempt is reserved from both budgets before the password is checked, in one step
/// the store makes atomic, so concurrent attempts (on any number of replicas) never get
/// more checks than the budgets allow. A failed attempt stays counted until its window
/// ends; a successful one is refunded, so the budgets count failures only (and a busy
/// shared address is not throttled by its successful logins). A new session id at every
/// login, and the one this browser had before ends: a session id planted in or stolen from
/// the browser never becomes a signed-in session.
pub async fn sign_in(
    provider: &Provider,
    headers: &HeaderMap,
    form: &FormParams,
    address: &str,
    client_id: Option<&str>,
) -> Result<SignIn, PageError> {
    let username = username(form);
    let password = secrets::SecretString::new(form.get("password").ok().flatten().unwrap_or(""));
    let keys = budget_keys(None, &username, address);
    if let Some(retry_after) = reserve_attempt(provider, &keys, client_id).await? {
        return Ok(SignIn::Throttled { retry_after });
    }
    let now = provider.clock.now();
    // A user without a password is, to the password form, no user: the same answer and the
    // same work as an unknown username.
    let user = provider.store.user_by_username(&username).await?.filter(|u| !username.is_empty() && u.has_password());
    let rehash_with = user.as_ref().filter(|u| secrets::needs_rehash(&u.password_hash)).map(|_| password.clone());
    let password_ok = check_password(provider, password, user.as_deref(), now).await?;
    let user = match user {
        Some(user) if password_ok && !user.disabled => user,
        _ => {
            let reason = match &user {
                None => "unknown_user",
                Some(user) if user.disabled && password_ok => "disabled",
                Some(_) => "bad_password",
            };
            provider.metrics.login(LoginResult::Failure);
            let fields = AuditFields {
                subject: user.as_ref().map(|user| user.subject.as_str()),
                reason: Some(reason),
                client_id,
                ..AuditFields::default()
            };
            audit::emit(AuditEvent::LoginFailed, fields);
            return Ok(SignIn::Refused);
        }
    };
    provider.store.refund(&keys.each_ref().map(String::as_str)).await?;
    if let Some(password) = rehash_with {
        upgrade_hash(provider, &user, password).await;
    }
    let (session, cookie) = start_session(provider, headers, &user.subject, client_id, now).await?;
    Ok(SignIn::SignedIn { session, user, cookie })
}

/// The SSO session of `subject`, who just authenticated (by password or through a
/// connector), and the cookie that carries it. The cookie value is new at every login,
/// so a session id planted in or stolen from the browser never becomes a signed-in
/// session. What this browser held before decides the rest:
/// - a session of the same subject is signed in to again: it keeps its `sid`, so the
///   grants issued in it stay linked to it and the relying parties' ID tokens still name
///   it, and a later logout ends them all;
/// - a session of someone else ends as a logout would end it (its grants revoked, its
///   clients told by back-channel logout), since no browser reaches it any more.
pub async fn start_session(
    provider: &Provider,
    headers: &HeaderMap,
    subject: &str,
    client_id: Option<&str>,
    now: u64,
) -> Result<(Session, Option<HeaderValue>), PageError> {
    let previous = match browser::cookie(headers, SESSION_COOKIE) {
        Some(id) => provider.store.session(&id).await?,
        None => None,
    };
    let continued = match previous {
        Some(previous) if previous.subject == subject => {
            provider.store.delete_session(&previous.id).await?;
            Some(previous.sid)
        }
        Some(previous) => {
            session_end::end_session(provider, &previous).await?;
            None
        }
        None => None,
    };
    let signed_in_again = continued.is_some();
    let sid = match continued {
        Some(sid) => sid,
        None => secrets::random_token(16)?,
    };
    let session = Session {
        id: secrets::random_token(32)?,
        sid,
        subject: subject.to_owned(),
        auth_time: now,
        csrf_token: secrets::random_token(32)?,
    };
    let expires_at = session_end::session_expires_at(provider, &session);
    provider.store.put_session(&session, expires_at).await?;
    if signed_in_again {
        provider.store.keep_session_grants(&session.sid, expires_at).await?;
    }
    provider.metrics.login(LoginResult::Success);
    audit::emit(AuditEvent::LoginSucceeded, AuditFields { client_id, ..AuditFields::default() }.subject(subject));
    let cookie = browser::set_cookie(provider, SESSION_COOKIE, &session.id, Some(provider.config.session_ttl));
    Ok((session, cookie))
}

/// Checks the password of `user` (`None`: no such user), padded to the directory's
/// costliest hash so the time taken does not tell which case it was.
async fn check_password(
    provider: &Provider,
    password: secrets::SecretString,
    user: Option<&UserRecord>,
    now: u64,
) -> Result<bool, PageError> {
    let hash = user.map(|user| user.password_hash.clone());
    if let Some(hash) = &hash {
        provider.password_work.observe(hash);
    }
    let floor = provider.password_work.floor(&provider.store, now).await?;
    provider.metrics.argon2_verification(Argon2Purpose::Password);
    provider
        .secrets
        .check_password(password, hash, floor)
        .await
        .ok_or_else(|| PageError::Internal("the password check could not run".to_owned()))
}

/// Makes a hash outside the policy again under it, now that the password is known to be
/// right. A declared user's record is written again from its Secret by the next reconcile,
/// so there the upgrade lasts until then: declare the new hash to keep it.
async fn upgrade_hash(provider: &Provider, user: &UserRecord, password: secrets::SecretString) {
    let upgraded = match provider.secrets.hash(password).await {
        Some(Ok(hash)) => UserRecord { password_hash: hash, ..user.clone() },
        Some(Err(error)) => return tracing::warn!(%error, "cannot make the password hash again"),
        None => return tracing::warn!("cannot make the password hash again: hashing could not run"),
    };
    match provider.store.put_user(upgraded).await {
        Ok(()) => tracing::info!(subject = %user.subject, "password hash made again under the policy"),
        Err(error) => tracing::warn!(%error, "cannot store the password hash made again"),
    }
}
