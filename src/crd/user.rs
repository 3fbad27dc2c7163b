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
    doc = "A user who can sign in to Portcullis; the password hash lives in a Secret.",
    printcolumn(name = "Username", type_ = "string", json_path = ".spec.username"),
    printcolumn(name = "Email", type_ = "string", json_path = ".spec.email"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
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
    /// Group names (`groups` claim).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Roles that apply to every client (`realm_access.roles`, as Keycloak names it).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Roles per client id (`resource_access.<client>.roles`); only roles the client declares are released.
    #[serde(default)]
    pub client_roles: BTreeMap<String, Vec<String>>,
    /// Where the argon2id PHC hash of the password is kept (`portcullis hash-password` makes one).
    pub password_secret_ref: SecretKeyRef,
    /// A disabled user cannot log in.
    #[serde(default)]
    pub disabled: bool,
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
    /// Standard conditions; `Ready` says whether the user can log in.
    // A map keyed by `type`, as upstream `metav1.Condition` lists are (`+listType=map`), so
    // server-side apply merges conditions by type rather than replacing the whole list.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}
