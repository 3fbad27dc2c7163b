//! The store's data epoch: a random id the store keeps with no expiry, like a claimed
//! secret. It is missing exactly when the store lost its data — a Redis restarted without
//! persistence, a failover to an empty replica, `FLUSHALL` — or was never used; whoever
//! finds it missing creates a new one, and everyone who remembers the old one learns that
//! what was declared must be applied again and that nothing recorded before (revocations
//! included) can be relied on.

use super::error::StoreError;
use super::ports::Coordination;
use crate::secrets;

/// The name the epoch is claimed under (`P:v1:claimed:epoch` in Redis).
pub const EPOCH_CLAIM: &str = "epoch";

/// The store's current data epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch {
    /// Random, 128 bits.
    pub id: String,
    /// This call created it: the store held none, so its data was lost (or it is new).
    pub created: bool,
}

/// Reads the store's data epoch, creating one when there is none. Replicas racing to
/// create it agree on the first one kept.
pub async fn epoch(store: &(impl Coordination + ?Sized)) -> Result<Epoch, StoreError> {
    let candidate = secrets::random_token(16)
        .map_err(|error| StoreError::Unavailable(format!("generating a data epoch: {error}")))?;
    let id = store.claim(EPOCH_CLAIM, &candidate).await?;
    let created = id == candidate;
    Ok(Epoch { id, created })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn the_first_reader_creates_the_epoch_and_later_readers_see_the_same_one() {
        let store = MemoryStore::new(Clock::system());
        let first = epoch(&store).await.unwrap();
        assert!(first.created);
        assert_eq!(first.id.len(), 22, "16 random bytes, base64url");
        let again = epoch(&store).await.unwrap();
        assert_eq!(again, Epoch { id: first.id, created: false });
    }
}
