//! Ending an SSO session (RP-Initiated Logout 1.0 §2): its record goes, so no replica knows
//! the cookie any more; the grants issued in it are revoked unless they were given
//! `offline_access` (OIDC Core §11, [`crate::protocol::session_end`]); and its access tokens
//! answer `active: false` at introspection from then on. Access tokens of a kept grant stay
//! usable at the userinfo endpoint until they expire, as any bearer token does. Each client
//! that got tokens in the session and registered a `backchannel_logout_uri` gets a logout
//! token (Back-Channel Logout 1.0 §2.5): the ending only queues it, once per client, for a
//! replica's delivery worker to send. Each such client that registered a
//! `frontchannel_logout_uri` instead (or as well) is framed by the page the browser sees
//! next (Front-Channel Logout 1.0 §3): the ending returns those frames.

use super::state::Provider;
use super::user_grants::revoke_grant;
use crate::model::{LogoutDelivery, Session};
use crate::protocol::frontchannel_logout::{FrontchannelClient, LogoutFrames, logout_frames};
use crate::protocol::session_end::plan_session_end;
use crate::store::{SessionGrant, StoreError};

/// When a session ends by itself: it lives `session_ttl` from its login.
pub fn session_expires_at(provider: &Provider, session: &Session) -> u64 {
    session.auth_time + provider.config.session_ttl
}

/// Ends `session` for every replica, and what was issued in it (see the module); returns
/// the front-channel logout frames the next page must render.
///
/// The session record goes last: an ending that fails halfway leaves the user signed in,
/// so that signing out again redoes all of it.
pub async fn end_session(provider: &Provider, session: &Session) -> Result<LogoutFrames, StoreError> {
    let links = provider.store.close_session_grants(&session.sid, session_expires_at(provider, session)).await?;
    let mut grants = Vec::with_capacity(links.len());
    for link in &links {
        grants.extend(provider.store.grant(&link.grant_id).await?);
    }
    let now = provider.clock.now();
    let end = plan_session_end(&grants, now);
    if let Some(until) = end.remember_until {
        provider.store.remember_session_end(&session.sid, now, until).await?;
    }
    for grant_id in &end.revoke {
        revoke_grant(provider, grant_id).await?;
    }
    let frames = tell_clients(provider, session, &links, now).await?;
    provider.store.delete_session(&session.id).await?;
    Ok(frames)
}

/// Tells each client of `links` (the grants of `session`) that the session ended.
///
/// Back-Channel Logout 1.0 §2.5: queues one logout token, due `now`, for each client that
/// has a back-channel logout URI. The queue keeps one per (session, client), so an ending
/// done again queues nothing twice. Front-Channel Logout 1.0 §3: returns a frame for each
/// client that has a front-channel logout URI.
async fn tell_clients(
    provider: &Provider,
    session: &Session,
    links: &[SessionGrant],
    now: u64,
) -> Result<LogoutFrames, StoreError> {
    let mut clients: Vec<&str> = links.iter().map(|link| link.client_id.as_str()).collect();
    clients.sort_unstable();
    clients.dedup();
    let mut frontchannel = Vec::new();
    for client_id in clients {
        let Some(client) = provider.store.client(client_id).await? else { continue };
        if client.policy.frontchannel_logout_uri.is_some() {
            frontchannel.push(client.clone());
        }
        if client.policy.backchannel_logout_uri.is_none() {
            continue;
        }
        let delivery = LogoutDelivery {
            sid: session.sid.clone(),
            client_id: client.client_id.clone(),
            subject: session.subject.clone(),
            first_due_at: now,
            due_at: now,
            failed_attempts: 0,
        };
        provider.store.queue_logout(&delivery).await?;
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
