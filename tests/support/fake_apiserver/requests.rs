//! Every request the fake answered, typed, so that tests can count what a controller asks
//! of the API server: LISTs per resource, writes per resource, and the writes that changed
//! something (a no-op apply is a write that changed nothing).
//!
//! Each test crate that includes the fake uses a part of this; the rest would be dead code
//! there, hence the `allow`s.

/// The Kubernetes verb of a request, as RBAC names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
}

impl Verb {
    pub fn is_write(self) -> bool {
        matches!(self, Verb::Create | Verb::Update | Verb::Patch | Verb::Delete)
    }
}

/// One request and what came of it.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub verb: Verb,
    /// The plural resource name (`oidcclients`), without the subresource.
    pub resource: String,
    /// `Some("status")` for the status subresource.
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// The HTTP status of the answer (200 for a watch, whose errors come as events).
    pub status: u16,
    /// Whether the request changed a stored object (and so bumped the resourceVersion and
    /// sent a watch event).
    pub changed: bool,
}

/// A point in the request log, from which later requests are counted.
#[derive(Clone, Copy, Debug)]
pub struct Mark(pub(super) usize);

/// Requests in the order they arrived.
#[derive(Clone, Debug)]
pub struct Requests(pub(super) Vec<Request>);

#[allow(dead_code)]
impl Requests {
    pub fn iter(&self) -> impl Iterator<Item = &Request> {
        self.0.iter()
    }

    /// Requests with this verb on this resource (any subresource of it included).
    pub fn count(&self, verb: Verb, resource: &str) -> usize {
        self.0.iter().filter(|r| r.verb == verb && r.resource == resource).count()
    }

    pub fn lists(&self, resource: &str) -> usize {
        self.count(Verb::List, resource)
    }

    pub fn watches(&self, resource: &str) -> usize {
        self.count(Verb::Watch, resource)
    }

    /// Creates, updates, patches and deletes on this resource, whether or not they changed it.
    pub fn writes(&self, resource: &str) -> usize {
        self.0.iter().filter(|r| r.verb.is_write() && r.resource == resource).count()
    }

    /// Writes on this resource that changed an object.
    pub fn changing_writes(&self, resource: &str) -> usize {
        self.0.iter().filter(|r| r.verb.is_write() && r.resource == resource && r.changed).count()
    }

    /// Writes on any resource that changed an object.
    pub fn all_changing_writes(&self) -> usize {
        self.0.iter().filter(|r| r.verb.is_write() && r.changed).count()
    }
}
