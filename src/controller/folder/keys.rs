//! The signing keys of a manifests folder, one set across every replica sharing a store.
//!
//! A `SigningKey` with `privateKeySecretRef` signs with the PKCS#8 key of that Secret: the
//! same on every replica, nothing of it in the store. One without key material is
//! generated once and claimed in the store, so every replica signs with the first
//! replica's key. Replicas converge again after the
//! store lost its data: each re-claims the key it signs with (the survivor of a flush
//! claims first), reads the claim back periodically, and adopts the claimed key where it
//! differs from its own. A key a replica stops signing with keeps verifying there, and is
//! published in the store as retired, until every token it may have signed has expired:
//! every replica verifies with the retired keys and lists them in its JWKS.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use zeroize::Zeroizing;

use super::ApplyError;
use crate::clock::Clock;
use crate::controller::manifests::{DEFAULT_NAMESPACE, ManifestSet};
use crate::controller::reconcile;
use crate::keys::{KeyError, KeyPair, KeyPhase, Keyring, PublicKey, SharedKeyring};
use crate::store::{Store, StoreError};
use crate::vocabulary::SigningAlgorithm;

/// The claim name of the key used when the folder declares none.
const DEFAULT_KEY: &str = "signing-key:default:RS256";

/// A change to the keys, logged as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    Added {
        name: String,
        kid: String,
    },
    Removed {
        name: String,
        kid: String,
    },
    /// Another replica's key was claimed first: it signs now, ours only verifies.
    Adopted {
        name: String,
        kid: String,
        retired: String,
    },
}

impl fmt::Display for KeyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyChange::Added { name, kid } => write!(f, "key added {name} (kid {kid})"),
            KeyChange::Removed { name, kid } => {
                write!(f, "key removed {name} (kid {kid}, verifying until its tokens expire)")
            }
            KeyChange::Adopted { name, kid, retired } => write!(
                f,
                "key adopted {name} (kid {kid}, as kept in the store by another replica; kid {retired} only verifies now)"
            ),
        }
    }
}

/// A declared key, validated.
pub struct KeyPlan {
    /// `namespace/name` of the `SigningKey`, or `default`.
    name: String,
    source: Planned,
}

enum Planned {
    /// Generated once and kept in the store under `claim`, which names the algorithm and
    /// size too.
    Claimed { claim: String, algorithm: SigningAlgorithm, rsa_bits: Option<u32> },
    /// Read from a Secret of the folder.
    Supplied(Arc<KeyPair>),
}

/// A key this replica signs with.
#[derive(Clone)]
struct SigningKey {
    name: String,
    pair: Arc<KeyPair>,
    /// Where it is claimed, and its PKCS#8 DER in base64 (what is claimed); `None` for a
    /// key supplied by the folder.
    claim: Option<(String, Zeroizing<String>)>,
}

impl SigningKey {
    /// Whether this key is the one `plan` declares: the same claim, or the same supplied key.
    fn is(&self, plan: &Planned) -> bool {
        match (plan, &self.claim) {
            (Planned::Claimed { claim, .. }, Some((kept, _))) => claim == kept,
            (Planned::Supplied(pair), None) => pair.kid() == self.pair.kid(),
            _ => false,
        }
    }
}

/// Whose key signs after claiming: ours was kept, or another replica's was kept first.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    Ours,
    Theirs,
}

/// The claim answered `kept` for the key we offered as `ours`.
pub fn settle(ours: &str, kept: &str) -> Settled {
    if ours == kept { Settled::Ours } else { Settled::Theirs }
}

/// A key this replica no longer signs with, verifying until `until` (Unix seconds).
struct Retired {
    pair: Arc<KeyPair>,
    until: u64,
}

/// The keys of one replica, and the keyring built from them.
pub struct Keys {
    keyring: SharedKeyring,
    clock: Clock,
    /// How long a key stops signing before it stops verifying: the longest token lifetime.
    retire_after: u64,
    signing: Vec<SigningKey>,
    retired: Vec<Retired>,
    /// Public keys other replicas retired, as last read from the store.
    published: Vec<Arc<PublicKey>>,
}

impl Keys {
    pub fn new(keyring: SharedKeyring, retire_after: u64, clock: Clock) -> Self {
        Self { keyring, clock, retire_after, signing: Vec::new(), retired: Vec::new(), published: Vec::new() }
    }

