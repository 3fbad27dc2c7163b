//! Writes: create, replace, merge and JSON patches, server-side apply and delete, each
//! recording its managed fields, bumping `resourceVersion` only when the stored object
//! changes (a write that leaves it byte-identical is no change: same resourceVersion, no
//! watch event), and `metadata.generation` only when something outside `metadata` and
//! `status` changes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::managed::{Conflict, Managers, Operation, Writer};
use super::schema::Kind;
use super::watch::{Broadcast, Change};
use super::{Inner, Key, Shared, Target, now_rfc3339, status_response};

/// What a request did: the response, and whether a stored object changed.
pub struct Answer {
    pub response: Response,
    pub changed: bool,
}

impl Answer {
    fn object(code: StatusCode, object: Value, changed: bool) -> Answer {
        Answer { response: (code, axum::Json(object)).into_response(), changed }
    }
}

impl From<Response> for Answer {
    fn from(response: Response) -> Answer {
        Answer { response, changed: false }
    }
}

/// The part of an object a write may change and its managers own.
#[derive(Clone, Copy)]
enum Scope {
    Object,
    /// The main resource of a kind with a status subresource: everything but `status`.
    Main,
    /// The status subresource: only `status`.
    Status,
}

impl Scope {
    fn of(kind: &Kind, target: &Target) -> Scope {
        match (kind.status_subresource, target.status) {
            (false, _) => Scope::Object,
            (true, false) => Scope::Main,
            (true, true) => Scope::Status,
        }
    }

    fn subresource(self) -> &'static str {
        match self {
            Scope::Status => "status",
            Scope::Object | Scope::Main => "",
        }
    }

    /// What of `object` this scope covers, without `metadata.managedFields`.
    fn view(self, object: &Value) -> Value {
        match self {
            Scope::Status => object.get("status").map_or_else(|| json!({}), |status| json!({ "status": status })),
            Scope::Object | Scope::Main => {
                let mut view = object.clone();
                if let Some(metadata) = view.get_mut("metadata").and_then(Value::as_object_mut) {
                    metadata.remove("managedFields");
                }
                if let (Scope::Main, Some(fields)) = (self, view.as_object_mut()) {
                    fields.remove("status");
                }
                view
            }
        }
    }

    /// `live` with the part this scope covers taken from `view`.
    fn rebuild(self, live: &Value, view: Value) -> Value {
        let (mut out, part) = match self {
            Scope::Object => return view,
            Scope::Main => (view, live.get("status").cloned()),
            Scope::Status => (live.clone(), view.get("status").cloned()),
        };
        set_or_remove(&mut out, "status", part);
        out
    }
}

fn set_or_remove(object: &mut Value, field: &str, value: Option<Value>) {
    if let Some(fields) = object.as_object_mut() {
        match value {
            Some(value) => fields.insert(field.to_owned(), value),
            None => fields.remove(field),
        };
    }
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(metadata) => metadata,
        None => unreachable!("metadata was just made an object"),
    }
}

/// A body must be an object whose `metadata`, if any, is an object.
pub fn check_object(object: &Value) -> Result<(), Box<Response>> {
    let shaped = object.is_object() && object.get("metadata").is_none_or(Value::is_object);
    if shaped { Ok(()) } else { Err(Box::new(status_response(400, "BadRequest", "the body is not an object".into()))) }
}

fn resource_version(object: &Value) -> Option<&str> {
    object.pointer("/metadata/resourceVersion").and_then(Value::as_str)
}

fn stale(kind: &Kind, name: &str) -> Response {
    let qualified = match kind.api_version.split_once('/') {
        Some((group, _)) => format!("{}.{group}", kind.plural),
        None => kind.plural.clone(),
    };
    status_response(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again"
        ),
    )
}

fn not_found(kind: &Kind, name: &str) -> Response {
    status_response(404, "NotFound", format!("{} \"{name}\" not found", kind.plural))
}

/// The managers a non-apply write starts from: those it sends, so clients can set or (with
/// `[{}]`) reset them, else the stored ones; a subresource write cannot change them.
fn managers_for_update(scope: Scope, stored: &Value, sent: &Value) -> Managers {
    let live = Managers::decode(&stored["metadata"]["managedFields"]).unwrap_or_default();
    match (scope, sent.pointer("/metadata/managedFields")) {
        (Scope::Status, _) | (_, None) => live,
        (_, Some(Value::Array(entries))) if entries.len() == 1 && entries[0] == json!({}) => Managers::default(),
        (_, Some(value)) => Managers::decode(value).filter(|m| *m != Managers::default()).unwrap_or(live),
    }
}

