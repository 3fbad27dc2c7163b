//! Reflector caches looked up by the names their objects hold or refer to, instead of
//! scanned. A reconcile needs the peers that claim its client id or username, and a Secret
//! change needs the resources that read that Secret; scanning the cache for them made each
//! reconcile cost as much as the number of resources, and a full resync the square of it.
//!
//! An [`Index`] is fed the same watch events as its reflector, right after it
//! ([`reflect_indexed`]), and mirrors how the reflector applies them (a relist replaces
//! everything at its end). Lookups return the reflector's current objects; callers keep
//! filtering them by what they need, as they filtered the whole cache before.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, PoisonError, RwLock};

use futures::{Stream, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store as Reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// The objects of one reflector by the keys [`Index::new`]'s function gives each.
pub struct Index<K: Resource<DynamicType = ()>> {
    keys_of: fn(&K) -> Vec<String>,
    entries: RwLock<Entries<K>>,
}

struct Entries<K: Resource<DynamicType = ()>> {
    by_key: HashMap<String, HashSet<ObjectRef<K>>>,
    keys_of_object: HashMap<ObjectRef<K>, Vec<String>>,
    /// The objects of a relist in progress, swapped in at its end (as the reflector does).
    relisting: HashMap<ObjectRef<K>, Vec<String>>,
}

impl<K: Resource<DynamicType = ()> + Clone> Index<K> {
    pub fn new(keys_of: fn(&K) -> Vec<String>) -> Self {
        let entries = Entries { by_key: HashMap::new(), keys_of_object: HashMap::new(), relisting: HashMap::new() };
        Self { keys_of, entries: RwLock::new(entries) }
    }

    /// Applies one watch event, as the reflector does.
    pub fn apply(&self, event: &watcher::Event<K>) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Apply(object) => entries.set(ObjectRef::from_obj(object), keys(self.keys_of, object)),
            watcher::Event::Delete(object) => entries.remove(&ObjectRef::from_obj(object)),
            watcher::Event::Init => entries.relisting.clear(),
            watcher::Event::InitApply(object) => {
                entries.relisting.insert(ObjectRef::from_obj(object), keys(self.keys_of, object));
            }
            watcher::Event::InitDone => {
                let listed = std::mem::take(&mut entries.relisting);
                entries.by_key.clear();
                entries.keys_of_object.clear();
                for (object, keys) in listed {
                    entries.set(object, keys);
                }
            }
        }
    }

    /// The objects of `store` under any of `keys`, each once.
    pub fn get(&self, store: &Reflector<K>, keys: &[&str]) -> Vec<Arc<K>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let found: HashSet<&ObjectRef<K>> = keys.iter().filter_map(|key| entries.by_key.get(*key)).flatten().collect();
        found.into_iter().filter_map(|object| store.get(object)).collect()
    }
}

/// `namespace/name` of a Secret: the key resources of several namespaces are indexed
/// under for the Secret they read.
pub fn secret_key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

/// The resources of `store` indexed under `secret`'s [`secret_key`] that `reads` says
/// read a Secret of that name, in the Secret's namespace: for the Secret watch.
pub fn secret_readers<K: Resource<DynamicType = ()> + Clone>(
    secret: &Secret,
    index: &Index<K>,
    store: &Reflector<K>,
    reads: impl Fn(&K, &str) -> bool,
) -> Vec<Arc<K>> {
    let (namespace, name) = (secret.namespace(), secret.name_any());
    let mut readers = index.get(store, &[&secret_key(namespace.as_deref(), &name)]);
    readers.retain(|reader| reader.namespace() == namespace && reads(reader, &name));
    readers
}

/// The keys of `object`, each once.
fn keys<K>(keys_of: fn(&K) -> Vec<String>, object: &K) -> Vec<String> {
    let mut keys = keys_of(object);
    keys.sort_unstable();
    keys.dedup();
    keys
}

