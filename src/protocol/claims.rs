//! JWT claim sets Portcullis issues.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The `aud` claim: one audience serializes as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

impl Audience {
    pub fn contains(&self, value: &str) -> bool {
        self.0.iter().any(|a| a == value)
    }
}

impl Serialize for Audience {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [single] => serializer.serialize_str(single),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(one) => Audience(vec![one]),
            OneOrMany::Many(many) => Audience(many),
        })
    }
}

/// The claims of a JWT access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the user authenticated (RFC 9068 §2.2.1); absent for client-only tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The SSO session the token was issued in (the ID token's `sid`, OIDC Core §2 and
    /// Back-Channel Logout §2.1); absent for client-only tokens. Introspection answers
    /// `active: false` once that session has ended ([`super::session_end`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Private claim: the store's data epoch the token was issued under
    /// ([`super::epoch`]); a token from before a loss of the store's data is refused.
    #[serde(rename = "pcl_ep", default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// Private claim: the claims the authorization request asked UserInfo for (OIDC Core
    /// §5.5), so UserInfo answers from the token as it does for its scope.
    #[serde(rename = "pcl_uc", default, skip_serializing_if = "BTreeSet::is_empty")]
    pub userinfo_claims: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7519_4_1_3_single_audience_is_a_string_and_many_an_array() {
        assert_eq!(serde_json::to_string(&Audience(vec!["a".into()])).unwrap(), "\"a\"");
        assert_eq!(serde_json::to_string(&Audience(vec!["a".into(), "b".into()])).unwrap(), "[\"a\",\"b\"]");
        let one: Audience = serde_json::from_str("\"a\"").unwrap();
        let many: Audience = serde_json::from_str("[\"a\",\"b\"]").unwrap();
        assert!(one.contains("a") && many.contains("b") && !one.contains("b"));
    }
}
