//! The fake API server (`support/fake_apiserver.rs`) against the documented behaviour of
//! the real one, through the real `kube::Api` and `kube_runtime::watcher`: server-side apply
//! ("Server-Side Apply" in the Kubernetes reference: field management, conflicts, merge
//! strategy, status subresource), resourceVersion preconditions, no-op writes, watch
//! expiry after compaction, and the request counters the controller tests rely on.

#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fake_apiserver::{FakeApiServer, Verb};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::core::{Status, WatchEvent};
use kube::runtime::watcher;
use serde_json::{Value, json};

const NAMESPACE: &str = "test";

/// Two custom resources with a status subresource: `Widget` marks its conditions as a map
/// list keyed by `type` (as `metav1.Condition` lists are in Kubernetes' own types);
/// `Gadget` does not, like CRDs generated without the marker, so its conditions are atomic.
const CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.portcullis.dev}
spec:
  group: test.portcullis.dev
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
              tags: {type: array, items: {type: string}}
          status:
            type: object
            properties:
              observedGeneration: {type: integer}
              conditions:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [type]
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.test.portcullis.dev}
spec:
  group: test.portcullis.dev
  names: {kind: Gadget, plural: gadgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"#;

async fn server() -> FakeApiServer {
    FakeApiServer::start_with_crds(&[CRDS]).await
}

fn resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("test.portcullis.dev", "v1", kind), plural)
}

fn widgets(server: &FakeApiServer) -> Api<DynamicObject> {
    Api::namespaced_with(server.client(), NAMESPACE, &resource("Widget", "widgets"))
}

fn gadgets(server: &FakeApiServer) -> Api<DynamicObject> {
    Api::namespaced_with(server.client(), NAMESPACE, &resource("Gadget", "gadgets"))
}

fn secrets(server: &FakeApiServer) -> Api<Secret> {
    Api::namespaced(server.client(), NAMESPACE)
}

/// An applied configuration: `body` with the type and name filled in.
fn config(api_version: &str, kind: &str, name: &str, body: Value) -> Patch<Value> {
    let mut object = json!({ "apiVersion": api_version, "kind": kind, "metadata": { "name": name } });
    let fields = object.as_object_mut().unwrap();
    for (field, value) in body.as_object().unwrap() {
        match (fields.get_mut(field), value) {
            (Some(Value::Object(current)), Value::Object(more)) => current.extend(more.clone()),
            _ => {
                fields.insert(field.clone(), value.clone());
            }
        }
    }
    Patch::Apply(object)
}

fn widget(name: &str, body: Value) -> Patch<Value> {
    config("test.portcullis.dev/v1", "Widget", name, body)
}

fn gadget(name: &str, body: Value) -> Patch<Value> {
    config("test.portcullis.dev/v1", "Gadget", name, body)
}

fn secret(name: &str, body: Value) -> Patch<Value> {
    config("v1", "Secret", name, body)
}

fn by(manager: &str) -> PatchParams {
    PatchParams::apply(manager)
}

/// The `Status` the API server answered a refused request with.
fn refusal<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Box<Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The `fieldsV1` of `manager`'s entry for `operation` (on `subresource`, "" for none).
fn owned(object: &Value, manager: &str, operation: &str, subresource: &str) -> Option<Value> {
    object["metadata"]["managedFields"].as_array()?.iter().find_map(|entry| {
        let matches = entry["manager"].as_str().unwrap_or_default() == manager
            && entry["operation"] == operation
            && entry["subresource"].as_str().unwrap_or_default() == subresource;
        matches.then(|| entry["fieldsV1"].clone())
    })
}

fn stored(server: &FakeApiServer, resource: &str, name: &str) -> Value {
    server.get(resource, NAMESPACE, name).unwrap_or_else(|| panic!("{resource}/{name} is stored"))
}

