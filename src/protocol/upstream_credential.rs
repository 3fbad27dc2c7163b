//! Upstream credentials at rest (issue 21): the refresh token an upstream gave (for GitHub
//! its access token; for a directory the username it is searched by again) is kept in the
//! store sealed, so someone who reads the store learns nothing they could use upstream.
//!
//! The keys come from a file outside the store (`serve --upstream-credential-key-file`,
//! mounted from a Secret by the chart): one key per line, at least 32 bytes of text each
//! (`openssl rand -base64 32` makes one). The first line seals; every line opens, so a key
//! is rotated by putting the new one first and dropping the old one once the longest
//! refresh family it sealed for has ended. Each line is stretched into an AES-256-GCM key
//! with HKDF-SHA256 (RFC 5869); its id is the first 4 bytes of a second HKDF output, so
//! opening tries only the key that sealed.
//!
//! Sealed form: `1.` then base64url of the key id, a random 96-bit nonce and the encryption
//! of the credential with its tag. The associated data is the version, the key id and the
//! subject of the person it belongs to: a sealed credential moved onto another person's
//! record does not open.
//!
//! Pure: the caller passes the nonce.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// The fewest bytes of a key line.
pub const MIN_KEY_LEN: usize = 32;

const PREFIX: &str = "1.";
const VERSION: u8 = 1;
const ID_LEN: usize = 4;
const HKDF_SALT: &[u8] = b"portcullis upstream credential";

/// Why a key file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("the upstream credential key file holds no key")]
    Empty,
    #[error("line {0} of the upstream credential key file is shorter than {MIN_KEY_LEN} bytes")]
    TooShort(usize),
    #[error("line {0} of the upstream credential key file could not be made into a key")]
    Underivable(usize),
}

/// A credential could not be sealed (the AEAD refused, which does not happen for a valid key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the upstream credential could not be sealed")]
pub struct SealError;

struct Key {
    id: [u8; ID_LEN],
    aead: LessSafeKey,
}

/// The keys that seal and open upstream credentials: the first seals, all open.
pub struct CredentialKeys(Vec<Key>);

/// The key material stays out of logs.
impl std::fmt::Debug for CredentialKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialKeys({} keys, <redacted>)", self.0.len())
    }
}

/// An output length for HKDF's expand step.
struct Length(usize);

impl KeyType for Length {
    fn len(&self) -> usize {
        self.0
    }
}

impl Key {
    fn derive(material: &[u8]) -> Option<Key> {
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(material);
        let aead = prk.expand(&[b"aes-256-gcm"], &AES_256_GCM).ok()?;
        let mut id = [0; ID_LEN];
        prk.expand(&[b"key id"], Length(ID_LEN)).ok()?.fill(&mut id).ok()?;
        Some(Key { id, aead: LessSafeKey::new(UnboundKey::from(aead)) })
    }
}

impl CredentialKeys {
    /// The keys of a key file: one per non-empty line, surrounding blanks ignored.
    pub fn parse(text: &str) -> Result<CredentialKeys, KeyFileError> {
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if line.len() < MIN_KEY_LEN {
                return Err(KeyFileError::TooShort(index + 1));
            }
            keys.push(Key::derive(line.as_bytes()).ok_or(KeyFileError::Underivable(index + 1))?);
        }
        if keys.is_empty() {
            return Err(KeyFileError::Empty);
        }
        Ok(CredentialKeys(keys))
    }

    /// One key from 32 random bytes: `dev`, whose store lives no longer than the process.
    pub fn random(bytes: &[u8; 32]) -> CredentialKeys {
        let key = Key::derive(bytes);
        CredentialKeys(key.into_iter().collect())
    }

    /// Seals `credential` of the person `subject` with the first key.
    pub fn seal(&self, credential: &str, subject: &str, nonce: [u8; NONCE_LEN]) -> Result<String, SealError> {
        let key = self.0.first().ok_or(SealError)?;
        let mut body = credential.as_bytes().to_vec();
        key.aead
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(&key.id, subject), &mut body)
            .map_err(|_| SealError)?;
        let mut sealed = Vec::with_capacity(ID_LEN + NONCE_LEN + body.len());
        sealed.extend_from_slice(&key.id);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)))
    }

    /// Opens a credential sealed for `subject`; `None` when it was sealed with a key no
    /// longer listed, for another person, or was altered.
    pub fn open(&self, sealed: &str, subject: &str) -> Option<Zeroizing<String>> {
        let raw = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(PREFIX)?).ok()?;
        if raw.len() < ID_LEN + NONCE_LEN {
            return None;
        }
        let (id, rest) = raw.split_at(ID_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let key = self.0.iter().find(|key| key.id == id)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = Zeroizing::new(body.to_vec());
        let plain = key.aead.open_in_place(nonce, aad(&key.id, subject), &mut body).ok()?;
        String::from_utf8(plain.to_vec()).ok().map(Zeroizing::new)
    }
}

