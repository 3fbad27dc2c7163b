//! The forms of an interaction: `POST /login` and `POST /consent`. Each is bound to the
//! browser that started the interaction and carries its CSRF token.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::authorize::{
    PageResult, access_denied, consent_page, issue_code, login_page, needs_consent, random, redirect_error,
    store_failed,
};
use super::browser::{self, BROWSER_COOKIE, SESSION_COOKIE};
use super::respond::{Page, error_page, form_refused, with_cookies};
use super::text::ENGLISH;
use super::{CONSENT_TTL, INTERACTION_TTL, Provider, form};
use crate::audit::{self, AuditEvent, AuditFields};
use crate::metrics::LoginResult;
use crate::model::{ClientRecord, Interaction, Session};
use crate::protocol::form::FormParams;
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
    request: Request,
) -> Response {
    let headers = request.headers().clone();
    let result = async {
        let form = read(&provider, request).await?;
        let (interaction, client) = verified_interaction(&provider, &headers, &form).await?;
        authenticate(&provider, &interaction, &client, &form, &browser::client_ip(peer)).await
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /consent`: records the user's decision.
pub async fn consent(State(provider): State<Arc<Provider>>, request: Request) -> Response {
    let headers = request.headers().clone();
    let result = async {
        let form = read(&provider, request).await?;
        let (interaction, client) = verified_interaction(&provider, &headers, &form).await?;
        decide_consent(&provider, &headers, &interaction, &client, &form).await
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn read(provider: &Provider, request: Request) -> Result<FormParams, Page> {
    form::read_form(request).await.map_err(|e| {
        error_page(provider, StatusCode::BAD_REQUEST, ENGLISH.invalid_request_title, &e.description).into()
    })
}

fn expired(provider: &Provider) -> Response {
    error_page(provider, StatusCode::BAD_REQUEST, ENGLISH.expired_title, ENGLISH.expired)
}

/// The interaction named by the form, if this browser started it and the form carries
/// its CSRF token (compared in constant time).
async fn verified_interaction(
    provider: &Provider,
    headers: &HeaderMap,
    form: &FormParams,
) -> Result<(Interaction, Arc<ClientRecord>), Page> {
    let field = |name| form.get(name).ok().flatten();
    let (Some(id), Some(csrf_token)) = (field("interaction"), field("csrf_token")) else {
        return Err(form_refused(provider).into());
    };
    let interaction = provider
        .store
        .interaction(id)
        .await
        .map_err(|e| store_failed(provider, e))?
        .ok_or_else(|| expired(provider))?;
    let same_browser =
        browser::cookie(headers, BROWSER_COOKIE).is_some_and(|b| browser::tokens_match(&b, &interaction.browser_id));
    if !same_browser || !browser::tokens_match(csrf_token, &interaction.csrf_token) {
        return Err(form_refused(provider).into());
    }
    let client = provider
        .store
        .client(&interaction.request.client_id)
        .await
        .map_err(|e| store_failed(provider, e))?
        .ok_or_else(|| expired(provider))?;
    Ok((interaction, client))
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
    let store_error = |e| store_failed(provider, e);
    let user_key = format!("user:{username}");
    let address_key = format!("address:{address}");
    let throttled = provider.store.counter(&user_key).await.map_err(store_error)? >= MAX_FAILURES_PER_USER
        || provider.store.counter(&address_key).await.map_err(store_error)? >= MAX_FAILURES_PER_ADDRESS;
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
    let user = provider.store.user_by_username(&username).await.map_err(store_error)?;
    let hash = user.as_ref().map_or_else(|| decoy_hash().to_owned(), |u| u.password_hash.clone());
    let password_ok = provider.secrets.verify_password(password, hash).await.unwrap_or(false);
    let user = match user {
        Some(user) if password_ok && !user.disabled && !username.is_empty() => user,
        _ => {
            let now = provider.clock.now();
            provider.store.increment_counter(&user_key, now + THROTTLE_WINDOW).await.map_err(store_error)?;
            provider.store.increment_counter(&address_key, now + THROTTLE_WINDOW).await.map_err(store_error)?;
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
    provider.store.clear_counter(&user_key).await.map_err(store_error)?;
    let now = provider.clock.now();
    let session = Session {
        id: random(provider, 32)?,
        sid: random(provider, 16)?,
        subject: user.subject.clone(),
        auth_time: now,
        csrf_token: random(provider, 32)?,
    };
    provider.store.put_session(&session, now + provider.config.session_ttl).await.map_err(store_error)?;
    provider.metrics.login(LoginResult::Success);
    audit::emit(AuditEvent::LoginSucceeded, AuditFields::client(&client.client_id).subject(&user.subject));
    let cookie = browser::set_cookie(provider, SESSION_COOKIE, &session.id, Some(provider.config.session_ttl));
    let mut interaction = interaction.clone();
    interaction.subject = Some(session.subject.clone());
    interaction.auth_time = Some(session.auth_time);
    interaction.session_id = Some(session.id.clone());
    let response = if needs_consent(provider, client, &interaction.request, &session.subject).await? {
        provider.store.put_interaction(&interaction, now + INTERACTION_TTL).await.map_err(store_error)?;
        consent_page(provider, client, &interaction, &user)
    } else {
        issue_code(provider, StatusCode::SEE_OTHER, &interaction.request, &session, Some(&interaction.id)).await?
    };
    Ok(with_cookies(response, [cookie]))
}

/// Allow records the consent (added to what was consented before) and returns with a code;
/// deny returns `access_denied`. Either way the interaction is over.
async fn decide_consent(
    provider: &Provider,
    headers: &HeaderMap,
    interaction: &Interaction,
    client: &ClientRecord,
    form: &FormParams,
) -> PageResult {
    let store_error = |e| store_failed(provider, e);
    let current =
        browser::current_session(provider, headers).await.map_err(|_| super::respond::unavailable(provider))?;
    let Some((session, _)) = current.filter(|(s, _)| interaction.session_id.as_deref() == Some(s.id.as_str())) else {
        return Err(expired(provider).into());
    };
    match form.get("decision").ok().flatten() {
        Some("allow") => {
            let mut scope = interaction.request.scope.clone();
            if let Some(previous) =
                provider.store.consent(&session.subject, &client.client_id).await.map_err(store_error)?
            {
                scope = scope.union(&previous);
            }
            let now = provider.clock.now();
            provider
                .store
                .put_consent(&session.subject, &client.client_id, &scope, now + CONSENT_TTL)
                .await
                .map_err(store_error)?;
            audit::emit(AuditEvent::ConsentGranted, AuditFields::client(&client.client_id).subject(&session.subject));
            issue_code(provider, StatusCode::SEE_OTHER, &interaction.request, &session, Some(&interaction.id)).await
        }
        Some("deny") => {
            provider.store.delete_interaction(&interaction.id).await.map_err(store_error)?;
            audit::emit(AuditEvent::ConsentDenied, AuditFields::client(&client.client_id).subject(&session.subject));
            Ok(redirect_error(provider, StatusCode::SEE_OTHER, &interaction.request, &access_denied()))
        }
        _ => Err(error_page(
            provider,
            StatusCode::BAD_REQUEST,
            ENGLISH.invalid_request_title,
            ENGLISH.choose_allow_or_deny,
        )
        .into()),
    }
}
