//! What ending an SSO session does to the grants issued in it (OIDC Core §11, RP-Initiated
//! Logout 1.0 §2), and how introspection tells the access tokens of an ended session.
//!
//! A grant without `offline_access` only lives for the session: its tokens are revoked
//! when the session ends. A grant with `offline_access` was given so the client can act
//! while the user is not there (§11), so it survives the end of the session; the access
//! tokens it issued within the session still answer `active: false` at introspection
//! (RFC 7662 §2.2), because they carry the session's `sid` and were issued before it ended.

use crate::model::Grant;

/// The scope value that lets a grant outlive its session (OIDC Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// OIDC Core §11: a grant given `offline_access` survives the end of its session; every
/// other grant of the session is revoked with it.
pub fn survives_session_end(grant: &Grant) -> bool {
    grant.scope.contains(OFFLINE_ACCESS)
}

/// What ending one session does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    /// The grants to revoke (their access tokens go on the deny-list).
    pub revoke: Vec<String>,
    /// Until when the session must be remembered as ended: the latest expiry of an access
    /// token still alive in a surviving grant, which only the ended-session marker makes
    /// inactive at introspection. `None` when no such token lives (nothing to remember).
    pub remember_until: Option<u64>,
}

/// Splits the grants issued in a session into those revoked at its end and those kept
/// (OIDC Core §11), at `now`.
pub fn plan_session_end(grants: &[Grant], now: u64) -> SessionEnd {
    let (kept, revoked): (Vec<&Grant>, Vec<&Grant>) = grants.iter().partition(|grant| survives_session_end(grant));
    let remember_until = kept
        .iter()
        .flat_map(|grant| grant.access_tokens.iter().map(|(_, expires_at)| *expires_at))
        .filter(|expires_at| *expires_at > now)
        .max();
    SessionEnd { revoke: revoked.into_iter().map(|grant| grant.id.clone()).collect(), remember_until }
}

/// RFC 7662 §2.2 with OIDC Core §11: an access token issued in a session that ended at
/// `ended_at` is no longer active, even when its grant survives; one issued after (by a
/// refresh of an offline grant) is. A token issued in the very second the session ended
/// counts as issued before it (fail closed).
pub fn issued_in_ended_session(session_ended_at: Option<u64>, issued_at: u64) -> bool {
    session_ended_at.is_some_and(|ended_at| issued_at <= ended_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::Scope;

    fn grant(id: &str, scope: &str, access_tokens: &[u64]) -> Grant {
        Grant {
            id: id.into(),
            client_id: "webapp".into(),
            subject: "alice".into(),
            scope: Scope::parse(scope).unwrap(),
            auth_time: 900,
            session_id: "sid".into(),
            expires_at: 5000,
            access_tokens: access_tokens.iter().enumerate().map(|(i, exp)| (format!("jti-{i}"), *exp)).collect(),
            claims: Default::default(),
        }
    }

    #[test]
    fn oidc_core_11_only_offline_access_survives_the_end_of_the_session() {
        assert!(survives_session_end(&grant("g", "openid offline_access", &[])));
        assert!(survives_session_end(&grant("g", "offline_access", &[])));
        assert!(!survives_session_end(&grant("g", "openid profile", &[])));
        assert!(!survives_session_end(&grant("g", "openid", &[])));
    }

    #[test]
    fn oidc_core_11_session_end_revokes_the_online_grants_and_keeps_the_offline_ones() {
        let grants = [
            grant("online", "openid", &[1500]),
            grant("offline", "openid offline_access", &[1200]),
            grant("other-online", "openid email", &[]),
        ];
        let end = plan_session_end(&grants, 1000);
        assert_eq!(end.revoke, ["online", "other-online"]);
        assert_eq!(end.remember_until, Some(1200), "only the kept grant's tokens need the marker");
    }

    #[test]
    fn rfc7662_2_2_the_ended_session_is_remembered_until_its_last_live_offline_access_token_expires() {
        let grants = [grant("a", "offline_access", &[900, 1700]), grant("b", "openid offline_access", &[1300])];
        assert_eq!(plan_session_end(&grants, 1000).remember_until, Some(1700));
        let expired = [grant("a", "offline_access", &[900, 1000])];
        assert_eq!(plan_session_end(&expired, 1000).remember_until, None, "expired tokens need no marker");
        assert_eq!(plan_session_end(&[], 1000), SessionEnd { revoke: vec![], remember_until: None });
    }

    #[test]
    fn rfc7662_2_2_tokens_issued_before_or_at_the_session_end_are_inactive_and_later_ones_active() {
        assert!(issued_in_ended_session(Some(1000), 999));
        assert!(issued_in_ended_session(Some(1000), 1000), "the same second fails closed");
        assert!(!issued_in_ended_session(Some(1000), 1001), "a refresh of an offline grant after the end");
        assert!(!issued_in_ended_session(None, 1000), "the session has not ended");
    }
}
