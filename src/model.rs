//! Records the controller writes and the provider reads: the client registry and the user
//! directory, and the short-lived state of the flows. They are plain data so every store
//! can persist them as they are, built from the protocol's vocabulary
//! ([`crate::vocabulary`]) alone; the protocol rules take them as input.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::vocabulary::{ClaimsRequest, ClientMetadata, GrantType, Scope, TokenEndpointAuthMethod};

/// A registered client, as the provider needs it at request time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    pub client_name: Option<String>,
    /// Argon2id PHC string of the client secret; `None` for public clients.
    pub secret_hash: Option<String>,
    /// The declared `token_endpoint_auth_method`; `None` when the client declared none,
    /// which lets a confidential client present its secret either way (see
    /// [`crate::protocol::client_auth::method_accepted`]).
    pub auth_method: Option<TokenEndpointAuthMethod>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Scope,
    pub roles: Vec<String>,
    pub audience: Vec<String>,
    /// Access-token lifetime in seconds, overriding the provider default.
    pub access_token_ttl: Option<u64>,
    pub require_pkce: bool,
    pub skip_consent: bool,
    /// The browser origins allowed to read this client's token, userinfo and revocation
    /// answers (CORS): derived once from its redirect URIs and `allowedOrigins` by
    /// [`crate::protocol::cors::web_origins`].
    #[serde(default)]
    pub web_origins: Vec<String>,
    /// Set for clients that registered themselves (RFC 7591); `None` for declared ones.
    #[serde(default)]
    pub registration: Option<Registration>,
    /// How tokens and claims are issued to this client beyond its RFC 7591 metadata.
    #[serde(default)]
    pub policy: ClientPolicy,
}

/// Issuance settings a declared client may change; dynamically registered clients get the
/// defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientPolicy {
    /// Seconds during which a rotated-out refresh token gets the same successor tokens
    /// again instead of revoking its family; 0 (strict) revokes on any reuse.
    #[serde(default)]
    pub refresh_reuse_interval: u64,
    /// Custom scopes and the users' custom claims each releases.
    #[serde(default)]
    pub scope_claims: BTreeMap<String, Vec<String>>,
    /// The user claims ID tokens carry, when limited (see [`id_token_user_claims`]).
    ///
    /// [`id_token_user_claims`]: crate::protocol::userinfo::id_token_user_claims
    #[serde(default)]
    pub id_token_claims: Option<Vec<String>>,
    /// Declared `applicationType: native` (RFC 8252); see [`ClientRecord::is_native`].
    #[serde(default)]
    pub native_application: bool,
    /// Where the client receives logout tokens (Back-Channel Logout 1.0 §2.2), if anywhere.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// Where the client's logout page is framed when a session ends (Front-Channel Logout
    /// 1.0 §2), if anywhere.
    #[serde(default)]
    pub frontchannel_logout_uri: Option<String>,
    /// The client needs `iss` and `sid` on its front-channel logout URI (§2).
    #[serde(default)]
    pub frontchannel_logout_session_required: bool,
    /// The connectors people may sign in through for this client; `None`: all of them.
    #[serde(default)]
    pub connectors: Option<Vec<String>>,
    /// No password form: people sign in through the connectors only.
    #[serde(default)]
    pub connectors_only: bool,
}

impl ClientPolicy {
    /// Whether people may sign in through connector `name` for this client.
    pub fn allows_connector(&self, name: &str) -> bool {
        self.connectors.as_ref().is_none_or(|names| names.iter().any(|allowed| allowed == name))
    }
}

/// What a dynamically registered client registered with, and how it manages that
/// registration (RFC 7592).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The validated metadata, echoed on reads.
    pub metadata: ClientMetadata,
    /// SHA-256 of the registration access token.
    pub access_token_hash: String,
    pub client_id_issued_at: u64,
}

impl ClientRecord {
    /// Whether the client may use this grant type (RFC 7591 `grant_types`).
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// A public client (`none`): it holds no secret and is identified by its id alone.
    pub fn is_public(&self) -> bool {
        self.auth_method == Some(TokenEndpointAuthMethod::None)
    }

