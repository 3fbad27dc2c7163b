//! What every provider replica runs beside serving requests: checks of its store and, with
//! a manifests folder (`dev`, `serve --manifests`), the folder applied live.
//!
//! - Every [`Intervals::store`] (and when the store's change announcements reconnect):
//!   the store's data epoch. A new epoch means the store lost its data: the replica
//!   stamps the new epoch into the tokens it issues (older ones are refused from now on)
//!   and re-applies the folder, not ready (`registry`) until that is done. Then the
//!   signing keys are claimed again and other replicas' retired keys read, so replicas
//!   converge on one key set. Every few checks, whether the store evicts keys.
//! - The folder is watched (`notify`) and looked at again every [`Intervals::folder`]: its
//!   files' sizes, inodes and times ([`Stamp`]) are compared, and only when they changed
//!   (or at every [`THOROUGH_EVERY`]th look, for file systems whose times are coarse) are
//!   the files read, off the async workers, and compared by a digest of their text, which
//!   also catches a ConfigMap's `..data` symlink swap. A change is validated whole and
//!   applied, one log line per change; a change that fails is reported with file, document
//!   and field, and the last good state stays in force.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest::{self, SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use notify::{RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use super::folder::{ApplyError, Folder};
use super::manifests::{self, ManifestSet};
use super::reconcile::GeneratedCredentials;
use crate::store::{Eviction, Store, StoreStatus, epoch};

/// How often the background checks run.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// The data epoch and the shared keys: lost data is repaired within a few of these.
    pub store: Duration,
    /// The folder read again, behind the file watcher.
    pub folder: Duration,
}

impl Default for Intervals {
    fn default() -> Self {
        Self { store: Duration::from_secs(2), folder: Duration::from_secs(3) }
    }
}

/// The eviction policy is checked at every this many store checks.
const POLICY_EVERY: u32 = 3;
/// Changes arriving together (an editor's save, a ConfigMap update) are read once.
const SETTLE: Duration = Duration::from_millis(150);
/// The periodic look reads the files whatever their [`Stamp`] says at every this many
/// looks: a change that kept a file's size within one tick of a coarse clock is still seen.
const THOROUGH_EVERY: u32 = 10;

/// Where the manifests come from.
#[derive(Debug, Clone)]
pub enum Source {
    Dir(PathBuf),
    /// Built into the binary; never changes.
    Texts(&'static [(&'static str, &'static str)]),
}

impl Source {
    /// The files' names and texts.
    fn read(&self) -> Result<Vec<(String, String)>, manifests::ManifestError> {
        match self {
            Source::Dir(dir) => manifests::read_dir(dir),
            Source::Texts(texts) => {
                Ok(texts.iter().map(|(name, text)| ((*name).to_owned(), (*text).to_owned())).collect())
            }
        }
    }

