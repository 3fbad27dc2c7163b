//! The kinds the fake serves and as much of their schemas as server-side apply needs: which
//! objects are structs and which are maps, which lists are atomic, sets or map lists.
//!
//! The custom resources come from the checked-in CRDs (`crds/portcullis.dev.yaml`, generated
//! from the Rust types), read the way the real API server reads them:
//! `x-kubernetes-list-type` (`atomic`, the default, `set`, `map` with
//! `x-kubernetes-list-map-keys`), `x-kubernetes-map-type: atomic`, `additionalProperties`
//! for maps, and `subresources.status`. So a list the CRD does not mark is atomic here as it
//! is in a cluster. The built-in kinds are described by hand from their Go types (`+listType`
//! markers): `metadata.finalizers` is a set, `metadata.ownerReferences` a map list keyed by
//! `uid`, labels, annotations and a Secret's `data` and `stringData` are maps.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The shape of a value, as far as field ownership goes.
#[derive(Clone, Debug)]
pub enum Schema {
    /// An object with named fields; a field it does not name is [`Schema::Untyped`].
    Struct(BTreeMap<String, Schema>),
    /// An object whose keys are data, each value of this schema.
    Map(Box<Schema>),
    List(ListType, Box<Schema>),
    /// A scalar, or a list or object owned and replaced as a whole.
    Atomic,
    /// Nothing declared: objects are walked as structs, lists are atomic.
    Untyped,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

impl Schema {
    pub const ATOMIC: Schema = Schema::Atomic;
    const UNTYPED: Schema = Schema::Untyped;

    /// The schema of a field or map value.
    pub fn field(&self, name: &str) -> &Schema {
        match self {
            Schema::Struct(fields) => fields.get(name).unwrap_or(&Self::UNTYPED),
            Schema::Map(values) => values,
            _ => &Self::UNTYPED,
        }
    }

    /// The schema of a list's items.
    pub fn items(&self) -> &Schema {
        match self {
            Schema::List(_, items) => items,
            _ => &Self::UNTYPED,
        }
    }

