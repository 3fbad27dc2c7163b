//! Proof Key for Code Exchange (RFC 7636), S256 only (RFC 9700 §2.1.1).
//!
//! The authorization endpoint checks and stores the `code_challenge`
//! ([`check_challenge`]); the token endpoint checks the `code_verifier` against it
//! ([`verify`]).

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::vocabulary::OAuthError;

/// The only transformation accepted (RFC 7636 §4.2, RFC 9700 §2.1.1).
pub const METHOD_S256: &str = "S256";

/// Length of an S256 challenge: BASE64URL of a 32-byte SHA-256 digest, unpadded.
const S256_CHALLENGE_LEN: usize = 43;

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`.
const VERIFIER_MIN_LEN: usize = 43;
const VERIFIER_MAX_LEN: usize = 128;

/// RFC 7636 §4.3 / §4.4.1: checks the `code_challenge` and `code_challenge_method` of an
/// authorization request and returns the challenge to store with the code.
///
/// Only `S256` is accepted: `plain` (and an omitted method, which §4.3 defines as `plain`)
/// is refused, as RFC 9700 §2.1.1 recommends. `required` is the client's `require_pkce`
/// (RFC 9700 §2.1.1: public clients must use PKCE).
pub fn check_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
    required: bool,
) -> Result<Option<String>, OAuthError> {
    let Some(challenge) = challenge else {
        if method.is_some() {
            return Err(OAuthError::invalid_request("code_challenge_method was sent without code_challenge"));
        }
        if required {
            return Err(OAuthError::invalid_request("PKCE code_challenge is required for this client"));
        }
        return Ok(None);
    };
    match method {
        Some(METHOD_S256) => {}
        Some("plain") => {
            return Err(OAuthError::invalid_request("code_challenge_method plain is not supported; use S256"));
        }
        Some(_) => return Err(OAuthError::invalid_request("unsupported code_challenge_method; use S256")),
        None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method is required: the default plain is not supported; use S256",
            ));
        }
    }
    if !is_s256_challenge(challenge) {
        return Err(OAuthError::invalid_request(
            "code_challenge must be 43 base64url characters without padding (an S256 digest)",
        ));
    }
    Ok(Some(challenge.to_owned()))
}

/// RFC 7636 §4.2: an S256 challenge is the unpadded base64url encoding of 32 bytes.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == S256_CHALLENGE_LEN && URL_SAFE_NO_PAD.decode(challenge).is_ok_and(|bytes| bytes.len() == 32)
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn is_valid_verifier(verifier: &str) -> bool {
    (VERIFIER_MIN_LEN..=VERIFIER_MAX_LEN).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.2: `code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// RFC 7636 §4.5 / §4.6: checks the token request's `code_verifier` against the challenge
