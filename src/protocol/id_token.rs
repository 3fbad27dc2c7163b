//! The ID Token (OIDC Core §2) issued by the authorization code flow (OIDC Core §3.1.3.6).

use aws_lc_rs::digest::{SHA256, SHA512, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::claims::Audience;
use crate::vocabulary::SigningAlgorithm;

/// The claims of an ID Token (OIDC Core §2, §3.1.3.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    /// The client id of the relying party (OIDC Core §2 `aud`).
    pub aud: Audience,
    pub exp: u64,
    pub iat: u64,
    /// When the user authenticated; always sent, as `max_age` requests require it.
    pub auth_time: u64,
    /// The authentication request's `nonce`, unmodified (OIDC Core §3.1.2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Access token hash (OIDC Core §3.1.3.6), see [`at_hash`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Session id (OIDC Front-Channel Logout §3, Back-Channel Logout §2.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Authorized party (OIDC Core §2): the client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// The user's claims released by the granted scopes (OIDC Core §5.4), as relying
    /// parties such as Authlib read them from the ID token without calling UserInfo.
    #[serde(flatten)]
    pub user: serde_json::Map<String, serde_json::Value>,
}

/// OIDC Core §3.1.3.6 `at_hash`: the base64url encoding of the left-most half of the hash
/// of the ASCII access token, using the hash of the ID Token's `alg`: SHA-256 for RS256 and
/// ES256; SHA-512 for EdDSA, since Ed25519 hashes with SHA-512 internally (the convention
/// of the OpenID Foundation's certified implementations).
pub fn at_hash(access_token: &str, alg: SigningAlgorithm) -> String {
    let hash = match alg {
        SigningAlgorithm::RS256 | SigningAlgorithm::ES256 => digest(&SHA256, access_token.as_bytes()),
        SigningAlgorithm::EdDSA => digest(&SHA512, access_token.as_bytes()),
    };
    let bytes = hash.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> IdTokenClaims {
        IdTokenClaims {
            iss: "https://id.example".into(),
            sub: "u1".into(),
            aud: Audience(vec!["app".into()]),
            exp: 1_300_000_600,
            iat: 1_300_000_000,
            auth_time: 1_299_999_990,
            nonce: None,
            at_hash: None,
            sid: None,
            azp: None,
            user: serde_json::Map::new(),
        }
    }

    /// OIDC Core §3.1.3.6 / Appendix A: the example access token and its `at_hash`.
    #[test]
    fn oidc_core_3_1_3_6_at_hash_matches_the_spec_example() {
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", SigningAlgorithm::RS256),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn oidc_core_3_1_3_6_at_hash_uses_sha256_for_es256() {
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(token, SigningAlgorithm::ES256), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn oidc_core_3_1_3_6_at_hash_uses_left_half_of_sha512_for_eddsa() {
        // Computed independently: base64url(sha512(token)[..32]) with Python's hashlib.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        assert_eq!(at_hash(token, SigningAlgorithm::EdDSA), "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM");
    }

    #[test]
    fn oidc_core_3_1_3_6_at_hash_is_half_the_hash_length() {
        // 16 bytes → 22 base64url characters; 32 bytes → 43.
        assert_eq!(at_hash("t", SigningAlgorithm::RS256).len(), 22);
        assert_eq!(at_hash("t", SigningAlgorithm::EdDSA).len(), 43);
    }

    #[test]
    fn oidc_core_2_required_claims_serialize_and_absent_optionals_are_omitted() {
        let json = serde_json::to_value(claims()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "iss": "https://id.example", "sub": "u1", "aud": "app",
                "exp": 1_300_000_600u64, "iat": 1_300_000_000u64, "auth_time": 1_299_999_990u64,
            })
        );
    }

    #[test]
    fn oidc_core_2_optional_claims_round_trip() {
        let full = IdTokenClaims {
            nonce: Some("n-0S6_WzA2Mj".into()),
            at_hash: Some("77QmUPtjPfzWtF2AnpK9RQ".into()),
            sid: Some("s1".into()),
            azp: Some("app".into()),
            user: serde_json::Map::new(),
            ..claims()
        };
        let json = serde_json::to_string(&full).unwrap();
        assert!(json.contains("\"nonce\":\"n-0S6_WzA2Mj\"") && json.contains("\"azp\":\"app\""));
        assert_eq!(serde_json::from_str::<IdTokenClaims>(&json).unwrap(), full);
        assert_eq!(
            serde_json::from_str::<IdTokenClaims>(&serde_json::to_string(&claims()).unwrap()).unwrap(),
            claims()
        );
    }
}