fn rv(object: &Value) -> String {
    object["metadata"]["resourceVersion"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn apply_creates_a_missing_object_owning_exactly_the_applied_fields_and_a_repeat_changes_nothing() {
    let server = server().await;
    let config =
        secret("s", json!({ "metadata": { "labels": { "app": "x" } }, "data": { "a": STANDARD.encode("1") } }));
    let mark = server.mark();
    secrets(&server).patch("s", &by("alice"), &config).await.unwrap();

    let object = stored(&server, "secrets", "s");
    let entries = object["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (&entries[0]["manager"], &entries[0]["operation"], &entries[0]["apiVersion"], &entries[0]["fieldsType"]),
        (&json!("alice"), &json!("Apply"), &json!("v1"), &json!("FieldsV1"))
    );
    assert_eq!(
        entries[0]["fieldsV1"],
        json!({ "f:data": { "f:a": {} }, "f:metadata": { "f:labels": { "f:app": {} } } })
    );
    let created = server.requests_since(mark);
    let request = created.iter().last().unwrap();
    assert_eq!((request.verb, request.status, request.changed), (Verb::Patch, 201, true));

    let mark = server.mark();
    secrets(&server).patch("s", &by("alice"), &config).await.unwrap();
    let again = server.requests_since(mark);
    let request = again.iter().last().unwrap();
    assert_eq!((request.status, request.changed), (200, false));
    assert_eq!(stored(&server, "secrets", "s"), object, "a repeated apply leaves the object byte-identical");
}

#[tokio::test]
async fn apply_without_a_field_manager_is_refused_as_invalid_patch_options() {
    let server = server().await;
    let status = refusal(secrets(&server).patch("s", &PatchParams::default(), &secret("s", json!({}))).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let details = status.details.unwrap();
    assert_eq!((details.group.as_str(), details.kind.as_str()), ("meta.k8s.io", "PatchOptions"));
    assert_eq!(details.causes[0].field, "fieldManager");
    assert!(server.get("secrets", NAMESPACE, "s").is_none());

    // `force` belongs to apply only (kube refuses it client-side, so ask over plain HTTP).
    let response = reqwest::Client::new()
        .patch(format!("{}/api/v1/namespaces/{NAMESPACE}/secrets/s?force=true", server.url))
        .header("content-type", "application/merge-patch+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let status: Status = response.json().await.unwrap();
    assert_eq!(status.details.unwrap().causes[0].field, "force");
}

#[tokio::test]
async fn a_second_manager_applying_a_different_value_conflicts_naming_the_field_and_its_manager() {
    let server = server().await;
    let api = widgets(&server);
    api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1, "color": "red" } }))).await.unwrap();
    let before = stored(&server, "widgets", "w");

    let status = refusal(api.patch("w", &by("bob"), &widget("w", json!({ "spec": { "size": 2 } }))).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(status.message, "Apply failed with 1 conflict: conflict with \"alice\": .spec.size");
    let causes = status.details.unwrap().causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(
        (causes[0].reason.as_str(), causes[0].message.as_str(), causes[0].field.as_str()),
        ("FieldManagerConflict", "conflict with \"alice\"", ".spec.size")
    );
    assert_eq!(stored(&server, "widgets", "w"), before, "a refused apply changes nothing");
}

#[tokio::test]
async fn the_same_value_applied_by_two_managers_is_shared_and_stays_until_both_let_go() {
    let server = server().await;
    let api = widgets(&server);
    api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1 } }))).await.unwrap();
    api.patch("w", &by("bob"), &widget("w", json!({ "spec": { "size": 1 } }))).await.unwrap();
    let object = stored(&server, "widgets", "w");
    for manager in ["alice", "bob"] {
        assert_eq!(owned(&object, manager, "Apply", ""), Some(json!({ "f:spec": { "f:size": {} } })), "{manager}");
    }

    api.patch("w", &by("alice"), &widget("w", json!({}))).await.unwrap();
    let object = stored(&server, "widgets", "w");
    assert_eq!(object["spec"]["size"], 1, "bob still owns it");
    assert_eq!(owned(&object, "alice", "Apply", ""), None, "alice owns nothing any more");

    api.patch("w", &by("bob"), &widget("w", json!({ "spec": { "color": "blue" } }))).await.unwrap();
    let object = stored(&server, "widgets", "w");
    assert_eq!(object["spec"], json!({ "color": "blue" }), "the last owner let go of size");
}