    /// How the files look from outside; `None` when they cannot be listed (the read then
    /// reports why). Built-in texts never change.
    fn stamp(&self) -> Option<Stamp> {
        let Source::Dir(dir) = self else { return Some(Stamp::default()) };
        let files = manifests::manifest_files(dir).ok()?;
        let looks = files.into_iter().map(|file| {
            let metadata = std::fs::metadata(&file).ok()?;
            let times = [metadata.mtime(), metadata.mtime_nsec(), metadata.ctime(), metadata.ctime_nsec()];
            Some((file, [metadata.dev(), metadata.ino(), metadata.len()], times))
        });
        looks.collect::<Option<_>>().map(Stamp)
    }
}

/// Each manifest file's path, device, inode and size, and modification and change times
/// (seconds and nanoseconds): a write, a replacement or a symlink swap changes one of
/// them, so files whose stamp is unchanged need not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp(Vec<(PathBuf, [u64; 3], [i64; 4])>);

/// One read of the folder, done off the async workers: the stamp taken before it (so a
/// change during the read is seen at the next look), the texts and their digest.
struct Read {
    stamp: Option<Stamp>,
    texts: Result<(Vec<(String, String)>, String), manifests::ManifestError>,
}

async fn read_off_the_workers(source: &Source) -> Read {
    let source = source.clone();
    let read = tokio::task::spawn_blocking(move || {
        let stamp = source.stamp();
        let texts = source.read().map(|texts| {
            let digest = digest_of(&texts);
            (texts, digest)
        });
        Read { stamp, texts }
    });
    match read.await {
        Ok(read) => read,
        Err(error) => Read {
            stamp: None,
            texts: Err(manifests::ManifestError::Io {
                path: PathBuf::from("(manifests folder)"),
                source: std::io::Error::other(error.to_string()),
            }),
        },
    }
}

/// A folder applied to the store, and what it was applied from.
pub struct LiveFolder {
    source: Source,
    folder: Folder,
    /// The last good files, parsed and applied again after the store lost its data: their
    /// text is a fraction of the parsed resources' memory, and that happens rarely.
    texts: Vec<(String, String)>,
    /// Digest of the files last read, good or not (or the error that kept them from being
    /// read): a broken edit is reported once.
    digest: String,
    /// The files' stamp when they were last read and handled; `None` reads them at the
    /// next look (they could not be read, or applying them failed).
    stamp: Option<Stamp>,
    /// Shows a client secret this replica generated (and kept) for a new client.
    announce: fn(&GeneratedCredentials),
}

impl LiveFolder {
    /// Reads, validates and applies the folder to the store: the start-up of `dev` and
    /// `serve --manifests`. Fails on any mistake in the folder.
    pub async fn start(
        source: Source,
        mut folder: Folder,
        store: &dyn Store,
        announce: fn(&GeneratedCredentials),
    ) -> Result<(Self, Vec<GeneratedCredentials>), ApplyError> {
        let read = read_off_the_workers(&source).await;
        let (texts, digest) = read.texts?;
        let set = load(&texts)?;
        let plan = folder.plan(&set)?;
        let applied = folder.apply(plan, store, true).await?;
        for change in &applied.changes {
            tracing::info!("{change}");
        }
        Ok((Self { source, folder, texts, digest, stamp: read.stamp, announce }, applied.generated))
    }

    /// Reads the folder again and applies it if it changed. Unless `thorough`, the files
    /// are read only when their [`Stamp`] changed since they were last handled.
    async fn reload(&mut self, store: &dyn Store, thorough: bool) {
        if !thorough && self.stamp.is_some() {
            let source = self.source.clone();
            let unchanged = tokio::task::spawn_blocking(move || source.stamp())
                .await
                .is_ok_and(|stamp| stamp.is_some() && stamp == self.stamp);
            if unchanged {
                return;
            }
        }
        let read = read_off_the_workers(&self.source).await;
        let (texts, digest) = match read.texts {
            Ok(read) => read,
            Err(error) => {
                self.stamp = None;
                return self.refuse(&error.to_string(), error.to_string());
            }
        };
        if digest == self.digest {
            self.stamp = read.stamp;
            return;
        }
        let planned = load(&texts).and_then(|set| self.folder.plan(&set));
        let plan = match planned {
            Ok(planned) => planned,
            Err(error) => {
                self.stamp = read.stamp;
                return self.refuse(&error.to_string(), digest);
            }
        };
        match self.folder.apply(plan, store, false).await {
            Ok(applied) => {
                for change in &applied.changes {
                    tracing::info!("{change}");
                }
                for generated in &applied.generated {
                    (self.announce)(generated);
                }
                self.texts = texts;
                self.digest = digest;
                self.stamp = read.stamp;
            }
            // Read again at the next check, as if it had just changed.
            Err(error) => {
                self.stamp = None;
                tracing::warn!(%error, "applying the changed manifests folder; retrying");
            }
        }
    }

    fn refuse(&mut self, error: &str, digest: String) {
        if digest != self.digest {
            tracing::error!(
                error,
                "the manifests folder is invalid; the last good state stays in force until it is fixed"
            );
            self.digest = digest;
        }
    }

