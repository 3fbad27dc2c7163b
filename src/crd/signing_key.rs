// kube's derive repeats `type_` across printcolumns by design; clippy mistakes it for a duplicate.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;
use crate::vocabulary::SigningAlgorithm;

/// A signing key for ID tokens and access tokens, rotated by the controller.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "SigningKey",
    namespaced,
    status = "SigningKeyStatus",
    shortname = "sk",
    category = "portcullis",
    doc = "A token signing key; its public part is published in the JWKS.",
    printcolumn(name = "Algorithm", type_ = "string", json_path = ".spec.algorithm"),
    printcolumn(name = "Active Kid", type_ = "string", json_path = ".status.activeKid"),
    printcolumn(name = "Next Rotation", type_ = "date", json_path = ".status.nextRotation"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(
    validation = Rule::new("!has(self.rsaBits) || self.rsaBits in [2048, 3072, 4096]").message("rsaBits must be 2048, 3072 or 4096"),
    validation = Rule::new("!has(self.rsaBits) || self.algorithm == 'RS256'").message("rsaBits applies to RS256 only")
)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeySpec {
    /// JWS algorithm (RFC 7518): RS256 (RSA 2048+), ES256 (P-256) or EdDSA (Ed25519).
    pub algorithm: SigningAlgorithm,
    /// How long a key signs before the next one takes over, e.g. `720h` (default 30 days). Annotate
    /// the resource with `portcullis.dev/rotate: <any new value>` to rotate sooner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_period: Option<String>,
    /// RSA modulus size in bits (2048, 3072 or 4096); ignored for other algorithms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsa_bits: Option<u32>,
    /// Manifests folder only (`portcullis dev`, `portcullis serve --manifests`): the PKCS#8
    /// private key (DER, or PEM `BEGIN PRIVATE KEY`) in a Secret of the folder, so every replica
    /// signs with it and none of it is kept in Redis; replacing it rotates (the old key keeps
    /// verifying until its tokens expire). The controller generates and rotates keys in Secrets
    /// of its own and does not read this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_secret_ref: Option<SecretKeyRef>,
}

/// What the controller observed when it last reconciled the key.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyStatus {
    /// The key id (`kid`) currently signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_kid: Option<String>,
    /// When the next rotation is due (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<String>,
    /// Every published key: the next one, the active one and retired ones still verifying tokens.
    #[serde(default)]
    pub keys: Vec<PublishedKey>,
    /// The last value of the `portcullis.dev/rotate` annotation acted upon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_request: Option<String>,
    /// The generation last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Standard conditions; `Ready` says whether an active key signs.
    // A map keyed by `type`, as upstream `metav1.Condition` lists are (`+listType=map`), so
    // server-side apply merges conditions by type rather than replacing the whole list.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
}

/// One key of a `SigningKey`, as published in the JWKS.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublishedKey {
    /// The key id (`kid`).
    pub kid: String,
    /// `next` (published, not signing yet), `active` (signing) or `retired` (published until its tokens expire).
    pub phase: String,
    /// The Secret holding the key.
    pub secret_name: String,
    /// When the key was generated (RFC 3339).
    pub created: String,
    /// When the key started signing (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated: Option<String>,
    /// When the key stopped signing (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}
