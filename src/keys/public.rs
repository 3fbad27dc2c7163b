//! Public keys that verify: our own key pairs' public halves, and keys other replicas
//! signed with, known only by their published JWK.

use std::fmt;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::jwk::{Jwk, PublicParams};
use super::pair::KeyError;
use crate::vocabulary::SigningAlgorithm;

/// A verifying key: its algorithm, the parsed public key and its JWK, whose `kid` is the
/// RFC 7638 thumbprint of the public parameters.
pub struct PublicKey {
    algorithm: SigningAlgorithm,
    /// Parsed once: building an RSA public key per verification (its Montgomery
    /// constants) costs as much as the verification itself.
    parsed: ParsedPublicKey,
    jwk: Jwk,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("kid", &self.jwk.kid).field("algorithm", &self.algorithm).finish()
    }
}

/// The members of a published JWK that verification needs (RFC 7517 §4, RFC 7518 §6).
#[derive(Deserialize)]
struct PublishedJwk {
    alg: SigningAlgorithm,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

impl PublicKey {
    pub(super) fn from_params(algorithm: SigningAlgorithm, params: PublicParams) -> Result<Self, KeyError> {
        let invalid = |_| KeyError::InvalidPublicKey(algorithm);
        let parsed = match &params {
            PublicParams::Rsa { n, e } => {
                RsaPublicKeyComponents { n, e }.to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256).map_err(invalid)?
            }
            PublicParams::P256 { x, y } => {
                let point = [&[0x04][..], x.as_slice(), y.as_slice()].concat();
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).map_err(invalid)?
            }
            PublicParams::Ed25519 { x } => ParsedPublicKey::new(&ED25519, x).map_err(invalid)?,
        };
        let jwk = params.to_jwk(algorithm.as_str(), params.thumbprint());
        Ok(Self { algorithm, parsed, jwk })
    }

    /// Reads a public JWK as [`PublicKey::jwk`] serializes it. The `kid` is computed again
    /// from the parameters, so a stored document cannot pass one key off as another.
    pub fn from_jwk_json(json: &str) -> Result<Self, KeyError> {
        let jwk: PublishedJwk = serde_json::from_str(json).map_err(|_| KeyError::InvalidJwk)?;
        let bytes = |member: Option<String>| {
            member.and_then(|value| URL_SAFE_NO_PAD.decode(value).ok()).ok_or(KeyError::InvalidJwk)
        };
        let params = match (jwk.alg, jwk.crv.as_deref()) {
            (SigningAlgorithm::RS256, None) => PublicParams::Rsa { n: bytes(jwk.n)?, e: bytes(jwk.e)? },
            (SigningAlgorithm::ES256, Some("P-256")) => PublicParams::P256 { x: bytes(jwk.x)?, y: bytes(jwk.y)? },
            (SigningAlgorithm::EdDSA, Some("Ed25519")) => PublicParams::Ed25519 { x: bytes(jwk.x)? },
            _ => return Err(KeyError::InvalidJwk),
        };
        Self::from_params(jwk.alg, params)
    }

    pub fn kid(&self) -> &str {
        &self.jwk.kid
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The JWK as JSON, to publish where other replicas read it.
    pub fn jwk_json(&self) -> Result<String, KeyError> {
        Ok(serde_json::to_string(&self.jwk)?)
    }

    /// Whether `signature` is this key's signature of `message` (RS256: RSASSA-PKCS1-v1_5
    /// with SHA-256; ES256: the fixed-width `R || S` of RFC 7518 §3.4; EdDSA: Ed25519).
    pub(super) fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyPair;

    #[test]
    fn a_published_jwk_reads_back_as_the_same_key_for_every_algorithm() {
        for algorithm in [SigningAlgorithm::RS256, SigningAlgorithm::ES256, SigningAlgorithm::EdDSA] {
            let (pair, _) = KeyPair::generate(algorithm, None).unwrap();
            let read = PublicKey::from_jwk_json(&pair.public().jwk_json().unwrap()).unwrap();
            assert_eq!((read.kid(), read.algorithm()), (pair.kid(), algorithm));
            let signature = pair.sign(b"message").unwrap();
            assert!(read.verify_signature(b"message", &signature), "{algorithm}");
            assert!(!read.verify_signature(b"other message", &signature), "{algorithm}");
        }
    }

    #[test]
    fn a_jwk_whose_kid_does_not_match_its_key_gets_the_right_kid() {
        let (pair, _) = KeyPair::generate(SigningAlgorithm::ES256, None).unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&pair.public().jwk_json().unwrap()).unwrap();
        json["kid"] = "someone-elses-kid".into();
        assert_eq!(PublicKey::from_jwk_json(&json.to_string()).unwrap().kid(), pair.kid());
    }

    #[test]
    fn malformed_or_mismatched_jwks_are_refused() {
        for json in [
            "not json",
            r#"{"alg":"HS256","kty":"oct"}"#,
            r#"{"alg":"RS256","kty":"RSA","n":"AQAB"}"#,
            r#"{"alg":"ES256","kty":"EC","crv":"Ed25519","x":"AA","y":"AA"}"#,
            r#"{"alg":"EdDSA","kty":"OKP","crv":"Ed25519","x":"not base64url!"}"#,
            r#"{"alg":"EdDSA","kty":"OKP","crv":"Ed25519","x":"AAAA"}"#,
        ] {
            assert!(PublicKey::from_jwk_json(json).is_err(), "{json}");
        }
    }
}
