//! Field paths and field sets as structured-merge-diff (the library behind the real API
//! server's server-side apply) defines them: a path is a list of elements — a field name
//! (`f:`), the key of an item of a map list (`k:`) or a value of a set (`v:`) — and a field
//! set is serialized as `metadata.managedFields[].fieldsV1`, where a node that is itself a
//! member and also has members below it carries `".": {}`.
//!
//! Two walks over an object give the sets that ownership is computed from:
//! [`set_by`] lists the fields an applied configuration sets (structured-merge-diff's
//! `ToFieldSet`), and [`compare`] lists what a write added, removed and modified (`Compare`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::schema::{ListType, Schema};

/// One step of a field path. The order (fields, then keys, then values) is
/// structured-merge-diff's, so sets serialize in the same order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Element {
    /// A field of an object or a key of a map: `f:name`.
    Field(String),
    /// An item of a map list, by the JSON object of its key fields: `k:{"type":"Ready"}`.
    Key(String),
    /// An item of a set, by its JSON value: `v:"portcullis.dev/cleanup"`.
    Value(String),
}

pub type Path = Vec<Element>;

impl Element {
    fn serialized(&self) -> String {
        match self {
            Element::Field(name) => format!("f:{name}"),
            Element::Key(key) => format!("k:{key}"),
            Element::Value(value) => format!("v:{value}"),
        }
    }

    fn parse(text: &str) -> Option<Element> {
        let canonical = |json: &str| serde_json::from_str::<Value>(json).ok().map(|v| v.to_string());
        match text.split_at_checked(2)? {
            ("f:", name) => Some(Element::Field(name.to_owned())),
            ("k:", key) => canonical(key).map(Element::Key),
            ("v:", value) => canonical(value).map(Element::Value),
            _ => None,
        }
    }
}

/// A path as the API server prints it in conflicts: `.status.conditions[type="Ready"]`.
pub fn display(path: &[Element]) -> String {
    path.iter()
        .map(|element| match element {
            Element::Field(name) => format!(".{name}"),
            Element::Key(key) => {
                let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let pairs: Vec<String> = fields.iter().map(|(name, value)| format!("{name}={value}")).collect();
                format!("[{}]", pairs.join(","))
            }
            Element::Value(value) => format!("[={value}]"),
        })
        .collect()
}

/// A set of field paths, each one a member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    pub fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    pub fn contains(&self, path: &[Element]) -> bool {
        self.0.contains(path)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }

    /// The members and every path above them: what a manager touches, even where it owns
    /// only something deeper.
    pub fn with_ancestors(&self) -> FieldSet {
        let mut out = BTreeSet::new();
        for path in &self.0 {
            for length in 1..=path.len() {
                out.insert(path[..length].to_vec());
            }
        }
        FieldSet(out)
    }

    pub fn retain(&mut self, keep: impl Fn(&Path) -> bool) {
        self.0.retain(|path| keep(path));
    }

    /// The `fieldsV1` JSON of this set.
    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node {
            member: bool,
            children: BTreeMap<Element, Node>,
        }
        fn emit(node: &Node) -> Value {
            let mut object: Map<String, Value> =
                node.children.iter().map(|(element, child)| (element.serialized(), emit(child))).collect();
            if node.member && !object.is_empty() {
                object.insert(".".into(), json!({}));
            }
            Value::Object(object)
        }
        let mut root = Node::default();
        for path in &self.0 {
            let mut node = &mut root;
            for element in path {
                node = node.children.entry(element.clone()).or_default();
            }
            node.member = true;
        }
        emit(&root)
    }

    /// Reads `fieldsV1` JSON; `None` when it is not a field set. Elements of a kind this
    /// fake does not know are skipped, as structured-merge-diff skips them.
    pub fn from_fields_v1(value: &Value) -> Option<FieldSet> {
        fn read(object: &Map<String, Value>, path: &mut Path, out: &mut BTreeSet<Path>) -> Option<()> {
            for (text, child) in object {
                if text == "." {
                    out.insert(path.clone());
                    continue;
                }
                let Some(element) = Element::parse(text) else { continue };
                let child = child.as_object()?;
                path.push(element);
                if child.is_empty() {
                    out.insert(path.clone());
                } else {
                    read(child, path, out)?;
                }
                path.pop();
            }
            Some(())
        }
        let mut out = BTreeSet::new();
        read(value.as_object()?, &mut Vec::new(), &mut out)?;
        Some(FieldSet(out))
    }
}

