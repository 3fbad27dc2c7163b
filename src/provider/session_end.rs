//! Ending an SSO session from the provider (a logout, the `/account` page):
//! [`crate::store::ending`] does it, the same as for a disabled user (records, grants,
//! back-channel logout tokens); this adds when a session ends by itself, and the
//! front-channel logout frames (Front-Channel Logout 1.0 §3) of each client of the session
//! that registered a `frontchannel_logout_uri`, for the page the browser sees next.

use super::state::Provider;
use crate::model::Session;
use crate::protocol::frontchannel_logout::{FrontchannelClient, LogoutFrames, logout_frames};
use crate::store::ending::{self, SessionToEnd};
use crate::store::{SessionGrant, StoreError};

/// When a session ends by itself: it lives `session_ttl` from its login.
pub fn session_expires_at(provider: &Provider, session: &Session) -> u64 {
    session.auth_time + provider.config.session_ttl
}

/// Ends `session` for every replica, and what was issued in it (see
/// [`ending::end_session`]); returns the front-channel logout frames the next page must
/// render.
pub async fn end_session(provider: &Provider, session: &Session) -> Result<LogoutFrames, StoreError> {
    let to_end = SessionToEnd {
        session_id: &session.id,
        sid: &session.sid,
        subject: &session.subject,
        expires_at: session_expires_at(provider, session),
    };
    let links = ending::end_session(&*provider.store, to_end, provider.clock.now()).await?;
    frontchannel_frames(provider, session, &links).await
}

/// A frame for each client of `links` (the grants of `session`) that has a front-channel
/// logout URI.
async fn frontchannel_frames(
    provider: &Provider,
    session: &Session,
    links: &[SessionGrant],
) -> Result<LogoutFrames, StoreError> {
    let mut clients: Vec<&str> = links.iter().map(|link| link.client_id.as_str()).collect();
    clients.sort_unstable();
    clients.dedup();
    let mut frontchannel = Vec::new();
    for client_id in clients {
        if let Some(client) = provider.store.client(client_id).await?
            && client.policy.frontchannel_logout_uri.is_some()
        {
            frontchannel.push(client);
        }
    }
    let framed: Vec<FrontchannelClient<'_>> = frontchannel
        .iter()
        .filter_map(|client| {
            let logout_uri = client.policy.frontchannel_logout_uri.as_deref()?;
            Some(FrontchannelClient {
                logout_uri,
                session_required: client.policy.frontchannel_logout_session_required,
            })
        })
        .collect();
    Ok(logout_frames(&provider.config.issuer, &session.sid, &framed))
}
