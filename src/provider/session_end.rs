//! Ending an SSO session (RP-Initiated Logout 1.0 §2): its record goes, so no replica knows
//! the cookie any more; the grants issued in it are revoked unless they were given
//! `offline_access` (OIDC Core §11, [`crate::protocol::session_end`]); and its access tokens
//! answer `active: false` at introspection from then on. Access tokens of a kept grant stay
//! usable at the userinfo endpoint until they expire, as any bearer token does.

use super::state::Provider;
use super::user_grants::revoke_grant;
use crate::model::Session;
use crate::protocol::session_end::plan_session_end;
use crate::store::StoreError;

/// When a session ends by itself: it lives `session_ttl` from its login.
pub fn session_expires_at(provider: &Provider, session: &Session) -> u64 {
    session.auth_time + provider.config.session_ttl
}

/// Ends `session` for every replica, and what was issued in it (see the module).
///
/// The session record goes last: an ending that fails halfway leaves the user signed in,
/// so that signing out again redoes all of it.
pub async fn end_session(provider: &Provider, session: &Session) -> Result<(), StoreError> {
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
    provider.store.delete_session(&session.id).await
}
