//! A parsed signing key pair, kept for the key's whole lifetime so signing never re-parses
//! key material (re-parsing an RSA key per signature more than halves throughput).

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use super::error::KeyError;
use super::jwk::{Jwk, PublicParams};
use super::jwt_type::JwtType;
use super::public::PublicKey;
use crate::vocabulary::SigningAlgorithm;

enum Private {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A signing key: the parsed private key, its public key and pre-encoded JWS headers.
pub struct KeyPair {
    private: Private,
    public: Arc<PublicKey>,
    at_jwt_header: String,
    jwt_header: String,
    logout_jwt_header: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.kid())
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Generates a new key; also returns its PKCS#8 encoding for safekeeping, wiped when
    /// the caller drops it.
    pub fn generate(
        algorithm: SigningAlgorithm,
        rsa_bits: Option<u32>,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), KeyError> {
        let pkcs8 = Zeroizing::new(match algorithm {
            SigningAlgorithm::RS256 => {
                let size = match rsa_bits.unwrap_or(2048) {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    other => return Err(KeyError::UnsupportedRsaSize(other)),
                };
                let pair = RsaKeyPair::generate(size).map_err(|_| KeyError::Generation)?;
                pair.as_der().map_err(|_| KeyError::Generation)?.as_ref().to_vec()
            }
            SigningAlgorithm::ES256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                    .map_err(|_| KeyError::Generation)?
                    .as_ref()
                    .to_vec()
            }
            SigningAlgorithm::EdDSA => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| KeyError::Generation)?
                .as_ref()
                .to_vec(),
        });
        Ok((Self::from_pkcs8(algorithm, &pkcs8)?, pkcs8))
    }

    /// Parses a PKCS#8 private key once, for the key's lifetime.
    pub fn from_pkcs8(algorithm: SigningAlgorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let invalid = |_| KeyError::InvalidPrivateKey(algorithm);
        let (private, params) = match algorithm {
            SigningAlgorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(invalid)?;
                if pair.public_modulus_len() < 256 {
                    return Err(KeyError::InvalidPrivateKey(algorithm));
                }
                let components = pair.public_key();
                let params = PublicParams::Rsa {
                    n: components.modulus().big_endian_without_leading_zero().to_vec(),
                    e: components.exponent().big_endian_without_leading_zero().to_vec(),
                };
                (Private::Rsa(pair), params)
            }
            SigningAlgorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(invalid)?;
                // Uncompressed SEC1 point: 0x04 || X || Y.
                let point = pair.public_key().as_ref();
                if point.len() != 65 {
                    return Err(KeyError::InvalidPrivateKey(algorithm));
                }
                let params = PublicParams::P256 { x: point[1..33].to_vec(), y: point[33..].to_vec() };
                (Private::P256(pair), params)
            }
            SigningAlgorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(invalid)?;
                let params = PublicParams::Ed25519 { x: pair.public_key().as_ref().to_vec() };
                (Private::Ed25519(pair), params)
            }
        };
        let public =
            Arc::new(PublicKey::from_params(algorithm, params).map_err(|_| KeyError::InvalidPrivateKey(algorithm))?);
        let header = |typ: &str| {
            URL_SAFE_NO_PAD.encode(format!(
                r#"{{"alg":"{}","typ":"{typ}","kid":"{}"}}"#,
                algorithm.as_str(),
                public.kid()
            ))
        };
        Ok(Self {
            at_jwt_header: header(JwtType::AccessToken.as_str()),
            jwt_header: header(JwtType::Jwt.as_str()),
            logout_jwt_header: header(JwtType::LogoutToken.as_str()),
            private,
            public,
        })
    }

    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.public.algorithm()
    }

    pub fn jwk(&self) -> &Jwk {
        self.public.jwk()
    }

    /// The public half, which verifies what this key signed.
    pub fn public(&self) -> &Arc<PublicKey> {
        &self.public
    }

    /// The base64url-encoded protected header for tokens of this type.
    pub(super) fn encoded_header(&self, typ: JwtType) -> &str {
        match typ {
            JwtType::AccessToken => &self.at_jwt_header,
            JwtType::Jwt => &self.jwt_header,
            JwtType::LogoutToken => &self.logout_jwt_header,
        }
    }

    /// Signs the JWS signing input with the cached key pair.
    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.private {
            Private::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .map_err(|_| KeyError::Signing)?;
                Ok(signature)
            }
            Private::P256(pair) => {
                Ok(pair.sign(&SystemRandom::new(), message).map_err(|_| KeyError::Signing)?.as_ref().to_vec())
            }
            Private::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}
