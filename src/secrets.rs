//! Hashing and checking of client secrets and user passwords, and random values.
//!
//! Passwords and the client secrets an operator or a developer chose are stored as argon2id
//! PHC strings. The client secrets Portcullis generates itself (256 random bits, see
//! [`generate_client_secret`]) are stored as their SHA-256 instead, `$sha256$<base64url>`
//! ([`hash_generated`]): argon2 slows down guessing a secret from its hash, which only
//! matters for a secret that can be guessed; no one can search 2^256 values, so the plain
//! digest is as useless to someone who reads the store, and checking it costs a digest, not
//! 19 MiB and tens of milliseconds. A keyed hash (HMAC with a pepper) would add nothing
//! for such secrets but a key to distribute, rotate and lose. A generated secret that is
//! later replaced by hand in its Secret is hashed with argon2 like any other chosen one.
//!
//! Checking an argon2-hashed client secret on every
//! token request would make the hash the hot path, so a secret verified once is remembered
//! in process memory as a SHA-256 digest, bound to the exact stored hash it was checked
//! against: later requests compare digests in constant time, and a changed secret (a new
//! PHC string) is verified with argon2 again.
//!
//! Every argon2 computation of a request (secret check, password check, hashing a
//! registered client's secret) runs off the async workers and holds one of a few permits
//! (one per core): each takes 19 MiB for tens of milliseconds, so a burst — a crowd of
//! logins, a client's first concurrent requests — queues instead of running hundreds at
//! once on Tokio's blocking pool (gigabytes of memory, no faster answers). A secret the
//! memo answers never waits for a permit, and the provider throttles failures before
//! they reach argon2, so a flood of wrong secrets cannot fill the queue.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
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

/// Hashes a password or client secret as an argon2id PHC string with a random salt, under
/// the policy: argon2id v1.3, 19 MiB, two passes, one lane, 32 bytes (OWASP's
/// recommendation, and the argon2 crate's default).
pub fn hash(secret: &str) -> Result<String, SecretError> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// What one argon2 computation costs: its memory, passes and lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Work {
    /// The policy of [`hash`].
    pub const POLICY: Work =
        Work { memory_kib: Params::DEFAULT_M_COST, passes: Params::DEFAULT_T_COST, lanes: Params::DEFAULT_P_COST };

    /// The parameters a PHC string was made with.
    pub fn of(phc: &str) -> Option<Work> {
        let params = PasswordHash::new(phc).ok().and_then(|hash| Params::try_from(&hash).ok())?;
        Some(Work { memory_kib: params.m_cost(), passes: params.t_cost(), lanes: params.p_cost() })
    }

    /// KiB-passes, memory times passes: what the time of a computation grows with (lanes
    /// share the memory and are computed one after another).
    pub const fn amount(self) -> u64 {
        self.memory_kib as u64 * self.passes as u64
    }
}

/// Whether a stored hash was made outside the policy of [`hash`] (another argon2 tool's
/// defaults, say), so that it should be made again at the next successful login: checking
/// it costs another time than checking ours, which tells whether the user exists.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return true };
    let Ok(params) = Params::try_from(&hash) else { return true };
    hash.algorithm.as_str() != "argon2id"
        || hash.version != Some(Version::V0x13.into())
        || Work::of(phc) != Some(Work::POLICY)
        || params.output_len() != Some(Params::DEFAULT_OUTPUT_LEN)
}

/// Runs argon2 with the memory and lanes of `floor` and as many passes as make up the work
/// `floor` asks for beyond `done` (to the nearest pass): the rest of a check that has
/// nothing to check, or whose hash is cheaper than the floor.
fn burn(floor: Work, done: u64) {
    let memory = u64::from(floor.memory_kib.max(1));
    let remaining = floor.amount().saturating_sub(done);
    let Ok(passes) = u32::try_from((remaining + memory / 2) / memory) else { return };
    let Ok(params) = Params::new(floor.memory_kib, passes, floor.lanes, None) else { return };
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let _ = Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password_into(
        b"no password to check",
        b"portcullis padding salt",
        &mut output,
    );
}

/// Checks a password against the user's hash (`None`: no such user), then does argon2
/// work up to `floor`: with the floor's memory, so that an unknown user, a user with our
/// hash and a user with a costlier one take about the same time.
pub fn check_password(password: &str, phc: Option<&str>, floor: Work) -> bool {
    let (matched, done) = match phc {
        Some(phc) => (verify(password, phc), Work::of(phc).map_or(0, Work::amount)),
        None => (false, 0),
    };
    burn(floor, done);
    matched
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
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(n)?))
}

