//! Watches: the changes since a `resourceVersion`, then live ones, with bookmarks when asked
//! (`allowWatchBookmarks=true`) that carry the server's current resourceVersion, as the
//! real watch cache's do.
//!
//! History is kept until [`super::FakeApiServer::compact`] drops it. A watch from a
//! resourceVersion older than the compaction, and every watch open when it happens, gets
//! what a client gets when its position falls out of the server's window: an `ERROR` event
//! with a `Status` of code 410, reason `Expired` (over HTTP 200, as the watch cache answers
//! it), after which a reflector must list again.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::schema::Kind;
use super::{Shared, Target, labels_match};

/// One stored change, as a watch delivers it.
#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub resource: String,
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub event: &'static str,
    pub object: Value,
}

/// What open watches are told.
#[derive(Clone, Debug)]
pub enum Broadcast {
    Change(Change),
    /// History up to this resourceVersion is gone.
    Compacted(u64),
}

fn expired(requested: u64, oldest: u64) -> Value {
    json!({ "type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("too old resource version: {requested} ({oldest})"),
        "reason": "Expired", "code": 410,
    }})
}

/// Where an open watch stands.
struct Watching {
    lines: VecDeque<Value>,
    receiver: broadcast::Receiver<Broadcast>,
    /// The resourceVersion this watch has delivered up to.
    last: u64,
    /// An error was sent; the stream ends after it.
    done: bool,
}

impl Watching {
    fn take(&mut self, message: Broadcast, matches: &impl Fn(&Change) -> bool) {
        match message {
            Broadcast::Change(change) if change.rv > self.last && matches(&change) => {
                self.last = change.rv;
                self.lines.push_back(json!({ "type": change.event, "object": change.object }));
            }
            Broadcast::Change(_) => {}
            Broadcast::Compacted(rv) => self.expire(rv),
        }
    }

    fn expire(&mut self, oldest: u64) {
        if !self.done {
            self.lines.push_back(expired(self.last, oldest));
            self.done = true;
        }
    }
}

pub fn watch_response(shared: &Arc<Shared>, target: &Target, kind: &Kind, query: &HashMap<String, String>) -> Response {
    let requested: Option<u64> =
        query.get("resourceVersion").filter(|rv| !rv.is_empty()).and_then(|rv| rv.parse().ok()).filter(|&rv| rv != 0);
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
    let watching = {
        let inner = shared.inner.lock().unwrap();
        let mut watching =
            Watching { lines: VecDeque::new(), receiver: shared.changes.subscribe(), last: inner.rv, done: false };
        match requested {
            // No resourceVersion, or "0": the current state as synthetic ADDED events first.
            None => {
                for ((resource, namespace, _), object) in &inner.objects {
                    let change = Change {
                        rv: 0,
                        resource: resource.clone(),
                        namespace: namespace.clone(),
                        event: "ADDED",
                        object: object.clone(),
                    };
                    if matches(&change) {
                        watching.lines.push_back(json!({ "type": "ADDED", "object": object }));
                    }
                }
            }
            Some(rv) if rv < inner.compacted => {
                watching.lines.push_back(expired(rv, inner.compacted));
                watching.done = true;
            }
            Some(rv) => {
                for change in inner.history.iter().filter(|c| c.rv > rv && matches(c)) {
                    watching.lines.push_back(json!({ "type": change.event, "object": change.object }));
                }
                watching.last = inner.rv.max(rv);
            }
        }
        watching
    };
    let shared = Arc::clone(shared);
    let bookmark = {
        let (kind, api_version) = (kind.kind.clone(), kind.api_version.clone());
        move |rv: u64| {
            json!({ "type": "BOOKMARK", "object": {
                "kind": kind, "apiVersion": api_version, "metadata": { "resourceVersion": rv.to_string() },
            }})
        }
    };
    let state = (watching, tokio::time::interval(Duration::from_millis(500)));
    let stream = futures::stream::unfold(state, move |(mut watching, mut tick)| {
        let (shared, matches, bookmark) = (Arc::clone(&shared), matches.clone(), bookmark.clone());
        async move {
            loop {
                if let Some(line) = watching.lines.pop_front() {
                    let bytes = Bytes::from(format!("{line}\n"));
                    return Some((Ok::<_, Infallible>(bytes), (watching, tick)));
                }
                if watching.done {
                    return None;
                }
                tokio::select! {
                    received = watching.receiver.recv() => match received {
                        Ok(message) => watching.take(message, &matches),
                        Err(RecvError::Lagged(_)) => watching.expire(watching.last),
                        Err(RecvError::Closed) => return None,
                    },
                    _ = tick.tick(), if bookmarks => {
                        // Take what was broadcast before reading the current resourceVersion,
                        // so a bookmark never overtakes an event it covers.
                        let current = {
                            let inner = shared.inner.lock().unwrap();
                            loop {
                                match watching.receiver.try_recv() {
                                    Ok(message) => watching.take(message, &matches),
                                    Err(TryRecvError::Lagged(_)) => watching.expire(watching.last),
                                    Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                                }
                            }
                            inner.rv
                        };
                        if !watching.done {
                            watching.last = watching.last.max(current);
                            watching.lines.push_back(bookmark(watching.last));
                        }
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
