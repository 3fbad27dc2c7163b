//! The authorization endpoint (OIDC Core §3.1.2): ordered stages, then the decision
//! between answering at once, asking the user to log in, or asking for consent.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::browser::{self, BROWSER_COOKIE};
use super::error::PageError;
use super::extract::BrowserParams;
use super::federation::{self, Origin};
use super::flow::{Interaction, PageResult, consent_page, issue_code, login_page_offering, needs_consent};
use super::offer;
use super::respond::with_cookies;
use super::state::Provider;
use crate::model::ClientRecord;
use crate::protocol::form::FormParams;
use crate::protocol::id_token::IdTokenClaims;
use crate::protocol::pending::PendingRequest;
use crate::protocol::{authorize, redirect as redirects};
use crate::secrets;
use crate::vocabulary::AuthorizationRequest;
use crate::vocabulary::OAuthError;

/// The authorization-request parameter naming the connector to sign in through, skipping
/// the login page (as Dex's `connector_id`); one the client does not offer is ignored.
const CONNECTOR_HINT: &str = "connector";

/// `GET /authorize` (parameters in the query) and `POST /authorize` (in a form body),
/// OIDC Core §3.1.2.1.
pub async fn authorize(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    BrowserParams(params): BrowserParams,
) -> Response {
    handle(&provider, &headers, &params).await.unwrap_or_else(|error| error.render(&provider))
}

async fn handle(provider: &Provider, headers: &HeaderMap, params: &FormParams) -> PageResult {
    let bad_request = |e: OAuthError| PageError::BadRequest(e.description);
    let client_id = authorize::client_id(params).map_err(bad_request)?;
    let client = provider.store.client(client_id).await?.ok_or(PageError::UnknownClient)?;
    let redirect_uri = authorize::redirect_uri(params, &client).map_err(bad_request)?;
    let answer = match authorize::validate(params, &client, redirect_uri) {
        Ok(request) => {
            let connector_hint = params.get(CONNECTOR_HINT).ok().flatten();
            decide(provider, headers, &client, request, connector_hint).await
        }
        Err(error) => Err(PageError::Redirect(StatusCode::FOUND, Box::new(error))),
    };
    // Nothing here follows an action of the user's, so an error goes back only to a redirect
    // URI the provider vouches for (RFC 9700 §4.11.2).
    answer.map_err(|error| match error {
        PageError::Redirect(_, refused) if !redirects::vouches_for_redirect_uris(&client) => {
            PageError::BadRequest(refused.error.description)
        }
        other => other,
    })
}

/// OIDC Core §3.1.2.3–3.1.2.6: with the request valid, answer now, or ask the user.
async fn decide(
    provider: &Provider,
    headers: &HeaderMap,
    client: &ClientRecord,
    request: AuthorizationRequest,
    connector_hint: Option<&str>,
) -> PageResult {
    let now = provider.clock.now();
    let session = browser::current_session(provider, headers).await?;
    let hinted_subject = match request.id_token_hint.as_deref() {
        Some(hint) => {
            Some(hinted_subject(provider, hint).map_err(|e| PageError::redirect(StatusCode::FOUND, &request, e))?)
        }
        None => None,
    };
    let session = session.filter(|(s, _)| hinted_subject.as_deref().is_none_or(|hinted| hinted == s.subject));
    let session = match session {
        Some((s, user)) if offer::session_admitted(provider, client, &s.subject).await? => Some((s, user)),
        _ => None,
    };
    let auth_time = session.as_ref().map(|(s, _)| s.auth_time);
    let needs_login = authorize::needs_login(&request.prompt, request.max_age, auth_time, now);
    let needs_consent = match &session {
        Some((s, _)) => needs_consent(provider, client, &request, &s.subject).await?,
        None => !client.skip_consent,
    };
    if request.prompt.none
        && let Some(error) = authorize::interaction_error_for_prompt_none(needs_login, needs_consent)
    {
        return Err(PageError::redirect(StatusCode::FOUND, &request, error));
    }
    if let Some((session, _)) = session.as_ref().filter(|_| !needs_login && !needs_consent) {
        return issue_code(provider, StatusCode::FOUND, &request, session).await;
    }
    let (browser_id, new_browser) = match browser::cookie(headers, BROWSER_COOKIE) {
        Some(id) if !id.is_empty() => (id, false),
        _ => (secrets::random_token(32)?, true),
    };
    let logged_in = session.filter(|_| !needs_login);
    // Carried by the browser, not stored: a stranger's request leaves nothing behind.
    let pending = PendingRequest {
        browser: browser_id.clone(),
        csrf_token: secrets::random_token(32)?,
        issued_at: now,
        sid: logged_in.as_ref().map(|(s, _)| s.sid.clone()),
        request: AuthorizationRequest { id_token_hint: None, ..request },
    };
    let interaction = Interaction::seal(provider, pending).await?;
    let page = match &logged_in {
        Some((_, user)) => consent_page(provider, client, &interaction, user),
        None => {
            let offered = offer::offered(provider, client).await?;
            let login_hint = interaction.request().login_hint.as_deref();
            match offer::hinted(&offered, connector_hint, login_hint).cloned() {
                Some(connector) => {
                    let origin = Origin::Authorization(interaction);
                    federation::send_upstream(provider, client, &origin, &connector).await?
                }
                None => {
                    let username = login_hint.unwrap_or("");
                    login_page_offering(provider, client, &interaction, offered, username, None, StatusCode::OK)
                }
            }
        }
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
