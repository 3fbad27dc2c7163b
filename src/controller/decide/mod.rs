//! The controller's decisions, pure: a resource, its Secret, what its peers hold and the
//! time in; what to write, what to delete, the status to show and the events to publish
//! out. `crate::kubernetes` reads the inputs, carries the decision out and writes nothing
//! the decision does not ask for, so an unchanged resource costs no write.
//!
//! [`client`] and [`user`] decide per kind, under the rules of [`claim`] for the names
//! they hold; this module holds what else they share: the condition reasons, the `Ready`
//! condition and the events that announce its transitions.

pub mod claim;
pub mod client;
pub mod connector;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod user;

use std::sync::Arc;

use claim::{Claimant, revoked};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::reconcile::Problem;
use crate::crd::{IdentityConnectorStatus, OidcClientStatus, OidcUserStatus, SigningKeyStatus};

/// The type of the one condition every resource carries.
pub const READY: &str = "Ready";

/// Why a resource is or is not `Ready`: the condition's `reason`, one per problem an
/// operator fixes differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Everything declared is applied.
    Reconciled,
    /// The Secret the resource names does not exist.
    SecretMissing,
    /// The Secret exists but lacks the key the resource needs.
    SecretMissingKey,
    /// The Secret holds a value that cannot be used (not UTF-8, not an argon2id hash).
    InvalidSecret,
    /// The spec (or the Secret's `clientId` against it) cannot be applied.
    InvalidSpec,
    /// An older `OidcClient` holds the client id.
    ClientIdConflict,
    /// An older `OidcUser` holds the username.
    UsernameConflict,
    /// An older `OidcUser` claims an upstream identity this one claims too: the user is
    /// applied without it.
    FederatedIdentityConflict,
    /// An older `IdentityConnector` (in another namespace) holds the connector name.
    ConnectorConflict,
    /// The store did not answer; retried with back-off.
    StoreUnavailable,
    /// A `SigningKey` has no active key yet.
    NoActiveKey,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Reconciled => "Reconciled",
            Reason::SecretMissing => "SecretMissing",
            Reason::SecretMissingKey => "SecretMissingKey",
            Reason::InvalidSecret => "InvalidSecret",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::ClientIdConflict => "ClientIdConflict",
            Reason::UsernameConflict => "UsernameConflict",
            Reason::FederatedIdentityConflict => "FederatedIdentityConflict",
            Reason::ConnectorConflict => "ConnectorConflict",
            Reason::StoreUnavailable => "StoreUnavailable",
            Reason::NoActiveKey => "NoActiveKey",
        }
    }

    /// The reason a validation problem is reported under.
    pub fn of(problem: &Problem) -> Self {
        match problem {
            Problem::MissingSecret(_) => Reason::SecretMissing,
            Problem::MissingSecretKey { .. } => Reason::SecretMissingKey,
            Problem::NotUtf8 { .. } | Problem::InvalidPasswordHash | Problem::InvalidCertificate { .. } => {
                Reason::InvalidSecret
            }
            _ => Reason::InvalidSpec,
        }
    }
}

/// Whether an event reports normal progress or a problem (`type` of a Kubernetes Event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    Normal,
    Warning,
}

/// An event to publish about the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    pub reason: &'static str,
    pub message: String,
}

/// What to do for one resource: what a decide function answers. `A` is what the store is
/// to hold for it, `S` its status.
#[derive(Debug, Clone)]
pub struct Decision<A, S> {
    /// What the store is to hold for the resource; `None` when it is to hold nothing.
    pub apply: Option<A>,
    /// Names to remove from the store now: ones the resource applied and no longer uses,
    /// unless another resource holds them meanwhile.
    pub delete: Vec<String>,
    pub readiness: Readiness,
    /// The status once the decision is carried out.
    pub status: S,
    pub events: Vec<Note>,
    pub requeue: Requeue,
}

/// When to look at a resource again without a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// At the next periodic resync.
    AtResync,
    /// Soon: the resource lost a conflict, and the winner may go.
    ConflictRecheck,
}

/// What a resource's `Ready` condition says, before it is dated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub reason: Reason,
    pub message: String,
}

impl Readiness {
    pub fn ready(message: String) -> Self {
        Self { reason: Reason::Reconciled, message }
    }

