//! `/device` (RFC 8628 §3.3): where the user enters the code their device shows, signs in
//! (the login form, posted here) and allows or denies the device.
//!
//! One form posts here at each step, told apart by its fields: `decision` (the consent
//! form), `username` (the sign-in form), otherwise `user_code` (the code form). The code
//! and sign-in forms carry a CSRF token bound to the browser cookie; the consent form the
//! session's. Every code typed is reserved from the address's and a global budget before
//! it is looked up, and never refunded: a wrong code costs what a right one does (RFC
//! 8628 §5.1). Later steps name the authorization by its key, a digest nobody can guess.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::browser;
use super::error::PageError;
use super::extract::BrowserParams;
use super::flow::{PageResult, describe_scopes};
use super::offer;
use super::pages::{self, DeviceConsentPage, DeviceDonePage, DeviceFields, DevicePage, LoginPage, ScopeLine};
use super::respond::{with_cookies, with_retry_after};
use super::sign_in::{self, SignIn, sign_in};
use super::state::Provider;
use super::text::ENGLISH;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::model::{ClientRecord, DeviceGrant, Session, UserRecord};
use crate::protocol::device::{self, Approval};
use crate::protocol::endpoints;
use crate::protocol::form::FormParams;
use crate::secrets;
use crate::store::Budget;

/// Codes one address may enter within [`CODE_WINDOW`] seconds, and all addresses together:
/// 20^8 codes against at most this many guesses per window.
const MAX_CODES_PER_ADDRESS: u32 = 10;
const MAX_CODES_OVERALL: u32 = 1000;
const CODE_WINDOW: u64 = 15 * 60;
/// Reads of the authorization a decision makes at most while polls keep changing it.
const DECISION_ATTEMPTS: usize = 3;

/// `GET /device`: the code form, prefilled from `verification_uri_complete`.
pub async fn page(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    BrowserParams(params): BrowserParams,
) -> Response {
    let result = async {
        let typed = params.get("user_code").ok().flatten().unwrap_or_default();
        let prefilled = device::normalize_user_code(typed).map(|code| device::display_user_code(&code));
        let (browser_id, cookie) = browser::binding(&provider, &headers)?;
        let page = code_page(&provider, &browser_id, prefilled.as_deref().unwrap_or_default(), None, StatusCode::OK)?;
        Ok(with_cookies(page, [cookie]))
    };
    result.await.unwrap_or_else(|error: PageError| error.render(&provider))
}

/// `POST /device`: one step of the flow (see the module documentation).
pub async fn submit(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    BrowserParams(form): BrowserParams,
) -> Response {
    let field = |name| form.get(name).ok().flatten();
    let result = if field("decision").is_some() {
        decide(&provider, &headers, &form).await
    } else if field("username").is_some() {
        sign_in_step(&provider, &headers, &form, &browser::client_ip(peer)).await
    } else {
        enter_code(&provider, &headers, &form, &browser::client_ip(peer)).await
    };
    result.unwrap_or_else(|error| error.render(&provider))
}

/// What the code and sign-in forms' CSRF token is bound to (see [`browser::binding_csrf_token`]).
const FORM_PURPOSE: &str = "device";

fn browser_csrf_token(browser_id: &str) -> String {
    browser::binding_csrf_token(FORM_PURPOSE, browser_id)
}

fn check_browser_csrf(headers: &HeaderMap, form: &FormParams) -> Result<String, PageError> {
    browser::check_binding_csrf(FORM_PURPOSE, headers, form)
}

/// A device authorization someone is signing in to approve through a connector: the
/// browser whose code form named it, and the authorization.
pub(super) struct DeviceSignIn {
    pub browser_id: String,
    pub found: Found,
}

impl DeviceSignIn {
    /// The authorization a sign-in form (or a "Continue with …" link) of the device page
    /// names, if the form carries this browser's CSRF token, with its client.
    pub async fn of_form(
        provider: &Provider,
        headers: &HeaderMap,
        form: &FormParams,
    ) -> Result<(Self, Arc<ClientRecord>), PageError> {
        let browser_id = check_browser_csrf(headers, form)?;
        let found = find_named(provider, form).await?;
        let client = provider.store.client(&found.grant.client_id).await?.ok_or(PageError::Expired)?;
        Ok((Self { browser_id, found }, client))
    }

    /// What the sign-in forms of this authorization carry to name it.
    pub fn fields(&self) -> (String, String) {
        (browser_csrf_token(&self.browser_id), device::display_user_code(&self.found.user_code))
    }
}

