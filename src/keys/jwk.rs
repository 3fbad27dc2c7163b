//! Public keys as JSON Web Keys (RFC 7517) and their thumbprints (RFC 7638).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// A public JWK; it has no field that could hold private material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub alg: &'static str,
    pub kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// The public parameters of a key, before it has a `kid`.
pub(super) enum PublicParams {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { x: Vec<u8>, y: Vec<u8> },
    Ed25519 { x: Vec<u8> },
}

impl PublicParams {
    /// RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace.
    pub(super) fn thumbprint(&self) -> String {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let canonical = match self {
            PublicParams::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
            PublicParams::P256 { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, b64(x), b64(y)),
            PublicParams::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
        };
        b64(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    }

    pub(super) fn to_jwk(&self, alg: &'static str, kid: String) -> Jwk {
        let b64 = |bytes: &[u8]| Some(URL_SAFE_NO_PAD.encode(bytes));
        let base = Jwk { kty: "RSA", use_: "sig", alg, kid, n: None, e: None, crv: None, x: None, y: None };
        match self {
            PublicParams::Rsa { n, e } => Jwk { n: b64(n), e: b64(e), ..base },
            PublicParams::P256 { x, y } => Jwk { kty: "EC", crv: Some("P-256"), x: b64(x), y: b64(y), ..base },
            PublicParams::Ed25519 { x } => Jwk { kty: "OKP", crv: Some("Ed25519"), x: b64(x), ..base },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_3_1_example_thumbprint() {
        // The RSA key of RFC 7638 §3.1, whose thumbprint the RFC gives.
        let n = URL_SAFE_NO_PAD.decode("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw").unwrap();
        let params = PublicParams::Rsa { n, e: vec![1, 0, 1] };
        assert_eq!(params.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn jwk_has_only_public_members() {
        let jwk = PublicParams::P256 { x: vec![1], y: vec![2] }.to_jwk("ES256", "k".into());
        let json = serde_json::to_value(&jwk).unwrap();
        let mut members: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    }
}
