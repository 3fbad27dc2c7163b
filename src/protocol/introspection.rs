//! Token introspection (RFC 7662) and the ownership rule shared with revocation (RFC 7009).

use serde::Serialize;

use super::claims::{AccessTokenClaims, Audience};
use crate::model::{Grant, RefreshToken};

/// RFC 7662 §2.2 response. An inactive token reveals nothing but `active: false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<ActiveTokenDetails>,
}

/// The fields of an active token's introspection response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveTokenDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub client_id: String,
    /// `Bearer` for access tokens; refresh tokens have no token type (RFC 6749 §7.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    pub iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl IntrospectionResponse {
    pub fn inactive() -> Self {
        Self { active: false, details: None }
    }
}

/// Whether `caller` may learn about a token: the client it was issued to, or an audience
/// (a resource server) it was issued for. RFC 7662 §4 asks servers to limit what a client
/// can learn about tokens that are not meant for it.
pub fn may_inspect(claims: &AccessTokenClaims, caller: &str) -> bool {
    claims.client_id == caller || claims.aud.contains(caller)
}

/// RFC 7662 §2.2: a verified, unexpired, unrevoked access token the caller may see is active.
pub fn introspect_access_token(
    claims: AccessTokenClaims,
    revoked: bool,
    caller: &str,
    now: u64,
) -> IntrospectionResponse {
    if revoked || claims.exp <= now || !may_inspect(&claims, caller) {
        return IntrospectionResponse::inactive();
    }
    IntrospectionResponse {
        active: true,
        details: Some(ActiveTokenDetails {
            scope: claims.scope,
            client_id: claims.client_id,
            token_type: Some("Bearer"),
            exp: claims.exp,
            iat: Some(claims.iat),
            sub: claims.sub,
            aud: Some(claims.aud),
            iss: claims.iss,
            jti: Some(claims.jti),
        }),
    }
}

/// RFC 7662 §2.2 for a refresh token: active while unused, unexpired, its grant alive, and
/// only for the client it was issued to.
pub fn introspect_refresh_token(
    token: &RefreshToken,
    grant: Option<&Grant>,
    rotated_out: bool,
    caller: &str,
    issuer: &str,
    now: u64,
) -> IntrospectionResponse {
    let Some(grant) = grant else { return IntrospectionResponse::inactive() };
    if rotated_out || token.expires_at <= now || token.client_id != caller {
        return IntrospectionResponse::inactive();
    }
    IntrospectionResponse {
        active: true,
        details: Some(ActiveTokenDetails {
            scope: Some(token.scope.to_string()),
            client_id: token.client_id.clone(),
            token_type: None,
            exp: token.expires_at,
            iat: None,
            sub: grant.subject.clone(),
            aud: None,
            iss: issuer.to_owned(),
            jti: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://id.example".into(),
            sub: "batch-job".into(),
            aud: Audience(vec!["api".into()]),
            exp: 2000,
            iat: 1000,
            jti: "j".into(),
            client_id: "batch-job".into(),
            scope: Some("read".into()),
            auth_time: None,
            sid: None,
            epoch: None,
            userinfo_claims: Default::default(),
        }
    }

    #[test]
    fn rfc7662_2_2_active_token_lists_its_claims() {
        let response = introspect_access_token(claims(), false, "batch-job", 1500);
        let json = serde_json::to_value(&response).unwrap();
        assert_eq!(json["active"], true);
        assert_eq!(json["scope"], "read");
        assert_eq!(json["client_id"], "batch-job");
        assert_eq!(json["token_type"], "Bearer");
        assert_eq!(json["exp"], 2000);
        assert_eq!(json["aud"], "api");
    }

    #[test]
    fn rfc7662_2_2_inactive_token_reveals_only_active_false() {
        let json = serde_json::to_string(&IntrospectionResponse::inactive()).unwrap();
        assert_eq!(json, r#"{"active":false}"#);
    }

    #[test]
    fn rfc7662_2_2_expired_and_revoked_tokens_are_inactive() {
        assert!(!introspect_access_token(claims(), false, "batch-job", 2000).active);
        assert!(!introspect_access_token(claims(), true, "batch-job", 1500).active);
    }

    #[test]
    fn rfc7662_4_only_the_owner_or_an_audience_may_inspect() {
        assert!(introspect_access_token(claims(), false, "api", 1500).active);
        assert!(!introspect_access_token(claims(), false, "someone-else", 1500).active);
    }

    fn refresh() -> (RefreshToken, Grant) {
        let scope = crate::vocabulary::Scope::parse("openid offline_access").unwrap();
        let token =
            RefreshToken { grant_id: "g".into(), client_id: "webapp".into(), scope: scope.clone(), expires_at: 2000 };
        let grant = Grant {
            id: "g".into(),
            client_id: "webapp".into(),
            subject: "alice".into(),
            scope,
            auth_time: 900,
            session_id: "s".into(),
            expires_at: 2000,
            access_tokens: vec![],
            claims: Default::default(),
        };
        (token, grant)
    }

    #[test]
    fn rfc7662_2_2_live_refresh_token_is_active_for_its_client() {
        let (token, grant) = refresh();
        let json =
            serde_json::to_value(introspect_refresh_token(&token, Some(&grant), false, "webapp", "https://id", 1500))
                .unwrap();
        assert_eq!(json["active"], true);
        assert_eq!(json["sub"], "alice");
        assert_eq!(json["scope"], "offline_access openid");
        assert!(json.get("token_type").is_none());
    }

    #[test]
    fn rfc7662_2_2_rotated_revoked_expired_or_foreign_refresh_token_is_inactive() {
        let (token, grant) = refresh();
        assert!(!introspect_refresh_token(&token, Some(&grant), true, "webapp", "i", 1500).active);
        assert!(!introspect_refresh_token(&token, None, false, "webapp", "i", 1500).active);
        assert!(!introspect_refresh_token(&token, Some(&grant), false, "webapp", "i", 2000).active);
        assert!(!introspect_refresh_token(&token, Some(&grant), false, "other", "i", 1500).active);
    }
}
