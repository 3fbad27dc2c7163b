//! RP-Initiated Logout 1.0 (`end_session_endpoint`): ends the SSO session everywhere and
//! sends the browser to a registered `post_logout_redirect_uri` — never anywhere else.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::browser::{self, SESSION_COOKIE};
use super::error::PageError;
use super::extract::BrowserParams;
use super::flow::PageResult;
use super::pages::{self, LogoutPage, Text};
use super::respond::{message_page, redirect, signed_out, with_cookies};
use super::session_end;
use super::state::Provider;
use super::text::ENGLISH;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::model::Session;
use crate::protocol::endpoints;
use crate::protocol::form::FormParams;
use crate::protocol::frontchannel_logout::LogoutFrames;
use crate::protocol::id_token::IdTokenClaims;
use crate::protocol::redirect::{self as redirects, append_query};

/// `GET` or `POST /logout` (RP-Initiated Logout §2), and the confirmation form's `POST`.
pub async fn logout(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    BrowserParams(params): BrowserParams,
) -> Response {
    handle(&provider, &headers, &params).await.unwrap_or_else(|error| error.render(&provider))
}

/// The validated logout request.
struct LogoutRequest {
    hint: Option<IdTokenClaims>,
    client_id: Option<String>,
    client_name: Option<String>,
    /// Set only when registered for the client, so it is always safe to redirect to.
    redirect_uri: Option<String>,
    /// Whether the provider vouches for the client's redirect URIs, so that the browser may
    /// be sent there although the user decided nothing (RFC 9700 §4.11.2).
    vouched: bool,
    state: Option<String>,
    ui_locales: Option<String>,
}

async fn handle(provider: &Provider, headers: &HeaderMap, params: &FormParams) -> PageResult {
    let request = validate(provider, params).await?;
    let session = browser::current_session(provider, headers).await?.map(|(s, _)| s);
    let Some(session) = session else {
        // RP-Initiated Logout §3: nothing to end and nobody asked, so the browser goes only
        // to a redirect URI the provider vouches for; a registered client's gets the
        // signed-out page instead, hint or not (any registrant holds ID tokens of its own).
        return finish(provider, &request, request.vouched, &LogoutFrames::default());
    };
    match params.get("decision").ok().flatten() {
        Some("logout") => {
            let submitted = params.get("csrf_token").ok().flatten().unwrap_or("");
            if !browser::tokens_match(submitted, &session.csrf_token) {
                return Err(PageError::FormRefused);
            }
            end_session(provider, &session, &request).await
        }
        Some(_) => Ok(message_page(provider, StatusCode::OK, ENGLISH.still_signed_in_title, ENGLISH.close_page)),
        None if hint_matches(request.hint.as_ref(), &session) => end_session(provider, &session, &request).await,
        None => Ok(confirmation(provider, &session, &request)),
    }
}

/// RP-Initiated Logout §2–§3: the hint must be one of our ID tokens (expired is fine); a
/// `client_id` must agree with it; the redirect URI counts only when registered exactly.
async fn validate(provider: &Provider, params: &FormParams) -> Result<LogoutRequest, PageError> {
    let field = |name: &str| {
        params.get(name).map(|v| v.map(str::to_owned)).map_err(|e| PageError::BadLogoutRequest(e.description))
    };
    let hint = match field("id_token_hint")? {
        Some(token) => Some(
            provider
                .keys
                .load()
                .verify_hint::<IdTokenClaims>(&token, &provider.config.issuer)
                .map_err(|_| PageError::BadLogoutRequest(ENGLISH.logout_bad_hint.into()))?,
        ),
        None => None,
    };
    let hinted_client = hint.as_ref().and_then(|h| h.aud.0.first().cloned());
    let client_id = match (field("client_id")?, hinted_client) {
        (Some(given), Some(hinted)) if given != hinted => {
            return Err(PageError::BadLogoutRequest(ENGLISH.logout_client_mismatch.into()));
        }
        (given, hinted) => given.or(hinted),
    };
    let client = match &client_id {
        Some(id) => provider.store.client(id).await?,
        None => None,
    };
    let redirect_uri = field("post_logout_redirect_uri")?
        .filter(|uri| client.as_ref().is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri)));
    Ok(LogoutRequest {
        vouched: client.as_deref().is_some_and(redirects::vouches_for_redirect_uris),
        hint,
        client_name: client.as_ref().map(|c| c.client_name.clone().unwrap_or_else(|| c.client_id.clone())),
        client_id: client.map(|c| c.client_id.clone()),
        redirect_uri,
        state: field("state")?,
        ui_locales: field("ui_locales")?,
    })
}

/// A hint for this very session's user lets the logout happen without asking.
fn hint_matches(hint: Option<&IdTokenClaims>, session: &Session) -> bool {
    hint.is_some_and(|h| h.sub == session.subject && h.sid.as_deref().is_none_or(|sid| sid == session.sid))
}

async fn end_session(provider: &Provider, session: &Session, request: &LogoutRequest) -> PageResult {
    let frames = session_end::end_session(provider, session).await?;
    let fields = AuditFields { client_id: request.client_id.as_deref(), ..AuditFields::default() };
    audit::emit(AuditEvent::Logout, fields.subject(&session.subject));
    let cookie = browser::clear_cookie(provider, SESSION_COOKIE);
    Ok(with_cookies(finish(provider, request, true, &frames)?, [cookie]))
}

/// Back to the registered redirect URI with `state` when `follow` allows it, else the
/// signed-out page; by way of a page framing the clients' front-channel logout URIs when
/// there are `frames` (Front-Channel Logout 1.0 §3).
fn finish(provider: &Provider, request: &LogoutRequest, follow: bool, frames: &LogoutFrames) -> PageResult {
    let params: Vec<(&str, &str)> = request.state.as_deref().map(|s| ("state", s)).into_iter().collect();
    let continue_to = request.redirect_uri.as_ref().filter(|_| follow).map(|uri| append_query(uri, &params));
    match continue_to {
        Some(uri) if frames.is_empty() => redirect(StatusCode::SEE_OTHER, &uri).ok_or(PageError::BadRedirectUri),
        continue_to => {
            let text = Text::for_ui_locales(request.ui_locales.as_deref());
            signed_out(provider, text, frames, continue_to.as_deref()).ok_or(PageError::BadRedirectUri)
        }
    }
}

fn confirmation(provider: &Provider, session: &Session, request: &LogoutRequest) -> Response {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::LOGOUT);
    let page = LogoutPage {
        text: Text::for_ui_locales(request.ui_locales.as_deref()),
        stylesheet: &stylesheet,
        action: &action,
        csrf_token: &session.csrf_token,
        client_id: request.client_id.as_deref(),
        post_logout_redirect_uri: request.redirect_uri.as_deref(),
        state: request.state.as_deref(),
        client_name: request.client_name.as_deref(),
    };
    match &request.redirect_uri {
        Some(uri) => pages::render_with_form_target(StatusCode::OK, &page, uri),
        None => pages::render(StatusCode::OK, &page),
    }
}