/// How a value is walked, given its schema.
pub enum Shape<'a> {
    /// An object whose keys are named fields (a struct).
    Fields(&'a Map<String, Value>),
    /// An object whose keys are data (labels, Secret data): each key is owned on its own.
    Keys(&'a Map<String, Value>),
    /// A set: each item is owned on its own, by value.
    Set(&'a [Value]),
    /// A map list: each item is owned on its own, by its key fields.
    Items(&'a [Value], &'a [String]),
    /// A scalar or an atomic value: owned and replaced as a whole.
    Leaf,
}

pub fn shape<'a>(schema: &'a Schema, value: &'a Value) -> Shape<'a> {
    match (schema, value) {
        (Schema::Struct(_) | Schema::Untyped, Value::Object(object)) => Shape::Fields(object),
        (Schema::Map(_), Value::Object(object)) => Shape::Keys(object),
        (Schema::List(ListType::Set, _), Value::Array(items)) => Shape::Set(items),
        (Schema::List(ListType::Map(keys), _), Value::Array(items)) => Shape::Items(items, keys),
        _ => Shape::Leaf,
    }
}

/// The element naming `item` in a map list keyed by `keys`; `None` when a key is missing.
pub fn key_of(item: &Value, keys: &[String]) -> Option<Element> {
    let fields: Option<Map<String, Value>> =
        keys.iter().map(|key| item.get(key).map(|value| (key.clone(), value.clone()))).collect();
    Some(Element::Key(Value::Object(fields?).to_string()))
}

pub fn value_element(item: &Value) -> Element {
    Element::Value(item.to_string())
}

/// The children of a value with their element and schema, and whether each child is a
/// member on its own even when it has members below it (map keys and list items are;
/// struct fields are only when they are leaves, null or an empty object).
fn children<'a>(schema: &'a Schema, value: &'a Value) -> Vec<(Element, &'a Schema, &'a Value, bool)> {
    match shape(schema, value) {
        Shape::Fields(object) => object
            .iter()
            .map(|(name, child)| {
                let child_schema = schema.field(name);
                let member = matches!(shape(child_schema, child), Shape::Leaf)
                    || child.is_null()
                    || child.as_object().is_some_and(Map::is_empty);
                (Element::Field(name.clone()), child_schema, child, member)
            })
            .collect(),
        Shape::Keys(object) => {
            object.iter().map(|(name, child)| (Element::Field(name.clone()), schema.field(name), child, true)).collect()
        }
        Shape::Set(items) => items.iter().map(|item| (value_element(item), &Schema::ATOMIC, item, true)).collect(),
        Shape::Items(items, keys) => {
            items.iter().filter_map(|item| Some((key_of(item, keys)?, schema.items(), item, true))).collect()
        }
        Shape::Leaf => Vec::new(),
    }
}

/// The fields an applied configuration sets (structured-merge-diff's `ToFieldSet`).
pub fn set_by(schema: &Schema, config: &Value) -> FieldSet {
    fn walk(schema: &Schema, value: &Value, path: &mut Path, out: &mut FieldSet) {
        for (element, child_schema, child, member) in children(schema, value) {
            path.push(element);
            walk(child_schema, child, path, out);
            if member {
                out.insert(path.clone());
            }
            path.pop();
        }
    }
    let mut out = FieldSet::default();
    walk(schema, config, &mut Vec::new(), &mut out);
    out
}

/// What a write changed, path by path (structured-merge-diff's `Compare`): every node that
/// appeared, every node that went, and every leaf whose value changed.
#[derive(Default)]
pub struct Comparison {
    pub added: FieldSet,
    pub removed: FieldSet,
    pub modified: FieldSet,
}

pub fn compare(schema: &Schema, old: &Value, new: &Value) -> Comparison {
    let mut out = Comparison::default();
    compare_at(schema, Some(old), Some(new), &mut Vec::new(), &mut out);
    out
}

fn is_empty_container(value: &Value) -> bool {
    value.as_object().is_some_and(Map::is_empty) || value.as_array().is_some_and(Vec::is_empty)
}

fn compare_at(schema: &Schema, old: Option<&Value>, new: Option<&Value>, path: &mut Path, out: &mut Comparison) {
    match (old, new) {
        (None, None) => {}
        (None, Some(new)) => {
            if !is_empty_container(new) {
                every_node(schema, new, path, &mut out.added);
            }
        }
        (Some(old), None) => {
            if !is_empty_container(old) {
                every_node(schema, old, path, &mut out.removed);
            }
        }
        (Some(old), Some(new)) => {
            let leaf = matches!(shape(schema, old), Shape::Leaf) || matches!(shape(schema, new), Shape::Leaf);
            if leaf || std::mem::discriminant(old) != std::mem::discriminant(new) {
                if old != new {
                    out.modified.insert(path.clone());
                }
                return;
            }
            let lookup = |value| -> BTreeMap<Element, (&Schema, &Value)> {
                children(schema, value)
                    .into_iter()
                    .map(|(element, schema, child, _)| (element, (schema, child)))
                    .collect()
            };
            let (old_children, new_children) = (lookup(old), lookup(new));
            let elements: BTreeSet<&Element> = old_children.keys().chain(new_children.keys()).collect();
            for element in elements {
                let (old_child, new_child) = (old_children.get(element), new_children.get(element));
                let Some((child_schema, _)) = old_child.or(new_child) else { continue };
                path.push(element.clone());
                compare_at(child_schema, old_child.map(|(_, v)| *v), new_child.map(|(_, v)| *v), path, out);
                path.pop();
            }
        }
    }
}

fn every_node(schema: &Schema, value: &Value, path: &mut Path, out: &mut FieldSet) {
    if !path.is_empty() {
        out.insert(path.clone());
    }
    for (element, child_schema, child, _) in children(schema, value) {
        path.push(element);
        every_node(child_schema, child, path, out);
        path.pop();
    }
}
