//! The manifests folder: `*.yaml` / `*.yml` files holding `OidcClient`, `OidcUser`,
//! `SigningKey`, `IdentityConnector` and core `v1` `Secret` documents, read into the same types the CRDs are
//! generated from. Every failure names the file, the document and the field.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::crd::{IdentityConnector, OidcClient, OidcUser, SigningKey};

/// Where a document came from: a file and the 1-based position of the document in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, document {}", self.file.display(), self.document)
    }
}

/// Why a manifests folder could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no *.yaml or *.yml files")]
    Empty { path: PathBuf },
    #[error("{origin}: not valid YAML: {message}")]
    Yaml { origin: Origin, message: String },
    #[error("{origin}: missing `apiVersion` or `kind`")]
    MissingType { origin: Origin },
    #[error(
        "{origin}: unsupported kind {api_version}/{kind}; expected portcullis.dev/v1alpha1 OidcClient, OidcUser, SigningKey or IdentityConnector, or v1 Secret"
    )]
    UnsupportedKind { origin: Origin, api_version: String, kind: String },
    #[error("{origin} ({kind}): field `{field}`: {message}")]
    Field { origin: Origin, kind: String, field: String, message: String },
    #[error("{origin} ({kind}): unknown field `{field}`")]
    UnknownField { origin: Origin, kind: String, field: String },
    #[error("{origin} ({kind}): `metadata.name` is required")]
    MissingName { origin: Origin, kind: String },
    #[error("{origin}: {resource} is also defined in {first}")]
    Duplicate { origin: Origin, first: Box<Origin>, resource: String },
}

/// A resource together with where it was read from.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub origin: Origin,
    pub resource: T,
}

/// Everything read from a folder.
#[derive(Debug, Default)]
pub struct ManifestSet {
    pub clients: Vec<Located<OidcClient>>,
    pub users: Vec<Located<OidcUser>>,
    pub signing_keys: Vec<Located<SigningKey>>,
    pub connectors: Vec<Located<IdentityConnector>>,
    /// Secrets by (namespace, name).
    pub secrets: HashMap<(String, String), Secret>,
}

/// The namespace of resources whose manifest names none, as with `kubectl apply`.
pub const DEFAULT_NAMESPACE: &str = "default";

impl ManifestSet {
    /// Reads every `*.yaml` and `*.yml` file directly inside `dir`, in name order.
    pub fn load_dir(dir: &Path) -> Result<Self, ManifestError> {
        let texts = read_dir(dir)?;
        let files: Vec<(&str, &str)> = texts.iter().map(|(file, text)| (file.as_str(), text.as_str())).collect();
        Self::load_texts(&files)
    }

    /// Reads manifests given as (file name, YAML text) pairs, such as the embedded examples.
    pub fn load_texts(files: &[(&str, &str)]) -> Result<Self, ManifestError> {
        let mut set = Self::default();
        let mut seen = HashMap::new();
        for (name, text) in files {
            set.add_file(Path::new(name), text, &mut seen)?;
        }
        Ok(set)
    }

    fn add_file(
        &mut self,
        file: &Path,
        text: &str,
        seen: &mut HashMap<(String, String, String), Origin>,
    ) -> Result<(), ManifestError> {
        for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let origin = Origin { file: file.to_owned(), document: index + 1 };
            let value = serde_yaml_ng::Value::deserialize(document)
                .map_err(|e| ManifestError::Yaml { origin: origin.clone(), message: e.to_string() })?;
            if value.is_null() {
                continue;
            }
            self.add_document(origin, value, seen)?;
        }
        Ok(())
    }

    fn add_document(
        &mut self,
        origin: Origin,
        value: serde_yaml_ng::Value,
        seen: &mut HashMap<(String, String, String), Origin>,
    ) -> Result<(), ManifestError> {
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return Err(ManifestError::MissingType { origin });
        };
        let (namespace, name) = match (api_version.as_str(), kind.as_str()) {
            ("portcullis.dev/v1alpha1", "OidcClient") => located(&mut self.clients, &origin, &kind, value)?,
            ("portcullis.dev/v1alpha1", "OidcUser") => located(&mut self.users, &origin, &kind, value)?,
            ("portcullis.dev/v1alpha1", "SigningKey") => located(&mut self.signing_keys, &origin, &kind, value)?,
            ("portcullis.dev/v1alpha1", "IdentityConnector") => located(&mut self.connectors, &origin, &kind, value)?,
            ("v1", "Secret") => {
                let resource: Secret = typed(&origin, &kind, value)?;
                let id = identity(&origin, &kind, &resource.metadata)?;
                self.secrets.insert(id.clone(), resource);
                id
            }
            _ => return Err(ManifestError::UnsupportedKind { origin, api_version, kind }),
        };
        let resource = format!("{kind} {namespace}/{name}");
        if let Some(first) = seen.insert((kind, namespace, name), origin.clone()) {
            return Err(ManifestError::Duplicate { origin, first: Box::new(first), resource });
        }
        Ok(())
    }

    /// A Secret in a namespace.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets.get(&(namespace.to_owned(), name.to_owned()))
    }
}

