//! Access tokens bound to the store's data epoch, so revocations lost with the store's data
//! fail closed: a token names the epoch it was issued under (`pcl_ep`, a short hash of the
//! epoch id), and a token from another epoch — or any token while the store has none,
//! having just lost its data — is refused as if revoked.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Bytes of the epoch id's SHA-256 a token carries: enough that two epochs never collide
/// in practice, short enough to add 12 characters to a token.
const TAG_BYTES: usize = 9;

/// The `pcl_ep` claim of tokens issued under the data epoch `epoch_id`.
pub fn token_epoch(epoch_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(&digest(&SHA256, epoch_id.as_bytes()).as_ref()[..TAG_BYTES])
}

/// Whether a token's `pcl_ep` names the store's current data epoch. A token without the
/// claim, or a store without an epoch (its data was lost and no replica has noticed
/// yet), never passes.
pub fn issued_in_current_epoch(token_epoch_claim: Option<&str>, store_epoch_id: Option<&str>) -> bool {
    match (token_epoch_claim, store_epoch_id) {
        (Some(claim), Some(id)) => claim == token_epoch(id),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_of_the_current_epoch_passes() {
        assert!(issued_in_current_epoch(Some(&token_epoch("epoch-1")), Some("epoch-1")));
    }

    #[test]
    fn a_token_issued_before_the_data_was_lost_is_refused() {
        assert!(!issued_in_current_epoch(Some(&token_epoch("epoch-1")), Some("epoch-2")));
    }

    #[test]
    fn every_token_is_refused_while_the_store_has_no_epoch() {
        assert!(!issued_in_current_epoch(Some(&token_epoch("epoch-1")), None));
        assert!(!issued_in_current_epoch(None, None));
    }

    #[test]
    fn a_token_without_an_epoch_is_refused() {
        assert!(!issued_in_current_epoch(None, Some("epoch-1")));
    }

    #[test]
    fn the_claim_is_a_short_hash_that_does_not_reveal_the_epoch_id() {
        let claim = token_epoch("the-epoch-id");
        assert_eq!(claim.len(), 12);
        assert_ne!(claim, token_epoch("the-epoch-iD"));
        assert!(!claim.contains("epoch"));
    }
}