impl<K: Resource<DynamicType = ()>> Entries<K>
where
    ObjectRef<K>: Hash + Eq,
{
    fn set(&mut self, object: ObjectRef<K>, keys: Vec<String>) {
        self.remove(&object);
        for key in &keys {
            self.by_key.entry(key.clone()).or_default().insert(object.clone());
        }
        self.keys_of_object.insert(object, keys);
    }

    fn remove(&mut self, object: &ObjectRef<K>) {
        for key in self.keys_of_object.remove(object).unwrap_or_default() {
            if let Some(objects) = self.by_key.get_mut(&key) {
                objects.remove(object);
                if objects.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }
}

/// Watches `api` into a new reflector and `indexes`, and returns the reflector and the
/// events (for a controller to trigger on). `managedFields` are dropped on the way: nothing
/// here reads them, and they are the larger part of an object applied server-side.
pub fn reflect_indexed<K>(
    api: Api<K>,
    config: watcher::Config,
    indexes: Vec<Arc<Index<K>>>,
) -> (Reflector<K>, impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let events = watcher(api, config)
        .modify(|object: &mut K| object.managed_fields_mut().clear())
        .reflect(writer)
        .inspect_ok(move |event| {
            for index in &indexes {
                index.apply(event);
            }
        });
    (reader, events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store::Writer;

    fn map(name: &str, keys: &str) -> ConfigMap {
        let mut map = ConfigMap::default();
        map.metadata.name = Some(name.into());
        map.metadata.namespace = Some("ns".into());
        map.metadata.labels = Some([("keys".to_owned(), keys.to_owned())].into());
        map
    }

    fn keys_label(map: &ConfigMap) -> Vec<String> {
        map.labels().get("keys").map(|keys| keys.split('.').map(str::to_owned).collect()).unwrap_or_default()
    }

    /// A reflector and an index fed the same events, as [`reflect_indexed`] feeds them.
    struct Fed {
        writer: Writer<ConfigMap>,
        index: Index<ConfigMap>,
    }

    impl Fed {
        fn new() -> Self {
            Self { writer: Writer::default(), index: Index::new(keys_label) }
        }

        fn event(&mut self, event: watcher::Event<ConfigMap>) {
            self.writer.apply_watcher_event(&event);
            self.index.apply(&event);
        }

        fn names(&self, keys: &[&str]) -> Vec<String> {
            let mut names: Vec<String> =
                self.index.get(&self.writer.as_reader(), keys).iter().map(|m| m.name_any()).collect();
            names.sort();
            names
        }
    }

    #[test]
    fn an_object_is_found_under_each_of_its_keys_once() {
        let mut fed = Fed::new();
        fed.event(watcher::Event::Apply(map("a", "x.y.x")));
        fed.event(watcher::Event::Apply(map("b", "y")));
        assert_eq!(fed.names(&["x"]), ["a"]);
        assert_eq!(fed.names(&["y"]), ["a", "b"]);
        assert_eq!(fed.names(&["x", "y"]), ["a", "b"], "each object once");
        assert!(fed.names(&["z"]).is_empty());
    }

    #[test]
    fn a_changed_object_leaves_its_old_keys_and_a_deleted_one_all_of_them() {
        let mut fed = Fed::new();
        fed.event(watcher::Event::Apply(map("a", "x")));
        fed.event(watcher::Event::Apply(map("a", "y")));
        assert!(fed.names(&["x"]).is_empty());
        assert_eq!(fed.names(&["y"]), ["a"]);
        fed.event(watcher::Event::Delete(map("a", "y")));
        assert!(fed.names(&["y"]).is_empty());
        assert!(fed.index.entries.read().unwrap().by_key.is_empty(), "no empty sets left behind");
    }

    #[test]
    fn a_relist_replaces_everything_at_its_end_as_the_reflector_does() {
        let mut fed = Fed::new();
        fed.event(watcher::Event::Apply(map("gone", "x")));
        fed.event(watcher::Event::Init);
        fed.event(watcher::Event::InitApply(map("new", "x")));
        assert_eq!(fed.names(&["x"]), ["gone"], "until the relist ends, the old state holds");
        fed.event(watcher::Event::InitDone);
        assert_eq!(fed.names(&["x"]), ["new"]);
    }
}
