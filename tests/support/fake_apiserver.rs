//! An in-process fake Kubernetes API server for the real `kube::Client`, watchers,
//! reflectors and `Controller`, over HTTP. It aims to be faithful to what a kube-rs
//! controller relies on, not merely convenient; `tests/fake_apiserver.rs` checks it against
//! the documented behaviour of the real one.
//!
//! Implemented:
//! - the built-in kinds the controller uses (Secrets, Leases, `events.k8s.io` Events) and
//!   the CRDs of `crds/portcullis.dev.yaml`, plus any a test passes to
//!   [`FakeApiServer::start_with_crds`]; any other resource is 404, as on a server that
//!   does not serve it;
//! - get, list and watch (`resourceVersion`, label selectors, bookmarks with
//!   `allowWatchBookmarks`), in one namespace or across all; a watch without a
//!   resourceVersion starts with the current objects as `ADDED` events;
//! - history compaction on demand ([`FakeApiServer::compact`]): open watches and watches
//!   from an older resourceVersion get an `ERROR` event with a 410 `Expired` `Status`, so
//!   reflectors must list again (`fake_apiserver/watch.rs`);
//! - create (409 `AlreadyExists`), replace, merge and JSON patches, with a stale
//!   `metadata.resourceVersion` in the body refused with 409 `Conflict`;
//! - server-side apply (`application/apply-patch+yaml`, YAML or JSON): `fieldManager`
//!   required (422, as the real server validates `PatchOptions`), `force`, create on apply
//!   (201), `metadata.managedFields` per manager, operation and subresource in the real
//!   `fieldsV1` format, conflicts (409 with `FieldManagerConflict` causes naming each field
//!   and manager), removal of fields a manager stops applying, shared ownership of equal
//!   values (`fake_apiserver/managed.rs`, `fields.rs`). Lists are atomic unless the schema
//!   says otherwise: the CRDs' `x-kubernetes-list-type` / `-list-map-keys` /
//!   `-map-type`, and for built-in kinds `metadata.finalizers` (set),
//!   `metadata.ownerReferences` (map by `uid`), labels, annotations and a Secret's
//!   `data`/`stringData` (maps) (`fake_apiserver/schema.rs`);
//! - non-apply writes record an `Update` entry for their `fieldManager`, or, without one,
//!   for the prefix of the `User-Agent` before its first `/` (what the real server does;
//!   kube-rs sends no User-Agent, so its writes land under an empty manager name);
//! - the status subresource of custom resources that declare it: `/status` writes only the
//!   status and its managers are tracked with `subresource: status`; writes to the resource
//!   itself keep the status and apply ignores a `.status` in the configuration;
//! - `metadata.generation` (custom resources), bumped when anything outside `metadata` and
//!   `status` changes and when deletion starts; `resourceVersion` bumped on every real
//!   change, while a write that leaves the object byte-identical changes nothing: same
//!   resourceVersion, no watch event, and it is logged as a write that changed nothing;
//! - a Secret's `stringData` merged into `data` on write;
//! - delete with finalizers (`deletionTimestamp`, gone once the last finalizer is removed)
//!   and garbage collection of dependents through ownerReferences;
//! - a typed request log ([`FakeApiServer::requests_since`]): verbs per resource, writes,
//!   and writes that changed an object.
//!
//! Not implemented (the code under test does not use them): field selectors, pagination
//! (`limit`/`continue`: a list answers everything at once), dry-run, strategic merge patch
//! semantics (treated as a merge patch), schema defaulting, pruning and validation,
//! admission, RBAC, and managed fields of metadata set through `/status` (the real server
//! records them although it drops the change; here `/status` owns only `.status`).

#[path = "fake_apiserver/fields.rs"]
mod fields;
#[path = "fake_apiserver/managed.rs"]
mod managed;
#[path = "fake_apiserver/requests.rs"]
mod requests;
#[path = "fake_apiserver/schema.rs"]
mod schema;
#[path = "fake_apiserver/store.rs"]
mod store;
#[path = "fake_apiserver/watch.rs"]
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;

#[allow(unused_imports)]
pub use requests::{Mark, Request, Requests, Verb};
use schema::{Kind, Kinds};
use store::Answer;
use watch::{Broadcast, Change};

/// Stored objects by (plural resource, namespace, name).
type Key = (String, String, String);

#[derive(Default)]
struct Inner {
    rv: u64,
    uid: u64,
    /// History at or before this resourceVersion has been compacted away.
    compacted: u64,
    objects: BTreeMap<Key, Value>,
    history: Vec<Change>,
    requests: Vec<Request>,
}

struct Shared {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<Broadcast>,
    kinds: Kinds,
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

/// The 422 the real server answers for invalid `PatchOptions`.
fn invalid_patch_options(field: &str, reason: &str, detail: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("PatchOptions.meta.k8s.io \"\" is invalid: {field}: {detail}"),
        "reason": "Invalid",
        "details": { "group": "meta.k8s.io", "kind": "PatchOptions",
                     "causes": [{ "reason": reason, "message": detail, "field": field }] },
        "code": 422,
    });
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
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

