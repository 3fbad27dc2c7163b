//! What can go wrong creating, reading or using a key.

use crate::vocabulary::SigningAlgorithm;

/// Failures creating or using a key. They never carry key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unsupported RSA key size {0}; use 2048, 3072 or 4096")]
    UnsupportedRsaSize(u32),
    #[error("key generation failed")]
    Generation,
    #[error("the private key is not a valid PKCS#8 {0} key")]
    InvalidPrivateKey(SigningAlgorithm),
    #[error("the public key is not a valid {0} key")]
    InvalidPublicKey(SigningAlgorithm),
    #[error("not a public JWK of a supported algorithm")]
    InvalidJwk,
    #[error("signing failed")]
    Signing,
    #[error("the shared key could not be read or kept: {0}")]
    Store(String),
    #[error("claims could not be serialized: {0}")]
    Claims(#[from] serde_json::Error),
}
