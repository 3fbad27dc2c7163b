//! `/account`: the signed-in user's own page. It lists the applications (clients) the user
//! consented to, each with "Revoke access" (the consent goes, so the next authorization
//! asks again, and every grant the user holds for that client is revoked, offline ones
//! too), and the user's live sessions, each with "Sign out" (the session ends as at logout,
//! back- and front-channel logout included).
//!
//! A browser without a session gets the sign-in form here, posted here, and then the page.
//! The sign-in form's CSRF token is bound to the browser cookie; the page's forms carry the
//! session's CSRF token. Every answer to a form is a redirect back to the page (or the
//! signed-out page), so reloading never repeats it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::browser::{self, SESSION_COOKIE};
use super::error::PageError;
use super::extract::BrowserParams;
use super::flow::{PageResult, describe_scopes};
use super::pages::{self, AccountApplication, AccountPage, AccountSession, LoginPage, utc_minute};
use super::respond::{redirect, signed_out, with_cookies, with_retry_after};
use super::session_end::{end_session, session_expires_at};
use super::sign_in::{self, SignIn, sign_in};
use super::state::Provider;
use super::text::ENGLISH;
use super::user_grants::revoke_grant;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::model::{Session, UserRecord};
use crate::protocol::endpoints;
use crate::protocol::form::FormParams;

/// What the sign-in form's CSRF token is bound to (see [`browser::binding_csrf_token`]).
const FORM_PURPOSE: &str = "account";

/// `GET /account`: the page, or the sign-in form.
pub async fn page(State(provider): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    let result = async {
        match browser::current_session(&provider, &headers).await? {
            Some((session, user)) => account_page(&provider, &session, &user).await,
            None => {
                let (browser_id, cookie) = browser::binding(&provider, &headers)?;
                Ok(with_cookies(login_page(&provider, &browser_id, "", None, StatusCode::OK), [cookie]))
            }
        }
    };
    result.await.unwrap_or_else(|error: PageError| error.render(&provider))
}

/// `POST /account`: the sign-in form (`username`), "Revoke access" (`revoke`, a client id)
/// or "Sign out" (`sign_out`, a session's `sid`).
pub async fn submit(
    State(provider): State<Arc<Provider>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    BrowserParams(form): BrowserParams,
) -> Response {
    let field = |name| form.get(name).ok().flatten();
    let result = if field("username").is_some() {
        sign_in_step(&provider, &headers, &form, &browser::client_ip(peer)).await
    } else if let Some(client_id) = field("revoke") {
        revoke_access(&provider, &headers, &form, client_id).await
    } else if let Some(sid) = field("sign_out") {
        sign_out(&provider, &headers, &form, sid).await
    } else {
        Err(PageError::BadRequest(ENGLISH.invalid_request_title.into()))
    };
    result.unwrap_or_else(|error| error.render(&provider))
}

fn login_page(
    provider: &Provider,
    browser_id: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::ACCOUNT);
    let csrf_token = browser::binding_csrf_token(FORM_PURPOSE, browser_id);
    let page = LoginPage {
        text: &ENGLISH,
        stylesheet: &stylesheet,
        action: &action,
        client_name: ENGLISH.account_destination,
        interaction: "",
        csrf_token: &csrf_token,
        username,
        error,
        device: None,
        connectors: Vec::new(),
        local_users: true,
        directory: None,
    };
    pages::render(status, &page)
}

/// Back to the page, by `GET`.
fn back_to_the_page(provider: &Provider) -> PageResult {
    redirect(StatusCode::SEE_OTHER, &provider.config.browser_path(endpoints::ACCOUNT)).ok_or(PageError::BadRedirectUri)
}

/// The sign-in form: the shared sign-in, then the page.
async fn sign_in_step(provider: &Provider, headers: &HeaderMap, form: &FormParams, address: &str) -> PageResult {
    let browser_id = browser::check_binding_csrf(FORM_PURPOSE, headers, form)?;
    let username = sign_in::username(form);
    match sign_in(provider, headers, form, address, None).await? {
        SignIn::SignedIn { cookie, .. } => Ok(with_cookies(back_to_the_page(provider)?, [cookie])),
        SignIn::Refused => {
            Ok(login_page(provider, &browser_id, &username, Some(ENGLISH.wrong_credentials), StatusCode::OK))
        }
        SignIn::Throttled { retry_after } => {
            let status = StatusCode::TOO_MANY_REQUESTS;
            Ok(with_retry_after(
                login_page(provider, &browser_id, &username, Some(ENGLISH.throttled), status),
                retry_after,
            ))
        }
    }
}