    /// A native application (RFC 8252, OIDC Registration §2 `application_type`): declared
    /// with `applicationType: native`, or registered with `application_type: native`. Its
    /// loopback redirect URIs match with any port ([`crate::protocol::redirect::is_registered`]).
    pub fn is_native(&self) -> bool {
        match &self.registration {
            Some(registration) => registration.metadata.application_type.as_deref() == Some("native"),
            None => self.policy.native_application,
        }
    }

    /// The audiences of this client's access tokens: configured ones, else the client itself.
    pub fn token_audience(&self) -> Vec<String> {
        if self.audience.is_empty() { vec![self.client_id.clone()] } else { self.audience.clone() }
    }
}

#[cfg(test)]
impl ClientRecord {
    /// A public authorization-code client for unit tests, to adjust with struct update syntax.
    pub fn fixture(client_id: &str, redirect_uris: &[&str], scopes: &str) -> Self {
        ClientRecord {
            client_id: client_id.into(),
            client_name: None,
            secret_hash: None,
            auth_method: Some(TokenEndpointAuthMethod::None),
            redirect_uris: redirect_uris.iter().map(|u| (*u).to_owned()).collect(),
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: Scope::parse(scopes).unwrap_or_default(),
            roles: vec![],
            audience: vec![],
            access_token_ttl: None,
            require_pkce: true,
            skip_consent: false,
            web_origins: vec![],
            registration: None,
            policy: ClientPolicy::default(),
        }
    }
}

/// A back-channel logout token still to be delivered to one client (Back-Channel Logout
/// 1.0 §2.5): one per (session, client), signed afresh at each attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutDelivery {
    /// The ended session's public `sid`.
    pub sid: String,
    pub client_id: String,
    /// The user the session was for (the logout token's `sub`).
    pub subject: String,
    /// When the first attempt was due; retries stop a bounded time after it.
    pub first_due_at: u64,
    /// When the next attempt is due.
    pub due_at: u64,
    /// How many attempts have failed so far.
    pub failed_attempts: u32,
}

/// A user who can log in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub subject: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub client_roles: BTreeMap<String, Vec<String>>,
    /// Argon2id PHC string of the password; empty for a user without one, who cannot sign
    /// in with a password.
    pub password_hash: String,
    pub disabled: bool,
    /// The other OIDC Core §5.1 standard claims.
    #[serde(default)]
    pub profile: UserProfile,
    /// Custom claims by name, released under a client's `scope_claims`.
    #[serde(default)]
    pub custom_claims: BTreeMap<String, serde_json::Value>,
    /// The subjects of the upstream identities this user claims
    /// ([`crate::protocol::federation::federated_subject`] of each connector and upstream
    /// subject): a person signing in as one of them gets this user's roles, client roles
    /// and groups, and is refused while this user is disabled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claimed_subjects: Vec<String>,
}

/// OIDC Core §5.1 standard claims beyond names and email, as declared; released under
/// `profile`, `phone` and `address` (§5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    pub middle_name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    pub website: Option<String>,
    pub gender: Option<String>,
    pub birthdate: Option<String>,
    pub zoneinfo: Option<String>,
    pub locale: Option<String>,
    pub phone_number: Option<String>,
    pub phone_number_verified: bool,
    pub address: Option<Address>,
    /// OIDC Core §5.1 `updated_at`: when the user's released information last changed, in
    /// seconds since the epoch; stamped by [`crate::controller::reconcile::stamp_updated_at`].
    #[serde(default)]
    pub updated_at: Option<u64>,
}

/// OIDC Core §5.1.1: a postal address; absent parts are omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl UserRecord {
    /// Whether this user can sign in with a password (one who only claims upstream
    /// identities has none).
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }
}