/// The associated data: the version, the key id and the subject, so nothing of the three
/// can be swapped.
fn aad(id: &[u8; ID_LEN], subject: &str) -> Aad<Vec<u8>> {
    let mut data = Vec::with_capacity(1 + ID_LEN + subject.len());
    data.push(VERSION);
    data.extend_from_slice(id);
    data.extend_from_slice(subject.as_bytes());
    Aad::from(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = "first-key-0123456789abcdefghijklmnopqrstuv";
    const SECOND: &str = "second-key-0123456789abcdefghijklmnopqrstu";

    fn keys(text: &str) -> CredentialKeys {
        CredentialKeys::parse(text).unwrap()
    }

    #[test]
    fn a_sealed_credential_opens_for_its_subject_and_does_not_show_it() {
        let keys = keys(FIRST);
        let sealed = keys.seal("upstream-refresh-token", "subject-a", [7; NONCE_LEN]).unwrap();
        assert!(sealed.starts_with("1."));
        assert!(!sealed.contains("upstream-refresh-token"));
        assert_eq!(keys.open(&sealed, "subject-a").as_deref().map(String::as_str), Some("upstream-refresh-token"));
    }

    #[test]
    fn a_credential_moved_to_another_person_or_altered_does_not_open() {
        let keys = keys(FIRST);
        let sealed = keys.seal("token", "subject-a", [7; NONCE_LEN]).unwrap();
        assert_eq!(keys.open(&sealed, "subject-b"), None, "bound to its subject");
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed[2..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(keys.open(&format!("1.{}", URL_SAFE_NO_PAD.encode(&raw)), "subject-a"), None, "tag checked");
        assert_eq!(keys.open("token", "subject-a"), None, "a plaintext value is not taken for a sealed one");
        assert_eq!(keys.open("1.", "subject-a"), None);
        assert_eq!(keys.open("1.!!", "subject-a"), None);
    }

    #[test]
    fn the_first_line_seals_and_every_line_opens_so_keys_rotate() {
        let old = keys(FIRST);
        let sealed_before = old.seal("token", "s", [1; NONCE_LEN]).unwrap();
        let rotated = keys(&format!("{SECOND}\n\n  {FIRST}  \n"));
        assert_eq!(rotated.open(&sealed_before, "s").as_deref().map(String::as_str), Some("token"));
        let sealed_after = rotated.seal("token", "s", [1; NONCE_LEN]).unwrap();
        assert_eq!(old.open(&sealed_after, "s"), None, "sealed with the new first key");
        assert_eq!(keys(SECOND).open(&sealed_after, "s").as_deref().map(String::as_str), Some("token"));
        assert_eq!(keys(SECOND).open(&sealed_before, "s"), None, "a dropped key opens nothing");
    }

    #[test]
    fn key_files_that_are_empty_or_hold_a_short_line_are_refused() {
        assert_eq!(CredentialKeys::parse("").unwrap_err(), KeyFileError::Empty);
        assert_eq!(CredentialKeys::parse(" \n\n").unwrap_err(), KeyFileError::Empty);
        assert_eq!(CredentialKeys::parse(&format!("{FIRST}\nshort\n")).unwrap_err(), KeyFileError::TooShort(2));
        assert_eq!(format!("{:?}", keys(FIRST)), "CredentialKeys(1 keys, <redacted>)");
    }

    #[test]
    fn random_keys_seal_and_open() {
        let keys = CredentialKeys::random(&[9; 32]);
        let sealed = keys.seal("ldap-username", "s", [3; NONCE_LEN]).unwrap();
        assert_eq!(keys.open(&sealed, "s").as_deref().map(String::as_str), Some("ldap-username"));
    }
}
