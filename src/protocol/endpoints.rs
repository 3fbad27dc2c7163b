//! Endpoint paths, shared by the router and the discovery document so they cannot disagree.

pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
pub const JWKS: &str = "/jwks.json";
pub const WELL_KNOWN_JWKS: &str = "/.well-known/jwks.json";
pub const TOKEN: &str = "/token";
pub const INTROSPECT: &str = "/introspect";
pub const REVOKE: &str = "/revoke";
pub const HEALTH: &str = "/health";
pub const READY: &str = "/ready";
pub const METRICS: &str = "/metrics";
pub const AUTHORIZE: &str = "/authorize";
pub const LOGIN: &str = "/login";
pub const CONSENT: &str = "/consent";
pub const USERINFO: &str = "/userinfo";
pub const LOGOUT: &str = "/logout";
pub const REGISTER: &str = "/register";
pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
pub const DEVICE: &str = "/device";
pub const ACCOUNT: &str = "/account";
/// Where the login page's "Continue with …" links start a sign-in at an upstream.
pub const LOGIN_UPSTREAM: &str = "/login/upstream";
/// Where upstreams send the browser back: `/callback/<connector name>`.
pub const CALLBACK: &str = "/callback";
pub const STYLESHEET: &str = "/assets/portcullis.css";
pub const FORM_POST_SCRIPT: &str = "/assets/form-post.js";
pub const FRONTCHANNEL_LOGOUT_SCRIPT: &str = "/assets/frontchannel-logout.js";
