//! What every provider replica runs beside serving requests: checks of its store and, with
//! a manifests folder (`dev`, `serve --manifests`), the folder applied live.
//!
//! - Every [`Intervals::store`] (and when the store's change announcements reconnect):
//!   the store's data epoch. A new epoch means the store lost its data: the replica
//!   stamps the new epoch into the tokens it issues (older ones are refused from now on)
//!   and re-applies the folder, not ready (`registry`) until that is done. Then the
//!   signing keys are claimed again and other replicas' retired keys read, so replicas
//!   converge on one key set. Every few checks, whether the store evicts keys.
//! - The folder is watched (`notify`) and read again every [`Intervals::folder`], compared
//!   by a digest of its files, which also catches a ConfigMap's `..data` symlink swap. A
//!   change is validated whole and applied, one log line per change; a change that fails
//!   is reported with file, document and field, and the last good state stays in force.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
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
        let texts = source.read()?;
        let digest = digest_of(&texts);
        let set = load(&texts)?;
        let plan = folder.plan(&set)?;
        let applied = folder.apply(plan, store, true).await?;
        for change in &applied.changes {
            tracing::info!("{change}");
        }
        Ok((Self { source, folder, texts, digest, announce }, applied.generated))
    }

    /// Reads the folder again and applies it if it changed.
    async fn reload(&mut self, store: &dyn Store) {
        let texts = match self.source.read() {
            Ok(texts) => texts,
            Err(error) => return self.refuse(&error.to_string(), error.to_string()),
        };
        let digest = digest_of(&texts);
        if digest == self.digest {
            return;
        }
        let planned = load(&texts).and_then(|set| self.folder.plan(&set));
        let plan = match planned {
            Ok(planned) => planned,
            Err(error) => return self.refuse(&error.to_string(), digest),
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
            }
            // Read again at the next check, as if it had just changed.
            Err(error) => tracing::warn!(%error, "applying the changed manifests folder; retrying"),
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
    let mut all = Vec::new();
    for (name, text) in texts {
        for part in [name.as_bytes(), text.as_bytes()] {
            all.extend_from_slice(&part.len().to_be_bytes());
            all.extend_from_slice(part);
        }
    }
    URL_SAFE_NO_PAD.encode(digest(&SHA256, &all))
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
        let mut checks: u32 = 0;
        loop {
            tokio::select! {
                _ = store_tick.tick() => {
                    checks = checks.wrapping_add(1);
                    self.check_store(checks.is_multiple_of(POLICY_EVERY)).await;
                }
                () = reconnected.notified() => self.check_store(false).await,
                _ = folder_tick.tick() => self.reload().await,
                () = changed.notified() => {
                    tokio::time::sleep(SETTLE).await;
                    self.reload().await;
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

    async fn reload(&mut self) {
        if let Some(folder) = &mut self.folder
            && !self.status.registry_missing()
        {
            folder.reload(self.store.as_ref()).await;
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