/// The time as `metav1.Time` serializes it: RFC 3339 to the second, in UTC.
fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The manager of a non-apply write without `fieldManager`: the User-Agent up to its first
/// `/`, printable characters only, at most 128 bytes (the real server's `prefixFromUserAgent`).
fn manager_from_user_agent(headers: &HeaderMap) -> String {
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut manager = String::new();
    for c in agent.split('/').next().unwrap_or_default().chars().filter(|c| !c.is_control()) {
        if manager.len() + c.len_utf8() > 128 {
            break;
        }
        manager.push(c);
    }
    manager
}

impl FakeApiServer {
    /// A server for the built-in kinds the controller uses and the Portcullis CRDs.
    pub async fn start() -> Self {
        Self::start_with_crds(&[]).await
    }

    /// A server that also serves the kinds of `crds` (YAML streams of
    /// `CustomResourceDefinition`s).
    pub async fn start_with_crds(crds: &[&str]) -> Self {
        let kinds = Kinds::new(crds).expect("valid CRDs");
        let (changes, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared { inner: Mutex::new(Inner::default()), changes, kinds });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let state = Arc::clone(&shared);
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = Arc::clone(&state);
            async move { handle(&state, &method, &uri, &headers, &body) }
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

    /// A kubeconfig naming this server, with `namespace` as the context's namespace, for a
    /// process (`KUBECONFIG`) to talk to it.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: '{}'}}}}]\n\
             contexts: [{{name: fake, context: {{cluster: fake, user: fake, namespace: {namespace}}}}}]\n\
             current-context: fake\nusers: [{{name: fake, user: {{}}}}]\n",
            self.url
        )
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

    /// Every request so far, as `METHOD /path` (`?watch` appended for watches).
    pub fn requests(&self) -> Vec<String> {
        let inner = self.shared.inner.lock().unwrap();
        inner
            .requests
            .iter()
            .map(|r| format!("{} {}{}", r.method, r.path, if r.verb == Verb::Watch { "?watch" } else { "" }))
            .collect()
    }
}

/// What tests ask of the fake beyond serving; each test crate uses a part of it.
#[allow(dead_code)]
impl FakeApiServer {
    /// The current end of the request log, to count what comes after.
    pub fn mark(&self) -> Mark {
        Mark(self.shared.inner.lock().unwrap().requests.len())
    }

    /// The requests answered since `mark`, typed.
    pub fn requests_since(&self, mark: Mark) -> Requests {
        let inner = self.shared.inner.lock().unwrap();
        Requests(inner.requests.get(mark.0..).unwrap_or_default().to_vec())
    }

    /// The server's current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.inner.lock().unwrap().rv
    }

    /// How many watch streams are open.
    pub fn open_watches(&self) -> usize {
        self.shared.changes.receiver_count()
    }

    /// Compacts history up to now, as etcd does: every open watch and every later watch
    /// from an older resourceVersion gets `410 Expired`, so watchers must list again.
    pub fn compact(&self) {
        let mut inner = self.shared.inner.lock().unwrap();
        inner.compacted = inner.rv;
        inner.history.clear();
        let _ = self.shared.changes.send(Broadcast::Compacted(inner.rv));
    }
}

fn verb_of(method: &Method, target: &Target, watch: bool) -> Option<Verb> {
    match (method.as_str(), target.name.is_some()) {
        ("GET", false) if watch => Some(Verb::Watch),
        ("GET", false) => Some(Verb::List),
        ("GET", true) => Some(Verb::Get),
        ("POST", false) => Some(Verb::Create),
        ("PUT", true) => Some(Verb::Update),
        ("PATCH", true) => Some(Verb::Patch),
        ("DELETE", true) => Some(Verb::Delete),
        _ => None,
    }
}

fn handle(shared: &Arc<Shared>, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    let Some(target) = parse_target(uri.path()) else {
        return status_response(404, "NotFound", format!("no route {}", uri.path()));
    };
    let query = query_map(uri);
    let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let Some(verb) = verb_of(method, &target, watch) else {
        return status_response(405, "MethodNotAllowed", format!("{method} {}", uri.path()));
    };
    let index = {
        let mut inner = shared.inner.lock().unwrap();
        inner.requests.push(Request {
            method: method.to_string(),
            path: uri.path().to_owned(),
            verb,
            resource: target.resource.clone(),
            subresource: target.status.then(|| "status".to_owned()),
            namespace: target.namespace.clone(),
            name: target.name.clone(),
            field_manager: query.get("fieldManager").cloned(),
            status: 0,
            changed: false,
        });
        inner.requests.len() - 1
    };
    let answer = match shared.kinds.get(&target.api_version, &target.resource) {
        Some(kind) => serve(&Call { shared, kind, target: &target, query: &query, headers, body }, verb),
        None => status_response(404, "NotFound", "the server could not find the requested resource".into()).into(),
    };
    if let Some(request) = shared.inner.lock().unwrap().requests.get_mut(index) {
        request.status = answer.response.status().as_u16();
        request.changed = answer.changed;
    }
    answer.response
}