#[tokio::test]
async fn force_moves_ownership_of_the_conflicting_fields_to_the_applier() {
    let server = server().await;
    let api = widgets(&server);
    api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1, "color": "red" } }))).await.unwrap();
    api.patch("w", &by("bob").force(), &widget("w", json!({ "spec": { "size": 2 } }))).await.unwrap();

    let object = stored(&server, "widgets", "w");
    assert_eq!(object["spec"], json!({ "size": 2, "color": "red" }));
    assert_eq!(owned(&object, "bob", "Apply", ""), Some(json!({ "f:spec": { "f:size": {} } })));
    assert_eq!(owned(&object, "alice", "Apply", ""), Some(json!({ "f:spec": { "f:color": {} } })));

    let status =
        refusal(api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1, "color": "red" } }))).await);
    assert_eq!(status.details.unwrap().causes[0].message, "conflict with \"bob\"");
}

#[tokio::test]
async fn a_field_the_manager_stops_applying_is_removed_unless_another_manager_owns_it() {
    let server = server().await;
    let api = secrets(&server);
    let labels = |labels: Value| secret("s", json!({ "metadata": { "labels": labels } }));
    api.patch("s", &by("alice"), &labels(json!({ "app": "x", "tier": "web" }))).await.unwrap();
    let edit = json!({ "metadata": { "labels": { "team": "id" } } });
    let editor = PatchParams { field_manager: Some("editor".into()), ..PatchParams::default() };
    api.patch("s", &editor, &Patch::Merge(edit)).await.unwrap();

    api.patch("s", &by("alice"), &labels(json!({ "app": "x" }))).await.unwrap();
    let object = stored(&server, "secrets", "s");
    assert_eq!(object["metadata"]["labels"], json!({ "app": "x", "team": "id" }));
    assert_eq!(owned(&object, "alice", "Apply", ""), Some(json!({ "f:metadata": { "f:labels": { "f:app": {} } } })));
    assert_eq!(owned(&object, "editor", "Update", ""), Some(json!({ "f:metadata": { "f:labels": { "f:team": {} } } })));
}

#[tokio::test]
async fn a_non_apply_write_takes_ownership_without_conflict_and_a_later_apply_conflicts_with_it() {
    let server = server().await;
    let api = widgets(&server);
    api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1, "color": "red" } }))).await.unwrap();
    let editor = PatchParams { field_manager: Some("editor".into()), ..PatchParams::default() };
    api.patch("w", &editor, &Patch::Merge(json!({ "spec": { "size": 5 } }))).await.unwrap();

    let object = stored(&server, "widgets", "w");
    assert_eq!(object["spec"]["size"], 5);
    assert_eq!(owned(&object, "editor", "Update", ""), Some(json!({ "f:spec": { "f:size": {} } })));
    assert_eq!(owned(&object, "alice", "Apply", ""), Some(json!({ "f:spec": { "f:color": {} } })));

    let status =
        refusal(api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1, "color": "red" } }))).await);
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(cause.field, ".spec.size");
    assert!(
        cause.message.starts_with("conflict with \"editor\" using test.portcullis.dev/v1 at "),
        "{}",
        cause.message
    );
}

