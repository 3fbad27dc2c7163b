//! Integration tests over real HTTP against an in-process `dev` provider, grouped by
//! specification.

mod account;
mod authorize;
mod backchannel_logout;
#[path = "../support/certificates.rs"]
mod certificates;
mod claims_request;
mod code_grant;
mod cors;
mod device;
mod discovery;
mod federation;
mod federation_github;
mod federation_ldap;
mod federation_tokens;
#[path = "../support/fixtures.rs"]
mod fixtures;
mod frontchannel_logout;
mod harness;
mod hot_path;
mod introspection;
mod limits;
mod logout;
#[path = "../support/logout_rp.rs"]
mod logout_rp;
mod malformed;
mod metrics;
mod native_apps;
mod registration;
mod reload;
mod revocation;
#[path = "../support/slapd.rs"]
mod slapd;
mod throttling;
mod timing;
mod token;
mod userinfo;