#[cfg(test)]
impl UserRecord {
    /// An enabled user without claims or password for unit tests, to adjust with struct
    /// update syntax.
    pub fn fixture(username: &str, subject: &str) -> Self {
        UserRecord {
            subject: subject.into(),
            username: username.into(),
            email: None,
            email_verified: false,
            name: None,
            given_name: None,
            family_name: None,
            groups: vec![],
            roles: vec![],
            client_roles: BTreeMap::new(),
            password_hash: String::new(),
            disabled: false,
            profile: UserProfile::default(),
            custom_claims: BTreeMap::new(),
            claimed_subjects: Vec::new(),
        }
    }
}

/// An SSO session: the browser's proof that a user authenticated at `auth_time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The secret cookie value; never sent anywhere else.
    pub id: String,
    /// The public session id, released as the `sid` claim.
    pub sid: String,
    pub subject: String,
    pub auth_time: u64,
    /// CSRF token of forms that act on the session (logout confirmation).
    pub csrf_token: String,
}

/// What an authorization code stands for (RFC 6749 §4.1.2, OIDC Core §3.1.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Scope,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub subject: String,
    pub auth_time: u64,
    pub session_id: String,
    /// The claims the request asked for individually (OIDC Core §5.5).
    #[serde(default, skip_serializing_if = "ClaimsRequest::is_empty")]
    pub claims: ClaimsRequest,
}

/// A grant: what one user allowed one client, shared by every token issued from one
/// authorization code. Revoking it kills the whole token family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub subject: String,
    pub scope: Scope,
    pub auth_time: u64,
    pub session_id: String,
    pub expires_at: u64,
    /// `(jti, exp)` of the access tokens issued under this grant, so revoking the grant
    /// puts them on the deny-list.
    pub access_tokens: Vec<(String, u64)>,
    /// The claims the authorization request asked for individually (OIDC Core §5.5),
    /// released again in every token the grant issues.
    #[serde(default, skip_serializing_if = "ClaimsRequest::is_empty")]
    pub claims: ClaimsRequest,
}

/// A refresh token, stored under the hash of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshToken {
    pub grant_id: String,
    pub client_id: String,
    pub scope: Scope,
    pub expires_at: u64,
}

/// A device authorization (RFC 8628 §3.1–§3.5), stored under the hash of its
/// `device_code` until it expires; its `user_code` (hashed) points to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGrant {
    pub client_id: String,
    /// The scope requested and checked at the device authorization endpoint.
    pub scope: Scope,
    /// Seconds the client must wait between polls; raised by every `slow_down`.
    pub interval: u64,
    /// When the client last polled, if it has.
    pub last_poll_at: Option<u64>,
    pub expires_at: u64,
    pub status: DeviceStatus,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Waiting for the user to enter the code and decide.
    Pending,
    /// The user allowed it; the tokens are issued at the next poll.
    Approved { subject: String, auth_time: u64, session_id: String },
    /// The user refused it.
    Denied,
    /// The tokens were issued; any further poll is refused.
    Redeemed,
}

/// An upstream identity provider people may sign in with, as the provider needs it: what
/// an `IdentityConnector` declares, its client secret read from its Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorRecord {
    /// The connector's name: its resource's `metadata.name`, part of its callback URL and
    /// of every subject it signs in.
    pub name: String,
    /// The name on the login page's button.
    pub display_name: String,
    /// The picture beside it.
    #[serde(default)]
    pub icon: ButtonIcon,
    pub upstream: Upstream,
    /// Put before every upstream group name in our `groups` claim.
    pub group_prefix: String,
    /// Upstream group names, one of which a person must be in; empty lets everyone in.
    pub allowed_groups: Vec<String>,
    /// Seconds between the upstream checks a refresh makes.
    pub refresh_interval: u64,
    /// Email domains (lowercase) whose `login_hint` skips the login page for this connector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub login_hint_domains: Vec<String>,
}

