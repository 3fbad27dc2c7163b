//! `POST /login`: the sign-in form of an interaction, bound to the browser that started it
//! and carrying its CSRF token.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::browser::{self, SESSION_COOKIE};
use super::extract::BrowserParams;
use super::flow::{Interaction, PageResult, consent_page, issue_code, login_page, needs_consent};
use super::respond::with_cookies;
use super::state::Provider;
use super::text::ENGLISH;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::metrics::LoginResult;
use crate::model::{ClientRecord, Session};
use crate::protocol::form::FormParams;
use crate::protocol::pending::PendingRequest;
use crate::secrets;

/// Failed logins allowed per username, and per client address, within [`THROTTLE_WINDOW`].
const MAX_FAILURES_PER_USER: u32 = 5;
const MAX_FAILURES_PER_ADDRESS: u32 = 20;
const THROTTLE_WINDOW: u64 = 15 * 60;

const WRONG_CREDENTIALS: &str = ENGLISH.wrong_credentials;
const THROTTLED: &str = ENGLISH.throttled;

/// `POST /login`: checks the password (argon2id), starts an SSO session, then asks for
/// consent or returns to the client.
pub async fn login(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    BrowserParams(form): BrowserParams,
) -> Response {
    let result = async {
        let (interaction, client) = Interaction::of_form(&provider, &headers, &form).await?;
        authenticate(&provider, &interaction, &client, &form, &browser::client_ip(peer)).await
    };
    result.await.unwrap_or_else(|error| error.render(&provider))
}

/// A hash to verify against when the user does not exist, so unknown usernames cost the
/// same time as wrong passwords.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| secrets::hash("decoy password for unknown users").unwrap_or_default())
}

async fn authenticate(
    provider: &Provider,
    interaction: &Interaction,
    client: &ClientRecord,
    form: &FormParams,
    address: &str,
) -> PageResult {
    let username = form.get("username").ok().flatten().unwrap_or("").trim().to_owned();
    let password = secrets::SecretString::new(form.get("password").ok().flatten().unwrap_or(""));
    let user_key = format!("user:{username}");
    let address_key = format!("address:{address}");
    let throttled = provider.store.counter(&user_key).await? >= MAX_FAILURES_PER_USER
        || provider.store.counter(&address_key).await? >= MAX_FAILURES_PER_ADDRESS;
    if throttled {
        provider.metrics.login(LoginResult::Throttled);
        audit::emit(AuditEvent::LoginThrottled, AuditFields::client(&client.client_id));
        return Ok(login_page(
            provider,
            client,
            interaction,
            &username,
            Some(THROTTLED),
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let user = provider.store.user_by_username(&username).await?;
    let hash = user.as_ref().map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let password_ok = provider.secrets.verify_password(password, hash).await.unwrap_or(false);
    let user = match user {
        Some(user) if password_ok && !user.disabled && !username.is_empty() => user,
        _ => {
            let now = provider.clock.now();
            provider.store.increment_counter(&user_key, now + THROTTLE_WINDOW).await?;
            provider.store.increment_counter(&address_key, now + THROTTLE_WINDOW).await?;
            let result = match &user {
                None => LoginResult::UnknownUser,
                Some(user) if user.disabled && password_ok => LoginResult::Disabled,
                Some(_) => LoginResult::BadPassword,
            };
            provider.metrics.login(result);
            let subject = user.as_ref().filter(|_| !username.is_empty()).map(|user| user.subject.as_str());
            audit::emit(AuditEvent::LoginFailed, AuditFields { subject, ..AuditFields::client(&client.client_id) });
            return Ok(login_page(provider, client, interaction, &username, Some(WRONG_CREDENTIALS), StatusCode::OK));
        }
    };
    provider.store.clear_counter(&user_key).await?;
    let now = provider.clock.now();
    let session = Session {
        id: secrets::random_token(32)?,
        sid: secrets::random_token(16)?,
        subject: user.subject.clone(),
        auth_time: now,
        csrf_token: secrets::random_token(32)?,
    };
    provider.store.put_session(&session, now + provider.config.session_ttl).await?;
    provider.metrics.login(LoginResult::Success);
    audit::emit(AuditEvent::LoginSucceeded, AuditFields::client(&client.client_id).subject(&user.subject));
    let cookie = browser::set_cookie(provider, SESSION_COOKIE, &session.id, Some(provider.config.session_ttl));
    let response = if needs_consent(provider, client, interaction.request(), &session.subject).await? {
        // The consent form answers for this session only, for a lifetime from now.
        let pending = PendingRequest { sid: Some(session.sid.clone()), issued_at: now, ..interaction.pending.clone() };
        consent_page(provider, client, &Interaction::seal(provider, pending).await?, &user)
    } else {
        issue_code(provider, StatusCode::SEE_OTHER, interaction.request(), &session).await?
    };
    Ok(with_cookies(response, [cookie]))
}
