//! The interaction flow shared by the authorization endpoint and its login and consent
//! forms: the pending request each page carries sealed (see [`crate::protocol::pending`]),
//! the form's binding to its browser, the consent check and the issuing of the code that
//! ends it. Nothing of an interaction is stored until the user has authenticated.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::browser::{self, BROWSER_COOKIE};
use super::error::PageError;
use super::offer;
use super::pages::{self, ConsentPage, LoginPage, ScopeLine, Text};
use super::respond::authorization_response;
use super::session_end::session_expires_at;
use super::state::{CODE_TTL, Provider};
use crate::model::{AuthorizationCode, ClientRecord, ConnectorRecord, Grant, Session, UserRecord};
use crate::protocol::form::FormParams;
use crate::protocol::pending::PendingRequest;
use crate::protocol::userinfo::claims_beyond_scope;
use crate::protocol::{endpoints, redirect as redirects};
use crate::secrets;
use crate::vocabulary::{AuthorizationRequest, Scope};

/// A browser endpoint's answer: a page or a redirect, or the error to render.
pub type PageResult = Result<Response, PageError>;

/// A new grant outlives its code by this much, so an exchange at the code's last second
/// still finds it.
const GRANT_MARGIN: u64 = 10;

/// A pending request with its sealed form, as a page carries it (the form field
/// `interaction`).
pub struct Interaction {
    pub pending: PendingRequest,
    pub sealed: String,
}

impl Interaction {
    /// Seals `pending` for the next page.
    pub async fn seal(provider: &Provider, pending: PendingRequest) -> Result<Self, PageError> {
        let sealed = provider.sealer.seal(provider.store.as_ref(), provider.clock.now(), &pending).await?;
        Ok(Self { pending, sealed })
    }

    /// The interaction a form carries, if this browser started it and the form carries its
    /// CSRF token (both compared in constant time), with its client, which must still have
    /// the request's redirect URI.
    pub async fn of_form(
        provider: &Provider,
        headers: &HeaderMap,
        form: &FormParams,
    ) -> Result<(Self, Arc<ClientRecord>), PageError> {
        let field = |name| form.get(name).ok().flatten();
        let (Some(sealed), Some(csrf_token)) = (field("interaction"), field("csrf_token")) else {
            return Err(PageError::FormRefused);
        };
        let browser = browser::cookie(headers, BROWSER_COOKIE);
        let now = provider.clock.now();
        let pending: PendingRequest =
            provider.sealer.open(provider.store.as_ref(), now, sealed, browser.as_deref(), csrf_token).await?;
        let client = provider.store.client(&pending.request.client_id).await?.ok_or(PageError::Expired)?;
        if !redirects::is_registered(&client, &pending.request.redirect_uri) {
            return Err(PageError::Expired);
        }
        Ok((Self { pending, sealed: sealed.to_owned() }, client))
    }

    pub fn request(&self) -> &AuthorizationRequest {
        &self.pending.request
    }
}

/// Whether the user must be asked: not for a client that skips consent; always for
/// `prompt=consent` and for claims requested beyond the scope (OIDC Core §5.5), which
/// consent is not remembered for; otherwise when the remembered consent does not cover the
/// scope.
pub async fn needs_consent(
    provider: &Provider,
    client: &ClientRecord,
    request: &AuthorizationRequest,
    subject: &str,
) -> Result<bool, PageError> {
    if client.skip_consent {
        return Ok(false);
    }
    if request.prompt.consent || !claims_beyond_scope(client, &request.scope, &request.claims).is_empty() {
        return Ok(true);
    }
    let remembered = provider.store.consent(subject, &client.client_id).await?;
    Ok(!remembered.is_some_and(|scope| request.scope.is_subset(&scope)))
}