fn set_managed_fields(object: &mut Value, managers: &Managers) {
    let metadata = metadata_mut(object);
    match managers.encode() {
        Some(entries) => metadata.insert("managedFields".into(), entries),
        None => metadata.remove("managedFields"),
    };
}

/// Keeps what the API server owns: identity and timestamps, and for a kind with a status
/// subresource the part the written endpoint may not change.
fn keep_server_fields(scope: Scope, old: &Value, new: Value) -> Value {
    let mut new = match scope {
        Scope::Status => Scope::Status.rebuild(old, new),
        Scope::Main => Scope::Main.rebuild(old, new),
        Scope::Object => new,
    };
    let server_owned = [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
        "generation",
    ];
    let metadata = metadata_mut(&mut new);
    for field in server_owned {
        match old["metadata"].get(field) {
            Some(value) => metadata.insert(field.to_owned(), value.clone()),
            None => metadata.remove(field),
        };
    }
    new["apiVersion"] = old["apiVersion"].clone();
    new["kind"] = old["kind"].clone();
    new
}

/// A Secret's `stringData` is write-only: the API server merges it into `data`.
fn fold_string_data(kind: &Kind, object: &mut Value) {
    if kind.plural != "secrets" {
        return;
    }
    let Some(string_data) = object.as_object_mut().and_then(|o| o.remove("stringData")) else { return };
    let Some(entries) = string_data.as_object().filter(|entries| !entries.is_empty()) else { return };
    if !object["data"].is_object() {
        object["data"] = json!({});
    }
    for (key, value) in entries {
        object["data"][key] = json!(STANDARD.encode(value.as_str().unwrap_or_default()));
    }
}

fn next_rv(inner: &mut Inner) -> u64 {
    inner.rv += 1;
    inner.rv
}

fn record(inner: &mut Inner, shared: &Shared, event: &'static str, key: &Key, object: Value) {
    let change = Change { rv: inner.rv, resource: key.0.clone(), namespace: key.1.clone(), event, object };
    inner.history.push(change.clone());
    let _ = shared.changes.send(Broadcast::Change(change));
}

/// Stores a new object: uid, resourceVersion, creation time, generation 1.
fn insert_new(inner: &mut Inner, shared: &Shared, kind: &Kind, key: &Key, mut object: Value) -> Value {
    inner.uid += 1;
    let uid = format!("uid-{:08}", inner.uid);
    let rv = next_rv(inner);
    fold_string_data(kind, &mut object);
    let metadata = metadata_mut(&mut object);
    metadata.insert("uid".into(), json!(uid));
    metadata.insert("resourceVersion".into(), json!(rv.to_string()));
    metadata.insert("creationTimestamp".into(), json!(now_rfc3339()));
    metadata.remove("deletionTimestamp");
    if kind.generation {
        metadata.insert("generation".into(), json!(1));
    }
    inner.objects.insert(key.clone(), object.clone());
    record(inner, shared, "ADDED", key, object.clone());
    object
}

/// Stores `new` in place of `old` unless nothing changed; returns the stored object and
/// whether it changed.
fn commit(inner: &mut Inner, shared: &Shared, kind: &Kind, key: &Key, old: &Value, mut new: Value) -> (Value, bool) {
    fold_string_data(kind, &mut new);
    if kind.generation {
        let content = |object: &Value| {
            let mut content = object.clone();
            if let Some(fields) = content.as_object_mut() {
                fields.remove("metadata");
                fields.remove("status");
            }
            content
        };
        let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
        let bumped = if content(old) == content(&new) { generation } else { generation + 1 };
        metadata_mut(&mut new).insert("generation".into(), json!(bumped));
    }
    metadata_mut(&mut new).insert("resourceVersion".into(), old["metadata"]["resourceVersion"].clone());
    if new == *old {
        return (new, false);
    }
    let rv = next_rv(inner);
    metadata_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
    let finished = new["metadata"].get("deletionTimestamp").is_some()
        && new["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
    inner.objects.insert(key.clone(), new.clone());
    record(inner, shared, "MODIFIED", key, new.clone());
    if finished {
        delete(inner, shared, key);
    }
    (new, true)
}

fn writer(kind: &Kind, scope: Scope, manager: &str, operation: Operation) -> Writer {
    Writer {
        manager: manager.to_owned(),
        operation,
        api_version: kind.api_version.clone(),
        subresource: scope.subresource().to_owned(),
    }
}

/// `POST`: a new object, owned by `manager` through an `Update` entry.
pub fn create(shared: &Shared, kind: &Kind, target: &Target, mut object: Value, manager: &str) -> Answer {
    if let Err(response) = check_object(&object) {
        return (*response).into();
    }
    let mut inner = shared.inner.lock().unwrap();
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = match object.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => name.to_owned(),
        None => match object.pointer("/metadata/generateName").and_then(Value::as_str) {
            Some(prefix) => format!("{prefix}{:05}", inner.uid + 1),
            None => return status_response(422, "Invalid", "metadata.name: Required value".into()).into(),
        },
    };
    let key = (kind.plural.clone(), namespace.clone(), name.clone());
    if inner.objects.contains_key(&key) {
        return status_response(409, "AlreadyExists", format!("{} \"{name}\" already exists", kind.plural)).into();
    }
    object["apiVersion"] = json!(kind.api_version);
    object["kind"] = json!(kind.kind);
    let metadata = metadata_mut(&mut object);
    metadata.insert("name".into(), json!(name));
    if !namespace.is_empty() {
        metadata.insert("namespace".into(), json!(namespace));
    }
    let scope = Scope::of(kind, target);
    if let (Scope::Main, Some(fields)) = (scope, object.as_object_mut()) {
        fields.remove("status");
    }
    let mut managers = managers_for_update(scope, &json!({}), &object);
    let writer = writer(kind, scope, manager, Operation::Update);
    managers.update(&kind.schema, &json!({}), &scope.view(&object), &writer, &now_rfc3339());
    set_managed_fields(&mut object, &managers);
    let stored = insert_new(&mut inner, shared, kind, &key, object);
    Answer::object(StatusCode::CREATED, stored, true)
}