#[tokio::test]
async fn create_and_replace_record_update_entries_for_the_fields_they_set() {
    let server = server().await;
    let api = secrets(&server);
    let initial: Secret = serde_json::from_value(json!({
        "metadata": { "name": "s" }, "data": { "a": STANDARD.encode("1") },
    }))
    .unwrap();
    let creator = PostParams { field_manager: Some("creator".into()), ..PostParams::default() };
    let mut created = api.create(&creator, &initial).await.unwrap();
    let object = stored(&server, "secrets", "s");
    assert_eq!(owned(&object, "creator", "Update", ""), Some(json!({ "f:data": { ".": {}, "f:a": {} } })));

    created.data.as_mut().unwrap().insert("b".into(), k8s_openapi::ByteString(b"2".to_vec()));
    let replacer = PostParams { field_manager: Some("replacer".into()), ..PostParams::default() };
    api.replace("s", &replacer, &created).await.unwrap();
    let object = stored(&server, "secrets", "s");
    assert_eq!(owned(&object, "replacer", "Update", ""), Some(json!({ "f:data": { "f:b": {} } })));
    assert_eq!(owned(&object, "creator", "Update", ""), Some(json!({ "f:data": { ".": {}, "f:a": {} } })));

    // Without a fieldManager the manager is the User-Agent up to its first `/`.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/namespaces/{NAMESPACE}/secrets", server.url))
        .header("user-agent", "kubectl/v1.33.0 (linux/amd64) kubernetes/abc")
        .json(&json!({ "metadata": { "name": "t" }, "data": { "a": "MQ==" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(owned(&stored(&server, "secrets", "t"), "kubectl", "Update", "").is_some());
}

#[tokio::test]
async fn conditions_are_owned_per_type_when_the_crd_marks_them_a_map_list() {
    let server = server().await;
    let api = widgets(&server);
    api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1 } }))).await.unwrap();
    let condition =
        |kind: &str, status: &str| json!({ "status": { "conditions": [{ "type": kind, "status": status }] } });
    api.patch_status("w", &by("ready-controller"), &widget("w", condition("Ready", "True"))).await.unwrap();
    api.patch_status("w", &by("sync-controller"), &widget("w", condition("Synced", "False"))).await.unwrap();

    let object = stored(&server, "widgets", "w");
    let types: Vec<&str> =
        object["status"]["conditions"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Ready", "Synced"]);
    assert_eq!(
        owned(&object, "ready-controller", "Apply", "status"),
        Some(json!({ "f:status": { "f:conditions": {
            "k:{\"type\":\"Ready\"}": { ".": {}, "f:status": {}, "f:type": {} },
        } } }))
    );

    api.patch_status("w", &by("ready-controller"), &widget("w", condition("Ready", "False"))).await.unwrap();
    let object = stored(&server, "widgets", "w");
    assert_eq!(
        object["status"]["conditions"],
        json!([{ "type": "Ready", "status": "False" }, { "type": "Synced", "status": "False" }])
    );

    let status = refusal(api.patch_status("w", &by("sync-controller"), &widget("w", condition("Ready", "True"))).await);
    let causes = status.details.unwrap().causes;
    assert_eq!(causes[0].field, ".status.conditions[type=\"Ready\"].status");
    assert_eq!(causes[0].message, "conflict with \"ready-controller\"");
}

#[tokio::test]
async fn conditions_are_one_atomic_list_when_the_crd_does_not_mark_them() {
    let server = server().await;
    let api = gadgets(&server);
    api.patch("g", &by("alice"), &gadget("g", json!({ "spec": { "size": 1 } }))).await.unwrap();
    let condition = |kind: &str| json!({ "status": { "conditions": [{ "type": kind, "status": "True" }] } });
    api.patch_status("g", &by("ready-controller"), &gadget("g", condition("Ready"))).await.unwrap();

    let status = refusal(api.patch_status("g", &by("sync-controller"), &gadget("g", condition("Synced"))).await);
    assert_eq!(status.details.unwrap().causes[0].field, ".status.conditions");

    api.patch_status("g", &by("sync-controller").force(), &gadget("g", condition("Synced"))).await.unwrap();
    let object = stored(&server, "gadgets", "g");
    assert_eq!(object["status"]["conditions"], json!([{ "type": "Synced", "status": "True" }]), "replaced whole");
    assert_eq!(owned(&object, "ready-controller", "Apply", "status"), None);
}