    /// Writes the last good state again, all of it: the store lost its data.
    async fn reapply(&mut self, store: &dyn Store) -> Result<(), ApplyError> {
        let plan = self.folder.plan(&load(&self.texts)?)?;
        let applied = self.folder.apply(plan, store, true).await?;
        for change in &applied.changes {
            tracing::info!("{change}");
        }
        Ok(())
    }
}

fn load(texts: &[(String, String)]) -> Result<ManifestSet, ApplyError> {
    let files: Vec<(&str, &str)> = texts.iter().map(|(name, text)| (name.as_str(), text.as_str())).collect();
    Ok(ManifestSet::load_texts(&files)?)
}

fn digest_of(texts: &[(String, String)]) -> String {
    let mut all = digest::Context::new(&SHA256);
    for (name, text) in texts {
        for part in [name.as_bytes(), text.as_bytes()] {
            all.update(&part.len().to_be_bytes());
            all.update(part);
        }
    }
    URL_SAFE_NO_PAD.encode(all.finish())
}

/// A replica's background work.
pub struct Replica {
    pub store: Arc<dyn Store>,
    pub status: Arc<StoreStatus>,
    pub folder: Option<LiveFolder>,
    /// Signalled when the store's change announcements reconnect: data may be lost.
    pub reconnected: Option<Arc<Notify>>,
    pub intervals: Intervals,
}

impl Replica {
    /// Runs the checks for as long as the process lives.
    pub async fn run(mut self) {
        let changed = Arc::new(Notify::new());
        let _watcher = self.watch_folder(&changed);
        let reconnected = self.reconnected.clone().unwrap_or_default();
        let start = Instant::now();
        let mut store_tick = interval_at(start + self.intervals.store, self.intervals.store);
        let mut folder_tick = interval_at(start + self.intervals.folder, self.intervals.folder);
        store_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        folder_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let (mut checks, mut looks): (u32, u32) = (0, 0);
        loop {
            tokio::select! {
                _ = store_tick.tick() => {
                    checks = checks.wrapping_add(1);
                    self.check_store(checks.is_multiple_of(POLICY_EVERY)).await;
                }
                () = reconnected.notified() => self.check_store(false).await,
                _ = folder_tick.tick() => {
                    looks = looks.wrapping_add(1);
                    self.reload(looks.is_multiple_of(THOROUGH_EVERY)).await;
                }
                () = changed.notified() => {
                    tokio::time::sleep(SETTLE).await;
                    self.reload(true).await;
                }
            }
        }
    }

    /// Watches the folder's directory, if there is one (a failed watch leaves the
    /// periodic read to notice changes).
    fn watch_folder(&self, changed: &Arc<Notify>) -> Option<notify::RecommendedWatcher> {
        let Source::Dir(dir) = &self.folder.as_ref()?.source else { return None };
        let changed = Arc::clone(changed);
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                changed.notify_one();
            }
        });
        match watcher.and_then(|mut watcher| watcher.watch(dir, RecursiveMode::NonRecursive).map(|()| watcher)) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, dir = %dir.display(), "cannot watch the manifests folder; reading it every few seconds");
                None
            }
        }
    }

    async fn reload(&mut self, thorough: bool) {
        if let Some(folder) = &mut self.folder
            && !self.status.registry_missing()
        {
            folder.reload(self.store.as_ref(), thorough).await;
        }
    }

    /// The data epoch, the repair of lost data, the shared keys and (when `policy`) the
    /// eviction policy. A store that does not answer is left to `/ready` and the next check.
    async fn check_store(&mut self, policy: bool) {
        let store = self.store.as_ref();
        match epoch(store).await {
            Ok(current) if current.id != *self.status.epoch() => {
                tracing::warn!(
                    "the store lost its data (its data epoch changed): access tokens issued before are refused from now on{}",
                    if self.folder.is_some() { "; applying the manifests folder again" } else { "" }
                );
                self.status.set_epoch(current.id);
                self.status.set_registry_missing(self.folder.is_some());
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "checking the store's data epoch");
                return;
            }
        }
        if let Some(folder) = &mut self.folder {
            if self.status.registry_missing() {
                match folder.reapply(store).await {
                    Ok(()) => {
                        tracing::info!("the manifests folder is applied again");
                        self.status.set_registry_missing(false);
                    }
                    Err(error) => tracing::warn!(%error, "applying the manifests folder again; retrying"),
                }
            }
            match folder.folder.sync_keys(store).await {
                Ok(changes) => changes.iter().for_each(|change| tracing::info!("{change}")),
                Err(error) => tracing::warn!(%error, "reading the shared signing keys"),
            }
        }
        if policy {
            check_eviction(store, &self.status).await;
        }
    }
}