fn code_page(
    provider: &Provider,
    browser_id: &str,
    user_code: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::DEVICE);
    let csrf_token = browser_csrf_token(browser_id);
    let page = DevicePage {
        text: &ENGLISH,
        stylesheet: &stylesheet,
        action: &action,
        csrf_token: &csrf_token,
        user_code,
        error,
    };
    Ok(pages::render(status, &page))
}

/// A pending authorization, found by its key and a user code that points to it.
#[derive(Clone)]
pub(super) struct Found {
    pub key: String,
    /// Normalised.
    pub user_code: String,
    pub grant: DeviceGrant,
}

/// The pending, unexpired authorization `user_code` points to (normalised), if any.
async fn find(provider: &Provider, user_code: &str) -> Result<Option<Found>, PageError> {
    let Some(user_code) = device::normalize_user_code(user_code) else { return Ok(None) };
    let Some(key) = provider.store.device_code_of_user_code(&secrets::token_digest(&user_code)).await? else {
        return Ok(None);
    };
    let grant = provider.store.device_grant(&key).await?;
    let pending = grant.filter(|grant| device::awaits_decision(grant, provider.clock.now()));
    Ok(pending.map(|grant| Found { key, user_code, grant }))
}

/// The authorization a later step's form names: by its key, and the user code it showed,
/// which must still point to it.
async fn find_named(provider: &Provider, form: &FormParams) -> Result<Found, PageError> {
    let field = |name| form.get(name).ok().flatten().unwrap_or_default();
    find_pending(provider, field("user_code"), field("device")).await
}

/// The pending authorization `user_code` points to, if its key is `key`.
pub(super) async fn find_pending(provider: &Provider, user_code: &str, key: &str) -> Result<Found, PageError> {
    let found = find(provider, user_code).await?.ok_or(PageError::Expired)?;
    if browser::tokens_match(key, &found.key) { Ok(found) } else { Err(PageError::Expired) }
}

/// The code form: throttled, then the sign-in form, or the consent form for a signed-in
/// browser.
async fn enter_code(provider: &Provider, headers: &HeaderMap, form: &FormParams, address: &str) -> PageResult {
    let browser_id = check_browser_csrf(headers, form)?;
    let typed = form.get("user_code").ok().flatten().unwrap_or_default();
    let address_key = format!("device-code-address:{address}");
    let budgets = [
        Budget { key: &address_key, limit: MAX_CODES_PER_ADDRESS },
        Budget { key: "device-code", limit: MAX_CODES_OVERALL },
    ];
    let reservation = provider.store.reserve(&budgets, provider.clock.now() + CODE_WINDOW).await?;
    if !reservation.allowed {
        let page =
            code_page(provider, &browser_id, typed, Some(ENGLISH.user_code_throttled), StatusCode::TOO_MANY_REQUESTS)?;
        return Ok(with_retry_after(page, reservation.retry_after));
    }
    let Some(found) = find(provider, typed).await? else {
        return code_page(provider, &browser_id, typed, Some(ENGLISH.wrong_user_code), StatusCode::OK);
    };
    let client = provider.store.client(&found.grant.client_id).await?.ok_or(PageError::Expired)?;
    match browser::current_session(provider, headers).await? {
        Some((session, user)) if offer::session_admitted(provider, &client, &session.subject).await? => {
            consent_page(provider, &found, &session, &user).await
        }
        _ => login_page(provider, &client, &DeviceSignIn { browser_id, found }, "", None, StatusCode::OK).await,
    }
}

/// The login form, posted to `/device`, naming the authorization, with a "Continue with …"
/// link per connector the client allows.
async fn login_page(
    provider: &Provider,
    client: &ClientRecord,
    signing_in: &DeviceSignIn,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> PageResult {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::DEVICE);
    let (csrf_token, user_code) = signing_in.fields();
    let key = signing_in.found.key.as_str();
    let naming = [("device", key), ("user_code", user_code.as_str()), ("csrf_token", &csrf_token)];
    let connectors = offer::buttons(provider, offer::offered(provider, client).await?, &naming);
    let page = LoginPage {
        text: &ENGLISH,
        stylesheet: &stylesheet,
        action: &action,
        client_name: client.client_name.as_deref().unwrap_or(&client.client_id),
        interaction: "",
        csrf_token: &csrf_token,
        username,
        error,
        device: Some(DeviceFields { key, user_code: &user_code }),
        connectors,
        local_users: !client.policy.connectors_only,
        directory: None,
    };
    Ok(pages::render(status, &page))
}