    pub fn not_ready(reason: Reason, message: String) -> Self {
        Self { reason, message }
    }

    pub fn is_ready(&self) -> bool {
        self.reason == Reason::Reconciled
    }

    /// The condition's `status`.
    fn status(&self) -> &'static str {
        if self.is_ready() { "True" } else { "False" }
    }
}

/// The `Ready` condition for `readiness`, keeping the previous transition time while the
/// condition's status stays the same (the meaning of `lastTransitionTime`), so that an
/// unchanged resource yields an identical condition.
pub fn ready_condition(previous: &[Condition], readiness: &Readiness, generation: Option<i64>, now: u64) -> Condition {
    let status = readiness.status();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == READY && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(timestamp(now)));
    Condition {
        type_: READY.into(),
        status: status.into(),
        reason: readiness.reason.as_str().into(),
        message: readiness.message.clone(),
        observed_generation: generation,
        last_transition_time,
    }
}

pub(super) fn timestamp(seconds: u64) -> Timestamp {
    i64::try_from(seconds).ok().and_then(|s| Timestamp::from_second(s).ok()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// What a kind calls the names its resources hold, for [`settle`].
pub struct Names {
    /// The reason a resource shows when an older one holds its name.
    pub conflict: Reason,
    /// The reason of the event announcing that a name was revoked.
    pub revoked: &'static str,
    /// Its message, given the name.
    pub revoked_message: fn(&str) -> String,
}

/// What follows from a resource's readiness once it holds `kept` (or nothing): the
/// names it gives up, the events (one per revoked name, one for a transition), its dated
/// `Ready` condition and when to look again.
pub struct Settled {
    pub delete: Vec<String>,
    pub events: Vec<Note>,
    pub condition: Condition,
    pub requeue: Requeue,
}

/// Settles a decision about `resource` (see [`Settled`]): a resource that lost its name
/// to an older one looks again soon, since the winner may go.
pub fn settle<K: Claimant>(
    resource: &K,
    kept: Option<&str>,
    readiness: &Readiness,
    previous: &[Condition],
    peers: &[Arc<K>],
    names: &Names,
    now: u64,
) -> Settled {
    let delete = revoked(resource, kept, peers);
    let requeue = if readiness.reason == names.conflict { Requeue::ConflictRecheck } else { Requeue::AtResync };
    let mut events: Vec<Note> = delete
        .iter()
        .map(|old| Note { kind: NoteKind::Normal, reason: names.revoked, message: (names.revoked_message)(old) })
        .collect();
    events.extend(transition(previous, readiness));
    let condition = ready_condition(previous, readiness, resource.meta().generation, now);
    Settled { delete, events, condition, requeue }
}

/// Whether the conditions say `Ready=True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    conditions.iter().any(|c| c.type_ == READY && c.status == "True")
}

/// A status the controller writes. It owns every field of it but conditions of other
/// types than `Ready`, which others may add.
pub trait OwnedStatus: Clone + Default + PartialEq {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
}

macro_rules! owned_status {
    ($($status:ty),*) => {$(
        impl OwnedStatus for $status {
            fn conditions(&self) -> &[Condition] {
                &self.conditions
            }

            fn conditions_mut(&mut self) -> &mut Vec<Condition> {
                &mut self.conditions
            }
        }
    )*};
}

owned_status!(OidcClientStatus, OidcUserStatus, SigningKeyStatus, IdentityConnectorStatus);

/// Whether `current` already says everything `desired` says, so writing it would change
/// nothing.
pub fn status_unchanged<S: OwnedStatus>(current: Option<&S>, desired: &S) -> bool {
    current.is_some_and(|current| {
        let mut ours = current.clone();
        ours.conditions_mut().retain(|c| c.type_ == READY);
        ours == *desired
    })
}

/// `previous` with a new `Ready` condition and nothing else changed: what a resource shows
/// while its reconcile cannot finish (the store did not answer), since what it holds is
/// unknown until it does.
pub fn with_readiness<S: OwnedStatus>(
    previous: Option<&S>,
    readiness: &Readiness,
    generation: Option<i64>,
    now: u64,
) -> S {
    let mut status = previous.cloned().unwrap_or_default();
    let condition = ready_condition(status.conditions(), readiness, generation, now);
    *status.conditions_mut() = vec![condition];
    status
}

/// The event announcing a new `Ready` condition, or none when it says what the previous
/// one said: events mark transitions, so a resync of an unchanged resource publishes none.
pub fn transition(previous: &[Condition], readiness: &Readiness) -> Option<Note> {
    let now = (readiness.status(), readiness.reason.as_str(), readiness.message.as_str());
    let before = previous.iter().find(|c| c.type_ == READY);
    if before.is_some_and(|c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()) == now) {
        return None;
    }
    let (kind, reason) =
        if readiness.is_ready() { (NoteKind::Normal, READY) } else { (NoteKind::Warning, readiness.reason.as_str()) };
    Some(Note { kind, reason, message: readiness.message.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(message: &str) -> Readiness {
        Readiness::ready(message.into())
    }

    #[test]
    fn an_unchanged_condition_keeps_its_transition_time_and_a_flip_moves_it() {
        let first = ready_condition(&[], &ready("ok"), Some(1), 100);
        let again = ready_condition(std::slice::from_ref(&first), &ready("ok"), Some(2), 200);
        assert_eq!(first.last_transition_time, again.last_transition_time);
        let flipped = ready_condition(
            std::slice::from_ref(&first),
            &Readiness::not_ready(Reason::InvalidSpec, "bad".into()),
            Some(2),
            200,
        );
        assert_ne!(first.last_transition_time, flipped.last_transition_time);
        assert_eq!((flipped.status.as_str(), flipped.reason.as_str()), ("False", "InvalidSpec"));
    }

    #[test]
    fn a_new_reason_while_not_ready_keeps_the_transition_time() {
        let missing = Readiness::not_ready(Reason::SecretMissing, "no Secret".into());
        let invalid = Readiness::not_ready(Reason::InvalidSecret, "not a hash".into());
        let first = ready_condition(&[], &missing, Some(1), 100);
        let second = ready_condition(std::slice::from_ref(&first), &invalid, Some(1), 200);
        assert_eq!(first.last_transition_time, second.last_transition_time);
        assert_eq!(second.reason, "InvalidSecret");
    }

    #[test]
    fn events_mark_transitions_and_repeat_nothing_on_resync() {
        let registered = ready("client `a` is registered");
        let note = transition(&[], &registered).unwrap();
        assert_eq!((note.kind, note.reason), (NoteKind::Normal, "Ready"));
        let first = ready_condition(&[], &registered, Some(1), 100);
        assert_eq!(transition(std::slice::from_ref(&first), &registered), None);
        let broken = Readiness::not_ready(Reason::SecretMissingKey, "no key".into());
        let note = transition(std::slice::from_ref(&first), &broken).unwrap();
        assert_eq!((note.kind, note.reason, note.message.as_str()), (NoteKind::Warning, "SecretMissingKey", "no key"));
    }

    #[test]
    fn a_status_saying_the_same_is_unchanged_whatever_other_conditions_it_has() {
        let condition = ready_condition(&[], &ready("ok"), Some(1), 100);
        let desired = OidcClientStatus {
            client_id: Some("a".into()),
            observed_generation: Some(1),
            conditions: vec![condition.clone()],
        };
        let mut current = desired.clone();
        current.conditions.push(Condition { type_: "Synced".into(), ..condition.clone() });
        assert!(status_unchanged(Some(&current), &desired));
        assert!(!status_unchanged(None, &desired));
        current.observed_generation = Some(2);
        assert!(!status_unchanged(Some(&current), &desired));
    }

    #[test]
    fn problems_are_reported_under_the_reason_an_operator_fixes() {
        assert_eq!(Reason::of(&Problem::MissingSecret("s".into())), Reason::SecretMissing);
        assert_eq!(
            Reason::of(&Problem::MissingSecretKey { secret: "s".into(), key: "k".into() }),
            Reason::SecretMissingKey
        );
        assert_eq!(Reason::of(&Problem::InvalidPasswordHash), Reason::InvalidSecret);
        assert_eq!(Reason::of(&Problem::NoRedirectUri), Reason::InvalidSpec);
    }
}
