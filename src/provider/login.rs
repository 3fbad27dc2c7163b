//! `POST /login`: the sign-in form of an interaction, bound to the browser that started it
//! and carrying its CSRF token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::browser;
use super::error::PageError;
use super::extract::BrowserParams;
use super::flow::{Interaction, PageResult, consent_page, issue_code, login_page, needs_consent};
use super::respond::{with_cookies, with_retry_after};
use super::sign_in::{self, SignIn, sign_in};
use super::state::Provider;
use super::text::ENGLISH;
use crate::model::ClientRecord;
use crate::protocol::form::FormParams;
use crate::protocol::pending::PendingRequest;

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
        authenticate(&provider, &headers, &interaction, &client, &form, &browser::client_ip(peer)).await
    };
    result.await.unwrap_or_else(|error| error.render(&provider))
}

/// Signs the user in (see [`sign_in`]), then asks for consent or returns to the client
/// with a code.
async fn authenticate(
    provider: &Provider,
    headers: &HeaderMap,
    interaction: &Interaction,
    client: &ClientRecord,
    form: &FormParams,
    address: &str,
) -> PageResult {
    if client.policy.connectors_only {
        return Err(PageError::FormRefused);
    }
    let (session, user, cookie) = match sign_in(provider, headers, form, address, Some(&client.client_id)).await? {
        SignIn::SignedIn { session, user, cookie } => (session, user, cookie),
        SignIn::Refused => {
            let username = sign_in::username(form);
            return login_page(provider, client, interaction, &username, Some(WRONG_CREDENTIALS), StatusCode::OK).await;
        }
        SignIn::Throttled { retry_after } => {
            let username = sign_in::username(form);
            let status = StatusCode::TOO_MANY_REQUESTS;
            let page = login_page(provider, client, interaction, &username, Some(THROTTLED), status).await?;
            return Ok(with_retry_after(page, retry_after));
        }
    };
    let response = if needs_consent(provider, client, interaction.request(), &session.subject).await? {
        // The consent form answers for this session only, for a lifetime from now.
        let now = provider.clock.now();
        let pending = PendingRequest { sid: Some(session.sid.clone()), issued_at: now, ..interaction.pending.clone() };
        consent_page(provider, client, &Interaction::seal(provider, pending).await?, &user)
    } else {
        issue_code(provider, StatusCode::SEE_OTHER, interaction.request(), &session).await?
    };
    Ok(with_cookies(response, [cookie]))
}