/// The sign-in form: the shared sign-in, then the consent form.
async fn sign_in_step(provider: &Provider, headers: &HeaderMap, form: &FormParams, address: &str) -> PageResult {
    let (signing_in, client) = DeviceSignIn::of_form(provider, headers, form).await?;
    if client.policy.connectors_only {
        return Err(PageError::FormRefused);
    }
    let username = sign_in::username(form);
    let again = |error, status| login_page(provider, &client, &signing_in, &username, Some(error), status);
    match sign_in(provider, headers, form, address, Some(&client.client_id)).await? {
        SignIn::SignedIn { session, user, cookie } => {
            Ok(with_cookies(consent_page(provider, &signing_in.found, &session, &user).await?, [cookie]))
        }
        SignIn::Refused => again(ENGLISH.wrong_credentials, StatusCode::OK).await,
        SignIn::Throttled { retry_after } => {
            Ok(with_retry_after(again(ENGLISH.throttled, StatusCode::TOO_MANY_REQUESTS).await?, retry_after))
        }
    }
}

/// The consent form: the client by name, the code the device shows, the scopes.
pub(super) async fn consent_page(
    provider: &Provider,
    found: &Found,
    session: &Session,
    user: &UserRecord,
) -> PageResult {
    let client = provider.store.client(&found.grant.client_id).await?.ok_or(PageError::Expired)?;
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::DEVICE);
    let descriptions = describe_scopes(&ENGLISH, &client, &found.grant.scope);
    let user_code = device::display_user_code(&found.user_code);
    let page = DeviceConsentPage {
        text: &ENGLISH,
        stylesheet: &stylesheet,
        action: &action,
        client_name: client.client_name.as_deref().unwrap_or(&client.client_id),
        username: &user.username,
        scopes: descriptions.iter().map(|(name, description)| ScopeLine { name, description }).collect(),
        device: DeviceFields { key: &found.key, user_code: &user_code },
        csrf_token: &session.csrf_token,
    };
    Ok(pages::render(StatusCode::OK, &page))
}

/// The consent form's answer, by the signed-in session whose CSRF token it carries: the
/// authorization becomes approved for that session's user, or denied.
async fn decide(provider: &Provider, headers: &HeaderMap, form: &FormParams) -> PageResult {
    let (session, _) = browser::current_session(provider, headers).await?.ok_or(PageError::FormRefused)?;
    browser::check_session_csrf(&session, form)?;
    let found = find_named(provider, form).await?;
    let client = provider.store.client(&found.grant.client_id).await?.ok_or(PageError::Expired)?;
    if !offer::session_admitted(provider, &client, &session.subject).await? {
        return Err(PageError::FormRefused);
    }
    let allow = match form.get("decision").ok().flatten() {
        Some("allow") => true,
        Some("deny") => false,
        _ => return Err(PageError::BadRequest(ENGLISH.choose_allow_or_deny.into())),
    };
    let approval = allow.then(|| Approval {
        subject: session.subject.clone(),
        auth_time: session.auth_time,
        session_id: session.sid.clone(),
    });
    // A poll may change the record (its last poll time) between the read and the swap:
    // then the decision is made again on what the poll left.
    let mut grant = found.grant.clone();
    for attempt in 1..=DECISION_ATTEMPTS {
        let next = device::decide(&grant, approval.clone(), provider.clock.now()).ok_or(PageError::Expired)?;
        if provider.store.swap_device_grant(&found.key, &grant, &next).await? {
            break;
        }
        if attempt == DECISION_ATTEMPTS {
            return Err(PageError::Expired);
        }
        grant = provider.store.device_grant(&found.key).await?.ok_or(PageError::Expired)?;
    }
    let fields = AuditFields::client(&found.grant.client_id).subject(&session.subject);
    let (title, description) = if allow {
        audit::emit(AuditEvent::ConsentGranted, fields);
        (ENGLISH.device_approved_title, ENGLISH.device_approved)
    } else {
        audit::emit(AuditEvent::ConsentDenied, fields);
        (ENGLISH.device_denied_title, ENGLISH.device_denied)
    };
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    Ok(pages::render(StatusCode::OK, &DeviceDonePage { text: &ENGLISH, stylesheet: &stylesheet, title, description }))
}
