//! The authorization endpoint (OIDC Core §3.1.2): ordered stages, then the decision
//! between answering at once, asking the user to log in, or asking for consent.

use std::sync::Arc;

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::browser::{self, BROWSER_COOKIE};
use super::pages::{self, ConsentPage, LoginPage, ScopeLine, Text};
use super::respond::{Page, error_page, redirect, unavailable, with_cookies};
use super::text::ENGLISH;
use super::{CODE_TTL, INTERACTION_TTL, Provider, form};
use crate::model::{AuthorizationCode, ClientRecord, Grant, Interaction, Session, UserRecord};
use crate::protocol::authorize::{self, AuthorizationRequest};
use crate::protocol::form::FormParams;
use crate::protocol::id_token::IdTokenClaims;
use crate::protocol::{ErrorCode, OAuthError, endpoints, redirect as redirects};
use crate::secrets;
use crate::store::StoreError;

/// A browser endpoint's failure is already a response (an error page or a redirect).
pub type PageResult = Result<Response, Page>;

/// Logs a store failure and shows the generic "unavailable" page.
pub fn store_failed(provider: &Provider, error: StoreError) -> Response {
    tracing::error!(%error, "store operation failed during a browser request");
    unavailable(provider)
}

/// `GET /authorize` (parameters in the query) and `POST /authorize` (in a form body),
/// OIDC Core §3.1.2.1.
pub async fn authorize(State(provider): State<Arc<Provider>>, RawQuery(query): RawQuery, request: Request) -> Response {
    let headers = request.headers().clone();
    let params = if request.method() == Method::POST {
        form::read_form(request).await
    } else {
        FormParams::parse(query.unwrap_or_default().as_bytes())
    };
    match params {
        Ok(params) => handle(&provider, &headers, &params).await.unwrap_or_else(IntoResponse::into_response),
        Err(error) => error_page(&provider, StatusCode::BAD_REQUEST, ENGLISH.invalid_request_title, &error.description),
    }
}

async fn handle(provider: &Provider, headers: &HeaderMap, params: &FormParams) -> PageResult {
    let bad_request =
        |e: OAuthError| error_page(provider, StatusCode::BAD_REQUEST, ENGLISH.invalid_request_title, &e.description);
    let client_id = authorize::client_id(params).map_err(bad_request)?;
    let client = provider.store.client(client_id).await.map_err(|e| store_failed(provider, e))?.ok_or_else(|| {
        error_page(provider, StatusCode::BAD_REQUEST, ENGLISH.unknown_client_title, ENGLISH.unknown_client)
    })?;
    let redirect_uri = authorize::redirect_uri(params, &client).map_err(bad_request)?;
    let request = authorize::validate(params, &client, redirect_uri)
        .map_err(|e| redirect(provider, StatusCode::FOUND, &e.to_redirect(&provider.config.issuer)))?;
    decide(provider, headers, &client, request).await
}

/// A new grant outlives its code by this much, so an exchange at the code's last second
/// still finds it.
const GRANT_MARGIN: u64 = 10;

/// Redirects an error to the client's verified redirect URI (RFC 6749 §4.1.2.1, RFC 9207).
pub fn redirect_error(
    provider: &Provider,
    status: StatusCode,
    request: &AuthorizationRequest,
    error: &OAuthError,
) -> Response {
    let location =
        redirects::error_redirect(&request.redirect_uri, error, request.state.as_deref(), &provider.config.issuer);
    redirect(provider, status, &location)
}

/// OIDC Core §3.1.2.3–3.1.2.6: with the request valid, answer now, or ask the user.
async fn decide(
    provider: &Provider,
    headers: &HeaderMap,
    client: &ClientRecord,
    request: AuthorizationRequest,
) -> PageResult {
    let now = provider.clock.now();
    let session = browser::current_session(provider, headers).await.map_err(|_| unavailable(provider))?;
    let hinted_subject = match request.id_token_hint.as_deref() {
        Some(hint) => Some(
            hinted_subject(provider, hint).map_err(|e| redirect_error(provider, StatusCode::FOUND, &request, &e))?,
        ),
        None => None,
    };
    let session = session.filter(|(s, _)| hinted_subject.as_deref().is_none_or(|hinted| hinted == s.subject));
    let auth_time = session.as_ref().map(|(s, _)| s.auth_time);
    let needs_login = authorize::needs_login(&request.prompt, request.max_age, auth_time, now);
    let needs_consent = match &session {
        Some((s, _)) => needs_consent(provider, client, &request, &s.subject).await?,
        None => !client.skip_consent,
    };
    if request.prompt.none
        && let Some(error) = authorize::interaction_error_for_prompt_none(needs_login, needs_consent)
    {
        return Err(redirect_error(provider, StatusCode::FOUND, &request, &error).into());
    }
    if let Some((session, _)) = session.as_ref().filter(|_| !needs_login && !needs_consent) {
        return issue_code(provider, StatusCode::FOUND, &request, session, None).await;
    }
    let (browser_id, new_browser) = match browser::cookie(headers, BROWSER_COOKIE) {
        Some(id) if !id.is_empty() => (id, false),
        _ => (random(provider, 32)?, true),
    };
    let logged_in = session.filter(|_| !needs_login);
    let interaction = Interaction {
        id: random(provider, 32)?,
        browser_id: browser_id.clone(),
        csrf_token: random(provider, 32)?,
        subject: logged_in.as_ref().map(|(s, _)| s.subject.clone()),
        auth_time: logged_in.as_ref().map(|(s, _)| s.auth_time),
        session_id: logged_in.as_ref().map(|(s, _)| s.id.clone()),
        request,
    };
    provider.store.put_interaction(&interaction, now + INTERACTION_TTL).await.map_err(|e| store_failed(provider, e))?;
    let page = match &logged_in {
        Some((_, user)) => consent_page(provider, client, &interaction, user),
        None => login_page(
            provider,
            client,
            &interaction,
            interaction.request.login_hint.as_deref().unwrap_or(""),
            None,
            StatusCode::OK,
        ),
    };
    let cookie = new_browser.then(|| browser::set_cookie(provider, BROWSER_COOKIE, &browser_id, None)).flatten();
    Ok(with_cookies(page, [cookie]))
}

