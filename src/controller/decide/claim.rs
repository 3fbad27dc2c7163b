//! The rules every name a resource holds in the store follows, whether a client id, a
//! username or an upstream identity a user claims: the oldest live resource claiming a
//! name owns it; a resource gives up a name it applied as soon as it no longer uses it (a
//! rename revokes the old name at once), unless another resource applied that name
//! meanwhile, which then holds the record.

use std::sync::Arc;

use kube::ResourceExt;

/// A resource that holds a name in the store.
pub trait Claimant: ResourceExt {
    /// The name the store holds for this resource, as its status records.
    fn applied(&self) -> Option<&str>;
    /// The name it holds or asks for, as far as its peers can tell: the applied one, else
    /// the one its spec names.
    fn claimed(&self) -> &str;

    /// Whether it holds or claims any of `names`: the peers a decision about those names
    /// needs to see.
    fn concerns(&self, names: &[&str]) -> bool {
        names.contains(&self.claimed()) || self.applied().is_some_and(|applied| names.contains(&applied))
    }
}

/// Whether `other` is a live resource other than `resource`.
fn live_peer<K: Claimant>(resource: &K, other: &K) -> bool {
    other.uid() != resource.uid() && other.meta().deletion_timestamp.is_none()
}

/// The resource that owns `name` instead of `resource`: the oldest other live resource
/// claiming it (ties broken by namespace and name), if it is older than `resource`.
pub fn owner<'a, K: Claimant>(resource: &K, name: &str, peers: &'a [Arc<K>]) -> Option<&'a K> {
    older_holder(resource, peers, |other| other.claimed() == name)
}

/// The oldest other live resource that `holds` something, if it is older than `resource`
/// (ties broken by namespace and name): who keeps what `resource` asks for too.
pub fn older_holder<'a, K: Claimant>(resource: &K, peers: &'a [Arc<K>], holds: impl Fn(&K) -> bool) -> Option<&'a K> {
    let order = |k: &K| (k.creation_timestamp().map(|t| t.0), k.namespace(), k.name_any());
    peers
        .iter()
        .map(Arc::as_ref)
        .filter(|other| live_peer(resource, *other) && holds(other))
        .filter(|other| order(other) < order(resource))
        .min_by_key(|other| order(other))
}

/// Whether another live resource has applied `name`: the record is then that one's.
fn held_by_peer<K: Claimant>(resource: &K, name: &str, peers: &[Arc<K>]) -> bool {
    peers.iter().any(|other| live_peer(resource, &**other) && other.applied() == Some(name))
}

/// The applied name `resource` gives up now that it keeps `kept` (none, or another).
pub fn revoked<K: Claimant>(resource: &K, kept: Option<&str>, peers: &[Arc<K>]) -> Vec<String> {
    resource
        .applied()
        .filter(|applied| Some(*applied) != kept && !held_by_peer(resource, applied, peers))
        .map(str::to_owned)
        .into_iter()
        .collect()
}

/// The names to remove when `resource` is deleted: the applied one and the one it asks for
/// now (a rename may not have been reconciled yet), unless another resource holds them.
pub fn released<K: Claimant>(resource: &K, current: Option<String>, peers: &[Arc<K>]) -> Vec<String> {
    let mut names: Vec<String> = resource.applied().map(str::to_owned).into_iter().chain(current).collect();
    names.dedup();
    names.retain(|name| !held_by_peer(resource, name, peers));
    names
}