#[tokio::test]
async fn finalizers_are_a_set_and_owner_references_a_map_keyed_by_uid() {
    let server = server().await;
    let api = secrets(&server);
    let owner = |uid: &str| json!({ "apiVersion": "v1", "kind": "ConfigMap", "name": uid, "uid": uid });
    let config = |finalizer: &str, uid: &str| {
        secret("s", json!({ "metadata": { "finalizers": [finalizer], "ownerReferences": [owner(uid)] } }))
    };
    api.patch("s", &by("alice"), &config("example.com/a", "u1")).await.unwrap();
    api.patch("s", &by("bob"), &config("example.com/b", "u2")).await.unwrap();
    let object = stored(&server, "secrets", "s");
    assert_eq!(object["metadata"]["finalizers"], json!(["example.com/a", "example.com/b"]));
    assert_eq!(object["metadata"]["ownerReferences"], json!([owner("u1"), owner("u2")]));
    assert_eq!(
        owned(&object, "alice", "Apply", ""),
        Some(json!({ "f:metadata": {
            "f:finalizers": { "v:\"example.com/a\"": {} },
            "f:ownerReferences": { "k:{\"uid\":\"u1\"}": {
                ".": {}, "f:apiVersion": {}, "f:kind": {}, "f:name": {}, "f:uid": {},
            } },
        } }))
    );

    api.patch("s", &by("alice"), &secret("s", json!({}))).await.unwrap();
    let object = stored(&server, "secrets", "s");
    assert_eq!(object["metadata"]["finalizers"], json!(["example.com/b"]));
    assert_eq!(object["metadata"]["ownerReferences"], json!([owner("u2")]));
}

#[tokio::test]
async fn status_apply_changes_only_the_status_and_apply_to_the_resource_ignores_the_status() {
    let server = server().await;
    let api = widgets(&server);
    let body = json!({ "spec": { "size": 1 }, "status": { "observedGeneration": 7 } });
    api.patch("w", &by("alice"), &widget("w", body)).await.unwrap();
    let object = stored(&server, "widgets", "w");
    assert!(object.get("status").is_none(), "{object}");
    assert_eq!(owned(&object, "alice", "Apply", ""), Some(json!({ "f:spec": { "f:size": {} } })));
    assert_eq!(object["metadata"]["generation"], 1);

    let body = json!({ "spec": { "size": 9 }, "status": { "observedGeneration": 1 } });
    api.patch_status("w", &by("controller"), &widget("w", body)).await.unwrap();
    let object = stored(&server, "widgets", "w");
    assert_eq!((&object["spec"], &object["status"]), (&json!({ "size": 1 }), &json!({ "observedGeneration": 1 })));
    assert_eq!(
        owned(&object, "controller", "Apply", "status"),
        Some(json!({ "f:status": { "f:observedGeneration": {} } }))
    );
    assert_eq!(object["metadata"]["generation"], 1, "a status write is no new generation");

    api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 2 } }))).await.unwrap();
    let object = stored(&server, "widgets", "w");
    assert_eq!(object["metadata"]["generation"], 2, "a spec change is");
    assert_eq!(object["status"], json!({ "observedGeneration": 1 }), "and keeps the status");
}

#[tokio::test]
async fn a_status_apply_needs_the_object_to_exist() {
    let server = server().await;
    let status = refusal(widgets(&server).patch_status("w", &by("controller"), &widget("w", json!({}))).await);
    assert_eq!(status.code, 404);
}

