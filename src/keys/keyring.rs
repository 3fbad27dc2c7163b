//! The keyring: every published key, the active signer per algorithm, and the JWKS
//! document serialized once per change of the key set.
//!
//! Which key signs is decided by the set alone, never by the order a map or a watch
//! yields keys in, so every replica holding the same keys signs alike: per algorithm the
//! active key with the smallest `kid`, and for ID tokens the first algorithm of
//! [`ID_TOKEN_ALGORITHMS`] that has an active key.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::jwk::Jwk;
use super::jws::{self, Expectations, VerifyError};
use super::jwt_type::JwtType;
use super::pair::{KeyError, KeyPair};
use super::public::PublicKey;
use crate::vocabulary::{SigningAlgorithm, wire_enum};

/// The default signer's algorithm, in order of preference: RS256 first, since OIDC Core
/// §15.1 makes it the one algorithm every relying party supports.
pub const ID_TOKEN_ALGORITHMS: [SigningAlgorithm; 3] =
    [SigningAlgorithm::RS256, SigningAlgorithm::ES256, SigningAlgorithm::EdDSA];

/// The algorithm of the default signer, given the algorithms that have an active key.
pub fn default_algorithm(active: &[SigningAlgorithm]) -> Option<SigningAlgorithm> {
    ID_TOKEN_ALGORITHMS.into_iter().find(|algorithm| active.contains(algorithm))
}

wire_enum! {
    /// Where a key is in its life: it signs (`Active`), is published ahead of taking over
    /// (`Next`), or is published only so tokens it signed still verify (`Retired`). The
    /// names label key Secrets, `SigningKey` statuses and metrics.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
    pub enum KeyPhase {
        Active = "active",
        Next = "next",
        Retired = "retired",
    }
}

/// An immutable set of keys; a new set replaces the whole keyring atomically.
#[derive(Debug)]
pub struct Keyring {
    /// Every key that verifies, by `kid`: our key pairs' public halves, and public keys
    /// other replicas may have signed with (as `Retired`).
    keys: HashMap<String, (Arc<PublicKey>, KeyPhase)>,
    active: HashMap<SigningAlgorithm, Arc<KeyPair>>,
    default_algorithm: Option<SigningAlgorithm>,
    jwks: Bytes,
    /// When each key was created (Unix seconds), where the source knows it; reported as
    /// `portcullis_signing_key_age_seconds`.
    created_at: HashMap<String, u64>,
}

/// The keyring shared by every request; swapped without locks when keys change.
pub type SharedKeyring = Arc<ArcSwap<Keyring>>;

#[derive(Serialize)]
struct JwkSet<'a> {
    keys: Vec<&'a Jwk>,
}

impl Keyring {
    /// Builds a keyring of key pairs, each in its phase.
    pub fn new(keys: Vec<(KeyPair, KeyPhase)>) -> Result<Self, KeyError> {
        Self::from_parts(keys.into_iter().map(|(key, phase)| (Arc::new(key), phase)).collect(), Vec::new())
    }

    /// Builds a keyring of key pairs and of public keys that only verify (published as
    /// retired): keys another replica may have signed with. A key pair wins over a public
    /// key of the same `kid`.
    pub fn from_parts(pairs: Vec<(Arc<KeyPair>, KeyPhase)>, verifying: Vec<Arc<PublicKey>>) -> Result<Self, KeyError> {
        let mut by_kid = HashMap::new();
        let mut active: HashMap<SigningAlgorithm, Arc<KeyPair>> = HashMap::new();
        for (key, phase) in pairs {
            if phase == KeyPhase::Active {
                let signer = active.entry(key.algorithm()).or_insert_with(|| Arc::clone(&key));
                if key.kid() < signer.kid() {
                    *signer = Arc::clone(&key);
                }
            }
            by_kid.insert(key.kid().to_owned(), (Arc::clone(key.public()), phase));
        }
        for key in verifying {
            by_kid.entry(key.kid().to_owned()).or_insert((key, KeyPhase::Retired));
        }
        let algorithms: Vec<SigningAlgorithm> = active.keys().copied().collect();
        let default_algorithm = default_algorithm(&algorithms);
        let mut published: Vec<&Jwk> = by_kid.values().map(|(key, _)| key.jwk()).collect();
        published.sort_by(|a, b| a.kid.cmp(&b.kid));
        let jwks = Bytes::from(serde_json::to_vec(&JwkSet { keys: published })?);
        Ok(Self { keys: by_kid, active, default_algorithm, jwks, created_at: HashMap::new() })
    }