/// `n` bytes from the system's secure random source.
pub fn random_bytes(n: usize) -> Result<Vec<u8>, SecretError> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new().fill(&mut bytes).map_err(|_| SecretError::Random)?;
    Ok(bytes)
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

/// How the hash of a generated client secret starts (see the module documentation).
const GENERATED_HASH_PREFIX: &str = "$sha256$";

/// The stored hash of a secret from [`generate_client_secret`]: its SHA-256, tagged. Only
/// for those: a secret a person chose is hashed with [`hash`].
pub fn hash_generated(secret: &str) -> String {
    format!("{GENERATED_HASH_PREFIX}{}", token_digest(secret))
}

/// Checks a secret against the hash of a generated one, in constant time; `None` when
/// `hash` is not such a hash (an argon2id PHC string, checked with [`verify`]).
pub fn check_generated(secret: &str, hash: &str) -> Option<bool> {
    let expected = hash.strip_prefix(GENERATED_HASH_PREFIX)?;
    Some(bool::from(token_digest(secret).as_bytes().ct_eq(expected.as_bytes())))
}

/// Checks a client secret against either kind of stored hash.
pub fn verify_client_secret(secret: &str, hash: &str) -> bool {
    check_generated(secret, hash).unwrap_or_else(|| verify(secret, hash))
}

/// Whether a stored client-secret hash can be kept as it is when its secret verifies: the
/// digest of a generated secret, or an argon2id hash made under the policy.
pub fn is_current_client_secret_hash(hash: &str) -> bool {
    hash.starts_with(GENERATED_HASH_PREFIX) || !needs_rehash(hash)
}

/// Most clients whose verified secret is remembered; a full memo forgets one client to make
/// room, never all of them (each forgotten client costs an argon2 run).
const MEMO_CAPACITY: usize = 10_000;

/// Remembers secrets already verified with argon2, per client, bounds how many argon2
/// computations run at once, and lets a client's secret checks that need argon2 take turns.
#[derive(Debug)]
pub struct ClientSecretVerifier {
    memo: RwLock<HashMap<String, (String, [u8; 32])>>,
    argon2_permits: Arc<tokio::sync::Semaphore>,
    /// One lock per client whose secret is being checked with argon2 (dropped with its
    /// last holder).
    turns: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl Default for ClientSecretVerifier {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            memo: RwLock::default(),
            argon2_permits: Arc::new(tokio::sync::Semaphore::new(cores)),
            turns: Mutex::default(),
        }
    }
}

impl ClientSecretVerifier {
    /// Checks a client secret: against its digest when it was generated, from the memo when
    /// this client's current hash was verified before, with argon2 otherwise. Concurrent first requests of a client wait for one
    /// argon2 run rather than each doing their own. `None` when the check could not run.
    pub async fn verify_client_secret(self: &Arc<Self>, client_id: &str, secret: &str, phc: &str) -> Option<bool> {
        if let Some(matched) = check_generated(secret, phc) {
            return Some(matched);
        }
        if let Some(known) = self.check_memo(client_id, secret, phc) {
            return Some(known);
        }
        let _turn = self.turn(client_id).await;
        if let Some(known) = self.check_memo(client_id, secret, phc) {
            return Some(known);
        }
        self.verify_with_argon2(client_id, secret, phc).await
    }

