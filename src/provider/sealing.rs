//! The master key that seals pending authorization requests into the browser's forms
//! ([`crate::protocol::pending`]), shared by every replica through the store the way
//! generated client secrets are: the first replica to need one claims a random key
//! ([`Coordination::claim`]) and every other reads it back. `dev`'s store is new at each
//! start, so its key is random per process.
//!
//! Each replica reads the key again at most once a minute, so one that changed (the store
//! lost its data, or an operator deleted `claimed:sealing-key` to rotate it) is picked up
//! everywhere within a minute; the previous key keeps opening forms for one interaction
//! lifetime. Losing the key costs only the logins in flight: their pages have expired.

use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::aead::NONCE_LEN;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::protocol::authorize::RedirectableError;
use crate::protocol::pending::{self, LIFETIME, MasterKey, OpenError, PendingRequest, SealError, Sealable};
use crate::secrets::SecretError;
use crate::store::{Coordination, StoreError};
use crate::vocabulary::OAuthError;

/// The name the master key is claimed under.
const CLAIM: &str = "sealing-key";

/// How often, at most, a replica reads the master key again, in seconds.
const REREAD: u64 = 60;

/// Why a pending request could not be sealed or opened (the pages answer each in
/// [`super::error::PageError`]).
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    /// The request is too large to carry: the client's error, for its verified redirect URI.
    #[error("{}", .0.error.description)]
    TooLarge(Box<RedirectableError>),
    /// The form's lifetime is over, or it was sealed with a key no longer known.
    #[error("the form has expired")]
    Expired,
    /// The form was not sealed by us for this browser and CSRF token.
    #[error("the form was not sealed for this browser")]
    Forged,
    #[error("sealing failed: {0}")]
    Crypto(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This replica's copy of the master key.
#[derive(Default)]
pub struct Sealer {
    keys: Mutex<Option<Keys>>,
}

#[derive(Clone)]
struct Keys {
    current: Arc<MasterKey>,
    /// The key before the current one, and until when it still opens forms.
    previous: Option<(Arc<MasterKey>, u64)>,
    read_at: u64,
}

impl Sealer {
    /// Seals `pending` for its page. A request too large to carry is the client's error,
    /// sent back to its (verified) redirect URI.
    pub async fn seal(
        &self,
        store: &dyn Coordination,
        now: u64,
        pending: &PendingRequest,
    ) -> Result<String, SealingError> {
        self.seal_any(store, now, pending).await?.map_err(|error| match error {
            SealError::TooLarge => SealingError::TooLarge(Box::new(RedirectableError {
                error: OAuthError::invalid_request(error.to_string()),
                redirect_uri: pending.request.redirect_uri.clone(),
                state: pending.request.state.clone(),
                response_mode: pending.request.response_mode,
            })),
            SealError::Crypto => SealingError::Crypto(error.to_string()),
        })
    }

    /// Seals anything else a browser carries (an upstream sign-in's cookie): `Ok(Err)` when
    /// it cannot be.
    pub async fn seal_any<T: Sealable>(
        &self,
        store: &dyn Coordination,
        now: u64,
        carried: &T,
    ) -> Result<Result<String, SealError>, SealingError> {
        let keys = self.keys(store, now).await?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| SecretError::Random)?;
        Ok(pending::seal(&keys.current, carried, nonce))
    }

    /// Opens what a form (or cookie) carries sealed, for this browser and CSRF token.
    pub async fn open<T: Sealable>(
        &self,
        store: &dyn Coordination,
        now: u64,
        sealed: &str,
        browser: Option<&str>,
        csrf_token: &str,
    ) -> Result<T, SealingError> {
        let keys = self.keys(store, now).await?;
        let previous = keys.previous.as_ref().filter(|(_, until)| now < *until).map(|(key, _)| key.as_ref());
        let candidates: Vec<&MasterKey> = std::iter::once(keys.current.as_ref()).chain(previous).collect();
        pending::open(&candidates, sealed, now, browser, csrf_token).map_err(|error| match error {
            OpenError::Expired => SealingError::Expired,
            OpenError::Forged => SealingError::Forged,
        })
    }

    /// The keys, read from the store when this replica has none or read them over a
    /// minute ago.
    async fn keys(&self, store: &dyn Coordination, now: u64) -> Result<Keys, SealingError> {
        let known = self.keys.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(keys) = known.as_ref().filter(|keys| now < keys.read_at.saturating_add(REREAD)) {
            return Ok(keys.clone());
        }
        let mut candidate = [0u8; 32];
        SystemRandom::new().fill(&mut candidate).map_err(|_| SecretError::Random)?;
        let kept = store.claim(CLAIM, &MasterKey::new(candidate).to_base64()).await?;
        let current = MasterKey::from_base64(&kept)
            .ok_or_else(|| StoreError::Corrupt("the claimed sealing key is not 32 bytes of base64url".into()))?;
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let updated = match keys.take() {
            Some(old) if *old.current == current => Keys { read_at: now, ..old },
            Some(old) => Keys {
                current: Arc::new(current),
                previous: Some((old.current, now.saturating_add(LIFETIME))),
                read_at: now,
            },
            None => Keys { current: Arc::new(current), previous: None, read_at: now },
        };
        *keys = Some(updated.clone());
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::store::MemoryStore;
    use crate::vocabulary::{AuthorizationRequest, ClaimsRequest, Prompt, ResponseMode, Scope};

    fn pending(now: u64) -> PendingRequest {
        PendingRequest {
            browser: "b".into(),
            csrf_token: "c".into(),
            issued_at: now,
            sid: None,
            request: AuthorizationRequest {
                client_id: "app".into(),
                redirect_uri: "https://app.example/cb".into(),
                scope: Scope::parse("openid").unwrap(),
                state: None,
                nonce: None,
                prompt: Prompt::default(),
                max_age: None,
                code_challenge: None,
                login_hint: None,
                id_token_hint: None,
                ui_locales: None,
                response_mode: ResponseMode::Query,
                claims: ClaimsRequest::default(),
            },
        }
    }

    #[tokio::test]
    async fn replicas_sharing_a_store_open_each_others_forms() {
        let store = MemoryStore::new(Clock::system());
        let now = Clock::system().now();
        let (one, other) = (Sealer::default(), Sealer::default());
        let sealed = one.seal(&store, now, &pending(now)).await.unwrap();
        assert_eq!(other.open::<PendingRequest>(&store, now, &sealed, Some("b"), "c").await.unwrap(), pending(now));
        let elsewhere = Sealer::default();
        let foreign = MemoryStore::new(Clock::system());
        assert!(matches!(
            elsewhere.open::<PendingRequest>(&foreign, now, &sealed, Some("b"), "c").await,
            Err(SealingError::Expired)
        ));
    }

    #[tokio::test]
    async fn a_replaced_key_is_read_within_a_minute_and_the_previous_one_opens_for_a_lifetime() {
        let store = MemoryStore::new(Clock::system());
        let now = Clock::system().now();
        let sealer = Sealer::default();
        let before = sealer.seal(&store, now, &pending(now)).await.unwrap();
        let replaced = MemoryStore::new(Clock::system());
        let later = now + REREAD;
        let after = sealer.seal(&replaced, later, &pending(later)).await.unwrap();
        assert!(
            sealer.open::<PendingRequest>(&replaced, later, &before, Some("b"), "c").await.is_ok(),
            "the previous key still opens"
        );
        assert!(sealer.open::<PendingRequest>(&replaced, later, &after, Some("b"), "c").await.is_ok());
        let fresh = Sealer::default();
        assert!(
            matches!(
                fresh.open::<PendingRequest>(&replaced, later, &before, Some("b"), "c").await,
                Err(SealingError::Expired)
            ),
            "only the new key is shared now"
        );
    }
}