    /// Records when a key was created (e.g. its Secret's `creationTimestamp`), so its age
    /// survives restarts of the provider.
    pub fn with_created_at(mut self, kid: &str, unix_seconds: u64) -> Self {
        self.created_at.insert(kid.to_owned(), unix_seconds);
        self
    }

    /// Every published key: its id, phase and creation time when known.
    pub fn entries(&self) -> impl Iterator<Item = (&str, KeyPhase, Option<u64>)> {
        self.keys.iter().map(|(kid, (_, phase))| (kid.as_str(), *phase, self.created_at.get(kid).copied()))
    }

    /// The serialized JWKS (RFC 7517 §5), public parts only.
    pub fn jwks_json(&self) -> Bytes {
        self.jwks.clone()
    }

    /// Algorithms that currently have an active signer, in [`ID_TOKEN_ALGORITHMS`] order.
    pub fn algorithms(&self) -> Vec<SigningAlgorithm> {
        ID_TOKEN_ALGORITHMS.into_iter().filter(|algorithm| self.active.contains_key(algorithm)).collect()
    }

    /// Every `kid` that verifies, sorted: what tells two keyrings' JWKS apart.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// The active signer for an algorithm, or the default signer.
    pub fn signer(&self, algorithm: Option<SigningAlgorithm>) -> Option<&Arc<KeyPair>> {
        self.active.get(&algorithm.or(self.default_algorithm)?)
    }

    /// Signs claims with the active key of the algorithm (or the default).
    pub fn sign<T: Serialize>(
        &self,
        algorithm: Option<SigningAlgorithm>,
        typ: JwtType,
        claims: &T,
    ) -> Result<String, KeyError> {
        let key = self.signer(algorithm).ok_or(KeyError::Signing)?;
        let _span = if crate::telemetry::otel_enabled() {
            tracing::info_span!("sign", kid = key.kid(), typ = typ.as_str())
        } else {
            tracing::Span::none()
        }
        .entered();
        jws::sign(key, typ, claims)
    }

