//! Signing keys: generation, the keyring (active signer + published set), compact JWS
//! signing with cached key pairs, verification (also with public keys known only from
//! their JWK) and the JWKS document.
//!
//! Private key material lives only inside [`KeyPair`], whose `Debug` shows the `kid` and
//! algorithm and nothing else.

mod jwk;
mod jws;
mod jwt_type;
mod keyring;
mod pair;
mod public;

pub use jwk::Jwk;
pub use jws::VerifyError;
pub use jwt_type::JwtType;
pub use keyring::{KeyPhase, Keyring, SharedKeyring};
pub use pair::{KeyError, KeyPair};
pub use public::PublicKey;