/// `PUT`, and merge or JSON patches once the patch is applied to the stored object:
/// `change` makes the new object of the stored one.
pub fn update(
    shared: &Shared,
    kind: &Kind,
    target: &Target,
    name: &str,
    manager: &str,
    change: impl FnOnce(&Value) -> Result<Value, Box<Response>>,
) -> Answer {
    let mut inner = shared.inner.lock().unwrap();
    let key = (kind.plural.clone(), target.namespace.clone().unwrap_or_default(), name.to_owned());
    let Some(old) = inner.objects.get(&key).cloned() else { return not_found(kind, name).into() };
    let sent = match change(&old).and_then(|sent| check_object(&sent).map(|()| sent)) {
        Ok(sent) => sent,
        Err(response) => return (*response).into(),
    };
    if resource_version(&sent).is_some_and(|rv| Some(rv) != resource_version(&old)) {
        return stale(kind, name).into();
    }
    let scope = Scope::of(kind, target);
    let mut managers = managers_for_update(scope, &old, &sent);
    let mut new = keep_server_fields(scope, &old, sent);
    let writer = writer(kind, scope, manager, Operation::Update);
    managers.update(&kind.schema, &scope.view(&old), &scope.view(&new), &writer, &now_rfc3339());
    set_managed_fields(&mut new, &managers);
    let (stored, changed) = commit(&mut inner, shared, kind, &key, &old, new);
    Answer::object(StatusCode::OK, stored, changed)
}

