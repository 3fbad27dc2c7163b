//! When a change to a user ends what they hold, for both worlds (the Kubernetes controller
//! and the manifests folder): [`subjects_to_end`] decides, [`end_users`] carries it out
//! through [`crate::store::ending::end_user`] — every session ended with back-channel
//! logout, every grant revoked, offline ones included, so that enabling the user again
//! brings none of it back.

use crate::model::UserRecord;
use crate::store::{Store, StoreError, ending};

/// The subjects whose sessions and grants a user change ends: that of a `declared` user
/// who is disabled, and a `stored` subject no longer declared (the user was deleted, or now
/// has another subject). `declared` is what the resource asks for now (`None`: deleted, or
/// no longer declared), `stored` what the directory held for the same username.
///
/// A disabled user is ended at every reconcile, not only when disabled: what a replica
/// issued before the disabled record reached it is ended by the next one.
pub fn subjects_to_end<'a>(declared: Option<&'a UserRecord>, stored: Option<&'a UserRecord>) -> Vec<&'a str> {
    let mut subjects = Vec::new();
    if let Some(declared) = declared.filter(|declared| declared.disabled) {
        subjects.push(declared.subject.as_str());
    }
    if let Some(stored) = stored
        && declared.is_none_or(|declared| declared.subject != stored.subject)
    {
        subjects.push(stored.subject.as_str());
    }
    subjects
}

/// On an `OidcUser`: a new value ends every session and refresh family the user holds at
/// once, the way disabling does, but the user can sign in again right away.
pub const REVOKE_SESSIONS_ANNOTATION: &str = "portcullis.dev/revoke-sessions";

/// The `portcullis.dev/revoke-sessions` value to act on: the `requested` one (the
/// annotation) when it differs from the one `handled` last, so each value is acted on
/// once. Removing the annotation asks for nothing.
pub fn revocation_to_handle<'a>(requested: Option<&'a str>, handled: Option<&str>) -> Option<&'a str> {
    requested.filter(|requested| Some(*requested) != handled)
}

/// Ends everything `subjects` hold, at `now`; `why` says which change asked, for the log.
pub async fn end_users(store: &dyn Store, subjects: &[&str], now: u64, why: &str) -> Result<(), StoreError> {
    for subject in subjects {
        let ended = ending::end_user(store, subject, now).await?;
        if ended != ending::UserEnded::default() {
            tracing::info!(%subject, sessions = ended.sessions, grants = ended.grants, why, "ended a user's sessions and grants");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(subject: &str, disabled: bool) -> UserRecord {
        UserRecord { disabled, ..UserRecord::fixture("alice", subject) }
    }

    #[test]
    fn each_revoke_sessions_value_is_acted_on_once() {
        assert_eq!(revocation_to_handle(Some("2026-12-02"), None), Some("2026-12-02"), "first request");
        assert_eq!(revocation_to_handle(Some("2026-12-02"), Some("2026-12-02")), None, "handled already");
        assert_eq!(revocation_to_handle(Some("again"), Some("2026-12-02")), Some("again"), "a new value");
        assert_eq!(revocation_to_handle(None, Some("2026-12-02")), None, "annotation removed");
        assert_eq!(revocation_to_handle(None, None), None);
    }

    #[test]
    fn a_disabled_user_is_ended_at_every_reconcile() {
        let disabled = user("alice-sub", true);
        assert_eq!(subjects_to_end(Some(&disabled), Some(&user("alice-sub", false))), ["alice-sub"], "just disabled");
        assert_eq!(subjects_to_end(Some(&disabled), Some(&disabled)), ["alice-sub"], "still disabled");
        assert_eq!(subjects_to_end(Some(&disabled), None), ["alice-sub"], "disabled from the start");
    }

    #[test]
    fn an_enabled_user_keeps_what_they_hold() {
        let enabled = user("alice-sub", false);
        assert!(subjects_to_end(Some(&enabled), Some(&enabled)).is_empty());
        assert!(subjects_to_end(Some(&enabled), Some(&user("alice-sub", true))).is_empty(), "enabled again");
        assert!(subjects_to_end(Some(&enabled), None).is_empty(), "new");
    }

    #[test]
    fn a_deleted_user_is_ended_and_so_is_a_subject_given_up() {
        assert_eq!(subjects_to_end(None, Some(&user("alice-sub", false))), ["alice-sub"], "deleted");
        assert!(subjects_to_end(None, None).is_empty(), "deleted, and never stored");
        let moved = user("new-sub", false);
        assert_eq!(subjects_to_end(Some(&moved), Some(&user("old-sub", false))), ["old-sub"]);
        let moved_and_disabled = user("new-sub", true);
        assert_eq!(subjects_to_end(Some(&moved_and_disabled), Some(&user("old-sub", false))), ["new-sub", "old-sub"]);
    }
}
