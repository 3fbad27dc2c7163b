// kube's derive repeats `type_` across printcolumns by design; clippy mistakes it for a duplicate.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A person who can log in to Portcullis.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "OidcUser",
    namespaced,
    status = "OidcUserStatus",
    shortname = "oidcu",
    category = "portcullis",
    doc = "A user who can sign in to Portcullis: with a password whose hash lives in a Secret, through the upstream identities it claims, or both.",
    printcolumn(name = "Username", type_ = "string", json_path = ".spec.username"),
    printcolumn(name = "Email", type_ = "string", json_path = ".spec.email"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Sessions", type_ = "integer", json_path = ".status.activeSessions"),
    printcolumn(name = "Last Login", type_ = "date", json_path = ".status.lastLogin"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
// A user needs a way to sign in: a password, an upstream identity, or both.
#[schemars(extend("anyOf" = [{"required": ["passwordSecretRef"]}, {"required": ["federatedIdentities"]}]))]
pub struct OidcUserSpec {
    /// The login name, also released as `preferred_username`.
    pub username: String,
    /// The stable subject identifier (`sub`). Defaults to the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Email address (`email` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the email address has been verified (`email_verified` claim).
    #[serde(default)]
    pub email_verified: bool,
    /// Full name (`name` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given name (`given_name` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name (`family_name` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Middle name (`middle_name` claim, scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Casual name (`nickname` claim, scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// URL of a profile picture (`picture` claim, scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// URL of a web page or blog (`website` claim, scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Gender (`gender` claim, scope `profile`), e.g. `female`, `male` or another value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Birthday as `YYYY-MM-DD`, `0000-MM-DD` or `YYYY` (`birthdate` claim, scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris` (`zoneinfo` claim, scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    /// BCP 47 language tag, e.g. `en-US` (`locale` claim, scope `profile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Telephone number, E.164 recommended, e.g. `+1 (425) 555-1212` (`phone_number` claim, scope `phone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Whether the telephone number has been verified (`phone_number_verified` claim, scope `phone`).
    #[serde(default)]
    pub phone_number_verified: bool,
    /// Postal address (`address` claim, scope `address`; OIDC Core section 5.1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<PostalAddress>,
    /// Group names (`groups` claim, scopes `groups` and `roles`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Roles that apply to every client (`realm_access.roles`, as Keycloak names it).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Roles per client id (`resource_access.<client>.roles`); only roles the client declares are released.
    #[serde(default)]
    pub client_roles: BTreeMap<String, Vec<String>>,
    /// Extra claims about the user, any JSON values by claim name, e.g.
    /// `{organization: Acme, department: R&D}`. A client releases them under the scopes of
    /// its `scopeClaims`. Names of registered JWT and OpenID Connect claims are refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "any_json_values")]
    pub claims: BTreeMap<String, serde_json::Value>,
    /// Where the argon2id PHC hash of the password is kept (`portcullis hash-password` makes one).
    /// Without it the user has no password: they sign in only as an upstream identity they
    /// claim in `federatedIdentities`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeyRef>,
    /// Upstream identities this user claims: a person signing in through `connector` with
    /// upstream subject `subject` keeps the subject Portcullis derives for them (see the
    /// README's Federation section) and their claims from the upstream, and gets this
    /// user's `roles`, `clientRoles` and `groups` besides; while this user is `disabled`
    /// they are refused, and their refresh tokens stop working. An identity an older
    /// `OidcUser` claims stays that user's (reason `FederatedIdentityConflict`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated_identities: Vec<FederatedIdentity>,
    /// A disabled user cannot log in.
    #[serde(default)]
    pub disabled: bool,
}

/// An upstream identity an `OidcUser` claims.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FederatedIdentity {
    /// The name of the `IdentityConnector` (in the controller's namespace) the person signs in through.
    #[schemars(length(min = 1))]
    pub connector: String,
    /// The person's subject at the upstream: the ID token's `sub` for `type: oidc`, the
    /// numeric user id for `type: github`, the value of `userSearch.idAttr` for `type: ldap`.
    #[schemars(length(min = 1))]
    pub subject: String,
}

/// An object whose values may be any JSON, kept as written.
fn any_json_values(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// A postal address (OIDC Core section 5.1.1); every part is optional.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostalAddress {
    /// The full address for display, lines separated by newlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// Street, house number, apartment; lines separated by newlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// City or locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// State, province, prefecture or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Zip or postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// A key inside a Secret in the resource's own namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key inside the Secret's data.
    pub key: String,
}

/// What the controller observed when it last reconciled the user.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcUserStatus {
    /// The username the directory holds for this resource; absent while it holds none. A
    /// rename removes the one recorded here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The subject (`sub`) of the user record held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The last value of the `portcullis.dev/revoke-sessions` annotation acted upon: every
    /// session and refresh family the user held then was ended. Annotate with a new value
    /// to do it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_sessions: Option<String>,
    /// How many SSO sessions of the user were live at the last reconcile (every resync
    /// period, and on each change to the resource); absent while the user cannot sign in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_sessions: Option<u64>,
    /// When the user last signed in, as far as the controller has seen (read at each
    /// reconcile, never moved back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// Standard conditions; `Ready` says whether the user can log in.
    // A map keyed by `type`, as upstream `metav1.Condition` lists are (`+listType=map`), so
    // server-side apply merges conditions by type rather than replacing the whole list.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}