/// The picture on a connector's login button: `openid`, `github`, `google`, `microsoft`,
/// `directory` or `none`. Defaults to `openid` for type `oidc`, `github` for `github` and
/// `directory` for `ldap`. The pictures ship with Portcullis and are drawn into the page,
/// which loads nothing from elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ButtonIcon {
    /// No picture.
    #[default]
    None,
    /// An identity card: any OpenID Connect provider (the default of type `oidc`).
    OpenId,
    /// GitHub's mark (the default of type `github`).
    GitHub,
    /// Google's "G".
    Google,
    /// Microsoft's four squares (Entra ID).
    Microsoft,
    /// A building: a company directory (the default of type `ldap`).
    Directory,
}

/// The kind of upstream a connector signs in with, and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Upstream {
    Oidc(OidcUpstream),
    #[serde(rename = "github")]
    GitHub(GitHubUpstream),
    Ldap(LdapUpstream),
}

impl Upstream {
    /// Where our claims are read from in what the upstream vouched for: as declared for an
    /// OpenID Connect upstream; GitHub's answers are put under the standard names.
    pub fn claim_paths(&self) -> ClaimPaths {
        match self {
            Upstream::Oidc(oidc) => oidc.claims.clone(),
            Upstream::GitHub(_) | Upstream::Ldap(_) => ClaimPaths::default(),
        }
    }

    /// Whether an email the upstream does not say is verified is accepted.
    pub fn skips_email_verified(&self) -> bool {
        match self {
            Upstream::Oidc(oidc) => oidc.skip_email_verified,
            Upstream::GitHub(_) | Upstream::Ldap(_) => false,
        }
    }
}

/// An LDAP directory: people type their directory username and password on our form, are
/// found with the service account and checked by a bind as their entry.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapUpstream {
    /// `ldaps://host[:port]` or `ldap://host[:port]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS first.
    pub start_tls: bool,
    /// The PEM certificates of the CA the directory's certificate chains to; `None`: the
    /// system's roots.
    pub root_ca_pem: Option<String>,
    /// The service account the searches bind as; `None`: anonymous searches.
    pub service_account: Option<LdapServiceAccount>,
    /// The label of the username field.
    pub username_prompt: Option<String>,
    pub user_search: LdapUserSearch,
    pub group_search: Option<LdapGroupSearch>,
}

/// The DN and password the searches bind with, read from their Secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapServiceAccount {
    pub dn: String,
    /// Kept in clear like [`OidcUpstream::client_secret`]: it must be presented as it is.
    pub password: String,
}

/// Finding a person: under `base_dn`, `(&<filter>(<username>=<typed>))`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapUserSearch {
    pub base_dn: String,
    pub filter: String,
    pub username_attr: String,
    /// `DN` (any case) for the entry's DN.
    pub id_attr: String,
    pub email_attr: String,
    pub name_attr: String,
}

/// Finding a person's groups: under `base_dn`, entries matching `filter` and one of the
/// matchers; named by `name_attr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapGroupSearch {
    pub base_dn: String,
    pub filter: String,
    /// `(person's attribute, group's attribute)` pairs; `DN` for the person's DN.
    pub user_matchers: Vec<(String, String)>,
    pub name_attr: String,
}

/// The service account's password stays out of logs and panics.
impl std::fmt::Debug for LdapUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapUpstream")
            .field("url", &self.url)
            .field("start_tls", &self.start_tls)
            .field("service_account", &self.service_account.as_ref().map(|account| &account.dn))
            .field("user_search", &self.user_search)
            .field("group_search", &self.group_search)
            .finish_non_exhaustive()
    }
}

/// GitHub or a GitHub Enterprise Server: its OAuth app flow, then its REST API for the
/// person, their verified emails, organisations and teams.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHubUpstream {
    pub client_id: String,
    /// The OAuth app's client secret, kept in clear like [`OidcUpstream::client_secret`].
    pub client_secret: String,
    /// Where people sign in: `https://github.com`, or `https://<hostName>` for Enterprise.
    pub web_url: String,
    /// The REST API: `https://api.github.com`, or `https://<hostName>/api/v3`.
    pub api_url: String,
    /// The organisations people must be in (and, where listed, the teams); empty lets
    /// everyone in, with every organisation and team of theirs as a group.
    pub orgs: Vec<GitHubOrg>,
}