#[tokio::test]
async fn a_no_op_apply_keeps_the_resource_version_and_sends_no_watch_event() {
    let server = server().await;
    let api = widgets(&server);
    let config = widget("w", json!({ "spec": { "size": 1 } }));
    let first = api.patch("w", &by("alice"), &config).await.unwrap();
    let version = first.metadata.resource_version.clone().unwrap();
    let mut events = api.watch(&kube::api::WatchParams::default(), &version).await.unwrap().boxed();

    let again = api.patch("w", &by("alice"), &config).await.unwrap();
    assert_eq!(again.metadata.resource_version.as_deref(), Some(version.as_str()));
    api.patch("other", &by("alice"), &widget("other", json!({ "spec": { "size": 2 } }))).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.try_next()).await.unwrap().unwrap().unwrap() {
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Added(object) => break assert_eq!(object.metadata.name.as_deref(), Some("other")),
            other => panic!("the no-op apply sent an event: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_stale_resource_version_in_an_apply_or_a_merge_patch_conflicts() {
    let server = server().await;
    let api = widgets(&server);
    let created = api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1 } }))).await.unwrap();
    let old = created.metadata.resource_version.unwrap();
    api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 2 } }))).await.unwrap();

    let stale = json!({ "metadata": { "resourceVersion": old }, "spec": { "size": 3 } });
    let status = refusal(api.patch("w", &by("alice"), &widget("w", stale.clone())).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(status.message.contains("the object has been modified"), "{}", status.message);
    let status = refusal(api.patch("w", &PatchParams::default(), &Patch::Merge(stale)).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(stored(&server, "widgets", "w")["spec"]["size"], 2);

    let current = rv(&stored(&server, "widgets", "w"));
    let fresh = json!({ "metadata": { "resourceVersion": current }, "spec": { "size": 3 } });
    api.patch("w", &by("alice"), &widget("w", fresh)).await.unwrap();
    assert_eq!(stored(&server, "widgets", "w")["spec"]["size"], 3);
}

#[tokio::test]
async fn a_secrets_string_data_is_merged_into_data() {
    let server = server().await;
    secrets(&server).patch("s", &by("alice"), &secret("s", json!({ "stringData": { "p": "plain" } }))).await.unwrap();
    let object = stored(&server, "secrets", "s");
    assert_eq!(object["data"], json!({ "p": STANDARD.encode("plain") }));
    assert!(object.get("stringData").is_none());
    assert_eq!(owned(&object, "alice", "Apply", ""), Some(json!({ "f:stringData": { "f:p": {} } })));
}

#[tokio::test]
async fn deletion_with_a_finalizer_marks_the_object_and_a_new_generation_and_it_goes_with_the_finalizer() {
    let server = server().await;
    let api = widgets(&server);
    let config = widget("w", json!({ "metadata": { "finalizers": ["example.com/f"] }, "spec": { "size": 1 } }));
    api.patch("w", &by("alice"), &config).await.unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();
    let marked = stored(&server, "widgets", "w");
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(marked["metadata"]["generation"], 2);

    let mark = server.mark();
    api.delete("w", &DeleteParams::default()).await.unwrap();
    assert_eq!(server.requests_since(mark).changing_writes("widgets"), 0, "deleting again changes nothing");

    api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1 } }))).await.unwrap();
    assert!(server.get("widgets", NAMESPACE, "w").is_none(), "gone with its last finalizer");
}