    /// Verifies a token we signed: known `kid`, expected `typ`, the key's own algorithm,
    /// a valid signature, our issuer and an `exp` after `now` (no leeway).
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: JwtType,
        issuer: &str,
        now: u64,
    ) -> Result<T, VerifyError> {
        jws::verify(token, |kid| self.key(kid), &Expectations { typ, issuer, now: Some(now) })
    }

    /// Verifies an ID token sent back to us as a hint (OIDC Core §3.1.2.1 `id_token_hint`,
    /// RP-Initiated Logout §2): like [`Keyring::verify`], but an expired token is accepted,
    /// as the specifications allow.
    pub fn verify_hint<T: DeserializeOwned>(&self, token: &str, issuer: &str) -> Result<T, VerifyError> {
        jws::verify(token, |kid| self.key(kid), &Expectations { typ: JwtType::Jwt, issuer, now: None })
    }

    fn key(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.get(kid).map(|(key, _)| key.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Claims {
        iss: String,
        exp: u64,
        iat: u64,
        sub: String,
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    fn claims(exp: u64) -> Claims {
        Claims { iss: "https://id.example".into(), exp, iat: now(), sub: "s".into() }
    }

    fn ring(algorithms: &[SigningAlgorithm]) -> Keyring {
        let keys = algorithms.iter().map(|a| (KeyPair::generate(*a, None).unwrap().0, KeyPhase::Active)).collect();
        Keyring::new(keys).unwrap()
    }

    #[test]
    fn every_algorithm_signs_and_verifies() {
        let ring = ring(&[SigningAlgorithm::RS256, SigningAlgorithm::ES256, SigningAlgorithm::EdDSA]);
        for alg in [SigningAlgorithm::RS256, SigningAlgorithm::ES256, SigningAlgorithm::EdDSA] {
            let token = ring.sign(Some(alg), JwtType::AccessToken, &claims(now() + 60)).unwrap();
            let verified: Claims = ring.verify(&token, JwtType::AccessToken, "https://id.example", now()).unwrap();
            assert_eq!(verified, claims(now() + 60), "{alg}");
        }
    }

    #[test]
    fn rs256_is_the_default_signer() {
        let ring = ring(&[SigningAlgorithm::ES256, SigningAlgorithm::RS256]);
        assert_eq!(ring.signer(None).unwrap().algorithm(), SigningAlgorithm::RS256);
    }

    #[test]
    fn without_rs256_the_default_signer_follows_the_documented_order_not_the_given_one() {
        use SigningAlgorithm::{ES256, EdDSA, RS256};
        assert_eq!(default_algorithm(&[EdDSA, ES256]), Some(ES256));
        assert_eq!(default_algorithm(&[ES256, EdDSA]), Some(ES256));
        assert_eq!(default_algorithm(&[EdDSA]), Some(EdDSA));
        assert_eq!(default_algorithm(&[EdDSA, ES256, RS256]), Some(RS256));
        assert_eq!(default_algorithm(&[]), None);
        assert_eq!(ring(&[EdDSA, ES256]).signer(None).unwrap().algorithm(), ES256);
        assert_eq!(ring(&[EdDSA, ES256]).algorithms(), [ES256, EdDSA]);
    }

    #[test]
    fn two_active_keys_of_one_algorithm_sign_with_the_smallest_kid_whatever_their_order() {
        let first = Arc::new(KeyPair::generate(SigningAlgorithm::ES256, None).unwrap().0);
        let second = Arc::new(KeyPair::generate(SigningAlgorithm::ES256, None).unwrap().0);
        let smallest = first.kid().min(second.kid()).to_owned();
        for pairs in [[&first, &second], [&second, &first]] {
            let keys = pairs.iter().map(|key| (Arc::clone(key), KeyPhase::Active)).collect();
            let ring = Keyring::from_parts(keys, Vec::new()).unwrap();
            assert_eq!(ring.signer(None).unwrap().kid(), smallest);
        }
    }

    #[test]
    fn public_keys_of_other_replicas_verify_and_are_published_but_never_sign() {
        let (ours, _) = KeyPair::generate(SigningAlgorithm::RS256, None).unwrap();
        let theirs = ring(&[SigningAlgorithm::RS256]);
        let their_token = theirs.sign(None, JwtType::AccessToken, &claims(now() + 60)).unwrap();
        let their_key = Arc::clone(theirs.signer(None).unwrap().public());
        let ring = Keyring::from_parts(vec![(Arc::new(ours), KeyPhase::Active)], vec![their_key]).unwrap();
        assert!(ring.verify::<Claims>(&their_token, JwtType::AccessToken, ISSUER, now()).is_ok());
        assert_ne!(ring.signer(None).unwrap().kid(), theirs.signer(None).unwrap().kid());
        let jwks: serde_json::Value = serde_json::from_slice(&ring.jwks_json()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_eq!(ring.kids().len(), 2);
        assert!(
            ring.entries()
                .any(|(kid, phase, _)| kid == theirs.signer(None).unwrap().kid() && phase == KeyPhase::Retired)
        );
    }

    #[test]
    fn rfc9068_2_1_access_token_header_has_typ_at_jwt_and_kid() {
        let ring = ring(&[SigningAlgorithm::RS256]);
        let token = ring.sign(None, JwtType::AccessToken, &claims(now() + 60)).unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], ring.signer(None).unwrap().kid());
    }

    #[test]
    fn rfc9068_4_token_of_another_type_is_refused() {
        let ring = ring(&[SigningAlgorithm::RS256]);
        let id_token = ring.sign(None, JwtType::Jwt, &claims(now() + 60)).unwrap();
        assert!(matches!(
            ring.verify::<Claims>(&id_token, JwtType::AccessToken, "https://id.example", now()),
            Err(VerifyError::WrongType)
        ));
    }

    const ISSUER: &str = "https://id.example";

    /// A token with any header and payload, signed by the ring's default key: what only
    /// we could produce, so only the claim and header rules stand between it and a pass.
    fn signed(ring: &Keyring, header: &serde_json::Value, payload: &serde_json::Value) -> String {
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()));
        let signature = ring.signer(None).unwrap().sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn verify_error(ring: &Keyring, token: &str) -> Option<VerifyError> {
        ring.verify::<Claims>(token, JwtType::AccessToken, ISSUER, now()).err()
    }

    fn at_header(ring: &Keyring) -> serde_json::Value {
        let key = ring.signer(None).unwrap();
        serde_json::json!({"alg": key.algorithm().as_str(), "typ": "at+jwt", "kid": key.kid()})
    }

    #[test]
    fn rfc7519_4_1_4_token_is_refused_from_the_second_of_exp_on() {
        let ring = ring(&[SigningAlgorithm::RS256]);
        let at = |exp: u64| ring.sign(None, JwtType::AccessToken, &claims(exp)).unwrap();
        let t = now();
        assert!(ring.verify::<Claims>(&at(t + 1), JwtType::AccessToken, ISSUER, t).is_ok());
        assert_eq!(ring.verify::<Claims>(&at(t), JwtType::AccessToken, ISSUER, t).err(), Some(VerifyError::Expired));
        assert_eq!(
            ring.verify::<Claims>(&at(t - 1), JwtType::AccessToken, ISSUER, t).err(),
            Some(VerifyError::Expired)
        );
    }

    #[test]
    fn foreign_issuer_is_refused() {
        let ring = ring(&[SigningAlgorithm::RS256]);
        let token = ring.sign(None, JwtType::AccessToken, &claims(now() + 60)).unwrap();
        assert_eq!(
            ring.verify::<Claims>(&token, JwtType::AccessToken, "https://other.example", now()).err(),
            Some(VerifyError::WrongIssuer)
        );
    }

    #[test]
    fn rfc7519_4_1_tokens_without_exp_iat_or_iss_are_refused() {
        let ring = ring(&[SigningAlgorithm::ES256]);
        let complete = serde_json::json!({"iss": ISSUER, "exp": now() + 60, "iat": now(), "sub": "s"});
        assert_eq!(verify_error(&ring, &signed(&ring, &at_header(&ring), &complete)), None);
        for missing in ["exp", "iat", "iss"] {
            let mut payload = complete.clone();
            payload.as_object_mut().unwrap().remove(missing);
            assert_eq!(
                verify_error(&ring, &signed(&ring, &at_header(&ring), &payload)),
                Some(VerifyError::MissingClaim),
                "{missing}"
            );
        }
        let mut string_exp = complete.clone();
        string_exp["exp"] = serde_json::json!("4000000000");
        assert_eq!(
            verify_error(&ring, &signed(&ring, &at_header(&ring), &string_exp)),
            Some(VerifyError::MissingClaim)
        );
    }

    #[test]
    fn rfc7515_4_1_11_critical_extensions_are_refused() {
        let ring = ring(&[SigningAlgorithm::ES256]);
        let mut header = at_header(&ring);
        header["crit"] = serde_json::json!(["exp"]);
        let payload = serde_json::json!({"iss": ISSUER, "exp": now() + 60, "iat": now(), "sub": "s"});
        assert_eq!(verify_error(&ring, &signed(&ring, &header, &payload)), Some(VerifyError::CriticalExtension));
    }

    #[test]
    fn rfc7515_4_duplicate_header_members_are_refused() {
        let ring = ring(&[SigningAlgorithm::ES256]);
        let key = ring.signer(None).unwrap();
        let header = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{}","alg":"ES256"}}"#, key.kid());
        let payload = serde_json::json!({"iss": ISSUER, "exp": now() + 60, "iat": now(), "sub": "s"});
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload.to_string()));
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap()));
        assert_eq!(verify_error(&ring, &token), Some(VerifyError::Malformed));
    }

    #[test]
    fn rfc8725_3_1_header_alg_other_than_the_keys_is_refused() {
        let ring = ring(&[SigningAlgorithm::ES256]);
        let payload = serde_json::json!({"iss": ISSUER, "exp": now() + 60, "iat": now(), "sub": "s"});
        for alg in ["RS256", "HS256", "none", "es256", "ES384"] {
            let mut header = at_header(&ring);
            header["alg"] = serde_json::json!(alg);
            assert_eq!(
                verify_error(&ring, &signed(&ring, &header, &payload)),
                Some(VerifyError::WrongAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn rfc7515_7_1_only_three_canonical_base64url_segments_are_accepted() {
        let ring = ring(&[SigningAlgorithm::EdDSA]);
        let token = ring.sign(None, JwtType::AccessToken, &claims(now() + 60)).unwrap();
        assert_eq!(verify_error(&ring, &token), None);
        let (header, rest) = token.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();
        for malformed in [
            format!("{header}.{payload}"),
            format!("{header}.{payload}.{signature}.x"),
            format!("{header}.{payload}.{signature}="),
            format!("{header}=.{payload}.{signature}"),
            format!("{header}.{payload}.{signature}!"),
            String::new(),
        ] {
            assert!(verify_error(&ring, &malformed).is_some(), "{malformed}");
        }
        assert_eq!(verify_error(&ring, &format!("{header}.{payload}.{signature}.x")), Some(VerifyError::Malformed));
    }

    #[test]
    fn expired_id_token_is_accepted_as_a_hint_only() {
        let ring = ring(&[SigningAlgorithm::RS256]);
        let expired = ring.sign(None, JwtType::Jwt, &claims(now() - 10)).unwrap();
        assert_eq!(ring.verify::<Claims>(&expired, JwtType::Jwt, ISSUER, now()).err(), Some(VerifyError::Expired));
        assert!(ring.verify_hint::<Claims>(&expired, ISSUER).is_ok());
        let access_token = ring.sign(None, JwtType::AccessToken, &claims(now() + 60)).unwrap();
        assert_eq!(ring.verify_hint::<Claims>(&access_token, ISSUER).err(), Some(VerifyError::WrongType));
    }

    #[test]
    fn tampered_signature_and_unknown_key_are_refused() {
        for algorithm in [SigningAlgorithm::RS256, SigningAlgorithm::ES256, SigningAlgorithm::EdDSA] {
            let ring_a = ring(&[algorithm]);
            let ring_b = ring(&[algorithm]);
            let token = ring_a.sign(None, JwtType::AccessToken, &claims(now() + 60)).unwrap();
            assert_eq!(verify_error(&ring_b, &token), Some(VerifyError::UnknownKey));
            let (signing_input, signature) = token.rsplit_once('.').unwrap();
            let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
            bytes[0] ^= 1;
            let tampered = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(bytes));
            assert_eq!(verify_error(&ring_a, &tampered), Some(VerifyError::BadSignature), "{algorithm}");
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let ring = ring(&[SigningAlgorithm::RS256]);
        let kid = ring.signer(None).unwrap().kid().to_owned();
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(now() + 60)).unwrap());
        assert_eq!(verify_error(&ring, &format!("{header}.{payload}.")), Some(VerifyError::WrongAlgorithm));
    }

    #[test]
    fn jwks_publishes_every_phase_and_no_private_members() {
        let (active, _) = KeyPair::generate(SigningAlgorithm::RS256, None).unwrap();
        let (retired, _) = KeyPair::generate(SigningAlgorithm::ES256, None).unwrap();
        let ring = Keyring::new(vec![(active, KeyPhase::Active), (retired, KeyPhase::Retired)]).unwrap();
        let jwks: serde_json::Value = serde_json::from_slice(&ring.jwks_json()).unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        for key in keys {
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(key.get(private).is_none(), "{private} published");
            }
        }
        assert_eq!(ring.algorithms(), vec![SigningAlgorithm::RS256]);
    }
}