/// The `*.yaml` and `*.yml` files directly inside `dir` (following symbolic links, as a
/// mounted ConfigMap has them), in name order.
pub fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, ManifestError> {
    let io = |source| ManifestError::Io { path: dir.to_owned(), source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    files.retain(|p| p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")));
    files.sort();
    if files.is_empty() {
        return Err(ManifestError::Empty { path: dir.to_owned() });
    }
    Ok(files)
}

/// The [`manifest_files`] of `dir` with their text.
pub fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, ManifestError> {
    manifest_files(dir)?
        .into_iter()
        .map(|file| {
            let text =
                std::fs::read_to_string(&file).map_err(|source| ManifestError::Io { path: file.clone(), source })?;
            Ok((file.display().to_string(), text))
        })
        .collect()
}

/// Deserializes a document into its type, naming the failing field and refusing unknown
/// fields (as `kubectl apply` does with strict field validation): a misspelt field would
/// otherwise be dropped silently.
fn typed<T: DeserializeOwned>(origin: &Origin, kind: &str, value: serde_yaml_ng::Value) -> Result<T, ManifestError> {
    let mut unknown = Vec::new();
    let mut record_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let deserializer = serde_ignored::Deserializer::new(value, &mut record_unknown);
    let resource = serde_path_to_error::deserialize(deserializer).map_err(|e| ManifestError::Field {
        origin: origin.clone(),
        kind: kind.to_owned(),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    // `apiVersion` and `kind` were read already; the typed structs do not keep them.
    if let Some(field) = unknown.into_iter().find(|f| f != "apiVersion" && f != "kind") {
        return Err(ManifestError::UnknownField { origin: origin.clone(), kind: kind.to_owned(), field });
    }
    Ok(resource)
}

/// Reads a document of a custom resource kind into `into`, with where it came from;
/// returns its namespace and name.
fn located<T: DeserializeOwned + Resource>(
    into: &mut Vec<Located<T>>,
    origin: &Origin,
    kind: &str,
    value: serde_yaml_ng::Value,
) -> Result<(String, String), ManifestError> {
    let resource: T = typed(origin, kind, value)?;
    let id = identity(origin, kind, resource.meta())?;
    into.push(Located { origin: origin.clone(), resource });
    Ok(id)
}

fn identity(
    origin: &Origin,
    kind: &str,
    metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Result<(String, String), ManifestError> {
    let name = metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ManifestError::MissingName { origin: origin.clone(), kind: kind.to_owned() })?;
    Ok((metadata.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "apiVersion: portcullis.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: webapp}\nspec:\n  redirectUris: [\"http://127.0.0.1:9000/callback\"]\n";

    fn load(text: &str) -> Result<ManifestSet, ManifestError> {
        ManifestSet::load_texts(&[("test.yaml", text)])
    }

    #[test]
    fn reads_multi_document_files_and_skips_empty_documents() {
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: team}\nstringData: {a: b}\n";
        let set = load(&format!("---\n{secret}---\n{CLIENT}---\n")).unwrap();
        assert_eq!(set.clients.len(), 1);
        assert_eq!(set.clients[0].origin.document, 2);
        assert!(set.secret("team", "s").is_some());
    }

    #[test]
    fn secret_data_is_base64_and_string_data_plain() {
        let set =
            load("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: aGVsbG8=}\nstringData: {p: plain}\n")
                .unwrap();
        let secret = set.secret(DEFAULT_NAMESPACE, "s").unwrap();
        assert_eq!(secret.data.as_ref().unwrap()["k"].0, b"hello");
        assert_eq!(secret.string_data.as_ref().unwrap()["p"], "plain");
    }

    #[test]
    fn bad_field_names_file_document_and_field() {
        let text = format!(
            "{CLIENT}---\napiVersion: portcullis.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: x}}\nspec:\n  grantTypes: [implicit]\n"
        );
        let message = load(&text).unwrap_err().to_string();
        assert!(message.contains("test.yaml, document 2"), "{message}");
        assert!(message.contains("spec.grantTypes"), "{message}");
        assert!(message.contains("implicit"), "{message}");
    }

    #[test]
    fn misspelt_field_is_refused_by_name() {
        let message = load(
            "apiVersion: portcullis.dev/v1alpha1\nkind: OidcClient\nmetadata: {name: x}\nspec:\n  redirectUri: [a]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(message.contains("unknown field `spec.redirectUri`"), "{message}");
    }

    #[test]
    fn unsupported_kind_and_missing_type_are_refused() {
        assert!(matches!(
            load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"),
            Err(ManifestError::UnsupportedKind { .. })
        ));
        assert!(matches!(
            load("apiVersion: portcullis.dev/v1\nkind: OidcClient\nmetadata: {name: c}\nspec: {}\n"),
            Err(ManifestError::UnsupportedKind { .. })
        ));
        assert!(matches!(load("metadata: {name: c}\n"), Err(ManifestError::MissingType { .. })));
    }

    #[test]
    fn invalid_yaml_and_missing_name_are_refused() {
        assert!(matches!(load("a: [unclosed\n"), Err(ManifestError::Yaml { .. })));
        assert!(matches!(load("apiVersion: v1\nkind: Secret\nmetadata: {}\n"), Err(ManifestError::MissingName { .. })));
    }

    #[test]
    fn identity_connectors_are_read_as_their_own_kind() {
        let connector = "apiVersion: portcullis.dev/v1alpha1\nkind: IdentityConnector\nmetadata: {name: corp}\nspec:\n  \
                         type: oidc\n  oidc: {issuer: \"https://idp.example\", clientId: p, clientSecretRef: {name: s, key: k}}\n";
        let set = load(connector).unwrap();
        assert_eq!(set.connectors.len(), 1);
        assert_eq!(set.connectors[0].resource.metadata.name.as_deref(), Some("corp"));
        assert!(set.clients.is_empty() && set.users.is_empty());
    }

    #[test]
    fn duplicate_resources_are_refused() {
        let text = format!("{CLIENT}---\n{CLIENT}");
        assert!(matches!(load(&text), Err(ManifestError::Duplicate { .. })));
    }
}
