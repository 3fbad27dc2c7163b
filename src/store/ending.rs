//! Ending what was issued, written once over the ports so that a logout (the provider), a
//! disabled or deleted user and the `portcullis.dev/revoke-sessions` annotation (the
//! controller and the manifests folder) do exactly the same.
//!
//! Ending an SSO session (RP-Initiated Logout 1.0 §2): its record goes, so no replica knows
//! the cookie any more; the grants issued in it are revoked unless they were given
//! `offline_access` (OIDC Core §11, [`crate::protocol::session_end`]); and its access
//! tokens answer `active: false` at introspection from then on. Each client that got tokens
//! in the session and registered a `backchannel_logout_uri` gets a logout token
//! (Back-Channel Logout 1.0 §2.5): the ending only queues it, once per client, for a
//! replica's delivery worker to send. Ending a user ends each of their sessions so, then
//! revokes every grant they still hold, offline ones included. Removing a client revokes
//! every grant it holds and deletes every consent given to it, so that a client declared
//! again under the same id starts with nothing (its sessions belong to the users: they
//! stay).

use super::StoreError;
use super::ports::{ClientHoldings, SessionGrant, Store, UserSession};
use crate::model::LogoutDelivery;
use crate::protocol::session_end::plan_session_end;

/// The session to end: what its record and the user index both know of it.
#[derive(Debug, Clone, Copy)]
pub struct SessionToEnd<'a> {
    /// The secret cookie value naming the record.
    pub session_id: &'a str,
    pub sid: &'a str,
    pub subject: &'a str,
    /// When the session would have ended by itself.
    pub expires_at: u64,
}

impl<'a> SessionToEnd<'a> {
    /// A session of `subject` as its index lists it.
    pub fn listed(subject: &'a str, session: &'a UserSession) -> Self {
        Self { session_id: &session.session_id, sid: &session.sid, subject, expires_at: session.expires_at }
    }
}

/// Revokes a grant: its access tokens go on the deny-list and its refresh tokens stop
/// working (they need the grant). Revoking a grant that is gone does nothing.
pub async fn revoke_grant(store: &dyn Store, grant_id: &str) -> Result<(), StoreError> {
    if let Some(grant) = store.revoke_grant(grant_id).await? {
        for (jti, expires_at) in &grant.access_tokens {
            store.revoke_token(jti, *expires_at).await?;
        }
    }
    Ok(())
}

/// Ends `session` for every replica, and what was issued in it (see the module), at `now`.
///
/// The session record goes last: an ending that fails halfway leaves the session alive,
/// so that ending it again redoes all of it. Returns the grants the session had, for the
/// front-channel logout frames of the page a browser sees next.
pub async fn end_session(
    store: &dyn Store,
    session: SessionToEnd<'_>,
    now: u64,
) -> Result<Vec<SessionGrant>, StoreError> {
    let links = store.close_session_grants(session.sid, session.expires_at).await?;
    let mut grants = Vec::with_capacity(links.len());
    for link in &links {
        grants.extend(store.grant(&link.grant_id).await?);
    }
    let end = plan_session_end(&grants, now);
    if let Some(until) = end.remember_until {
        store.remember_session_end(session.sid, now, until).await?;
    }
    for grant_id in &end.revoke {
        revoke_grant(store, grant_id).await?;
    }
    queue_backchannel_logouts(store, session, &links, now).await?;
    store.delete_session(session.session_id).await?;
    Ok(links)
}

/// What [`end_user`] ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserEnded {
    pub sessions: usize,
    pub grants: usize,
}

/// Ends every session of `subject` (with back-channel logout) and revokes every grant they
/// hold, offline ones included, so that nothing of it comes back should the user be
/// enabled again. Doing it again ends only what was issued since.
pub async fn end_user(store: &dyn Store, subject: &str, now: u64) -> Result<UserEnded, StoreError> {
    let sessions = store.user_sessions(subject).await?;
    for session in &sessions {
        end_session(store, SessionToEnd::listed(subject, session), now).await?;
    }
    let grants = store.user_grants(subject).await?;
    for grant in &grants {
        revoke_grant(store, &grant.grant_id).await?;
    }
    Ok(UserEnded { sessions: sessions.len(), grants: grants.len() })
}

/// Removes client `client_id` for every replica, then revokes each grant it holds (its
/// access tokens go on the deny-list) and deletes each consent given to it. The record
/// goes first, so nothing new is issued to the client behind the ending; an ending that
/// fails halfway is redone whole by removing the client again. Returns what was ended.
pub async fn remove_client(store: &dyn Store, client_id: &str) -> Result<ClientHoldings, StoreError> {
    store.delete_client(client_id).await?;
    let holdings = store.client_holdings(client_id).await?;
    for grant_id in &holdings.grants {
        revoke_grant(store, grant_id).await?;
    }
    for subject in &holdings.consents {
        store.delete_consent(subject, client_id).await?;
    }
    if holdings != ClientHoldings::default() {
        let (grants, consents) = (holdings.grants.len(), holdings.consents.len());
        tracing::info!(%client_id, grants, consents, "ended a removed client's grants and consents");
    }
    Ok(holdings)
}

/// Back-Channel Logout 1.0 §2.5: queues one logout token, due `now`, for each client of
/// `links` (the grants of `session`) that has a back-channel logout URI. The queue keeps
/// one per (session, client), so an ending done again queues nothing twice.
async fn queue_backchannel_logouts(
    store: &dyn Store,
    session: SessionToEnd<'_>,
    links: &[SessionGrant],
    now: u64,
) -> Result<(), StoreError> {
    let mut clients: Vec<&str> = links.iter().map(|link| link.client_id.as_str()).collect();
    clients.sort_unstable();
    clients.dedup();
    for client_id in clients {
        let Some(client) = store.client(client_id).await? else { continue };
        if client.policy.backchannel_logout_uri.is_none() {
            continue;
        }
        let delivery = LogoutDelivery {
            sid: session.sid.to_owned(),
            client_id: client.client_id.clone(),
            subject: session.subject.to_owned(),
            first_due_at: now,
            due_at: now,
            failed_attempts: 0,
        };
        store.queue_logout(&delivery).await?;
    }
    Ok(())
}