/// The sign-in form of an interaction, with a "Continue with …" link per connector the
/// client allows.
pub async fn login_page(
    provider: &Provider,
    client: &ClientRecord,
    interaction: &Interaction,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> PageResult {
    let offered = offer::offered(provider, client).await?;
    Ok(login_page_offering(provider, client, interaction, offered, username, error, status))
}

/// [`login_page`] with the connectors the client offers already read.
pub fn login_page_offering(
    provider: &Provider,
    client: &ClientRecord,
    interaction: &Interaction,
    offered: Vec<ConnectorRecord>,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let stylesheet = provider.config.browser_path(endpoints::STYLESHEET);
    let action = provider.config.browser_path(endpoints::LOGIN);
    let naming = [("interaction", interaction.sealed.as_str()), ("csrf_token", &interaction.pending.csrf_token)];
    let connectors = offer::buttons(provider, offered, &naming);
    let page = LoginPage {
        text: Text::for_ui_locales(interaction.request().ui_locales.as_deref()),
        stylesheet: &stylesheet,
        action: &action,
        client_name: client.client_name.as_deref().unwrap_or(&client.client_id),
        interaction: &interaction.sealed,
        csrf_token: &interaction.pending.csrf_token,
        username,
        error,
        device: None,
        connectors,
        local_users: !client.policy.connectors_only,
        directory: None,
    };
    pages::render_with_form_target(status, &page, &interaction.request().redirect_uri)
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
    let request = interaction.request();
    let text = Text::for_ui_locales(request.ui_locales.as_deref());
    let mut descriptions = describe_scopes(text, client, &request.scope);
    let extra_claims = claims_beyond_scope(client, &request.scope, &request.claims);
    if !extra_claims.is_empty() {
        let plain: Vec<String> = extra_claims.iter().map(|name| name.replace('_', " ")).collect();
        descriptions.push(("claims", text.describe_claims(&plain).into()));
    }
    let return_to = pages::destination(&request.redirect_uri);
    let page = ConsentPage {
        text,
        stylesheet: &stylesheet,
        action: &action,
        client_name: client.client_name.as_deref().unwrap_or(&client.client_id),
        username: &user.username,
        scopes: descriptions.iter().map(|(name, description)| ScopeLine { name, description }).collect(),
        return_to: &return_to,
        interaction: &interaction.sealed,
        csrf_token: &interaction.pending.csrf_token,
    };
    pages::render_with_form_target(StatusCode::OK, &page, &request.redirect_uri)
}

/// Each scope of `scope` in plain words (a custom scope by the claims it releases to
/// `client`), signing in first and the rest in their stable order.
pub fn describe_scopes<'a>(text: &Text, client: &'a ClientRecord, scope: &'a Scope) -> Vec<(&'a str, Cow<'a, str>)> {
    let describe = |scope| match client.policy.scope_claims.get(scope) {
        Some(names) if !names.is_empty() => text.describe_claims(names).into(),
        _ => text.describe_scope(scope),
    };
    let mut descriptions: Vec<(&str, _)> = scope.iter().map(|scope| (scope, describe(scope))).collect();
    descriptions.sort_by_key(|(scope, _)| *scope != "openid");
    descriptions
}

/// OIDC Core §3.1.2.5: issues a single-use code bound to the client, redirect URI, PKCE
/// challenge, nonce, scope and authentication, and sends the browser back with it.
pub async fn issue_code(
    provider: &Provider,
    status: StatusCode,
    request: &AuthorizationRequest,
    session: &Session,
) -> PageResult {
    let code = secrets::random_token(32)?;
    let record = AuthorizationCode {
        grant_id: secrets::random_token(16)?,
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        subject: session.subject.clone(),
        auth_time: session.auth_time,
        session_id: session.sid.clone(),
        claims: request.claims.clone(),
    };
    let now = provider.clock.now();
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
        claims: record.claims.clone(),
    };
    provider.store.put_grant(&grant).await?;
    // Linked to its session, so that ending the session reaches it; a session ended since
    // it was read issues nothing more.
    let expires_at = session_expires_at(provider, session);
    if !provider.store.link_session_grant(&session.sid, &grant.id, &grant.client_id, expires_at).await? {
        provider.store.revoke_grant(&grant.id).await?;
        return Err(PageError::Expired);
    }
    provider.store.put_code(&secrets::token_digest(&code), &record, now + CODE_TTL).await?;
    let params = redirects::code_params(&code, request.state.as_deref(), &provider.config.issuer);
    authorization_response(provider, status, request.response_mode, &request.redirect_uri, &params)
        .ok_or(PageError::BadRedirectUri)
}