#[tokio::test]
async fn compaction_expires_watches_with_410_and_a_watcher_lists_again_and_keeps_working() {
    let server = server().await;
    let api = widgets(&server);
    api.patch("before", &by("alice"), &widget("before", json!({ "spec": { "size": 1 } }))).await.unwrap();
    let old = rv(&stored(&server, "widgets", "before"));
    api.patch("before", &by("alice"), &widget("before", json!({ "spec": { "size": 2 } }))).await.unwrap();
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel();
    let watching = watcher(api.clone(), watcher::Config::default());
    tokio::spawn(watching.for_each(move |event| {
        let _ = sender.send(event);
        async {}
    }));
    let mut next = async || tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
    while !matches!(next().await, Ok(watcher::Event::InitDone)) {}
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server.open_watches() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the watcher never watched");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mark = server.mark();
    server.compact();
    let expired = next().await;
    assert!(matches!(&expired, Err(watcher::Error::WatchError(status)) if status.code == 410), "{expired:?}");
    assert!(matches!(next().await, Ok(watcher::Event::Init)));
    assert!(matches!(next().await, Ok(watcher::Event::InitApply(o)) if o.metadata.name.as_deref() == Some("before")));
    assert!(matches!(next().await, Ok(watcher::Event::InitDone)));
    assert_eq!(server.requests_since(mark).lists("widgets"), 1, "one relist");

    api.patch("after", &by("alice"), &widget("after", json!({ "spec": { "size": 2 } }))).await.unwrap();
    match next().await {
        Ok(watcher::Event::Apply(object)) => assert_eq!(object.metadata.name.as_deref(), Some("after")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.requests_since(mark).watches("widgets"), 1, "and one new watch");

    // A watch from before the compaction is told at once.
    let mut stale = api.watch(&kube::api::WatchParams::default(), &old).await.unwrap().boxed();
    match stale.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => assert_eq!((status.code, status.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410 Expired, got {other:?}"),
    }
}

#[tokio::test]
async fn bookmarks_carry_the_servers_resource_version_when_asked_for() {
    let server = server().await;
    let api = widgets(&server);
    api.patch("w", &by("alice"), &widget("w", json!({ "spec": { "size": 1 } }))).await.unwrap();
    let version = rv(&stored(&server, "widgets", "w"));
    secrets(&server).patch("s", &by("alice"), &secret("s", json!({}))).await.unwrap();
    let current = server.resource_version().to_string();

    let mut events = api.watch(&kube::api::WatchParams::default(), &version).await.unwrap().boxed();
    let event = tokio::time::timeout(Duration::from_secs(5), events.try_next()).await.unwrap().unwrap().unwrap();
    match event {
        WatchEvent::Bookmark(bookmark) => assert_eq!(bookmark.metadata.resource_version, current),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn the_request_log_counts_lists_writes_and_the_writes_that_changed_something() {
    let server = server().await;
    let api = widgets(&server);
    let mark = server.mark();
    api.list(&Default::default()).await.unwrap();
    let config = widget("w", json!({ "spec": { "size": 1 } }));
    api.patch("w", &by("alice"), &config).await.unwrap();
    api.patch("w", &by("alice"), &config).await.unwrap();
    api.list(&Default::default()).await.unwrap();
    api.get("w").await.unwrap();
    api.patch_status("w", &by("controller"), &widget("w", json!({ "status": { "observedGeneration": 1 } })))
        .await
        .unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();

    let log = server.requests_since(mark);
    assert_eq!((log.lists("widgets"), log.count(Verb::Get, "widgets")), (2, 1));
    assert_eq!((log.writes("widgets"), log.changing_writes("widgets")), (4, 3), "the repeated apply changed nothing");
    assert_eq!((log.writes("secrets"), log.all_changing_writes()), (0, 3));
    assert_eq!(log.iter().filter(|r| r.field_manager.as_deref() == Some("alice")).count(), 2);
    let status_write = log.iter().find(|r| r.subresource.as_deref() == Some("status")).unwrap();
    assert_eq!(
        (status_write.verb, status_write.namespace.as_deref(), status_write.name.as_deref()),
        (Verb::Patch, Some(NAMESPACE), Some("w"))
    );
}

#[tokio::test]
async fn the_portcullis_kinds_are_served_from_the_checked_in_crds_with_their_status_subresource() {
    let server = FakeApiServer::start().await;
    let api: Api<portcullis::crd::OidcClient> = Api::namespaced(server.client(), NAMESPACE);
    let client = json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcClient", "metadata": { "name": "app" },
        "spec": { "grantTypes": ["client_credentials"] },
    });
    api.patch("app", &by("user"), &Patch::Apply(client)).await.unwrap();
    let status = json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcClient",
        "status": { "observedGeneration": 1, "clientId": "app" },
    });
    api.patch_status("app", &by("portcullis-controller"), &Patch::Apply(status)).await.unwrap();

    let objects = server.list("oidcclients", NAMESPACE);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["spec"], json!({ "grantTypes": ["client_credentials"] }));
    assert_eq!(objects[0]["status"], json!({ "observedGeneration": 1, "clientId": "app" }));
    assert_eq!(
        owned(&objects[0], "portcullis-controller", "Apply", "status"),
        Some(json!({ "f:status": { "f:clientId": {}, "f:observedGeneration": {} } }))
    );
    assert_eq!(
        server.requests(),
        [
            "PATCH /apis/portcullis.dev/v1alpha1/namespaces/test/oidcclients/app",
            "PATCH /apis/portcullis.dev/v1alpha1/namespaces/test/oidcclients/app/status",
        ]
    );
}

#[tokio::test]
async fn its_kubeconfig_gives_a_process_a_client_of_this_server_in_the_namespace_named() {
    let server = FakeApiServer::start().await;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig(NAMESPACE)).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    assert_eq!(config.default_namespace, NAMESPACE);
    let secrets: Api<Secret> = Api::default_namespaced(kube::Client::try_from(config).unwrap());
    let secret: Secret =
        serde_json::from_value(json!({"metadata": {"name": "reached"}, "stringData": {"k": "v"}})).unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    assert!(server.get("secrets", NAMESPACE, "reached").is_some(), "the write reached this server");
}
