// kube's derive repeats `type_` across printcolumns by design; clippy mistakes it for a duplicate.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vocabulary::{GrantType, TokenEndpointAuthMethod};

/// An application that may obtain tokens from Portcullis.
///
/// Field names follow RFC 7591 client metadata, in camelCase.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "OidcClient",
    namespaced,
    status = "OidcClientStatus",
    shortname = "oidcc",
    category = "portcullis",
    doc = "An OAuth 2.0 / OpenID Connect client (relying party) of Portcullis.",
    printcolumn(name = "Client ID", type_ = "string", json_path = ".status.clientId"),
    printcolumn(name = "Auth", type_ = "string", json_path = ".spec.tokenEndpointAuthMethod"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(
    validation = Rule::new("!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'none' || !has(self.grantTypes) || !self.grantTypes.exists(g, g == 'client_credentials')")
        .message("a public client (tokenEndpointAuthMethod: none) cannot use the client_credentials grant"),
    validation = Rule::new("!has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'none' || !has(self.secretName)")
        .message("a public client (tokenEndpointAuthMethod: none) has no secret, so no secretName"),
    validation = Rule::new("!has(self.grantTypes) || !self.grantTypes.exists(g, g == 'authorization_code') || (has(self.redirectUris) && size(self.redirectUris) > 0)")
        .message("the authorization_code grant needs at least one redirect URI"),
    validation = Rule::new("!has(self.redirectUris) || self.redirectUris.all(u, isURL(u) && !u.contains('#'))")
        .message("redirectUris must be absolute URLs without a fragment (RFC 6749 section 3.1.2)"),
    validation = Rule::new("!has(self.postLogoutRedirectUris) || self.postLogoutRedirectUris.all(u, isURL(u) && !u.contains('#'))")
        .message("postLogoutRedirectUris must be absolute URLs without a fragment"),
    validation = Rule::new("!has(self.backchannelLogoutUri) || (isURL(self.backchannelLogoutUri) && !self.backchannelLogoutUri.contains('#'))")
        .message("backchannelLogoutUri must be an absolute URL without a fragment (Back-Channel Logout 1.0 section 2.2)"),
    validation = Rule::new("!has(self.frontchannelLogoutUri) || (isURL(self.frontchannelLogoutUri) && !self.frontchannelLogoutUri.contains('#'))")
        .message("frontchannelLogoutUri must be an absolute URL without a fragment (Front-Channel Logout 1.0 section 2)")
)]
#[serde(rename_all = "camelCase")]
pub struct OidcClientSpec {
    /// The `client_id`. Defaults to the `clientId` key of the credentials Secret, then to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Human-readable name shown on the login and consent pages (RFC 7591 `client_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Exact redirect URIs the client may use (RFC 7591 `redirect_uris`); compared by exact
    /// string match, except that a `native` client's `http://127.0.0.1/…` and `http://[::1]/…`
    /// URIs match with any port (RFC 8252 section 7.3).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Exact URIs the client may be sent to after logout (RP-Initiated Logout `post_logout_redirect_uris`).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where Portcullis POSTs a logout token when a session the client got tokens in ends
    /// (Back-Channel Logout 1.0 `backchannel_logout_uri`): `https`, or `http` to a loopback
    /// address only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in its logout tokens (Back-Channel Logout 1.0
    /// `backchannel_logout_session_required`). Portcullis always sends it, so this only
    /// documents the client's need.
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// The page Portcullis frames in the browser when a session the client got tokens in
    /// ends (Front-Channel Logout 1.0 `frontchannel_logout_uri`): `https`, or `http` to a
    /// loopback address only. For clients that cannot receive back-channel calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    /// The client needs `iss` and `sid` as query parameters of its front-channel logout URI
    /// (Front-Channel Logout 1.0 `frontchannel_logout_session_required`).
    #[serde(default)]
    pub frontchannel_logout_session_required: bool,
    /// The `IdentityConnector`s (by name) people may sign in through for this client;
    /// absent: every connector. An empty list offers none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectors: Option<Vec<String>>,
    /// Whether the login page offers the password form of locally declared users; `false`
    /// leaves sign-in through the connectors only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_users: Option<bool>,
    /// OAuth 2.0 grant types the client may use (RFC 7591 `grant_types`).
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may request; a request for more is narrowed to these.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How the client authenticates at the token, introspection and revocation endpoints
    /// (RFC 7591 `token_endpoint_auth_method`); `none` makes it a public client. When unset, the
    /// client authenticates with its secret either way, `client_secret_basic` or
    /// `client_secret_post`; when set, only that method is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_auth_method")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// `native` for an application on the user's device, such as a command-line tool or
    /// kubectl plugin (OpenID Connect Registration `application_type`, RFC 8252): its loopback IP
    /// redirect URIs (`http://127.0.0.1/…`, `http://[::1]/…`) then match with whatever port it
    /// listens on at run time; the path and query still match exactly, and `localhost` only
    /// exactly (RFC 8252 section 8.3). Native apps cannot keep a secret, so they are usually
    /// public clients (`tokenEndpointAuthMethod: none`), which always use PKCE. Defaults to
    /// `web`: every redirect URI matches exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_application_type")]
    pub application_type: Option<ApplicationType>,
    /// Secret holding the credentials (keys `clientId`, `clientSecret`). Defaults to `<metadata.name>-credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Roles this client defines; users' `clientRoles` for this client are limited to these.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Audiences (`aud`) put into this client's access tokens. Defaults to the client id.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Lifetime of access tokens issued to this client, e.g. `15m` or `1h`. Defaults to the provider's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_lifetime: Option<String>,
    /// Require PKCE (RFC 7636) even though the client is confidential. Public clients always require it.
    #[serde(default)]
    pub require_pkce: bool,
    /// Skip the consent page for this (first-party) client.
    #[serde(default)]
    pub skip_consent: bool,
    /// Browser origins (`scheme://host[:port]`) whose scripts may call the token, userinfo and
    /// revocation endpoints (CORS), in addition to the origins of `redirectUris` and
    /// `postLogoutRedirectUris`, which count by default. An empty list allows no origin at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// How long a rotated-out refresh token may be presented again and get the very same
    /// successor tokens, for clients that refresh concurrently (several tabs, kubectl
    /// plugins sharing a token cache), e.g. `3s`; at most `60s`. Defaults to `0s`: any
    /// reuse revokes the whole token family (RFC 9700 section 4.14.2). Within the interval
    /// whoever holds the old token gets the successor, so keep it short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_reuse_interval: Option<String>,
    /// Custom scopes this client may request and the users' custom `claims` each releases,
    /// e.g. `{org: [organization, department]}`. The consent page names the claims.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scope_claims: BTreeMap<String, Vec<String>>,
    /// The user claims the ID token carries, e.g. `[groups, email, email_verified]`. By
    /// default (unset) the ID token carries every claim the granted scopes release, so
    /// relying parties that never call userinfo (the Kubernetes API server, kubelogin,
    /// Argo CD) read them there. Set it to keep ID tokens small (the API server reads them
    /// from a request header): the other released claims are then served by userinfo only.
    /// A claim asked for by name in the `claims` request parameter's `id_token` member is
    /// always included. Names: the standard user claims (`claims_supported`) or custom
    /// claims of `scopeClaims`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_claims: Option<Vec<String>>,
}

/// The schema of an optional method, spelled out: the generated one would carry the enum's
/// own description instead of the field's.
fn optional_auth_method(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": TokenEndpointAuthMethod::NAMES, "nullable": true})
}

/// OpenID Connect Registration §2 `application_type`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationType {
    #[default]
    Web,
    Native,
}

/// The schema of an optional application type, spelled out for the same reason as
/// [`optional_auth_method`].
fn optional_application_type(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["web", "native"], "nullable": true})
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode]
}

/// What the controller observed when it last reconciled the client.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcClientStatus {
    /// The client id the registry holds for this resource; absent while it holds none. A
    /// rename (of `spec.clientId` or the Secret's `clientId`) removes the one recorded here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` says whether the client is usable.
    // A map keyed by `type`, as upstream `metav1.Condition` lists are (`+listType=map`), so
    // server-side apply merges conditions by type rather than replacing the whole list.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}
