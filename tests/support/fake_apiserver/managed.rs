//! `metadata.managedFields` and the two ways a write changes them, after
//! structured-merge-diff's `Updater` (the real API server's field manager):
//!
//! - **Apply** (`PATCH` with `application/apply-patch+yaml`): the manager owns exactly the
//!   fields of its applied configuration. Fields it applied before and omits now are removed
//!   unless another manager owns them; changing a field another manager owns is a conflict
//!   unless forced, and forcing moves the field to the applier. Setting a field to the value
//!   it already has shares its ownership.
//! - **Update** (create, replace, merge or JSON patch): the writer takes every field it
//!   added or changed, from whoever owned it, without conflicts; removed fields leave every
//!   manager.
//!
//! Managers are told apart by name, operation and subresource, so a controller's `Update`
//! entry and its `Apply` entry are two managers, as in a cluster.

use serde_json::{Map, Value, json};

use super::fields::{self, Comparison, Element, FieldSet, Path, Shape};
use super::schema::{ListType, Schema};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who writes: the identity of a managed-fields entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Writer {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    /// `"status"` for the status subresource, empty for the resource itself.
    pub subresource: String,
}

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    writer: Writer,
    time: Option<String>,
    fields: FieldSet,
}

impl Entry {
    /// How the API server names a manager in a conflict.
    fn describe(&self) -> String {
        match (self.writer.operation, &self.time) {
            (Operation::Apply, _) => format!("{:?}", self.writer.manager),
            (Operation::Update, None) => format!("{:?} using {}", self.writer.manager, self.writer.api_version),
            (Operation::Update, Some(time)) => {
                format!("{:?} using {} at {time}", self.writer.manager, self.writer.api_version)
            }
        }
    }
}

/// A field another manager owns with a different value.
#[derive(Debug)]
pub struct Conflict {
    /// The manager as the API server prints it: `"name"`, or `"name" using v1 at <time>`.
    pub manager: String,
    /// The field as the API server prints it: `.data.clientSecret`.
    pub field: String,
}

/// The managers of one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Managers(Vec<Entry>);

