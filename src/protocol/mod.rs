//! Pure OAuth 2.0 / OpenID Connect rules: typed requests in, typed decisions out.
//!
//! Nothing here performs I/O or knows about HTTP frameworks, Redis or Kubernetes; time is
//! passed in as `now` (seconds since the Unix epoch) so tests pin and advance the clock.
//! [`types`] is the vocabulary at the bottom: the records of [`crate::model`] and the
//! custom resources of [`crate::crd`] are built from it, and the rules here work on
//! those records. `scripts/check-layers` keeps this module free of the layers above.

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod endpoints;
pub mod error;
pub mod form;
pub mod id_token;
pub mod introspection;
pub mod pkce;
pub mod redirect;
pub mod registration;
pub mod scope;
pub mod token;
pub mod types;
pub mod userinfo;

pub use error::{ErrorCode, OAuthError, error_description};