/// stored with the code, in constant time.
///
/// A verifier sent for a code issued without a challenge is refused too (RFC 9700 §2.1.1,
/// PKCE downgrade protection): an attacker who injected a stolen code would otherwise pass.
pub fn verify(verifier: Option<&str>, challenge: Option<&str>) -> Result<(), OAuthError> {
    let (challenge, verifier) = match (challenge, verifier) {
        (None, None) => return Ok(()),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier was sent but the authorization request had no code_challenge",
            ));
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (Some(challenge), Some(verifier)) => (challenge, verifier),
    };
    if !is_valid_verifier(verifier) {
        return Err(OAuthError::invalid_grant("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]"));
    }
    let computed = s256(verifier);
    if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant("code_verifier does not match"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::ErrorCode;

    /// RFC 7636 Appendix B.
    const APPENDIX_B_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const APPENDIX_B_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn request_error(challenge: Option<&str>, method: Option<&str>, required: bool) -> OAuthError {
        let err = check_challenge(challenge, method, required).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        err
    }

    fn grant_error(verifier: Option<&str>, challenge: Option<&str>) -> OAuthError {
        let err = verify(verifier, challenge).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidGrant);
        err
    }

    #[test]
    fn rfc7636_appendix_b_s256_test_vector() {
        assert_eq!(s256(APPENDIX_B_VERIFIER), APPENDIX_B_CHALLENGE);
        assert_eq!(verify(Some(APPENDIX_B_VERIFIER), Some(APPENDIX_B_CHALLENGE)), Ok(()));
    }

    #[test]
    fn rfc7636_4_3_s256_challenge_is_accepted_and_returned() {
        let stored = check_challenge(Some(APPENDIX_B_CHALLENGE), Some("S256"), true).unwrap();
        assert_eq!(stored.as_deref(), Some(APPENDIX_B_CHALLENGE));
    }

    #[test]
    fn rfc9700_2_1_1_plain_method_is_refused() {
        let err = request_error(Some(APPENDIX_B_CHALLENGE), Some("plain"), false);
        assert_eq!(err.description, "code_challenge_method plain is not supported; use S256");
    }

    #[test]
    fn rfc7636_4_3_omitted_method_means_plain_and_is_refused() {
        let err = request_error(Some(APPENDIX_B_CHALLENGE), None, false);
        assert_eq!(err.description, "code_challenge_method is required: the default plain is not supported; use S256");
    }

    #[test]
    fn rfc7636_4_4_1_unknown_method_is_invalid_request() {
        for method in ["s256", "S512", "sha256", "S256 "] {
            let err = request_error(Some(APPENDIX_B_CHALLENGE), Some(method), false);
            assert_eq!(err.description, "unsupported code_challenge_method; use S256", "{method}");
        }
    }

    #[test]
    fn rfc7636_4_3_method_without_challenge_is_invalid_request() {
        let err = request_error(None, Some("S256"), false);
        assert_eq!(err.description, "code_challenge_method was sent without code_challenge");
    }

    #[test]
    fn rfc9700_2_1_1_missing_challenge_is_refused_when_client_requires_pkce() {
        let err = request_error(None, None, true);
        assert_eq!(err.description, "PKCE code_challenge is required for this client");
    }

    #[test]
    fn rfc7636_4_3_challenge_is_optional_when_client_does_not_require_pkce() {
        assert_eq!(check_challenge(None, None, false), Ok(None));
    }

    #[test]
    fn rfc7636_4_2_challenge_must_be_43_base64url_characters() {
        let too_short = &APPENDIX_B_CHALLENGE[..42];
        let too_long = format!("{APPENDIX_B_CHALLENGE}A");
        let padded = format!("{APPENDIX_B_CHALLENGE}=");
        let standard_alphabet = APPENDIX_B_CHALLENGE.replace('-', "+");
        let bad_char = APPENDIX_B_CHALLENGE.replace('-', ".");
        // 43 characters whose last one carries non-zero bits beyond the 32 bytes: no S256 output.
        let non_canonical = format!("{}N", &APPENDIX_B_CHALLENGE[..42]);
        for challenge in [too_short, &too_long, &padded, &standard_alphabet, &bad_char, &non_canonical] {
            let err = request_error(Some(challenge), Some("S256"), false);
            assert_eq!(
                err.description, "code_challenge must be 43 base64url characters without padding (an S256 digest)",
                "{challenge}"
            );
        }
    }

    #[test]
    fn rfc7636_4_6_matching_verifier_is_accepted() {
        let verifier = "a".repeat(128);
        assert_eq!(verify(Some(&verifier), Some(&s256(&verifier))), Ok(()));
    }

    #[test]
    fn rfc7636_4_6_wrong_verifier_is_refused() {
        let wrong = "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let err = grant_error(Some(wrong), Some(APPENDIX_B_CHALLENGE));
        assert_eq!(err.description, "code_verifier does not match");
    }

    #[test]
    fn rfc7636_4_6_verifier_equal_to_the_challenge_is_refused() {
        // What a client that silently fell back to `plain` would send.
        let err = grant_error(Some(APPENDIX_B_CHALLENGE), Some(APPENDIX_B_CHALLENGE));
        assert_eq!(err.description, "code_verifier does not match");
    }

    #[test]
    fn rfc7636_4_5_missing_verifier_is_refused_when_a_challenge_was_stored() {
        let err = grant_error(None, Some(APPENDIX_B_CHALLENGE));
        assert_eq!(err.description, "code_verifier is required");
    }

    #[test]
    fn rfc7636_4_1_verifier_length_must_be_43_to_128() {
        for verifier in ["a".repeat(42), "a".repeat(129), String::new()] {
            let challenge = s256(&verifier);
            let err = grant_error(Some(&verifier), Some(&challenge));
            assert_eq!(err.description, "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]");
        }
        let shortest = "a".repeat(43);
        assert_eq!(verify(Some(&shortest), Some(&s256(&shortest))), Ok(()));
    }

    #[test]
    fn rfc7636_4_1_verifier_must_use_unreserved_characters_only() {
        for bad in ['+', '/', '=', ' ', '%', '\u{e9}'] {
            let verifier = format!("{}{bad}", "a".repeat(43));
            let challenge = s256(&verifier);
            let err = grant_error(Some(&verifier), Some(&challenge));
            assert_eq!(err.description, "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]", "{bad}");
        }
        let all_unreserved = "ABCXYZabcxyz0189-._~-._~-._~-._~-._~-._~-._~";
        assert_eq!(verify(Some(all_unreserved), Some(&s256(all_unreserved))), Ok(()));
    }

    #[test]
    fn rfc9700_2_1_1_verifier_without_stored_challenge_is_refused() {
        let err = grant_error(Some(APPENDIX_B_VERIFIER), None);
        assert_eq!(err.description, "code_verifier was sent but the authorization request had no code_challenge");
    }

    #[test]
    fn rfc7636_4_5_no_challenge_and_no_verifier_is_accepted() {
        assert_eq!(verify(None, None), Ok(()));
    }
}
