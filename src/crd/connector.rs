// kube's derive repeats `type_` across printcolumns by design; clippy mistakes it for a duplicate.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;
use crate::model::ButtonIcon;

/// An upstream identity provider people may sign in with instead of a local password.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "IdentityConnector",
    namespaced,
    status = "IdentityConnectorStatus",
    shortname = "idc",
    category = "portcullis",
    doc = "An upstream identity provider (an OpenID Connect provider, GitHub or an LDAP directory) people may sign in with; the metadata.name is the connector's name.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Display Name", type_ = "string", json_path = ".spec.displayName"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(
    validation = Rule::new("self.type != 'oidc' || has(self.oidc)").message("a connector of type oidc needs its `oidc` settings"),
    validation = Rule::new("self.type != 'github' || has(self.github)").message("a connector of type github needs its `github` settings"),
    validation = Rule::new("self.type != 'ldap' || has(self.ldap)").message("a connector of type ldap needs its `ldap` settings")
)]
#[serde(rename_all = "camelCase")]
pub struct IdentityConnectorSpec {
    /// The kind of upstream: `oidc`, an OpenID Connect provider (Entra ID v2.0, Google,
    /// Keycloak, Okta, another Portcullis); `github`, GitHub or a GitHub Enterprise Server;
    /// `ldap`, an LDAP directory (OpenLDAP, Active Directory) checking passwords by binding.
    #[serde(rename = "type")]
    pub connector_type: ConnectorType,
    /// The name on the login page's button ("Continue with …"). Defaults to `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The picture on the button (the schema shows [`ButtonIcon`]'s description).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<ButtonIcon>,
    /// The settings of a connector of type `oidc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcConnectorSpec>,
    /// The settings of a connector of type `github`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GitHubConnectorSpec>,
    /// The settings of a connector of type `ldap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapConnectorSpec>,
    /// Put before every upstream group name in the `groups` claim, e.g. `corp:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_prefix: Option<String>,
    /// Upstream groups (before the prefix) of which a person must be in at least one to
    /// sign in through this connector; empty lets every upstream user in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_groups: Vec<String>,
    /// How often a refresh asks the upstream again whether the person still exists and is
    /// still in the allowed groups, e.g. `10m` (the default) or `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// Email domains, e.g. `example.com`, whose people are sent straight to this connector:
    /// an authorization request whose `login_hint` is an address at one of them (exactly
    /// that domain, not its subdomains) skips the login page, when the client offers this
    /// connector. The hint is passed on to an OpenID Connect upstream and fills in a
    /// directory's username.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub login_hint_domains: Vec<String>,
}

impl IdentityConnector {
    /// The Secret keys the connector reads (a client secret; a directory's service account
    /// and CA): what the folder and the controller read, and the Secret changes that reach
    /// the connector.
    pub fn secret_refs(&self) -> Vec<&SecretKeyRef> {
        match self.spec.connector_type {
            ConnectorType::Oidc => self.spec.oidc.iter().map(|oidc| &oidc.client_secret_ref).collect(),
            ConnectorType::Github => self.spec.github.iter().map(|github| &github.client_secret_ref).collect(),
            ConnectorType::Ldap => self
                .spec
                .ldap
                .iter()
                .flat_map(|ldap| [&ldap.root_ca_secret_ref, &ldap.bind_dn_secret_ref, &ldap.bind_password_secret_ref])
                .flatten()
                .collect(),
        }
    }
}

/// The kinds of upstream identity provider.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorType {
    /// An OpenID Connect provider, found through its discovery document.
    Oidc,
    /// GitHub or a GitHub Enterprise Server (an OAuth app).
    Github,
    /// An LDAP directory: the person types their directory username and password here.
    Ldap,
}

impl ConnectorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorType::Oidc => "oidc",
            ConnectorType::Github => "github",
            ConnectorType::Ldap => "ldap",
        }
    }
}

/// How to sign in with an upstream OpenID Connect provider (the authorization code flow
/// with PKCE, `state` and `nonce`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcConnectorSpec {
    /// The upstream's issuer URL; its `/.well-known/openid-configuration` must name the
    /// same issuer. For Entra ID: `https://login.microsoftonline.com/<tenant>/v2.0`.
    pub issuer: String,
    /// The client id Portcullis is registered with at the upstream. The redirect URI to
    /// register there is `<issuer of Portcullis>/callback/<connector name>`.
    pub client_id: String,
    /// Where the client secret is kept (a Secret in the connector's namespace).
    pub client_secret_ref: SecretKeyRef,
    /// The scopes asked of the upstream; defaults to `openid profile email`. `openid` is
    /// always asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Which upstream claims our claims are read from.
    #[serde(default)]
    pub claim_mappings: ClaimMappings,
    /// Accept an `email` the upstream does not say is verified (some never send
    /// `email_verified`); it is then released with `email_verified: false`.
    #[serde(default)]
    pub insecure_skip_email_verified: bool,
    /// Also read the claims (groups above all) from the upstream's userinfo endpoint, for
    /// upstreams that leave them out of the ID token.
    #[serde(default)]
    pub userinfo: bool,
}