    /// Reads an OpenAPI v3 schema of a CRD.
    fn from_openapi(node: &Value) -> Schema {
        let extension = |name: &str| node.get(name).and_then(Value::as_str);
        match node.get("type").and_then(Value::as_str) {
            Some("object") if extension("x-kubernetes-map-type") == Some("atomic") => Schema::Atomic,
            Some("object") | None => {
                if let Some(properties) = node.get("properties").and_then(Value::as_object) {
                    Schema::Struct(
                        properties.iter().map(|(name, child)| (name.clone(), Self::from_openapi(child))).collect(),
                    )
                } else if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
                    Schema::Map(Box::new(Self::from_openapi(values)))
                } else {
                    Schema::Untyped
                }
            }
            Some("array") => {
                let list_type = match extension("x-kubernetes-list-type") {
                    Some("set") => ListType::Set,
                    Some("map") => ListType::Map(
                        node.get("x-kubernetes-list-map-keys")
                            .and_then(Value::as_array)
                            .map(|keys| keys.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                            .unwrap_or_default(),
                    ),
                    _ => ListType::Atomic,
                };
                Schema::List(list_type, Box::new(node.get("items").map_or(Schema::Untyped, Self::from_openapi)))
            }
            Some(_) => Schema::Atomic,
        }
    }
}

fn string_map() -> Schema {
    Schema::Map(Box::new(Schema::Atomic))
}

/// `ObjectMeta`, whose schema the API server uses for every kind's `metadata`.
fn object_meta() -> Schema {
    Schema::Struct(BTreeMap::from([
        ("labels".to_owned(), string_map()),
        ("annotations".to_owned(), string_map()),
        ("finalizers".to_owned(), Schema::List(ListType::Set, Box::new(Schema::Atomic))),
        ("ownerReferences".to_owned(), Schema::List(ListType::Map(vec!["uid".to_owned()]), Box::new(Schema::Untyped))),
    ]))
}

fn with_object_meta(fields: impl IntoIterator<Item = (&'static str, Schema)>) -> Schema {
    let mut fields: BTreeMap<String, Schema> =
        fields.into_iter().map(|(name, schema)| (name.to_owned(), schema)).collect();
    fields.insert("metadata".to_owned(), object_meta());
    Schema::Struct(fields)
}

/// A kind the fake serves.
#[derive(Debug)]
pub struct Kind {
    pub api_version: String,
    pub plural: String,
    pub kind: String,
    /// Custom resources with `subresources.status`: `/status` writes only the status, the
    /// main resource everything else.
    pub status_subresource: bool,
    /// Custom resources count `metadata.generation`; the built-in kinds served here do not.
    pub generation: bool,
    pub schema: Schema,
}

impl Kind {
    fn built_in(api_version: &str, plural: &str, kind: &str, schema: Schema) -> Kind {
        Kind {
            api_version: api_version.into(),
            plural: plural.into(),
            kind: kind.into(),
            status_subresource: false,
            generation: false,
            schema,
        }
    }
}

#[derive(Deserialize)]
struct Crd {
    spec: CrdSpec,
}

#[derive(Deserialize)]
struct CrdSpec {
    group: String,
    names: CrdNames,
    versions: Vec<CrdVersion>,
}

#[derive(Deserialize)]
struct CrdNames {
    plural: String,
    kind: String,
}

#[derive(Deserialize)]
struct CrdVersion {
    name: String,
    schema: Value,
    #[serde(default)]
    subresources: Value,
}

/// Every kind the fake serves, by API version and plural.
#[derive(Debug)]
pub struct Kinds(BTreeMap<(String, String), Kind>);

/// The CRDs of this repository, as generated from the Rust types.
const PORTCULLIS_CRDS: &str = include_str!("../../../crds/portcullis.dev.yaml");

impl Kinds {
    /// The built-in kinds the controller uses, the Portcullis CRDs and `extra_crds` (YAML
    /// streams of `CustomResourceDefinition`s, for tests of the fake itself).
    pub fn new(extra_crds: &[&str]) -> Result<Kinds, String> {
        let mut kinds = vec![
            Kind::built_in(
                "v1",
                "secrets",
                "Secret",
                with_object_meta([("data", string_map()), ("stringData", string_map())]),
            ),
            Kind::built_in("coordination.k8s.io/v1", "leases", "Lease", with_object_meta([])),
            Kind::built_in("events.k8s.io/v1", "events", "Event", with_object_meta([])),
        ];
        for stream in std::iter::once(PORTCULLIS_CRDS).chain(extra_crds.iter().copied()) {
            for document in serde_yaml_ng::Deserializer::from_str(stream) {
                let crd = Crd::deserialize(document).map_err(|e| format!("not a CRD: {e}"))?;
                for version in crd.spec.versions {
                    let Schema::Struct(mut fields) =
                        Schema::from_openapi(version.schema.get("openAPIV3Schema").unwrap_or(&Value::Null))
                    else {
                        return Err(format!("{}: the schema is not an object", crd.spec.names.plural));
                    };
                    fields.insert("metadata".to_owned(), object_meta());
                    kinds.push(Kind {
                        api_version: format!("{}/{}", crd.spec.group, version.name),
                        plural: crd.spec.names.plural.clone(),
                        kind: crd.spec.names.kind.clone(),
                        status_subresource: version.subresources.get("status").is_some(),
                        generation: true,
                        schema: Schema::Struct(fields),
                    });
                }
            }
        }
        Ok(Kinds(kinds.into_iter().map(|kind| ((kind.api_version.clone(), kind.plural.clone()), kind)).collect()))
    }

    pub fn get(&self, api_version: &str, plural: &str) -> Option<&Kind> {
        self.0.get(&(api_version.to_owned(), plural.to_owned()))
    }
}
