//! Compact JWS (RFC 7515 §7.1) signing and verification.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use super::jwt_type::JwtType;
use super::pair::{KeyError, KeyPair};
use super::public::PublicKey;

/// Why a presented token was not accepted. Only ever reported as "invalid token".
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a compact JWS with a JSON header and payload")]
    Malformed,
    #[error("not a JWS signed by one of our keys")]
    UnknownKey,
    #[error("wrong token type")]
    WrongType,
    #[error("the header names another algorithm than the key's")]
    WrongAlgorithm,
    #[error("the header has critical extensions")]
    CriticalExtension,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("a required claim (exp, iat, iss) is missing or malformed")]
    MissingClaim,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token has expired")]
    Expired,
}

/// The JOSE header members verification looks at; any other member is ignored, a
/// duplicated member refuses the token (RFC 7515 §4).
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    crit: Option<IgnoredAny>,
}

/// The registered claims every token we issue carries (RFC 7519 §4.1).
#[derive(Deserialize)]
struct Registered<'a> {
    exp: u64,
    #[serde(rename = "iat")]
    _iat: u64,
    #[serde(borrow)]
    iss: Cow<'a, str>,
}

/// What a verification requires besides a valid signature.
pub(super) struct Expectations<'a> {
    pub typ: JwtType,
    pub issuer: &'a str,
    /// `Some(now)` refuses tokens whose `exp` is not after `now`; `None` accepts expired
    /// tokens (ID token hints).
    pub now: Option<u64>,
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| VerifyError::Malformed)
}

/// Verifies a compact JWS (RFC 7515 §5.2) against the key its `kid` names: exactly three
/// base64url segments, the key's own `alg` (so neither `none` nor an algorithm swap can
/// pass), no `crit`, the expected `typ`, a valid signature, then `iss`, `iat` and `exp`
/// (RFC 7519 §4.1.4: the token is refused from the second `exp` on).
pub(super) fn verify<'k, T: DeserializeOwned>(
    token: &str,
    key_for: impl FnOnce(&str) -> Option<&'k PublicKey>,
    expect: &Expectations<'_>,
) -> Result<T, VerifyError> {
    let (signing_input, signature) = token.rsplit_once('.').ok_or(VerifyError::Malformed)?;
    let (header, payload) = signing_input.split_once('.').ok_or(VerifyError::Malformed)?;
    if payload.contains('.') {
        return Err(VerifyError::Malformed);
    }
    let header_json = decode_segment(header)?;
    let header: Header<'_> = serde_json::from_slice(&header_json).map_err(|_| VerifyError::Malformed)?;
    let key = header.kid.as_deref().and_then(key_for).ok_or(VerifyError::UnknownKey)?;
    if !expect.typ.matches(header.typ.as_deref()) {
        return Err(VerifyError::WrongType);
    }
    if header.alg != key.algorithm().as_str() {
        return Err(VerifyError::WrongAlgorithm);
    }
    if header.crit.is_some() {
        return Err(VerifyError::CriticalExtension);
    }
    if !key.verify_signature(signing_input.as_bytes(), &decode_segment(signature)?) {
        return Err(VerifyError::BadSignature);
    }
    let payload = decode_segment(payload)?;
    let registered: Registered<'_> = serde_json::from_slice(&payload).map_err(|_| VerifyError::MissingClaim)?;
    if registered.iss != expect.issuer {
        return Err(VerifyError::WrongIssuer);
    }
    if expect.now.is_some_and(|now| now >= registered.exp) {
        return Err(VerifyError::Expired);
    }
    serde_json::from_slice(&payload).map_err(|_| VerifyError::Malformed)
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
