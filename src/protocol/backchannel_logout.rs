//! The logout token of OpenID Connect Back-Channel Logout 1.0 (§2.4), and when a failed
//! delivery of one is tried again (§2.8 lets the OP retry; we back off exponentially up to a
//! bound).

use serde::{Deserialize, Serialize};

use super::claims::Audience;

/// The event member of a logout token (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How long a logout token is valid: §2.4 asks for a short `exp`, so a captured token is
/// worthless soon after.
pub const LOGOUT_TOKEN_TTL: u64 = 120;

/// The (empty) object the back-channel logout event carries (§2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackchannelLogoutEvent {}

/// The `events` claim: exactly the back-channel logout event (§2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutEvents {
    #[serde(rename = "http://schemas.openid.net/event/backchannel-logout")]
    pub backchannel_logout: BackchannelLogoutEvent,
}

/// The claims of a logout token (Back-Channel Logout 1.0 §2.4). It has no `nonce` (§2.4
/// forbids one, so a logout token can never pass for an ID token) and is signed with
/// `typ: logout+jwt` (§2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    pub iss: String,
    /// The client the token is sent to.
    pub aud: Audience,
    pub iat: u64,
    pub exp: u64,
    /// A unique id, so the RP can refuse a replayed token (§2.6 step 9).
    pub jti: String,
    pub events: LogoutEvents,
    /// The user; the same `sub` as the ID tokens the client received.
    pub sub: String,
    /// The ended session; the same `sid` as the ID tokens the client received (§2.4 lets
    /// `sub` or `sid` be left out; we always send both, so `backchannel_logout_session_required`
    /// clients are served too).
    pub sid: String,
}

/// Who a logout token is about: the session that ended and the client to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutSubject<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub subject: &'a str,
    pub sid: &'a str,
}

/// Back-Channel Logout 1.0 §2.4: the claims of the logout token telling `about.client_id`
/// that session `about.sid` ended, issued at `now` with the unique id `jti`.
pub fn logout_token_claims(about: &LogoutSubject<'_>, jti: String, now: u64) -> LogoutTokenClaims {
    LogoutTokenClaims {
        iss: about.issuer.to_owned(),
        aud: Audience(vec![about.client_id.to_owned()]),
        iat: now,
        exp: now + LOGOUT_TOKEN_TTL,
        jti,
        events: LogoutEvents::default(),
        sub: about.subject.to_owned(),
        sid: about.sid.to_owned(),
    }
}

/// When to try a delivery again after `failed_attempts` failures (1 for the first), the
/// first attempt having been due at `first_due_at`: 1 s, 2 s, 4 s … after `now`, or `None`
/// (give up) once the next attempt would fall after `first_due_at + give_up_after`.
pub fn next_attempt_at(first_due_at: u64, failed_attempts: u32, now: u64, give_up_after: u64) -> Option<u64> {
    let delay = 1u64.checked_shl(failed_attempts.saturating_sub(1)).unwrap_or(u64::MAX);
    let next = now.saturating_add(delay);
    (next <= first_due_at.saturating_add(give_up_after)).then_some(next)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn about() -> LogoutSubject<'static> {
        LogoutSubject { issuer: "https://id.example", client_id: "webapp", subject: "alice", sid: "sid-1" }
    }

    #[test]
    fn backchannel_logout_2_4_the_logout_token_carries_exactly_the_required_claims() {
        let claims = serde_json::to_value(logout_token_claims(&about(), "jti-1".into(), 1000)).unwrap();
        assert_eq!(
            claims,
            json!({
                "iss": "https://id.example",
                "aud": "webapp",
                "iat": 1000,
                "exp": 1000 + LOGOUT_TOKEN_TTL,
                "jti": "jti-1",
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
                "sub": "alice",
                "sid": "sid-1",
            })
        );
    }

    #[test]
    fn backchannel_logout_2_4_a_logout_token_has_no_nonce_and_expires_soon() {
        let claims = serde_json::to_value(logout_token_claims(&about(), "jti-1".into(), 1000)).unwrap();
        assert!(claims.get("nonce").is_none(), "§2.4: a nonce is prohibited");
        assert!(claims["exp"].as_u64().unwrap() - 1000 <= 300, "§2.4 recommends a short lifetime");
        assert_eq!(claims["events"].as_object().unwrap().len(), 1);
        assert!(claims["events"].get(BACKCHANNEL_LOGOUT_EVENT).is_some());
    }

    #[test]
    fn backchannel_logout_2_4_the_logout_token_round_trips() {
        let claims = logout_token_claims(&about(), "jti-1".into(), 1000);
        let json = serde_json::to_string(&claims).unwrap();
        assert_eq!(serde_json::from_str::<LogoutTokenClaims>(&json).unwrap(), claims);
    }

    #[test]
    fn backchannel_logout_2_8_failed_deliveries_back_off_exponentially_until_the_bound() {
        assert_eq!(next_attempt_at(1000, 1, 1000, 120), Some(1001));
        assert_eq!(next_attempt_at(1000, 2, 1001, 120), Some(1003));
        assert_eq!(next_attempt_at(1000, 3, 1003, 120), Some(1007));
        assert_eq!(next_attempt_at(1000, 7, 1063, 120), None, "1063 + 64 s falls past the bound");
        assert_eq!(next_attempt_at(1000, 6, 1050, 120), Some(1082));
        assert_eq!(next_attempt_at(1000, 1, 1120, 120), None, "the bound is reached");
        assert_eq!(next_attempt_at(1000, 1, 1119, 120), Some(1120), "the last attempt lands on the bound");
        assert_eq!(next_attempt_at(1000, 200, 1000, 120), None, "no overflow on many failures");
        assert_eq!(next_attempt_at(1000, 1, 1000, 0), None, "a zero bound never retries");
    }
}