    /// Validates the folder's `SigningKey`s (one RS256 key when there is none).
    pub fn plan(&self, set: &ManifestSet) -> Result<Vec<KeyPlan>, ApplyError> {
        let mut plans = Vec::new();
        for located in &set.signing_keys {
            let key = &located.resource;
            let plan = reconcile::plan_signing_key(key).map_err(ApplyError::reconcile(&located.origin))?;
            let namespace = key.namespace().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
            let name = format!("{namespace}/{}", key.name_any());
            let source = match &key.spec.private_key_secret_ref {
                Some(reference) => {
                    let problem = |problem: String| ApplyError::PrivateKey { origin: located.origin.clone(), problem };
                    let secret = set
                        .secret(&namespace, &reference.name)
                        .ok_or_else(|| problem(format!("Secret {namespace}/{} not found", reference.name)))?;
                    let der = pkcs8_der(secret, &reference.key)
                        .map_err(|p| problem(format!("Secret {namespace}/{}: {p}", reference.name)))?;
                    let pair = KeyPair::from_pkcs8(plan.algorithm, &der).map_err(|e| problem(e.to_string()))?;
                    Planned::Supplied(Arc::new(pair))
                }
                None => {
                    let claim = format!("signing-key:{name}:{}:{}", plan.algorithm, plan.rsa_bits.unwrap_or(0));
                    Planned::Claimed { claim, algorithm: plan.algorithm, rsa_bits: plan.rsa_bits }
                }
            };
            plans.push(KeyPlan { name, source });
        }
        if plans.is_empty() {
            plans.push(KeyPlan {
                name: "default".to_owned(),
                source: Planned::Claimed {
                    claim: DEFAULT_KEY.to_owned(),
                    algorithm: SigningAlgorithm::RS256,
                    rsa_bits: None,
                },
            });
        }
        Ok(plans)
    }

    /// Signs with the planned keys: a key kept from before stays (claimed again when
    /// `again`), a new one is generated and claimed, a key no longer declared retires.
    pub async fn apply(
        &mut self,
        plans: Vec<KeyPlan>,
        store: &dyn Store,
        again: bool,
    ) -> Result<Vec<KeyChange>, ApplyError> {
        let mut changes = Vec::new();
        let mut signing = Vec::new();
        // Worked on a copy: a store failure half-way leaves the keys as they were.
        let mut previous = self.signing.clone();
        for plan in plans {
            let kept = previous.iter().position(|key| key.is(&plan.source)).map(|at| previous.swap_remove(at));
            let key = match (kept, plan.source) {
                (Some(key), _) if again => self.claim(key, store, &mut changes).await?,
                (Some(key), _) => key,
                (None, Planned::Supplied(pair)) => {
                    changes.push(KeyChange::Added { name: plan.name.clone(), kid: pair.kid().to_owned() });
                    SigningKey { name: plan.name, pair, claim: None }
                }
                (None, Planned::Claimed { claim, algorithm, rsa_bits }) => {
                    let (pair, pkcs8) = KeyPair::generate(algorithm, rsa_bits).map_err(ApplyError::Keyring)?;
                    let candidate = SigningKey {
                        name: plan.name,
                        pair: Arc::new(pair),
                        claim: Some((claim, Zeroizing::new(STANDARD.encode(&pkcs8)))),
                    };
                    let key = self.offer(candidate, store, false).await?;
                    changes.push(KeyChange::Added { name: key.name.clone(), kid: key.pair.kid().to_owned() });
                    key
                }
            };
            signing.push(key);
        }
        for gone in previous {
            changes.push(KeyChange::Removed { name: gone.name.clone(), kid: gone.pair.kid().to_owned() });
            self.retire(gone.pair, store).await?;
        }
        self.signing = signing;
        if again {
            for retired in &self.retired {
                publish(&retired.pair, retired.until, store).await?;
            }
        }
        self.rebuild()?;
        Ok(changes)
    }

    /// Claims every signing key again and reads what other replicas retired.
    pub async fn sync(&mut self, store: &dyn Store) -> Result<Vec<KeyChange>, ApplyError> {
        let mut changes = Vec::new();
        let mut signing = Vec::new();
        for key in self.signing.clone() {
            signing.push(self.claim(key, store, &mut changes).await?);
        }
        self.signing = signing;
        let mut published = Vec::new();
        for jwk in store.retired_keys().await? {
            match PublicKey::from_jwk_json(&jwk) {
                Ok(key) => published.push(Arc::new(key)),
                Err(error) => tracing::warn!(%error, "ignoring an unreadable retired key in the store"),
            }
        }
        self.published = published;
        self.rebuild()?;
        Ok(changes)
    }