/// OIDC Core §3.1.2.1 `id_token_hint`: an ID token we issued (possibly expired) naming the
/// user the client expects; a session of anyone else does not count.
fn hinted_subject(provider: &Provider, hint: &str) -> Result<String, OAuthError> {
    provider
        .keys
        .load()
        .verify_hint::<IdTokenClaims>(hint, &provider.config.issuer)
        .map(|claims| claims.sub)
        .map_err(|_| OAuthError::invalid_request("id_token_hint is not an ID token issued by this provider"))
}

/// Whether the user must be asked: not for a client that skips consent; always for
/// `prompt=consent`; otherwise when the remembered consent does not cover the scope.
pub async fn needs_consent(
    provider: &Provider,
    client: &ClientRecord,
    request: &AuthorizationRequest,
    subject: &str,
) -> Result<bool, Page> {
    if client.skip_consent {
        return Ok(false);
    }
    if request.prompt.consent {
        return Ok(true);
    }
    let remembered = provider.store.consent(subject, &client.client_id).await.map_err(|e| store_failed(provider, e))?;
    Ok(!remembered.is_some_and(|scope| request.scope.is_subset(&scope)))
}

pub fn random(provider: &Provider, bytes: usize) -> Result<String, Page> {
    secrets::random_token(bytes).map_err(|error| {
        tracing::error!(%error, "random generation failed");
        Page::from(error_page(
            provider,
            StatusCode::INTERNAL_SERVER_ERROR,
            ENGLISH.server_error_title,
            ENGLISH.server_error,
        ))
    })
}

/// The sign-in form of an interaction.
pub fn login_page(
    provider: &Provider,
    client: &ClientRecord,
    interaction: &Interaction,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::LOGIN);
    let page = LoginPage {
        text: Text::for_ui_locales(interaction.request.ui_locales.as_deref()),
        stylesheet: &stylesheet,
        action: &action,
        client_name: client.client_name.as_deref().unwrap_or(&client.client_id),
        interaction: &interaction.id,
        csrf_token: &interaction.csrf_token,
        username,
        error,
    };
    pages::render_with_form_target(status, &page, &interaction.request.redirect_uri)
}

/// The consent form of an interaction, listing the scopes in plain words.
pub fn consent_page(
    provider: &Provider,
    client: &ClientRecord,
    interaction: &Interaction,
    user: &UserRecord,
) -> Response {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::CONSENT);
    let text = Text::for_ui_locales(interaction.request.ui_locales.as_deref());
    let mut descriptions: Vec<(&str, _)> =
        interaction.request.scope.iter().map(|scope| (scope, text.describe_scope(scope))).collect();
    // Signing in comes first; the rest stay in their stable order.
    descriptions.sort_by_key(|(scope, _)| *scope != "openid");
    let return_to = pages::destination(&interaction.request.redirect_uri);
    let page = ConsentPage {
        text,
        stylesheet: &stylesheet,
        action: &action,
        client_name: client.client_name.as_deref().unwrap_or(&client.client_id),
        username: &user.username,
        scopes: descriptions.iter().map(|(name, description)| ScopeLine { name, description }).collect(),
        return_to: &return_to,
        interaction: &interaction.id,
        csrf_token: &interaction.csrf_token,
    };
    pages::render_with_form_target(StatusCode::OK, &page, &interaction.request.redirect_uri)
}

/// OIDC Core §3.1.2.5: issues a single-use code bound to the client, redirect URI, PKCE
/// challenge, nonce, scope and authentication, and sends the browser back with it.
pub async fn issue_code(
    provider: &Provider,
    status: StatusCode,
    request: &AuthorizationRequest,
    session: &Session,
    finished: Option<&str>,
) -> PageResult {
    let code = random(provider, 32)?;
    let record = AuthorizationCode {
        grant_id: random(provider, 16)?,
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        subject: session.subject.clone(),
        auth_time: session.auth_time,
        session_id: session.sid.clone(),
    };
    let now = provider.clock.now();
    let store_error = |e| store_failed(provider, e);
    // The grant exists from the start, so a replayed code can always revoke it, however
    // the replay races the first exchange (which only updates a grant that still exists).
    let grant = Grant {
        id: record.grant_id.clone(),
        client_id: record.client_id.clone(),
        subject: record.subject.clone(),
        scope: record.scope.clone(),
        auth_time: record.auth_time,
        session_id: record.session_id.clone(),
        expires_at: now + CODE_TTL + GRANT_MARGIN,
        access_tokens: Vec::new(),
    };
    provider.store.put_grant(&grant).await.map_err(store_error)?;
    provider.store.put_code(&secrets::token_digest(&code), &record, now + CODE_TTL).await.map_err(store_error)?;
    if let Some(interaction) = finished {
        provider.store.delete_interaction(interaction).await.map_err(store_error)?;
    }
    let location =
        redirects::code_redirect(&request.redirect_uri, &code, request.state.as_deref(), &provider.config.issuer);
    Ok(redirect(provider, status, &location))
}

/// `access_denied` back to the client (RFC 6749 §4.1.2.1).
pub fn access_denied() -> OAuthError {
    OAuthError::new(ErrorCode::AccessDenied, "the user denied the request")
}
