//! A rotated-out refresh token presented again (RFC 9700 §4.14.2): a replay that revokes the
//! whole family, unless the client declared a reuse interval and this is its concurrent
//! request, which gets the very successor the first use got (idempotent, as Dex's
//! `reuseInterval`), or the client's own retry of a use the store applied late.
//!
//! The successor response is kept for the interval only, sealed with AES-256-GCM under a
//! key derived (HKDF-SHA256, RFC 5869) from the old refresh token's value, which the store
//! never holds (it keys refresh tokens by their digest): a store dump yields no usable
//! token, and only a holder of the old token can open its successor.
//!
//! Sealed form (base64url): a random 96-bit nonce, then the encryption of the JSON
//! [`TokenResponse`] with its tag. Each key seals one response (one successor per token).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::token::TokenResponse;

const HKDF_SALT: &[u8] = b"portcullis refresh successor";

/// What a reuse of a rotated-out refresh token leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Within the client's reuse interval: answer with the first use's successor again.
    Repeat,
    /// Possibly the client retrying a use the store applied after it gave up (see
    /// [`crate::store::Consumed::Reused`]): refused, nothing revoked.
    Retry,
    /// A replay: the family is revoked.
    Replay,
}

/// RFC 9700 §4.14.2 with a reuse interval: the same client presenting the token less than
/// `interval` seconds after its first use (`first_used_at`) repeats it; otherwise a use the
/// store flags as a possible retry of the client's own stalled first use is a retry, and
/// anything else a replay. With `interval` 0, every reuse but that retry is a replay.
pub fn decide(interval: u64, same_client: bool, first_used_at: u64, may_be_retry: bool, now: u64) -> Reuse {
    if !same_client {
        Reuse::Replay
    } else if now.saturating_sub(first_used_at) < interval {
        Reuse::Repeat
    } else if may_be_retry {
        Reuse::Retry
    } else {
        Reuse::Replay
    }
}

/// Why a successor could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("sealing the refresh successor failed")]
pub struct SealError;

/// The AES-256-GCM key that seals the successor of the refresh token `presented`.
fn key(presented: &str) -> Option<LessSafeKey> {
    let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(presented.as_bytes());
    let okm = prk.expand(&[], &AES_256_GCM).ok()?;
    Some(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Seals the response a use of `presented` got, for its repeats.
pub fn seal_successor(presented: &str, successor: &TokenResponse, nonce: [u8; NONCE_LEN]) -> Result<String, SealError> {
    let mut sealed = serde_json::to_vec(successor).map_err(|_| SealError)?;
    let key = key(presented).ok_or(SealError)?;
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed)
        .map_err(|_| SealError)?;
    let mut out = nonce.to_vec();
    out.append(&mut sealed);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

/// Opens the successor of `presented`; `None` when it was sealed for another token or altered.
pub fn open_successor(presented: &str, sealed: &str) -> Option<TokenResponse> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    let (nonce, ciphertext) = bytes.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut ciphertext = ciphertext.to_vec();
    let plaintext = key(presented)?.open_in_place(nonce, Aad::empty(), &mut ciphertext).ok()?;
    serde_json::from_slice(plaintext).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response() -> TokenResponse {
        TokenResponse {
            access_token: "at".into(),
            token_type: "Bearer".into(),
            expires_in: 300,
            scope: Some("openid offline_access".into()),
            refresh_token: Some("next".into()),
            id_token: Some("idt".into()),
        }
    }

    #[test]
    fn rfc9700_4_14_2_strict_policy_revokes_every_reuse_but_a_stalled_retry() {
        assert_eq!(decide(0, true, 100, false, 100), Reuse::Replay, "even a concurrent request");
        assert_eq!(decide(0, true, 100, true, 105), Reuse::Retry);
        assert_eq!(decide(0, false, 100, true, 105), Reuse::Replay, "another client never retries");
    }

    #[test]
    fn rfc9700_4_14_2_reuse_interval_repeats_then_revokes() {
        assert_eq!(decide(3, true, 100, false, 100), Reuse::Repeat);
        assert_eq!(decide(3, true, 100, false, 102), Reuse::Repeat);
        assert_eq!(decide(3, true, 100, false, 103), Reuse::Replay, "the interval is over");
        assert_eq!(decide(3, true, 100, true, 110), Reuse::Retry);
        assert_eq!(decide(3, false, 100, false, 100), Reuse::Replay);
    }

    #[test]
    fn successor_opens_only_with_the_old_token() {
        let sealed = seal_successor("old-token", &response(), [7; NONCE_LEN]).unwrap();
        let opened = open_successor("old-token", &sealed).unwrap();
        assert_eq!(serde_json::to_value(opened).unwrap(), serde_json::to_value(response()).unwrap());
        assert!(!sealed.contains("next") && !sealed.contains("idt"), "nothing in the clear");
        assert!(open_successor("other-token", &sealed).is_none());
        let mut tampered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open_successor("old-token", &URL_SAFE_NO_PAD.encode(tampered)).is_none());
        assert!(open_successor("old-token", "AAAA").is_none());
    }
}