/// An organisation allowed in, and the teams (slugs) of it allowed in; no teams: the
/// whole organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHubOrg {
    pub name: String,
    #[serde(default)]
    pub teams: Vec<String>,
}

/// The secret stays out of logs and panics.
impl std::fmt::Debug for GitHubUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubUpstream")
            .field("client_id", &self.client_id)
            .field("web_url", &self.web_url)
            .field("api_url", &self.api_url)
            .field("orgs", &self.orgs)
            .finish_non_exhaustive()
    }
}

/// An upstream OpenID Connect provider.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcUpstream {
    pub issuer: String,
    pub client_id: String,
    /// Portcullis's client secret at the upstream: it must be presented as it is, so it is
    /// kept in clear (the store is as private as the Secret it comes from).
    pub client_secret: String,
    /// The scopes asked, `openid` among them.
    pub scopes: Vec<String>,
    pub claims: ClaimPaths,
    /// Accept an email the upstream does not say is verified (released as unverified).
    pub skip_email_verified: bool,
    /// Also read claims from the upstream's userinfo endpoint.
    pub userinfo: bool,
}

/// The secret stays out of logs and panics.
impl std::fmt::Debug for OidcUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcUpstream")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("scopes", &self.scopes)
            .field("claims", &self.claims)
            .field("skip_email_verified", &self.skip_email_verified)
            .field("userinfo", &self.userinfo)
            .finish_non_exhaustive()
    }
}

/// Where each of our claims is read from in the upstream's: a claim name, or a dotted
/// path into nested objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimPaths {
    pub username: String,
    pub email: String,
    pub email_verified: String,
    pub name: String,
    pub groups: String,
}

impl Default for ClaimPaths {
    fn default() -> Self {
        ClaimPaths {
            username: "preferred_username".into(),
            email: "email".into(),
            email_verified: "email_verified".into(),
            name: "name".into(),
            groups: "groups".into(),
        }
    }
}

/// A person signed in through a connector, kept while their sessions and grants may need
/// them: the user record our tokens are built from, and what a refresh asks the upstream
/// again with.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct FederatedUser {
    /// The record our claims come from; its subject is derived from the connector and the
    /// upstream subject ([`crate::protocol::federation::federated_subject`]).
    pub user: UserRecord,
    pub connector: String,
    /// The upstream's `sub`.
    pub upstream_subject: String,
    /// The upstream's refresh token, if it gave one (for GitHub, whose OAuth app tokens do
    /// not expire, its access token; for LDAP, the directory username the person is
    /// searched by again): how a refresh checks the person again. Sealed
    /// ([`crate::protocol::upstream_credential`]), never kept in the clear; a record written
    /// before credentials were sealed has none, and its next re-check signs the person out.
    #[serde(default)]
    pub upstream_credential: Option<String>,
    /// When the upstream last vouched for the person.
    pub checked_at: u64,
}

/// The upstream's refresh token stays out of logs and panics.
impl std::fmt::Debug for FederatedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederatedUser")
            .field("subject", &self.user.subject)
            .field("connector", &self.connector)
            .field("upstream_subject", &self.upstream_subject)
            .field("checked_at", &self.checked_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
impl ConnectorRecord {
    /// An OIDC connector to `issuer` letting everyone in, for unit tests.
    pub fn fixture(name: &str, issuer: &str) -> Self {
        ConnectorRecord {
            name: name.into(),
            display_name: name.into(),
            icon: ButtonIcon::OpenId,
            upstream: Upstream::Oidc(OidcUpstream {
                issuer: issuer.into(),
                client_id: "portcullis".into(),
                client_secret: "upstream-secret".into(),
                scopes: vec!["openid".into()],
                claims: ClaimPaths::default(),
                skip_email_verified: false,
                userinfo: false,
            }),
            group_prefix: String::new(),
            allowed_groups: vec![],
            refresh_interval: 600,
            login_hint_domains: vec![],
        }
    }
}
