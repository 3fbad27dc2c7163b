//! What a password check costs: at least as much as checking the costliest hash in the user
//! directory, so the time a failed login takes tells neither whether the user exists nor
//! which tool made their hash.
//!
//! The floor is the costliest [`Work`] among the directory's hashes, found by a scan of the
//! directory (at the first login, then in the background every [`RESCAN`]) and raised by
//! every user a login looks up in between; it is never below the policy, and hashes above
//! [`MAX_FLOOR`] are checked at their own cost but not copied into every login. Hashes
//! outside the policy are named in a warning at each scan: they make every login as slow as
//! theirs until they are made again ([`secrets::needs_rehash`]).

use std::sync::{Arc, Mutex, PoisonError};

use futures::{StreamExt, TryStreamExt};

use crate::secrets::{self, Work};
use crate::store::{Directory, Store, StoreError};

/// How often the directory is scanned again, so the floor follows users that change.
const RESCAN: u64 = 300;
/// The most every check is padded to, in KiB-passes: sixteen checks under the policy
/// (about a second).
pub const MAX_FLOOR: u64 = 16 * Work::POLICY.amount();
/// Users read at once by a scan.
const SCAN_CONCURRENCY: usize = 16;

/// The floor of every password check, shared by the logins of one provider.
pub struct PasswordWork {
    floor: Arc<Mutex<Work>>,
    /// When the directory was last scanned; `None` until the first scan.
    scanned_at: tokio::sync::Mutex<Option<u64>>,
}

impl Default for PasswordWork {
    fn default() -> Self {
        Self { floor: Arc::new(Mutex::new(Work::POLICY)), scanned_at: tokio::sync::Mutex::default() }
    }
}

/// Whether `work` may become the floor instead of `floor`.
fn costlier(work: Work, floor: Work) -> bool {
    work.amount() > floor.amount() && work.amount() <= MAX_FLOOR
}

impl PasswordWork {
    /// The work every password check costs at least. The first call scans the directory
    /// before answering; later ones start a scan in the background when the last is older
    /// than [`RESCAN`].
    pub async fn floor(&self, store: &Arc<dyn Store>, now: u64) -> Result<Work, StoreError> {
        let mut scanned_at = self.scanned_at.lock().await;
        match *scanned_at {
            None => {
                *lock(&self.floor) = scan(store.as_ref()).await?;
                *scanned_at = Some(now);
            }
            Some(at) if now >= at + RESCAN => {
                *scanned_at = Some(now);
                let (floor, store) = (Arc::clone(&self.floor), Arc::clone(store));
                tokio::spawn(async move {
                    match scan(store.as_ref()).await {
                        Ok(scanned) => *lock(&floor) = scanned,
                        Err(error) => tracing::warn!(%error, "cannot scan the user directory for password costs"),
                    }
                });
            }
            Some(_) => {}
        }
        Ok(*lock(&self.floor))
    }

    /// Raises the floor to a hash a login has just read, which a scan may not have seen yet.
    pub fn observe(&self, phc: &str) {
        if let Some(work) = Work::of(phc) {
            let mut floor = lock(&self.floor);
            if costlier(work, *floor) {
                *floor = work;
            }
        }
    }
}

fn lock(floor: &Mutex<Work>) -> std::sync::MutexGuard<'_, Work> {
    floor.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The floor the directory's hashes ask for, warning about those outside the policy.
async fn scan(directory: &dyn Directory) -> Result<Work, StoreError> {
    let usernames = directory.usernames().await?;
    let users: Vec<_> = futures::stream::iter(usernames)
        .map(|username| async move { directory.user_by_username(&username).await })
        .buffer_unordered(SCAN_CONCURRENCY)
        .try_collect()
        .await?;
    let users = users.iter().flatten();
    let outside: Vec<&str> = users
        .clone()
        .filter(|u| u.has_password() && secrets::needs_rehash(&u.password_hash))
        .map(|u| u.subject.as_str())
        .collect();
    let floor = users
        .filter_map(|user| Work::of(&user.password_hash))
        .fold(Work::POLICY, |floor, work| if costlier(work, floor) { work } else { floor });
    if !outside.is_empty() {
        tracing::warn!(
            subjects = ?outside,
            floor = ?floor,
            "password hashes outside the policy: every failed login is padded to the costliest; each is made \
             again at its user's next login (declare the new hash to keep it)"
        );
    }
    Ok(floor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::model::UserRecord;
    use crate::store::MemoryStore;

    /// A PHC string with the given parameters (the hash itself does not matter here).
    fn phc(m: u32, t: u32, p: u32) -> String {
        format!("$argon2id$v=19$m={m},t={t},p={p}$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
    }

    async fn store_with(hashes: &[String]) -> Arc<dyn Store> {
        let store = MemoryStore::new(Clock::system());
        for (i, hash) in hashes.iter().enumerate() {
            let mut user = UserRecord::fixture(&format!("user-{i}"), &format!("sub-{i}"));
            user.password_hash = hash.clone();
            store.put_user(user).await.unwrap();
        }
        Arc::new(store)
    }

    const FOREIGN: Work = Work { memory_kib: 65536, passes: 3, lanes: 4 };

    #[tokio::test]
    async fn the_floor_is_the_costliest_hash_in_the_directory() {
        let store = store_with(&[phc(19456, 2, 1), phc(65536, 3, 4)]).await;
        assert_eq!(PasswordWork::default().floor(&store, 0).await.unwrap(), FOREIGN);
        let store = store_with(&[phc(19456, 2, 1), phc(8, 1, 1)]).await;
        assert_eq!(PasswordWork::default().floor(&store, 0).await.unwrap(), Work::POLICY, "never below the policy");
        let store = store_with(&[phc(65536, 3, 4), phc(4 * 1024 * 1024, 8, 1)]).await;
        assert_eq!(PasswordWork::default().floor(&store, 0).await.unwrap(), FOREIGN, "nothing above the cap");
    }

    #[tokio::test]
    async fn a_user_read_between_scans_raises_the_floor_and_a_rescan_lowers_it_again() {
        let store = store_with(&[phc(19456, 2, 1)]).await;
        let work = PasswordWork::default();
        assert_eq!(work.floor(&store, 0).await.unwrap(), Work::POLICY);
        work.observe(&phc(65536, 3, 4));
        assert_eq!(work.floor(&store, 1).await.unwrap(), FOREIGN);
        work.floor(&store, RESCAN).await.unwrap();
        for _ in 0..100 {
            if work.floor(&store, RESCAN).await.unwrap() == Work::POLICY {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the rescan did not bring the floor back to what the directory holds");
    }
}
