//! An in-process fake Kubernetes API server, just enough for the real `kube::Client`,
//! watchers, reflectors and `Controller` that Portcullis uses to talk to it over HTTP:
//!
//! - get, list and watch (with `resourceVersion`, label selectors and bookmarks), in one
//!   namespace or across all;
//! - create (409 `AlreadyExists`), replace (409 `Conflict` on a stale `resourceVersion`),
//!   merge / JSON / server-side-apply patches (apply is treated as a merge, which is all the
//!   controller's patches need);
//! - delete with finalizers: a resource with finalizers gets a `deletionTimestamp` and goes
//!   once the last finalizer is removed; owned resources (ownerReferences) are then
//!   garbage-collected like the real garbage collector does in the background;
//! - the `status` subresource of the custom resources (writes to the main resource keep the
//!   status; writes to `/status` change only the status) and `metadata.generation`, bumped
//!   when the spec changes;
//! - Leases and events.k8s.io Events as plain stored objects.
//!
//! Not implemented (the code under test does not use them): field selectors, pagination
//! continue tokens, dry-run, strategic merge semantics for lists, admission, RBAC.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// One change, as a watch delivers it.
#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    resource: String,
    namespace: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    uid: u64,
    objects: BTreeMap<(String, String, String), Value>,
    history: Vec<Change>,
    /// Every request, as `METHOD path`, so tests can check which verbs were used.
    requests: Vec<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Change>,
}

/// A running fake API server.
pub struct FakeApiServer {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a path names.
#[derive(Debug, Clone)]
struct Target {
    api_version: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn kind_of(resource: &str) -> &'static str {
    match resource {
        "secrets" => "Secret",
        "leases" => "Lease",
        "events" => "Event",
        "oidcclients" => "OidcClient",
        "oidcusers" => "OidcUser",
        "signingkeys" => "SigningKey",
        _ => "Unknown",
    }
}

/// Custom resources have a status subresource and a generation.
fn has_status_subresource(resource: &str) -> bool {
    matches!(resource, "oidcclients" | "oidcusers" | "signingkeys")
}

fn parse_target(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (api_version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ((*version).to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        _ => (None, rest),
    };
    let (resource, name, status) = match rest {
        [resource] => (*resource, None, false),
        [resource, name] => (*resource, Some((*name).to_owned()), false),
        [resource, name, "status"] => (*resource, Some((*name).to_owned()), true),
        _ => return None,
    };
    Some(Target { api_version, resource: resource.to_owned(), namespace, name, status })
}

fn status_response(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default()
}

/// `a=b`, `a==b`, `a!=b`, `a` (exists), comma-separated.
fn labels_match(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else { return true };
    let labels = object.pointer("/metadata/labels").and_then(Value::as_object);
    let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    selector.split(',').all(|term| {
        if let Some((key, value)) = term.split_once("!=") {
            label(key.trim()) != Some(value.trim())
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            label(key.trim()) == Some(value.trim())
        } else {
            label(term.trim()).is_some()
        }
    })
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

impl FakeApiServer {
    pub async fn start() -> Self {
        let (changes, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared { inner: Mutex::new(Inner::default()), changes });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let state = Arc::clone(&shared);
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = Arc::clone(&state);
            async move { handle(&state, method, uri, headers, body) }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, task }
    }

    /// A `kube::Client` talking to this server.
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().expect("a URL"));
        kube::Client::try_from(config).expect("a client")
    }

    /// The stored object, as JSON.
    pub fn get(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner.objects.get(&(resource.to_owned(), namespace.to_owned(), name.to_owned())).cloned()
    }

    /// Every stored object of a resource in a namespace.
    pub fn list(&self, resource: &str, namespace: &str) -> Vec<Value> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .objects
            .iter()
            .filter(|((r, ns, _), _)| r == resource && ns == namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every request so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().requests.clone()
    }
}