    /// Claims a key we sign with; adopts the kept one when it is not ours.
    async fn claim(
        &mut self,
        key: SigningKey,
        store: &dyn Store,
        changes: &mut Vec<KeyChange>,
    ) -> Result<SigningKey, ApplyError> {
        let ours = key.pair.kid().to_owned();
        let adopted = self.offer(key, store, true).await?;
        if adopted.pair.kid() != ours {
            changes.push(KeyChange::Adopted {
                name: adopted.name.clone(),
                kid: adopted.pair.kid().to_owned(),
                retired: ours,
            });
        }
        Ok(adopted)
    }

    /// Offers `key` to the store and returns the key kept there. When another key was kept,
    /// ours retires if it `signed` (a new candidate that lost has signed nothing). A key
    /// supplied by the folder is not offered: it is the same everywhere.
    async fn offer(&mut self, key: SigningKey, store: &dyn Store, signed: bool) -> Result<SigningKey, ApplyError> {
        let Some((claim, pkcs8)) = &key.claim else { return Ok(key) };
        let kept = Zeroizing::new(store.claim(claim, pkcs8).await?);
        if settle(pkcs8, &kept) == Settled::Ours {
            return Ok(key);
        }
        let algorithm = key.pair.algorithm();
        let der = Zeroizing::new(
            STANDARD
                .decode(kept.as_bytes())
                .map_err(|_| ApplyError::Keyring(KeyError::InvalidPrivateKey(algorithm)))?,
        );
        let theirs = Arc::new(KeyPair::from_pkcs8(algorithm, &der).map_err(ApplyError::Keyring)?);
        let adopted = SigningKey { name: key.name, pair: theirs, claim: Some((claim.clone(), kept)) };
        if signed {
            self.retire(key.pair, store).await?;
        }
        Ok(adopted)
    }

    /// Stops signing with a key: it verifies here and, published, on every replica until
    /// every token it may have signed has expired.
    async fn retire(&mut self, pair: Arc<KeyPair>, store: &dyn Store) -> Result<(), StoreError> {
        let until = self.clock.now() + self.retire_after;
        publish(&pair, until, store).await?;
        self.retired.push(Retired { pair, until });
        Ok(())
    }

    /// Swaps the keyring when the keys changed.
    fn rebuild(&mut self) -> Result<(), ApplyError> {
        let now = self.clock.now();
        self.retired.retain(|retired| retired.until > now);
        let signing = self.signing.iter().map(|key| Arc::clone(&key.pair));
        let retired = self.retired.iter().map(|retired| Arc::clone(&retired.pair));
        let keyring = compose(signing, retired, self.published.clone()).map_err(ApplyError::Keyring)?;
        let current = self.keyring.load();
        if keyring.kids() != current.kids() || signers(&keyring) != signers(&current) {
            self.keyring.store(Arc::new(keyring));
        }
        Ok(())
    }
}

/// The PKCS#8 DER of a key supplied in a Secret: DER in `data`, or PEM (`BEGIN PRIVATE
/// KEY`) in `data` or `stringData`.
fn pkcs8_der(secret: &Secret, key: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let raw =
        match (secret.string_data.as_ref().and_then(|d| d.get(key)), secret.data.as_ref().and_then(|d| d.get(key))) {
            (Some(text), _) => Zeroizing::new(text.as_bytes().to_vec()),
            (None, Some(bytes)) => Zeroizing::new(bytes.0.clone()),
            (None, None) => return Err(format!("no key `{key}`")),
        };
    let Some(pem) = std::str::from_utf8(&raw).ok().filter(|text| text.trim_start().starts_with("-----BEGIN")) else {
        return Ok(raw);
    };
    let mut lines = pem.lines().map(str::trim).filter(|line| !line.is_empty());
    if lines.next() != Some("-----BEGIN PRIVATE KEY-----") {
        return Err(format!(
            "key `{key}` is PEM but not PKCS#8 (`BEGIN PRIVATE KEY`); convert it with `openssl pkcs8 -topk8 -nocrypt`"
        ));
    }
    let body: Zeroizing<String> = Zeroizing::new(lines.take_while(|line| !line.starts_with("-----END")).collect());
    STANDARD.decode(body.as_bytes()).map(Zeroizing::new).map_err(|_| format!("key `{key}` is not valid PEM"))
}

