//! Token introspection (RFC 7662) and the ownership rule shared with revocation (RFC 7009).

use serde::Serialize;

use super::claims::{AccessTokenClaims, Audience};

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
    pub token_type: &'static str,
    pub exp: u64,
    pub iat: u64,
    pub sub: String,
    pub aud: Audience,
    pub iss: String,
    pub jti: String,
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
            token_type: "Bearer",
            exp: claims.exp,
            iat: claims.iat,
            sub: claims.sub,
            aud: claims.aud,
            iss: claims.iss,
            jti: claims.jti,
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
}