fn handle(shared: &Arc<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let Some(target) = parse_target(uri.path()) else {
        return status_response(404, "NotFound", format!("no route {}", uri.path()));
    };
    let query = query_map(&uri);
    let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    shared.inner.lock().unwrap().requests.push(format!("{method} {}{}", uri.path(), if watch { "?watch" } else { "" }));
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    match (method, &target.name) {
        (Method::GET, None) if watch => watch_response(shared, &target, &query),
        (Method::GET, None) => list(shared, &target, &query),
        (Method::GET, Some(name)) => {
            let inner = shared.inner.lock().unwrap();
            match inner.objects.get(&key(&target, name)) {
                Some(object) => axum::Json(object.clone()).into_response(),
                None => not_found(&target, name),
            }
        }
        (Method::POST, None) => match serde_json::from_slice::<Value>(&body) {
            Ok(object) => create(shared, &target, object),
            Err(error) => status_response(400, "BadRequest", error.to_string()),
        },
        (Method::PUT, Some(name)) => match serde_json::from_slice::<Value>(&body) {
            Ok(object) => update(shared, &target, name, |_| Ok(object)),
            Err(error) => status_response(400, "BadRequest", error.to_string()),
        },
        (Method::PATCH, Some(name)) => patch(shared, &target, name, &content_type, &body),
        (Method::DELETE, Some(name)) => {
            let mut inner = shared.inner.lock().unwrap();
            match delete(&mut inner, shared, &key(&target, name)) {
                Some(object) => axum::Json(object).into_response(),
                None => not_found(&target, name),
            }
        }
        (method, _) => status_response(405, "MethodNotAllowed", format!("{method} {}", uri.path())),
    }
}

fn key(target: &Target, name: &str) -> (String, String, String) {
    (target.resource.clone(), target.namespace.clone().unwrap_or_default(), name.to_owned())
}

fn not_found(target: &Target, name: &str) -> Response {
    status_response(404, "NotFound", format!("{} \"{name}\" not found", target.resource))
}

fn record(inner: &mut Inner, shared: &Shared, kind: &'static str, resource: &str, namespace: &str, object: Value) {
    let change = Change { rv: inner.rv, resource: resource.to_owned(), namespace: namespace.to_owned(), kind, object };
    inner.history.push(change.clone());
    let _ = shared.changes.send(change);
}

fn next_rv(inner: &mut Inner) -> u64 {
    inner.rv += 1;
    inner.rv
}

fn list(shared: &Shared, target: &Target, query: &HashMap<String, String>) -> Response {
    let inner = shared.inner.lock().unwrap();
    let items: Vec<Value> = inner
        .objects
        .iter()
        .filter(|((resource, ns, _), _)| {
            *resource == target.resource && target.namespace.as_ref().is_none_or(|want| want == ns)
        })
        .map(|(_, object)| object)
        .filter(|object| labels_match(object, query.get("labelSelector")))
        .cloned()
        .collect();
    axum::Json(json!({
        "apiVersion": target.api_version,
        "kind": format!("{}List", kind_of(&target.resource)),
        "metadata": { "resourceVersion": inner.rv.to_string() },
        "items": items,
    }))
    .into_response()
}

fn create(shared: &Shared, target: &Target, mut object: Value) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = match object.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => name.to_owned(),
        None => match object.pointer("/metadata/generateName").and_then(Value::as_str) {
            Some(prefix) => format!("{prefix}{:05}", inner.uid + 1),
            None => return status_response(422, "Invalid", "metadata.name is required".into()),
        },
    };
    let key = (target.resource.clone(), namespace.clone(), name.clone());
    if inner.objects.contains_key(&key) {
        return status_response(409, "AlreadyExists", format!("{} \"{name}\" already exists", target.resource));
    }
    inner.uid += 1;
    let uid = format!("uid-{:08}", inner.uid);
    let rv = next_rv(&mut inner);
    object["apiVersion"] = json!(target.api_version);
    object["kind"] = json!(kind_of(&target.resource));
    let metadata = object.as_object_mut().and_then(|o| {
        o.entry("metadata").or_insert_with(|| json!({}));
        o.get_mut("metadata")
    });
    let Some(metadata) = metadata else { return status_response(400, "BadRequest", "not an object".into()) };
    metadata["name"] = json!(name);
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    metadata["uid"] = json!(uid);
    metadata["resourceVersion"] = json!(rv.to_string());
    metadata["creationTimestamp"] = json!(now_rfc3339());
    if let Some(m) = metadata.as_object_mut() {
        m.remove("deletionTimestamp");
    }
    if has_status_subresource(&target.resource) {
        metadata["generation"] = json!(1);
        if let Some(o) = object.as_object_mut() {
            o.remove("status");
        }
    }
    inner.objects.insert(key, object.clone());
    record(&mut inner, shared, "ADDED", &target.resource, &namespace, object.clone());
    (StatusCode::CREATED, axum::Json(object)).into_response()
}