/// Marks the store not ready while it may evict keys, saying so loudly once; returns what
/// the store said, if it answered.
pub async fn check_eviction(store: &dyn Store, status: &StoreStatus) -> Option<Eviction> {
    let eviction = store.eviction().await;
    match &eviction {
        Ok(Eviction::Evicts(policy)) => {
            if !status.evicting() {
                tracing::error!(
                    policy,
                    "the store evicts keys under memory pressure (maxmemory-policy {policy}): revoked tokens, the data \
                     epoch and declared clients could vanish and revocations fail open. Set maxmemory-policy \
                     noeviction; not ready until then"
                );
            }
            status.set_evicting(true);
        }
        Ok(Eviction::Never) => {
            if status.evicting() {
                tracing::info!("the store no longer evicts keys");
            }
            status.set_evicting(false);
        }
        Ok(Eviction::Unknown) => {
            if status.evicting() {
                tracing::info!("the store's eviction policy cannot be read any more");
            }
            status.set_evicting(false);
        }
        Err(error) => tracing::debug!(%error, "checking the store's eviction policy"),
    }
    eviction.ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use arc_swap::ArcSwap;

    use super::*;
    use crate::clock::Clock;
    use crate::keys::Keyring;
    use crate::store::{Directory, MemoryStore};

    /// A new empty directory under the system's temporary one.
    fn empty_dir() -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "portcullis-replica-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn public_client(client_name: &str) -> String {
        format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: OidcClient\nmetadata: {{name: app}}\nspec:\n  \
             clientName: {client_name}\n  tokenEndpointAuthMethod: none\n  redirectUris: [\"https://app.example/cb\"]\n"
        )
    }

    /// Past the coarse clock the kernel stamps file times with.
    fn after_a_clock_tick() {
        std::thread::sleep(Duration::from_millis(30));
    }

    #[test]
    fn an_untouched_folder_keeps_its_stamp_and_a_same_size_rewrite_or_a_new_file_changes_it() {
        let dir = empty_dir();
        std::fs::write(dir.join("a.yaml"), "kind: A\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "not a manifest").unwrap();
        let source = Source::Dir(dir.clone());
        let first = source.stamp().unwrap();
        assert_eq!(source.stamp().unwrap(), first, "nothing changed");
        after_a_clock_tick();
        std::fs::write(dir.join("notes.txt"), "still not a manifest").unwrap();
        assert_eq!(source.stamp().unwrap(), first, "only manifest files count");

        std::fs::write(dir.join("a.yaml"), "kind: B\n").unwrap();
        let rewritten = source.stamp().unwrap();
        assert_ne!(rewritten, first, "the same size, another time");
        std::fs::write(dir.join("b.yml"), "kind: C\n").unwrap();
        assert_ne!(source.stamp().unwrap(), rewritten, "a new file");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(source.stamp(), None, "a folder that cannot be listed has no stamp: it is read");
    }

    #[test]
    fn a_configmap_symlink_swap_to_a_same_size_file_changes_the_stamp() {
        let dir = empty_dir();
        for (version, text) in [("..2026_1", "kind: A\n"), ("..2026_2", "kind: B\n")] {
            std::fs::create_dir(dir.join(version)).unwrap();
            std::fs::write(dir.join(version).join("a.yaml"), text).unwrap();
        }
        std::os::unix::fs::symlink("..2026_1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/a.yaml", dir.join("a.yaml")).unwrap();
        let source = Source::Dir(dir.clone());
        let before = source.stamp().unwrap();
        // What the kubelet does: a new `..data` link renamed over the old one.
        std::os::unix::fs::symlink("..2026_2", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        assert_ne!(source.stamp().unwrap(), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_look_that_is_not_thorough_applies_a_changed_file_and_skips_an_unchanged_folder() {
        let dir = empty_dir();
        std::fs::write(dir.join("app.yaml"), public_client("First")).unwrap();
        let store = MemoryStore::new(Clock::system());
        let keyring = Arc::new(ArcSwap::from_pointee(Keyring::new(Vec::new()).unwrap()));
        let folder = Folder::new(keyring, 60, Clock::system());
        let (mut live, _) = LiveFolder::start(Source::Dir(dir.clone()), folder, &store, |_| {}).await.unwrap();
        let name = || async { store.client("app").await.unwrap().unwrap().client_name.clone() };
        assert_eq!(name().await.as_deref(), Some("First"));
        let stamp = live.stamp.clone();
        assert!(stamp.is_some());

        live.reload(&store, false).await;
        assert_eq!(live.stamp, stamp, "unchanged: the stamp handled stays");
        after_a_clock_tick();
        std::fs::write(dir.join("app.yaml"), public_client("Other")).unwrap();
        live.reload(&store, false).await;
        assert_eq!(name().await.as_deref(), Some("Other"), "the changed stamp had the file read and applied");
        assert_ne!(live.stamp, stamp);

        std::fs::write(dir.join("app.yaml"), "kind: [broken").unwrap();
        live.reload(&store, false).await;
        assert_eq!(name().await.as_deref(), Some("Other"), "a broken edit changes nothing");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