/// How to sign in with GitHub: an OAuth app (its callback URL is
/// `<issuer of Portcullis>/callback/<connector name>`), reading the person's primary
/// verified email, organisations and teams.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitHubConnectorSpec {
    /// The OAuth app's client id.
    pub client_id: String,
    /// Where the OAuth app's client secret is kept (a Secret in the connector's namespace).
    pub client_secret_ref: SecretKeyRef,
    /// The organisations whose members may sign in, each optionally narrowed to some of its
    /// teams; groups are `org` and `org:team` (team slugs). Empty: every GitHub user may
    /// sign in, with all their organisations and teams as groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orgs: Vec<GitHubOrgSpec>,
    /// A GitHub Enterprise Server's host name, e.g. `github.example.com`; defaults to
    /// github.com.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
}

/// A GitHub organisation allowed in.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitHubOrgSpec {
    /// The organisation's login name.
    pub name: String,
    /// Team slugs of the organisation to allow; empty: its every member.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
}

/// How to sign people in against an LDAP directory: find the person with the service
/// account, check their password by binding as the entry found (never compared here),
/// then read their groups. An empty password is refused before any bind (an LDAP simple
/// bind with an empty password is an unauthenticated bind that succeeds).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapConnectorSpec {
    /// The directory's URL: `ldaps://host[:port]`, or `ldap://host[:port]` with `startTLS`.
    /// Plain `ldap://` without StartTLS is refused except on a loopback address.
    pub host: String,
    /// Upgrade an `ldap://` connection with StartTLS before anything is sent.
    #[serde(default, rename = "startTLS")]
    pub start_tls: bool,
    /// A Secret key holding the PEM certificate(s) of the CA the directory's certificate
    /// chains to; without it, the system's trusted roots.
    #[serde(default, rename = "rootCASecretRef", skip_serializing_if = "Option::is_none")]
    pub root_ca_secret_ref: Option<SecretKeyRef>,
    /// A Secret key holding the service account's DN, which searches for people and
    /// groups; without it the searches are anonymous.
    #[serde(default, rename = "bindDNSecretRef", skip_serializing_if = "Option::is_none")]
    pub bind_dn_secret_ref: Option<SecretKeyRef>,
    /// A Secret key holding the service account's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_secret_ref: Option<SecretKeyRef>,
    /// The label of the username field on the sign-in form; defaults to "Username".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_prompt: Option<String>,
    /// How a person is found from the username they type.
    pub user_search: LdapUserSearch,
    /// How the person's groups are found; without it they have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_search: Option<LdapGroupSearch>,
}

/// Finding a person: an entry under `baseDN` matching `filter` whose `username` attribute
/// is what they typed (escaped, RFC 4515); exactly one must match.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapUserSearch {
    /// Where people are searched (the whole subtree), e.g. `ou=people,dc=example,dc=com`.
    #[serde(rename = "baseDN")]
    pub base_dn: String,
    /// An LDAP filter every person's entry matches; defaults to `(objectClass=person)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The attribute matched against the typed username, e.g. `uid` (OpenLDAP) or
    /// `sAMAccountName` (Active Directory); our `preferred_username`.
    pub username: String,
    /// The attribute whose value is the person's stable upstream subject (`DN` for the
    /// entry's DN); defaults to `uid`. Prefer one that survives renames (`entryUUID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_attr: Option<String>,
    /// The attribute holding the email address; defaults to `mail`. The directory is
    /// trusted for it: it is released as verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_attr: Option<String>,
    /// The attribute holding the display name; defaults to `cn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_attr: Option<String>,
}

/// Finding a person's groups: entries under `baseDN` matching `filter` and one of the
/// `userMatchers`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapGroupSearch {
    /// Where groups are searched (the whole subtree), e.g. `ou=groups,dc=example,dc=com`.
    #[serde(rename = "baseDN")]
    pub base_dn: String,
    /// An LDAP filter every group's entry matches; defaults to `(objectClass=groupOfNames)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// How a group names its members: a group whose `groupAttr` holds the person's
    /// `userAttr` (`DN` for the entry's DN) is theirs. Defaults to one matcher,
    /// `{userAttr: DN, groupAttr: member}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_matchers: Vec<LdapUserMatcher>,
    /// The group's attribute that is its name in our `groups` claim; defaults to `cn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_attr: Option<String>,
}

/// One way a group entry points at its members.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LdapUserMatcher {
    /// The person's attribute (`DN` for the entry's DN), e.g. `DN` or `uid`.
    pub user_attr: String,
    /// The group's attribute holding it, e.g. `member` or `memberUid`.
    pub group_attr: String,
}

/// Upstream claim names, each a top-level claim or a dotted path into nested objects
/// (`realm_access.roles`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMappings {
    /// Our `preferred_username`; defaults to `preferred_username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Our `email`; defaults to `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether that email is verified; defaults to `email_verified`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<String>,
    /// Our `name`; defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Our `groups` (a list of strings, or one string); defaults to `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
}

/// What the controller observed when it last reconciled the connector.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityConnectorStatus {
    /// The generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` says whether people can sign in through the connector.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}