/// Fields the API server sets itself, which no manager owns (its `stripMeta`).
const SERVER_FIELDS: [&str; 9] = [
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

fn strip_server_fields(set: &mut FieldSet) {
    set.retain(|path| match path.as_slice() {
        [Element::Field(top)] => !matches!(top.as_str(), "apiVersion" | "kind" | "metadata"),
        [Element::Field(top), Element::Field(field), ..] if top == "metadata" => {
            !SERVER_FIELDS.contains(&field.as_str())
        }
        _ => true,
    });
}

/// What a write changed in the fields managers can own.
fn changes(schema: &Schema, old: &Value, new: &Value) -> Comparison {
    let mut comparison = fields::compare(schema, old, new);
    for set in [&mut comparison.added, &mut comparison.removed, &mut comparison.modified] {
        strip_server_fields(set);
    }
    comparison
}

impl Managers {
    /// Reads `metadata.managedFields`; `None` when it is not a list of entries.
    pub fn decode(value: &Value) -> Option<Managers> {
        let entries = value.as_array()?;
        let entry = |entry: &Value| {
            let text = |name: &str| entry.get(name).and_then(Value::as_str).map(str::to_owned);
            let operation = match entry.get("operation")?.as_str()? {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                _ => return None,
            };
            Some(Entry {
                writer: Writer {
                    manager: text("manager").unwrap_or_default(),
                    operation,
                    api_version: text("apiVersion").unwrap_or_default(),
                    subresource: text("subresource").unwrap_or_default(),
                },
                time: text("time"),
                fields: FieldSet::from_fields_v1(entry.get("fieldsV1").unwrap_or(&json!({})))?,
            })
        };
        entries.iter().map(entry).collect::<Option<Vec<_>>>().map(Managers)
    }

    /// `metadata.managedFields`, sorted as the API server sorts it: by operation (`Apply`
    /// first), time, manager, then subresource.
    pub fn encode(&self) -> Option<Value> {
        let mut entries = self.0.clone();
        entries.sort_by(|a, b| {
            (a.writer.operation, &a.time, &a.writer.manager, &a.writer.subresource).cmp(&(
                b.writer.operation,
                &b.time,
                &b.writer.manager,
                &b.writer.subresource,
            ))
        });
        let encoded: Vec<Value> = entries
            .iter()
            .map(|entry| {
                let mut object = Map::new();
                if !entry.writer.manager.is_empty() {
                    object.insert("manager".into(), json!(entry.writer.manager));
                }
                object.insert("operation".into(), json!(entry.writer.operation.name()));
                object.insert("apiVersion".into(), json!(entry.writer.api_version));
                if let Some(time) = &entry.time {
                    object.insert("time".into(), json!(time));
                }
                object.insert("fieldsType".into(), json!("FieldsV1"));
                object.insert("fieldsV1".into(), entry.fields.to_fields_v1());
                if !entry.writer.subresource.is_empty() {
                    object.insert("subresource".into(), json!(entry.writer.subresource));
                }
                Value::Object(object)
            })
            .collect();
        (!encoded.is_empty()).then_some(Value::Array(encoded))
    }

    fn is(entry: &Entry, writer: &Writer) -> bool {
        entry.writer.manager == writer.manager
            && entry.writer.operation == writer.operation
            && entry.writer.subresource == writer.subresource
    }

    fn others<'a>(&'a self, writer: &'a Writer) -> impl Iterator<Item = &'a Entry> {
        self.0.iter().filter(move |entry| !Self::is(entry, writer))
    }

    /// Sets the writer's fields (creating its entry), stamping the time when `changed`.
    fn set(&mut self, writer: &Writer, fields: FieldSet, changed: bool, now: &str) {
        match self.0.iter_mut().find(|entry| Self::is(entry, writer)) {
            Some(entry) => {
                entry.fields = fields;
                entry.writer.api_version.clone_from(&writer.api_version);
                if changed {
                    entry.time = Some(now.to_owned());
                }
            }
            None => self.0.push(Entry { writer: writer.clone(), time: Some(now.to_owned()), fields }),
        }
        self.0.retain(|entry| !entry.fields.is_empty());
    }

    /// Takes `taken` from every other manager and drops `removed` from them all.
    fn release(&mut self, writer: &Writer, taken: &FieldSet, removed: &FieldSet) {
        for entry in self.0.iter_mut().filter(|entry| !Self::is(entry, writer)) {
            entry.fields = entry.fields.difference(taken).difference(removed);
        }
        self.0.retain(|entry| !entry.fields.is_empty());
    }

    /// Records a non-apply write that turned `old` into `new`.
    pub fn update(&mut self, schema: &Schema, old: &Value, new: &Value, writer: &Writer, now: &str) {
        let Comparison { added, removed, modified } = changes(schema, old, new);
        let taken = added.union(&modified);
        self.release(writer, &taken, &removed);
        let previous = self.0.iter().find(|entry| Self::is(entry, writer)).map(|entry| entry.fields.clone());
        if !taken.is_empty() {
            let fields = previous.unwrap_or_default().union(&taken).difference(&removed);
            self.set(writer, fields, true, now);
        } else if let Some(fields) = previous {
            self.set(writer, fields.difference(&removed), false, now);
        }
    }

    /// Applies `config` by `writer` to `live`, returning the new object, or the conflicts
    /// when another manager owns a field the configuration changes and `force` is not set.
    pub fn apply(
        &mut self,
        schema: &Schema,
        live: &Value,
        config: &Value,
        writer: &Writer,
        force: bool,
        now: &str,
    ) -> Result<Value, Vec<Conflict>> {
        let mut applied = fields::set_by(schema, config);
        strip_server_fields(&mut applied);
        let last = self.0.iter().find(|entry| Self::is(entry, writer)).map(|entry| entry.fields.clone());
        let others_touch =
            self.others(writer).fold(FieldSet::default(), |all, entry| all.union(&entry.fields)).with_ancestors();
        let removal =
            last.unwrap_or_default().with_ancestors().difference(&applied.with_ancestors()).difference(&others_touch);
        let mut new = merge(schema, live, config);
        prune(schema, &mut new, &removal, &mut Vec::new());

        let Comparison { added, removed, modified } = changes(schema, live, &new);
        let taken = added.union(&modified);
        let mut conflicts: Vec<Conflict> = self
            .others(writer)
            .flat_map(|entry| {
                entry
                    .fields
                    .intersection(&taken)
                    .iter()
                    .map(|path| Conflict { manager: entry.describe(), field: fields::display(path) })
                    .collect::<Vec<_>>()
            })
            .collect();
        if !conflicts.is_empty() && !force {
            conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
            return Err(conflicts);
        }
        self.release(writer, &taken, &removed);
        let changed = new != *live;
        self.set(writer, applied, changed, now);
        Ok(new)
    }
}

/// Merges an applied configuration into the live object: struct fields and map keys
/// recursively, set items and map-list items by value or key, anything else replaced.
/// An explicit `null` removes the field.
fn merge(schema: &Schema, live: &Value, config: &Value) -> Value {
    match (fields::shape(schema, live), fields::shape(schema, config)) {
        (
            Shape::Fields(live_fields) | Shape::Keys(live_fields),
            Shape::Fields(config_fields) | Shape::Keys(config_fields),
        ) => {
            let mut out = live_fields.clone();
            for (name, value) in config_fields {
                if value.is_null() {
                    out.remove(name);
                    continue;
                }
                let merged = match live_fields.get(name) {
                    Some(current) => merge(schema.field(name), current, value),
                    None => value.clone(),
                };
                out.insert(name.clone(), merged);
            }
            Value::Object(out)
        }
        (Shape::Set(live_items), Shape::Set(config_items)) => {
            let mut out = live_items.to_vec();
            out.extend(config_items.iter().filter(|item| !live_items.contains(item)).cloned());
            Value::Array(out)
        }
        (Shape::Items(live_items, keys), Shape::Items(config_items, _)) => {
            let mut out = live_items.to_vec();
            for item in config_items {
                let key = fields::key_of(item, keys);
                match out.iter_mut().find(|current| key.is_some() && fields::key_of(current, keys) == key) {
                    Some(current) => *current = merge(schema.items(), current, item),
                    None => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        _ => config.clone(),
    }
}

/// Removes the fields in `removal` from `value`, deepest first. A struct field goes only if
/// nothing is left in it, so what someone else owns (or nobody does) stays; the key fields
/// of a map-list item stay as long as the item does.
fn prune(schema: &Schema, value: &mut Value, removal: &FieldSet, path: &mut Path) {
    match (schema, value) {
        (Schema::Struct(_) | Schema::Map(_) | Schema::Untyped, Value::Object(object)) => {
            prune_fields(schema, object, &[], removal, path);
        }
        (Schema::List(ListType::Set, _), Value::Array(items)) => items.retain(|item| {
            path.push(fields::value_element(item));
            let keep = !removal.contains(path);
            path.pop();
            keep
        }),
        (Schema::List(ListType::Map(keys), item_schema), Value::Array(items)) => items.retain_mut(|item| {
            let Some(element) = fields::key_of(item, keys) else { return true };
            path.push(element);
            if let Value::Object(item_fields) = item {
                prune_fields(item_schema, item_fields, keys, removal, path);
            }
            let emptied = item.as_object().is_some_and(|fields| fields.keys().all(|name| keys.contains(name)));
            let keep = !(removal.contains(path) && emptied);
            path.pop();
            keep
        }),
        _ => {}
    }
}

/// Prunes the fields of an object, except those named in `kept`.
fn prune_fields(
    schema: &Schema,
    object: &mut Map<String, Value>,
    kept: &[String],
    removal: &FieldSet,
    path: &mut Path,
) {
    let names: Vec<String> = object.keys().filter(|name| !kept.contains(name)).cloned().collect();
    for name in names {
        let child_schema = schema.field(&name);
        path.push(Element::Field(name.clone()));
        if let Some(child) = object.get_mut(&name) {
            prune(child_schema, child, removal, path);
            let emptied = matches!(fields::shape(child_schema, child), Shape::Leaf)
                || child.as_object().is_some_and(Map::is_empty)
                || child.as_array().is_some_and(Vec::is_empty);
            if removal.contains(path) && emptied {
                object.remove(&name);
            }
        }
        path.pop();
    }
}
