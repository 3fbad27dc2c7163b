//! Compact JWS (RFC 7515 §7.1) signing and verification.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::pair::{KeyError, KeyPair};

/// The `typ` header of a token, which keeps one kind of token from passing for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtType {
    /// RFC 9068 §2.1: JWT access tokens carry `typ: at+jwt`.
    AccessToken,
    /// Plain `JWT`, used by ID tokens.
    Jwt,
}

impl JwtType {
    pub fn as_str(self) -> &'static str {
        match self {
            JwtType::AccessToken => "at+jwt",
            JwtType::Jwt => "JWT",
        }
    }

    /// RFC 9068 §4 / RFC 7515 §4.1.9: `typ` compares case-insensitively and may carry the
    /// `application/` prefix.
    pub(super) fn matches(self, typ: Option<&str>) -> bool {
        let Some(typ) = typ else { return false };
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        typ.eq_ignore_ascii_case(self.as_str())
    }
}

/// Why a presented token was not accepted. Only ever reported as "invalid token".
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not a JWS signed by one of our keys")]
    UnknownKey,
    #[error("wrong token type")]
    WrongType,
    #[error("invalid token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

/// Serializes the claims and signs them: `header.payload.signature`, each base64url.
pub(super) fn sign<T: Serialize>(key: &KeyPair, typ: JwtType, claims: &T) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims)?;
    let header = key.encoded_header(typ);
    let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 350 + 4);
    token.push_str(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    Ok(token)
}