/// The `409` of an apply whose fields other managers own, as the API server words it.
fn conflict_response(conflicts: &[Conflict]) -> Response {
    let message = match conflicts {
        [one] => format!("Apply failed with 1 conflict: conflict with {}: {}", one.manager, one.field),
        _ => {
            let mut lines = Vec::new();
            let mut current: Option<&str> = None;
            for conflict in conflicts {
                if current != Some(conflict.manager.as_str()) {
                    lines.push(format!("conflicts with {}:", conflict.manager));
                    current = Some(&conflict.manager);
                }
                lines.push(format!("- {}", conflict.field));
            }
            format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
        }
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({ "reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.field }))
        .collect();
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": "Conflict", "details": { "causes": causes }, "code": 409,
    });
    (StatusCode::CONFLICT, axum::Json(body)).into_response()
}

/// Server-side apply of `config` by `manager`: creates the object when it does not exist.
pub fn apply(
    shared: &Shared,
    kind: &Kind,
    target: &Target,
    name: &str,
    config: &Value,
    manager: &str,
    force: bool,
) -> Answer {
    if let Err(response) = check_object(config) {
        return (*response).into();
    }
    let text = |pointer: &str| config.pointer(pointer).and_then(Value::as_str);
    let refusal = if text("/apiVersion") != Some(kind.api_version.as_str()) {
        Some(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            text("/apiVersion").unwrap_or_default(),
            kind.api_version
        ))
    } else if text("/kind") != Some(kind.kind.as_str()) {
        Some(format!(
            "the kind in the data ({}) does not match the expected kind ({})",
            text("/kind").unwrap_or_default(),
            kind.kind
        ))
    } else if text("/metadata/name").is_some_and(|sent| sent != name) {
        Some(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            text("/metadata/name").unwrap_or_default()
        ))
    } else if config.pointer("/metadata/managedFields").is_some() {
        Some("metadata.managedFields must be nil".to_owned())
    } else {
        None
    };
    if let Some(message) = refusal {
        return status_response(400, "BadRequest", message).into();
    }
    let mut inner = shared.inner.lock().unwrap();
    let namespace = target.namespace.clone().unwrap_or_default();
    let key = (kind.plural.clone(), namespace.clone(), name.to_owned());
    let scope = Scope::of(kind, target);
    let writer = writer(kind, scope, manager, Operation::Apply);
    let now = now_rfc3339();
    let Some(old) = inner.objects.get(&key).cloned() else {
        // Only the resource itself is created on apply; a subresource needs the object.
        if target.status {
            return not_found(kind, name).into();
        }
        if resource_version(config).is_some() {
            return stale(kind, name).into();
        }
        let mut live = json!({ "apiVersion": kind.api_version, "kind": kind.kind, "metadata": { "name": name } });
        if !namespace.is_empty() {
            live["metadata"]["namespace"] = json!(namespace);
        }
        let mut managers = Managers::default();
        let created = match managers.apply(&kind.schema, &live, &scope.view(config), &writer, force, &now) {
            Ok(view) => scope.rebuild(&json!({}), view),
            Err(conflicts) => return conflict_response(&conflicts).into(),
        };
        let mut created = keep_server_fields(Scope::Object, &live, created);
        set_managed_fields(&mut created, &managers);
        let stored = insert_new(&mut inner, shared, kind, &key, created);
        return Answer::object(StatusCode::CREATED, stored, true);
    };
    if resource_version(config).is_some_and(|rv| Some(rv) != resource_version(&old)) {
        return stale(kind, name).into();
    }
    let mut managers = Managers::decode(&old["metadata"]["managedFields"]).unwrap_or_default();
    let view = match managers.apply(&kind.schema, &scope.view(&old), &scope.view(config), &writer, force, &now) {
        Ok(view) => view,
        Err(conflicts) => return conflict_response(&conflicts).into(),
    };
    let mut new = keep_server_fields(scope, &old, view);
    set_managed_fields(&mut new, &managers);
    let (stored, changed) = commit(&mut inner, shared, kind, &key, &old, new);
    Answer::object(StatusCode::OK, stored, changed)
}

/// `DELETE`: an object with finalizers is marked (`deletionTimestamp`, and for a custom
/// resource a new generation) and goes once they are gone; one without goes at once.
pub fn delete_request(shared: &Shared, kind: &Kind, target: &Target, name: &str) -> Answer {
    let mut inner = shared.inner.lock().unwrap();
    let key = (kind.plural.clone(), target.namespace.clone().unwrap_or_default(), name.to_owned());
    if !inner.objects.contains_key(&key) {
        return not_found(kind, name).into();
    }
    match delete(&mut inner, shared, &key) {
        Some((object, changed)) => Answer::object(StatusCode::OK, object, changed),
        None => not_found(kind, name).into(),
    }
}

/// Deletes (or, with finalizers, marks for deletion) and garbage-collects dependents, as
/// the garbage collector does in the background.
pub fn delete(inner: &mut Inner, shared: &Shared, key: &Key) -> Option<(Value, bool)> {
    let mut object = inner.objects.get(key).cloned()?;
    if object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()) {
        if object["metadata"].get("deletionTimestamp").is_some() {
            return Some((object, false));
        }
        let rv = next_rv(inner);
        let metadata = metadata_mut(&mut object);
        metadata.insert("deletionTimestamp".into(), json!(now_rfc3339()));
        metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
        if let Some(generation) = metadata.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
            metadata.insert("generation".into(), json!(generation + 1));
        }
        metadata.insert("resourceVersion".into(), json!(rv.to_string()));
        inner.objects.insert(key.clone(), object.clone());
        record(inner, shared, "MODIFIED", key, object.clone());
        return Some((object, true));
    }
    let rv = next_rv(inner);
    metadata_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
    inner.objects.remove(key);
    record(inner, shared, "DELETED", key, object.clone());
    let uid = object["metadata"]["uid"].clone();
    let dependents: Vec<Key> = inner
        .objects
        .iter()
        .filter(|(k, o)| {
            k.1 == key.1
                && o["metadata"]["ownerReferences"].as_array().is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for dependent in dependents {
        delete(inner, shared, &dependent);
    }
    Some((object, true))
}
