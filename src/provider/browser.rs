//! What a browser carries: the SSO session cookie and the browser-binding cookie that ties
//! an interaction (and so its CSRF token) to the browser that started it.

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq;

use super::error::PageError;
use super::state::Provider;
use crate::model::{Session, UserRecord};
use crate::protocol::form::FormParams;
use crate::secrets;
use crate::store::StoreError;

/// The SSO session cookie; its value is the session's secret id.
pub const SESSION_COOKIE: &str = "portcullis_session";
/// The browser-binding cookie; a sealed interaction names the browser it belongs to.
pub const BROWSER_COOKIE: &str = "portcullis_browser";

/// The value of a request cookie.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, scoped to the issuer's path, and
/// `Secure` whenever the issuer is https. `max_age` of `None` makes a browser-session cookie.
pub fn set_cookie(provider: &Provider, name: &str, value: &str, max_age: Option<u64>) -> Option<HeaderValue> {
    let mut builder = Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(provider.config.secure_cookies())
        .path(provider.config.base_path().to_owned());
    if let Some(seconds) = max_age {
        builder = builder.max_age(cookie::time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX)));
    }
    HeaderValue::from_str(&builder.build().to_string()).ok()
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(provider: &Provider, name: &str) -> Option<HeaderValue> {
    set_cookie(provider, name, "", Some(0))
}

/// The live session of this browser and its user, if any: the cookie names a session that
/// has not ended, whose user still exists and is not disabled.
pub async fn current_session(
    provider: &Provider,
    headers: &HeaderMap,
) -> Result<Option<(Session, std::sync::Arc<UserRecord>)>, StoreError> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let Some(session) = provider.store.session(&id).await? else { return Ok(None) };
    match provider.user_by_subject(&session.subject).await? {
        Some(user) if !user.disabled => Ok(Some((session, user))),
        _ => Ok(None),
    }
}

/// The browser-binding cookie (a new one when the browser has none, with its `Set-Cookie`).
pub fn binding(provider: &Provider, headers: &HeaderMap) -> Result<(String, Option<HeaderValue>), PageError> {
    match cookie(headers, BROWSER_COOKIE) {
        Some(id) => Ok((id, None)),
        None => {
            let id = secrets::random_token(32)?;
            let cookie = set_cookie(provider, BROWSER_COOKIE, &id, None);
            Ok((id, cookie))
        }
    }
}

/// The CSRF token of a form shown before anyone is signed in (the device code and sign-in
/// forms, the account page's sign-in form): a digest of the browser cookie and the form's
/// `purpose`, which a page of another site can neither read nor set.
pub fn binding_csrf_token(purpose: &str, browser_id: &str) -> String {
    secrets::token_digest(&format!("{purpose}-form:{browser_id}"))
}

/// The form's CSRF token matches this browser's cookie for `purpose`; the browser's id.
pub fn check_binding_csrf(purpose: &str, headers: &HeaderMap, form: &FormParams) -> Result<String, PageError> {
    let browser_id = cookie(headers, BROWSER_COOKIE).ok_or(PageError::FormRefused)?;
    let submitted = form.get("csrf_token").ok().flatten().ok_or(PageError::FormRefused)?;
    if tokens_match(submitted, &binding_csrf_token(purpose, &browser_id)) {
        Ok(browser_id)
    } else {
        Err(PageError::FormRefused)
    }
}

/// A form of the signed-in `session` carries its CSRF token.
pub fn check_session_csrf(session: &Session, form: &FormParams) -> Result<(), PageError> {
    let submitted = form.get("csrf_token").ok().flatten().unwrap_or_default();
    if tokens_match(submitted, &session.csrf_token) { Ok(()) } else { Err(PageError::FormRefused) }
}

/// Constant-time comparison of a submitted token with the expected one.
pub fn tokens_match(submitted: &str, expected: &str) -> bool {
    bool::from(submitted.as_bytes().ct_eq(expected.as_bytes()))
}

/// The client address the throttles count by (the TCP peer).
pub fn client_ip(peer: SocketAddr) -> String {
    peer.ip().to_string()
}
