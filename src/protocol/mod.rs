//! Pure OAuth 2.0 / OpenID Connect rules: typed requests in, typed decisions out.
//!
//! Nothing here performs I/O or knows about HTTP frameworks, Redis or Kubernetes; time is
//! passed in as `now` (seconds since the Unix epoch) so tests pin and advance the clock.
//! The rules work on the vocabulary of [`crate::vocabulary`] and the records of
//! [`crate::model`]; `scripts/check-layers` keeps this module free of the layers above.

pub mod authorize;
pub mod backchannel_logout;
pub mod claims;
pub mod client_auth;
pub mod cors;
pub mod device;
pub mod discovery;
pub mod endpoints;
pub mod epoch;
pub mod federation;
pub mod form;
pub mod frontchannel_logout;
pub mod id_token;
pub mod introspection;
pub mod pending;
pub mod pkce;
pub mod redirect;
pub mod refresh_reuse;
pub mod registration;
pub mod scope;
pub mod session_end;
pub mod token;
pub mod upstream_credential;
pub mod userinfo;