/// The signed-in session a form of the page answers for: its CSRF token must match.
async fn form_session(
    provider: &Provider,
    headers: &HeaderMap,
    form: &FormParams,
) -> Result<(Session, Arc<UserRecord>), PageError> {
    let (session, user) = browser::current_session(provider, headers).await?.ok_or(PageError::FormRefused)?;
    browser::check_session_csrf(&session, form)?;
    Ok((session, user))
}

async fn account_page(provider: &Provider, session: &Session, user: &UserRecord) -> PageResult {
    let mut applications = Vec::new();
    for (client_id, scope) in provider.store.user_consents(&session.subject).await? {
        let Some(client) = provider.store.client(&client_id).await? else { continue };
        let access = describe_scopes(&ENGLISH, &client, &scope)
            .into_iter()
            .map(|(_, description)| description.into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        let name = client.client_name.clone().unwrap_or_else(|| client.client_id.clone());
        applications.push(AccountApplication { client_id, name, access });
    }
    let now = provider.clock.now();
    let mut sessions: Vec<AccountSession> = provider
        .store
        .user_sessions(&session.subject)
        .await?
        .into_iter()
        .filter(|listed| listed.expires_at > now)
        .map(|listed| AccountSession {
            current: listed.sid == session.sid,
            signed_in: utc_minute(listed.signed_in_at),
            ends: utc_minute(listed.expires_at),
            sid: listed.sid,
        })
        .collect();
    if !sessions.iter().any(|listed| listed.current) {
        // Written before the index knew it (or the index lost it): this browser's session
        // is listed all the same, so it can always be signed out here.
        let current = AccountSession {
            sid: session.sid.clone(),
            current: true,
            signed_in: utc_minute(session.auth_time),
            ends: utc_minute(session_expires_at(provider, session)),
        };
        sessions.push(current);
    }
    sessions.sort_by_key(|listed| !listed.current);
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::ACCOUNT);
    let page = AccountPage {
        text: &ENGLISH,
        stylesheet: &stylesheet,
        action: &action,
        csrf_token: &session.csrf_token,
        username: &user.username,
        applications,
        sessions,
    };
    Ok(pages::render(StatusCode::OK, &page))
}

/// "Revoke access": forgets the consent and revokes every grant the user holds for the
/// client, `offline_access` ones too: the user asked that this application lose access.
async fn revoke_access(provider: &Provider, headers: &HeaderMap, form: &FormParams, client_id: &str) -> PageResult {
    let (session, _) = form_session(provider, headers, form).await?;
    provider.store.delete_consent(&session.subject, client_id).await?;
    for grant in provider.store.user_grants(&session.subject).await? {
        if grant.client_id == client_id {
            revoke_grant(provider, &grant.grant_id).await?;
        }
    }
    audit::emit(AuditEvent::ConsentRevoked, AuditFields::client(client_id).subject(&session.subject));
    back_to_the_page(provider)
}

/// "Sign out": ends one of the user's own sessions (see [`end_session`]), then frames the
/// clients' front-channel logout URIs, if any; after this browser's own session, the
/// signed-out page, else back to the page.
async fn sign_out(provider: &Provider, headers: &HeaderMap, form: &FormParams, sid: &str) -> PageResult {
    let (current, _) = form_session(provider, headers, form).await?;
    let target = if current.sid == sid {
        current.clone()
    } else {
        let listed = provider.store.user_sessions(&current.subject).await?;
        let listed = listed.into_iter().find(|listed| listed.sid == sid);
        let session = match listed {
            Some(listed) => provider.store.session(&listed.session_id).await?,
            None => None,
        };
        // Only a session of this very user: another user's `sid` is never ended here.
        session.filter(|session| session.subject == current.subject).ok_or(PageError::Expired)?
    };
    let frames = end_session(provider, &target).await?;
    audit::emit(AuditEvent::Logout, AuditFields::default().subject(&target.subject));
    if target.sid != current.sid {
        if frames.is_empty() {
            return back_to_the_page(provider);
        }
        let account = provider.config.browser_path(endpoints::ACCOUNT);
        return signed_out(provider, &ENGLISH, &frames, Some(&account)).ok_or(PageError::BadRedirectUri);
    }
    let page = signed_out(provider, &ENGLISH, &frames, None).ok_or(PageError::BadRedirectUri)?;
    Ok(with_cookies(page, [browser::clear_cookie(provider, SESSION_COOKIE)]))
}