    /// Waits for this client's turn at argon2: whoever holds it may be verifying the very
    /// secret the next one brings, which the memo then answers. Other clients never wait.
    pub async fn turn(&self, client_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
            if turns.len() >= MEMO_CAPACITY {
                turns.retain(|_, turn| turn.strong_count() > 0);
            }
            match turns.get(client_id).and_then(Weak::upgrade) {
                Some(turn) => turn,
                None => {
                    let turn = Arc::new(tokio::sync::Mutex::new(()));
                    turns.insert(client_id.to_owned(), Arc::downgrade(&turn));
                    turn
                }
            }
        };
        turn.lock_owned().await
    }

    /// Verifies a client secret with argon2 within the permits, remembering it when right.
    /// `None` when the check could not run.
    pub async fn verify_with_argon2(self: &Arc<Self>, client_id: &str, secret: &str, phc: &str) -> Option<bool> {
        let permit = Arc::clone(&self.argon2_permits).acquire_owned().await.ok()?;
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

    /// [`check_password`] within the permits: the user's hash (`None` for an unknown user)
    /// and the work every check costs at least. `None` when the check could not run.
    pub async fn check_password(&self, password: SecretString, phc: Option<String>, floor: Work) -> Option<bool> {
        // The permit moves into the blocking task, so a caller that gives up (a closed
        // connection) does not free it before argon2 is done.
        let permit = Arc::clone(&self.argon2_permits).acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            check_password(password.expose(), phc.as_deref(), floor)
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
        self.remember(client_id, phc, sha256(secret));
        true
    }

    /// Remembers a verified secret's digest under the client's current hash.
    fn remember(&self, client_id: &str, phc: &str, digest: [u8; 32]) {
        if let Ok(mut memo) = self.memo.write() {
            if memo.len() >= MEMO_CAPACITY && !memo.contains_key(client_id) {
                let forgotten = memo.keys().next().cloned();
                if let Some(forgotten) = forgotten {
                    memo.remove(&forgotten);
                }
            }
            memo.insert(client_id.to_owned(), (phc.to_owned(), digest));
        }
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

    /// A PHC string with other parameters (the hash value itself does not matter here).
    const FOREIGN: &str = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

    #[test]
    fn hashes_outside_the_policy_need_a_rehash_and_ours_do_not() {
        assert!(!needs_rehash(&hash("pw").unwrap()));
        assert_eq!(Work::of(&hash("pw").unwrap()), Some(Work::POLICY));
        assert!(needs_rehash(FOREIGN), "argon2-cffi's defaults");
        assert_eq!(Work::of(FOREIGN), Some(Work { memory_kib: 65536, passes: 3, lanes: 4 }));
        for other in [
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "not a hash",
        ] {
            assert!(needs_rehash(other), "{other}");
        }
    }

    #[test]
    fn a_password_check_says_whether_it_matched_whatever_the_floor() {
        let phc = hash("right").unwrap();
        assert!(check_password("right", Some(&phc), Work::POLICY));
        assert!(!check_password("wrong", Some(&phc), Work::POLICY));
        assert!(!check_password("right", None, Work::POLICY), "no user, no match");
        let padded = Work { memory_kib: 8192, passes: 6, lanes: 1 };
        assert!(check_password("right", Some(&phc), padded));
        assert!(!check_password("right", None, padded));
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
    fn a_full_memo_forgets_one_client_not_all() {
        let verifier = ClientSecretVerifier::default();
        let ids: Vec<String> = (0..=MEMO_CAPACITY).map(|i| format!("app-{i}")).collect();
        for id in &ids {
            verifier.remember(id, "phc", sha256("s3cret"));
        }
        let remembered = ids.iter().filter(|id| verifier.check_memo(id, "s3cret", "phc") == Some(true)).count();
        assert_eq!(remembered, MEMO_CAPACITY);
        assert_eq!(verifier.check_memo(&ids[MEMO_CAPACITY], "s3cret", "phc"), Some(true), "the newest is kept");
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
    fn a_generated_secret_is_stored_as_its_tagged_digest_and_checked_without_argon2() {
        let secret = generate_client_secret().unwrap();
        let stored = hash_generated(&secret);
        assert_eq!(stored, format!("$sha256${}", token_digest(&secret)), "no salt: the secret has 256 bits");
        assert!(!stored.contains(&secret));
        assert_eq!(check_generated(&secret, &stored), Some(true));
        assert_eq!(check_generated("wrong", &stored), Some(false));
        assert_eq!(check_generated(&secret[1..], &stored), Some(false), "a truncated secret");
        assert!(verify_client_secret(&secret, &stored));
        assert!(!verify_client_secret("wrong", &stored));
        assert!(is_current_client_secret_hash(&stored));
    }

    #[test]
    fn an_argon2_hash_is_not_a_generated_one_and_both_verify_through_one_check() {
        let chosen = hash("a secret someone chose").unwrap();
        assert_eq!(check_generated("a secret someone chose", &chosen), None);
        assert!(verify_client_secret("a secret someone chose", &chosen));
        assert!(!verify_client_secret("another", &chosen));
        assert!(is_current_client_secret_hash(&chosen));
        assert!(!is_current_client_secret_hash(FOREIGN), "made under another policy");
        assert!(!verify("a secret", &hash_generated("a secret")), "passwords are never checked as digests");
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