/// Publishes a retired key's public part until `until`.
async fn publish(pair: &KeyPair, until: u64, store: &dyn Store) -> Result<(), StoreError> {
    let jwk = pair.public().jwk_json().map_err(|e| StoreError::Corrupt(format!("a retired key's JWK: {e}")))?;
    store.publish_retired_key(pair.kid(), &jwk, until).await
}

/// The keyring of a replica: its signing keys active, the keys it stopped signing with
/// retired, and the public keys other replicas retired, all verifying.
pub fn compose(
    signing: impl IntoIterator<Item = Arc<KeyPair>>,
    retired: impl IntoIterator<Item = Arc<KeyPair>>,
    published: Vec<Arc<PublicKey>>,
) -> Result<Keyring, KeyError> {
    let pairs = signing
        .into_iter()
        .map(|pair| (pair, KeyPhase::Active))
        .chain(retired.into_iter().map(|pair| (pair, KeyPhase::Retired)))
        .collect();
    Keyring::from_parts(pairs, published)
}

/// The `kid` that signs for each algorithm.
fn signers(keyring: &Keyring) -> Vec<String> {
    keyring.algorithms().into_iter().filter_map(|a| keyring.signer(Some(a)).map(|key| key.kid().to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::JwtType;

    fn pair(algorithm: SigningAlgorithm) -> Arc<KeyPair> {
        Arc::new(KeyPair::generate(algorithm, None).unwrap().0)
    }

    fn secret(data: Option<Vec<u8>>, string_data: Option<String>) -> Secret {
        Secret {
            data: data.map(|d| [("k".to_owned(), k8s_openapi::ByteString(d))].into()),
            string_data: string_data.map(|s| [("k".to_owned(), s)].into()),
            ..Secret::default()
        }
    }

    #[test]
    fn a_supplied_key_is_read_as_der_or_pkcs8_pem() {
        let (_, der) = KeyPair::generate(SigningAlgorithm::ES256, None).unwrap();
        let body = STANDARD.encode(&der);
        let wrapped: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", wrapped.join("\n"));
        assert_eq!(*pkcs8_der(&secret(Some(der.to_vec()), None), "k").unwrap(), *der);
        assert_eq!(*pkcs8_der(&secret(None, Some(pem.clone())), "k").unwrap(), *der);
        assert_eq!(*pkcs8_der(&secret(Some(pem.into_bytes()), None), "k").unwrap(), *der);
        let pkcs1 = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n".to_owned();
        assert!(pkcs8_der(&secret(None, Some(pkcs1)), "k").unwrap_err().contains("openssl pkcs8"));
        assert!(pkcs8_der(&secret(None, None), "k").unwrap_err().contains("no key `k`"));
    }

    #[test]
    fn the_key_kept_in_the_store_signs_whoever_offered_it() {
        assert_eq!(settle("ours", "ours"), Settled::Ours);
        assert_eq!(settle("ours", "theirs"), Settled::Theirs);
    }

    #[test]
    fn an_adopting_replica_signs_with_the_kept_key_and_still_verifies_what_it_signed() {
        let (ours, theirs) = (pair(SigningAlgorithm::RS256), pair(SigningAlgorithm::RS256));
        let before = compose([Arc::clone(&ours)], [], Vec::new()).unwrap();
        let claims = serde_json::json!({"iss": "https://id", "iat": 1, "exp": u64::MAX / 2, "sub": "s"});
        let token = before.sign(None, JwtType::Jwt, &claims).unwrap();
        let after = compose([Arc::clone(&theirs)], [Arc::clone(&ours)], Vec::new()).unwrap();
        assert_eq!(after.signer(None).unwrap().kid(), theirs.kid());
        assert!(after.verify::<serde_json::Value>(&token, JwtType::Jwt, "https://id", 2).is_ok());
    }

    #[test]
    fn a_replica_that_kept_its_key_verifies_and_publishes_the_other_replicas_retired_one() {
        let (kept, adopter_old) = (pair(SigningAlgorithm::RS256), pair(SigningAlgorithm::RS256));
        let survivor = compose([Arc::clone(&kept)], [], vec![Arc::clone(adopter_old.public())]).unwrap();
        let adopter = compose([Arc::clone(&kept)], [Arc::clone(&adopter_old)], Vec::new()).unwrap();
        assert_eq!(survivor.kids(), adopter.kids(), "both JWKS are the union of what either signed with");
        assert_eq!(survivor.jwks_json(), adopter.jwks_json());
        assert_eq!(survivor.signer(None).unwrap().kid(), kept.kid());
    }
}