/// Replaces an object with what `change` makes of the stored one, keeping what the API
/// server owns (uid, creation time, deletion time, status or spec by subresource).
fn update(
    shared: &Shared,
    target: &Target,
    name: &str,
    change: impl FnOnce(&Value) -> Result<Value, Box<Response>>,
) -> Response {
    let mut inner = shared.inner.lock().unwrap();
    let key = key(target, name);
    let Some(old) = inner.objects.get(&key).cloned() else { return not_found(target, name) };
    let mut new = match change(&old) {
        Ok(new) => new,
        Err(response) => return *response,
    };
    let stale = new
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .is_some_and(|rv| Some(rv) != old.pointer("/metadata/resourceVersion").and_then(Value::as_str));
    if stale {
        return status_response(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified", target.resource),
        );
    }
    if has_status_subresource(&target.resource) {
        if target.status {
            let status = new.get("status").cloned();
            new = old.clone();
            match status {
                Some(status) => new["status"] = status,
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        } else {
            match old.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            let changed = old.get("spec") != new.get("spec");
            new["metadata"]["generation"] = json!(if changed { generation + 1 } else { generation });
        }
    }
    for field in ["uid", "creationTimestamp", "deletionTimestamp", "namespace", "name"] {
        match old["metadata"].get(field) {
            Some(value) => new["metadata"][field] = value.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    new["apiVersion"] = old["apiVersion"].clone();
    new["kind"] = old["kind"].clone();
    // Like the real API server, a write that changes nothing is no change: same
    // resourceVersion, no watch event.
    new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    if new == old {
        return axum::Json(old).into_response();
    }
    let rv = next_rv(&mut inner);
    new["metadata"]["resourceVersion"] = json!(rv.to_string());
    let finished = new["metadata"].get("deletionTimestamp").is_some()
        && new["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
    inner.objects.insert(key.clone(), new.clone());
    record(&mut inner, shared, "MODIFIED", &target.resource, &key.1, new.clone());
    if finished {
        delete(&mut inner, shared, &key);
    }
    axum::Json(new).into_response()
}

fn patch(shared: &Shared, target: &Target, name: &str, content_type: &str, body: &[u8]) -> Response {
    let content_type = content_type.split(';').next().unwrap_or("").trim().to_owned();
    let parsed: Result<Value, String> = if content_type == "application/apply-patch+yaml" {
        serde_yaml_ng::from_slice(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    };
    let patch_value = match parsed {
        Ok(value) => value,
        Err(error) => return status_response(400, "BadRequest", error),
    };
    update(shared, target, name, |old| {
        let mut new = old.clone();
        match content_type.as_str() {
            "application/json-patch+json" => {
                // Like the real API server, a `test` for `null` passes on a missing path.
                let operations: Vec<Value> = patch_value
                    .as_array()
                    .map(|ops| {
                        ops.iter()
                            .filter(|op| {
                                let missing = op["path"].as_str().is_some_and(|p| new.pointer(p).is_none());
                                !(op["op"] == "test" && op["value"].is_null() && missing)
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let operations: json_patch::Patch = serde_json::from_value(Value::Array(operations))
                    .map_err(|e| Box::new(status_response(400, "BadRequest", e.to_string())))?;
                json_patch::patch(&mut new, &operations)
                    .map_err(|e| Box::new(status_response(422, "Invalid", format!("JSON patch failed: {e}"))))?;
            }
            "application/merge-patch+json"
            | "application/strategic-merge-patch+json"
            | "application/apply-patch+yaml" => {
                json_patch::merge(&mut new, &patch_value);
            }
            other => {
                return Err(Box::new(status_response(415, "UnsupportedMediaType", format!("patch type {other}"))));
            }
        }
        // A patch without a resourceVersion is unconditional.
        if patch_value.pointer("/metadata/resourceVersion").is_none() {
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        }
        Ok(new)
    })
}

/// Deletes (or, with finalizers, marks for deletion) and garbage-collects dependents.
fn delete(inner: &mut Inner, shared: &Shared, key: &(String, String, String)) -> Option<Value> {
    let mut object = inner.objects.get(key).cloned()?;
    let finalizers = object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    let rv = next_rv(inner);
    object["metadata"]["resourceVersion"] = json!(rv.to_string());
    if finalizers {
        if object["metadata"].get("deletionTimestamp").is_none() {
            object["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        }
        inner.objects.insert(key.clone(), object.clone());
        record(inner, shared, "MODIFIED", &key.0, &key.1, object.clone());
        return Some(object);
    }
    inner.objects.remove(key);
    record(inner, shared, "DELETED", &key.0, &key.1, object.clone());
    let uid = object["metadata"]["uid"].clone();
    let dependents: Vec<(String, String, String)> = inner
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
    Some(object)
}

fn watch_response(shared: &Arc<Shared>, target: &Target, query: &HashMap<String, String>) -> Response {
    let since: u64 = query.get("resourceVersion").and_then(|rv| rv.parse().ok()).unwrap_or(0);
    let bookmarks = matches!(query.get("allowWatchBookmarks").map(String::as_str), Some("true" | "1"));
    let selector = query.get("labelSelector").cloned();
    let matches = {
        let target = target.clone();
        move |change: &Change| {
            change.resource == target.resource
                && target.namespace.as_ref().is_none_or(|ns| *ns == change.namespace)
                && labels_match(&change.object, selector.as_ref())
        }
    };
    let (backlog, receiver, current) = {
        let inner = shared.inner.lock().unwrap();
        let start = if query.contains_key("resourceVersion") { since } else { inner.rv };
        let backlog: VecDeque<Change> = inner.history.iter().filter(|c| c.rv > start && matches(c)).cloned().collect();
        (backlog, shared.changes.subscribe(), inner.rv.max(start))
    };
    let api_version = target.api_version.clone();
    let kind = kind_of(&target.resource);
    let state = (backlog, receiver, tokio::time::interval(Duration::from_millis(500)), current);
    let stream = futures::stream::unfold(state, move |(mut backlog, mut receiver, mut tick, mut last)| {
        let matches = matches.clone();
        let api_version = api_version.clone();
        async move {
            loop {
                if let Some(change) = backlog.pop_front() {
                    last = last.max(change.rv);
                    let line = json!({ "type": change.kind, "object": change.object });
                    return Some((
                        Ok::<_, Infallible>(Bytes::from(format!("{line}\n"))),
                        (backlog, receiver, tick, last),
                    ));
                }
                tokio::select! {
                    received = receiver.recv() => match received {
                        Ok(change) if change.rv > last && matches(&change) => backlog.push_back(change),
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let line = json!({ "type": "ERROR", "object": {
                                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "reason": "Expired", "code": 410, "message": "too old resource version",
                            }});
                            return Some((Ok(Bytes::from(format!("{line}\n"))), (backlog, receiver, tick, u64::MAX)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = tick.tick(), if bookmarks && last != u64::MAX => {
                        let line = json!({ "type": "BOOKMARK", "object": {
                            "kind": kind, "apiVersion": api_version,
                            "metadata": { "resourceVersion": last.to_string() },
                        }});
                        return Some((Ok(Bytes::from(format!("{line}\n"))), (backlog, receiver, tick, last)));
                    }
                }
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
