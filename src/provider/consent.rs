//! `POST /consent`: the user's decision on an interaction's consent form, bound to the
//! browser that started it and carrying its CSRF token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::browser;
use super::error::PageError;
use super::extract::BrowserParams;
use super::flow::{Interaction, PageResult, issue_code};
use super::state::{CONSENT_TTL, Provider};
use super::text::ENGLISH;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::model::ClientRecord;
use crate::protocol::form::FormParams;
use crate::vocabulary::{ErrorCode, OAuthError};

/// `POST /consent`: records the user's decision.
pub async fn consent(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    BrowserParams(form): BrowserParams,
) -> Response {
    let result = async {
        let (interaction, client) = Interaction::of_form(&provider, &headers, &form).await?;
        decide(&provider, &headers, &interaction, &client, &form).await
    };
    result.await.unwrap_or_else(|error| error.render(&provider))
}

/// Allow records the consent (added to what was consented before) and returns with a code;
/// deny returns `access_denied` (RFC 6749 §4.1.2.1). Only the session that signed in for
/// this interaction may answer it.
async fn decide(
    provider: &Provider,
    headers: &HeaderMap,
    interaction: &Interaction,
    client: &ClientRecord,
    form: &FormParams,
) -> PageResult {
    let current = browser::current_session(provider, headers).await?;
    let Some((session, _)) = current.filter(|(s, _)| interaction.pending.sid.as_deref() == Some(s.sid.as_str())) else {
        return Err(PageError::Expired);
    };
    let request = interaction.request();
    match form.get("decision").ok().flatten() {
        Some("allow") => {
            let mut scope = request.scope.clone();
            if let Some(previous) = provider.store.consent(&session.subject, &client.client_id).await? {
                scope = scope.union(&previous);
            }
            let now = provider.clock.now();
            provider.store.put_consent(&session.subject, &client.client_id, &scope, now + CONSENT_TTL).await?;
            audit::emit(AuditEvent::ConsentGranted, AuditFields::client(&client.client_id).subject(&session.subject));
            issue_code(provider, StatusCode::SEE_OTHER, request, &session).await
        }
        Some("deny") => {
            audit::emit(AuditEvent::ConsentDenied, AuditFields::client(&client.client_id).subject(&session.subject));
            let denied = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            Err(PageError::redirect(StatusCode::SEE_OTHER, request, denied))
        }
        _ => Err(PageError::BadRequest(ENGLISH.choose_allow_or_deny.into())),
    }
}
