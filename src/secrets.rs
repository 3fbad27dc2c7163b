//! Hashing and checking of client secrets and user passwords, and random values.
//!
//! Both are stored as argon2id PHC strings. Checking a client secret with argon2 on every
//! token request would make the hash the hot path, so a secret verified once is remembered
//! in process memory as a SHA-256 digest, bound to the exact stored hash it was checked
//! against: later requests compare digests in constant time, and a changed secret (a new
//! PHC string) is verified with argon2 again.
//!
//! Every argon2 computation of a request (secret check, password check, hashing a
//! registered client's secret) runs off the async workers and holds one of a few permits
//! (one per core): each takes 19 MiB for tens of milliseconds, so a burst — a crowd of
//! logins, a client's first concurrent requests, a flood of wrong secrets — queues instead
//! of running hundreds at once on Tokio's blocking pool (gigabytes of memory, no faster
//! answers).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret value from a request (a client secret, a password): wiped from memory when
/// dropped, and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself, for checking it; never for logging.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Failures hashing a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("the system random number generator failed")]
    Random,
}

/// Hashes a password or client secret as an argon2id PHC string with a random salt.
pub fn hash(secret: &str) -> Result<String, SecretError> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `phc` is a well-formed argon2id PHC string.
pub fn is_argon2id_phc(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| hash.algorithm.as_str() == "argon2id")
}

/// Checks a secret against an argon2id PHC string (constant time inside argon2).
pub fn verify(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(secret.as_bytes(), &hash).is_ok())
}

/// `n` random bytes from the system CSPRNG, base64url-encoded.
pub fn random_token(n: usize) -> Result<String, SecretError> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).map_err(|_| SecretError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of a high-entropy token (code, refresh token), base64url: the key it is
/// stored under, so a store dump reveals no usable token.
pub fn token_digest(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(token))
}

/// A new client secret: 256 bits of randomness.
pub fn generate_client_secret() -> Result<String, SecretError> {
    random_token(32)
}

/// Most clients whose verified secret is remembered; the memo is cleared when full.
const MEMO_CAPACITY: usize = 10_000;

/// Remembers secrets already verified with argon2, per client, and bounds how many argon2
/// computations run at once.
#[derive(Debug)]
pub struct ClientSecretVerifier {
    memo: RwLock<HashMap<String, (String, [u8; 32])>>,
    argon2_permits: Arc<tokio::sync::Semaphore>,
}

impl Default for ClientSecretVerifier {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self { memo: RwLock::default(), argon2_permits: Arc::new(tokio::sync::Semaphore::new(cores)) }
    }
}

impl ClientSecretVerifier {
    /// Checks a client secret: from the memo when this client's current hash was verified
    /// before, with argon2 otherwise. Concurrent first requests of a client wait for one
    /// argon2 run rather than each doing their own. `None` when the check could not run.
    pub async fn verify_client_secret(self: &Arc<Self>, client_id: &str, secret: &str, phc: &str) -> Option<bool> {
        if let Some(known) = self.check_memo(client_id, secret, phc) {
            return Some(known);
        }
        let permit = Arc::clone(&self.argon2_permits).acquire_owned().await.ok()?;
        if let Some(known) = self.check_memo(client_id, secret, phc) {
            return Some(known);
        }
        let (verifier, client_id, secret, phc) =
            (Arc::clone(self), client_id.to_owned(), SecretString::new(secret), phc.to_owned());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verifier.verify_and_remember(&client_id, secret.expose(), &phc)
        })
        .await
        .ok()
    }

    /// Hashes a new secret with argon2, within the permits. `None` when it could not run.
    pub async fn hash(&self, secret: SecretString) -> Option<Result<String, SecretError>> {
        let permit = Arc::clone(&self.argon2_permits).acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash(secret.expose())
        })
        .await
        .ok()
    }

    /// Checks a user's password with argon2, within the permits. `None` when the check
    /// could not run.
    pub async fn verify_password(&self, password: SecretString, phc: String) -> Option<bool> {
        // The permit moves into the blocking task, so a caller that gives up (a closed
        // connection) does not free it before argon2 is done.
        let permit = Arc::clone(&self.argon2_permits).acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify(password.expose(), &phc)
        })
        .await
        .ok()
    }

    /// The fast path: `Some(answer)` when this client's current hash was verified before.
    pub fn check_memo(&self, client_id: &str, secret: &str, phc: &str) -> Option<bool> {
        let memo = self.memo.read().ok()?;
        let (known_phc, digest) = memo.get(client_id)?;
        (known_phc == phc).then(|| bool::from(digest.ct_eq(&sha256(secret))))
    }

    /// The slow path: argon2, and on success remember the secret's digest.
    pub fn verify_and_remember(&self, client_id: &str, secret: &str, phc: &str) -> bool {
        if !verify(secret, phc) {
            return false;
        }
        if let Ok(mut memo) = self.memo.write() {
            if memo.len() >= MEMO_CAPACITY {
                memo.clear();
            }
            memo.insert(client_id.to_owned(), (phc.to_owned(), sha256(secret)));
        }
        true
    }
}

fn sha256(value: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, value.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_argon2id_and_verify() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(is_argon2id_phc(&a));
        assert!(verify("correct horse", &a));
        assert!(!verify("wrong", &a));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn only_argon2id_phc_strings_are_accepted() {
        assert!(!is_argon2id_phc("plaintext"));
        assert!(!is_argon2id_phc("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$dGVzdA"));
    }

    /// The memo first, argon2 on a miss: what the provider's client authentication does.
    fn check(verifier: &ClientSecretVerifier, client_id: &str, secret: &str, phc: &str) -> bool {
        verifier
            .check_memo(client_id, secret, phc)
            .unwrap_or_else(|| verifier.verify_and_remember(client_id, secret, phc))
    }

    #[test]
    fn memo_accepts_the_right_secret_and_refuses_others() {
        let verifier = ClientSecretVerifier::default();
        let phc = hash("s3cret").unwrap();
        assert!(!check(&verifier, "app", "wrong", &phc));
        assert!(check(&verifier, "app", "s3cret", &phc));
        assert_eq!(verifier.check_memo("app", "s3cret", &phc), Some(true), "answered from the memo now");
        assert!(check(&verifier, "app", "s3cret", &phc));
        assert!(!check(&verifier, "app", "wrong", &phc));
    }

    #[test]
    fn memo_is_bound_to_the_stored_hash() {
        let verifier = ClientSecretVerifier::default();
        let old = hash("old").unwrap();
        assert!(check(&verifier, "app", "old", &old));
        let new = hash("new").unwrap();
        assert!(!check(&verifier, "app", "old", &new));
        assert!(check(&verifier, "app", "new", &new));
    }

    #[test]
    fn secret_string_debug_redacts_the_secret() {
        let secret = SecretString::new("hunter2-client-secret");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-client-secret");
    }

    #[test]
    fn random_tokens_differ() {
        assert_ne!(random_token(16).unwrap(), random_token(16).unwrap());
        assert_eq!(generate_client_secret().unwrap().len(), 43);
    }
}