/// One request to a kind the fake serves.
struct Call<'a> {
    shared: &'a Arc<Shared>,
    kind: &'a Kind,
    target: &'a Target,
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl Call<'_> {
    fn name(&self) -> &str {
        self.target.name.as_deref().unwrap_or_default()
    }

    /// The `fieldManager` of a write, or the one the User-Agent gives.
    fn manager(&self) -> String {
        self.query.get("fieldManager").cloned().unwrap_or_else(|| manager_from_user_agent(self.headers))
    }

    fn json_body(&self) -> Result<Value, Box<Response>> {
        serde_json::from_slice::<Value>(self.body)
            .map_err(|e| Box::new(status_response(400, "BadRequest", e.to_string())))
    }
}

fn serve(call: &Call, verb: Verb) -> Answer {
    let (shared, kind, target, name) = (call.shared, call.kind, call.target, call.name());
    match verb {
        Verb::Watch => watch::watch_response(shared, target, kind, call.query).into(),
        Verb::List => list(shared, kind, target, call.query).into(),
        Verb::Get => {
            let inner = shared.inner.lock().unwrap();
            let key = (kind.plural.clone(), target.namespace.clone().unwrap_or_default(), name.to_owned());
            match inner.objects.get(&key) {
                Some(object) => axum::Json(object.clone()).into_response().into(),
                None => status_response(404, "NotFound", format!("{} \"{name}\" not found", kind.plural)).into(),
            }
        }
        Verb::Create => match call.json_body() {
            Ok(object) => store::create(shared, kind, target, object, &call.manager()),
            Err(response) => (*response).into(),
        },
        Verb::Update => match call.json_body() {
            Ok(object) => store::update(shared, kind, target, name, &call.manager(), |_| Ok(object)),
            Err(response) => (*response).into(),
        },
        Verb::Patch => patch(call),
        Verb::Delete => store::delete_request(shared, kind, target, name),
    }
}

fn list(shared: &Shared, kind: &Kind, target: &Target, query: &HashMap<String, String>) -> Response {
    let inner = shared.inner.lock().unwrap();
    let exact = query.get("resourceVersionMatch").is_some_and(|m| m == "Exact");
    let requested = query.get("resourceVersion").and_then(|rv| rv.parse::<u64>().ok());
    if let Some(rv) = requested.filter(|&rv| exact && rv < inner.compacted) {
        return status_response(410, "Expired", format!("too old resource version: {rv} ({})", inner.compacted));
    }
    let items: Vec<Value> = inner
        .objects
        .iter()
        .filter(|((resource, ns, _), _)| {
            *resource == kind.plural && target.namespace.as_ref().is_none_or(|want| want == ns)
        })
        .map(|(_, object)| object)
        .filter(|object| labels_match(object, query.get("labelSelector")))
        .cloned()
        .collect();
    axum::Json(json!({
        "apiVersion": kind.api_version,
        "kind": format!("{}List", kind.kind),
        "metadata": { "resourceVersion": inner.rv.to_string() },
        "items": items,
    }))
    .into_response()
}

fn patch(call: &Call) -> Answer {
    let (shared, kind, target, name, query) = (call.shared, call.kind, call.target, call.name(), call.query);
    let content_type = call.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let content_type = content_type.split(';').next().unwrap_or("").trim();
    let apply = content_type == "application/apply-patch+yaml";
    let force = query.get("force");
    // The real server validates `PatchOptions` before it reads the body.
    if apply && query.get("fieldManager").is_none_or(String::is_empty) {
        return invalid_patch_options(
            "fieldManager",
            "FieldValueRequired",
            "Required value: is required for apply patch",
        )
        .into();
    }
    if !apply && force.is_some() {
        return invalid_patch_options(
            "force",
            "FieldValueForbidden",
            "Forbidden: may not be specified for non-apply patch",
        )
        .into();
    }
    let parsed: Result<Value, String> = if apply {
        serde_yaml_ng::from_slice(call.body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(call.body).map_err(|e| e.to_string())
    };
    let patch_value = match parsed {
        Ok(value) => value,
        Err(error) => return status_response(400, "BadRequest", error).into(),
    };
    if apply {
        let force = force.is_some_and(|f| f == "true" || f == "1");
        return store::apply(shared, kind, target, name, &patch_value, &call.manager(), force);
    }
    store::update(shared, kind, target, name, &call.manager(), |old| {
        let mut new = old.clone();
        match content_type {
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
            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                json_patch::merge(&mut new, &patch_value);
            }
            other => {
                return Err(Box::new(status_response(415, "UnsupportedMediaType", format!("patch type {other}"))));
            }
        }
        // A patch without a resourceVersion is unconditional.
        let unconditional = patch_value.pointer("/metadata/resourceVersion").is_none();
        if let (true, Some(metadata)) = (unconditional, new.get_mut("metadata").and_then(Value::as_object_mut)) {
            metadata.insert("resourceVersion".into(), old["metadata"]["resourceVersion"].clone());
        }
        Ok(new)
    })
}
