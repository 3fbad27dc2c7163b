//! Ending an SSO session from the provider (a logout): [`crate::store::ending`] does it,
//! the same as for a disabled user; this adds when a session ends by itself.

use super::state::Provider;
use crate::model::Session;
use crate::store::StoreError;
use crate::store::ending::{self, SessionToEnd};

/// When a session ends by itself: it lives `session_ttl` from its login.
pub fn session_expires_at(provider: &Provider, session: &Session) -> u64 {
    session.auth_time + provider.config.session_ttl
}

/// Ends `session` for every replica, and what was issued in it (see
/// [`ending::end_session`]).
pub async fn end_session(provider: &Provider, session: &Session) -> Result<(), StoreError> {
    let to_end = SessionToEnd {
        session_id: &session.id,
        sid: &session.sid,
        subject: &session.subject,
        expires_at: session_expires_at(provider, session),
    };
    ending::end_session(&*provider.store, to_end, provider.clock.now()).await
}
