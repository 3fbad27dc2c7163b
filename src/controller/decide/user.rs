//! Deciding an `OidcUser`: which record the directory holds for it, which usernames it no
//! longer uses (a rename revokes the old one at once) and what its status says.
//!
//! The username a resource *applied* is the one its `status.username` records (a ready
//! status written before that field existed stands for `spec.username`); [`super::claim`]
//! has the rules. An upstream identity (`spec.federatedIdentities`) is held the same way:
//! by the oldest live user claiming it; a younger one is applied without it and says so.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::claim::{Claimant, older_holder, owner, released};
use super::{Decision, Names, Readiness, Reason, Requeue, Settled, is_ready, settle, timestamp};
use crate::controller::reconcile::plan_user;
use crate::crd::{OidcUser, OidcUserStatus};
use crate::model::UserRecord;
use crate::protocol::federation::federated_subject;
use crate::store::UserActivity;

/// Usernames: lost to an older user, revoked on a rename.
const USERNAMES: Names = Names {
    conflict: Reason::UsernameConflict,
    revoked: "UsernameRevoked",
    revoked_message: |old| format!("username `{old}` can no longer sign in"),
};

/// What to do for one `OidcUser`.
pub type UserDecision = Decision<UserRecord, OidcUserStatus>;

impl Claimant for OidcUser {
    fn applied(&self) -> Option<&str> {
        let status = self.status.as_ref()?;
        match &status.username {
            Some(username) => Some(username),
            None if is_ready(&status.conditions) => Some(&self.spec.username),
            None => None,
        }
    }

    fn claimed(&self) -> &str {
        self.applied().unwrap_or(&self.spec.username)
    }

    /// The usernames it holds or asks for, and the upstream identities it claims.
    fn concerns(&self, names: &[&str]) -> bool {
        let holds = |name: &str| names.contains(&name);
        holds(self.claimed()) || self.applied().is_some_and(holds) || identity_names(self).any(|name| holds(&name))
    }
}

/// The names a decision about `user` looks at in its peers: the username it applied and
/// the one it asks for.
pub fn user_names(user: &OidcUser) -> Vec<String> {
    let usernames = user.applied().map(str::to_owned).into_iter().chain([user.spec.username.clone()]);
    usernames.chain(identity_names(user)).collect()
}

/// The names standing for the upstream identities `user` claims, as peers are looked up
/// by (so two users claiming one identity see each other).
pub fn identity_names(user: &OidcUser) -> impl Iterator<Item = String> + '_ {
    claimed_subjects(user).map(|subject| format!("identity:{subject}"))
}

/// The derived subjects of the identities `user` claims.
fn claimed_subjects(user: &OidcUser) -> impl Iterator<Item = String> + '_ {
    let identities = user.spec.federated_identities.iter();
    identities.map(|identity| federated_subject(&identity.connector, &identity.subject))
}

/// Decides `user`, given its password Secret (if it exists), the `OidcUser`s the
/// controller watches that concern its [`user_names`] (`peers`; `user` itself may be
/// among them) and the time.
pub fn decide_user(
    user: &OidcUser,
    password_secret: Option<&Secret>,
    peers: &[Arc<OidcUser>],
    now: u64,
) -> UserDecision {
    let previous = user.status.clone().unwrap_or_default();
    let generation = user.metadata.generation;
    let outcome = match plan_user(user, password_secret) {
        Err(error) => Err(Readiness::not_ready(Reason::of(&error.problem), error.problem.to_string())),
        Ok(record) => match owner(user, &user.spec.username, peers) {
            Some(owner) => Err(Readiness::not_ready(
                Reason::UsernameConflict,
                format!("username `{}` is already used by OidcUser {}", user.spec.username, owner.name_any()),
            )),
            None => Ok(record),
        },
    };
    let (apply, readiness) = match outcome {
        Ok(mut record) => {
            let readiness = match identities_held_by_others(user, peers) {
                taken if taken.is_empty() => Readiness::ready(format!("user `{}` can sign in", record.username)),
                taken => {
                    record.claimed_subjects.retain(|subject| taken.iter().all(|held| held.subject != *subject));
                    let held: Vec<String> = taken.iter().map(HeldIdentity::describe).collect();
                    let message = format!(
                        "user `{}` can sign in, without {}: each is claimed by an older OidcUser",
                        record.username,
                        held.join(", ")
                    );
                    Readiness::not_ready(Reason::FederatedIdentityConflict, message)
                }
            };
            (Some(record), readiness)
        }
        Err(readiness) => (None, readiness),
    };
    let kept = apply.as_ref().map(|record| record.username.clone());
    let Settled { delete, events, condition, mut requeue } =
        settle(user, kept.as_deref(), &readiness, &previous.conditions, peers, &USERNAMES, now);
    if readiness.reason == Reason::FederatedIdentityConflict {
        requeue = Requeue::ConflictRecheck;
    }
    let status = OidcUserStatus {
        username: kept,
        subject: apply.as_ref().map(|record| record.subject.clone()),
        observed_generation: generation,
        revoked_sessions: previous.revoked_sessions.clone(),
        active_sessions: previous.active_sessions.filter(|_| apply.is_some()),
        last_login: previous.last_login.clone(),
        conditions: vec![condition],
    };
    Decision { apply, delete, readiness, status, events, requeue }
}

/// An upstream identity `user` claims that an older user holds.
struct HeldIdentity {
    connector: String,
    upstream_subject: String,
    subject: String,
    holder: String,
}

impl HeldIdentity {
    fn describe(&self) -> String {
        format!("`{}` of connector `{}` (OidcUser {})", self.upstream_subject, self.connector, self.holder)
    }
}

/// The identities `user` claims that the oldest live user claiming them is not `user`.
fn identities_held_by_others(user: &OidcUser, peers: &[Arc<OidcUser>]) -> Vec<HeldIdentity> {
    let mut held: Vec<HeldIdentity> = Vec::new();
    for identity in &user.spec.federated_identities {
        let subject = federated_subject(&identity.connector, &identity.subject);
        if held.iter().any(|seen| seen.subject == subject) {
            continue;
        }
        let claims = |peer: &OidcUser| claimed_subjects(peer).any(|claimed| claimed == subject);
        if let Some(holder) = older_holder(user, peers, claims) {
            held.push(HeldIdentity {
                connector: identity.connector.clone(),
                upstream_subject: identity.subject.clone(),
                subject,
                holder: holder.name_any(),
            });
        }
    }
    held
}

/// Shows `activity` (read from the store once the decision was carried out) in `status`:
/// the live sessions of a user who can sign in, and the latest sign-in, which never moves
/// back (the store forgets a sign-in once its session would have expired).
pub fn show_activity(status: &mut OidcUserStatus, activity: UserActivity) {
    if status.username.is_some() {
        status.active_sessions = Some(activity.active_sessions);
    }
    let seen = activity.last_sign_in.map(|seconds| Time(timestamp(seconds)));
    if seen.as_ref().is_some_and(|seen| status.last_login.as_ref().is_none_or(|shown| seen.0 > shown.0)) {
        status.last_login = seen;
    }
}

/// The usernames to remove when `user` is deleted: the applied one and `spec.username`,
/// unless another resource holds them. Removing the record ends the user's sessions: each
/// request re-reads the user.
pub fn user_cleanup(user: &OidcUser, peers: &[Arc<OidcUser>]) -> Vec<String> {
    released(user, Some(user.spec.username.clone()), peers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::decide::Requeue;
    use crate::controller::decide::fixtures::{PASSWORD_HASH, SecretData, password_secret, secret};

    fn peers(users: &[&OidcUser]) -> Vec<Arc<OidcUser>> {
        users.iter().map(|u| Arc::new((*u).clone())).collect()
    }

    fn decide(user: &OidcUser, others: &[&OidcUser]) -> UserDecision {
        let mut all = vec![user];
        all.extend_from_slice(others);
        decide_user(user, Some(&password_secret(user)), &peers(&all), 200)
    }

    #[test]
    fn a_user_with_a_valid_hash_can_sign_in_and_its_status_records_it() {
        let user = OidcUser::test("alice");
        let decision = decide(&user, &[]);
        let record = decision.apply.unwrap();
        assert_eq!((record.username.as_str(), record.password_hash.as_str()), ("alice", PASSWORD_HASH));
        assert_eq!(decision.status.username.as_deref(), Some("alice"));
        assert_eq!(decision.status.subject.as_deref(), Some("alice"));
        assert_eq!(decision.readiness.reason, Reason::Reconciled);
    }

    #[test]
    fn the_revoke_sessions_value_handled_last_stays_in_the_status() {
        let mut user = OidcUser::test("alice").applied_as("alice");
        if let Some(status) = &mut user.status {
            status.revoked_sessions = Some("monday".into());
        }
        assert_eq!(decide(&user, &[]).status.revoked_sessions.as_deref(), Some("monday"));
    }

    #[test]
    fn a_renamed_username_revokes_the_old_one_at_once() {
        let user = OidcUser::test("alice").applied_as("alice").username("alice2");
        let decision = decide(&user, &[]);
        assert_eq!(decision.apply.unwrap().username, "alice2");
        assert_eq!(decision.delete, ["alice"]);
        assert!(decision.events.iter().any(|n| n.reason == "UsernameRevoked"));
    }

    #[test]
    fn an_unchanged_user_deletes_nothing_and_announces_nothing() {
        let user = OidcUser::test("alice").applied_as("alice");
        let decision = decide(&user, &[]);
        assert!(decision.delete.is_empty() && decision.events.is_empty(), "{decision:?}");
        assert_eq!(Some(decision.status), user.status);
    }

    #[test]
    fn a_missing_password_secret_is_reported_and_the_user_removed() {
        let user = OidcUser::test("alice").applied_as("alice");
        let decision = decide_user(&user, None, &peers(&[&user]), 200);
        assert!(decision.apply.is_none());
        assert_eq!(decision.readiness.reason, Reason::SecretMissing);
        assert_eq!(decision.delete, ["alice"]);
        assert_eq!(decision.status.username, None);
        assert_eq!(decision.requeue, Requeue::AtResync);
    }

    #[test]
    fn a_password_secret_without_the_key_is_reported_as_such() {
        let user = OidcUser::test("alice");
        let other_key = secret("alice-password").with("other", PASSWORD_HASH);
        let decision = decide_user(&user, Some(&other_key), &peers(&[&user]), 200);
        assert_eq!(decision.readiness.reason, Reason::SecretMissingKey);
        let plain = secret("alice-password").with("hash", "plain");
        assert_eq!(decide_user(&user, Some(&plain), &[], 200).readiness.reason, Reason::InvalidSecret);
    }

    #[test]
    fn the_older_user_keeps_a_username_and_the_twin_conflicts() {
        let alice = OidcUser::test("alice").applied_as("alice");
        let twin = OidcUser::test("alice-twin").created_at(200).username("alice");
        let decision = decide(&twin, &[&alice]);
        assert!(decision.apply.is_none());
        assert_eq!(decision.readiness.reason, Reason::UsernameConflict);
        assert_eq!(decision.requeue, Requeue::ConflictRecheck);
        assert!(decide(&alice, &[&twin]).apply.is_some());
    }

    #[test]
    fn the_older_user_keeps_a_claimed_identity_and_the_younger_is_applied_without_it() {
        let jane = OidcUser::test("jane").claiming("corp", "jane");
        let other = OidcUser::test("other").created_at(200).claiming("corp", "jane").claiming("corp", "other");
        let decision = decide(&other, &[&jane]);
        let record = decision.apply.as_ref().expect("the younger user still signs in");
        assert_eq!(record.claimed_subjects, [federated_subject("corp", "other")], "only what nobody older claims");
        assert_eq!(decision.readiness.reason, Reason::FederatedIdentityConflict);
        assert!(
            decision.readiness.message.contains("`jane` of connector `corp` (OidcUser jane)"),
            "{:?}",
            decision.readiness
        );
        assert_eq!(decision.requeue, Requeue::ConflictRecheck, "picks the identity up once the holder goes");
        assert!(decision.delete.is_empty(), "its username stays");

        let holder = decide(&jane, &[&other]);
        assert_eq!(holder.apply.unwrap().claimed_subjects, [federated_subject("corp", "jane")]);
        assert_eq!(holder.readiness.reason, Reason::Reconciled);

        let freed = decide(&other, &[&jane.clone().deleting()]);
        assert_eq!(freed.apply.unwrap().claimed_subjects.len(), 2, "a deleted holder keeps nothing");
        assert_eq!(freed.readiness.reason, Reason::Reconciled);
    }

    #[test]
    fn users_claiming_one_identity_are_peers_of_each_other() {
        let jane = OidcUser::test("jane").claiming("corp", "jane");
        let other = OidcUser::test("other").claiming("corp", "jane");
        let names = user_names(&other);
        assert!(identity_names(&jane).all(|name| names.contains(&name)));
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        assert!(jane.concerns(&names), "found among the peers by the identity alone");
        assert!(
            !user_names(&OidcUser::test("jane")).iter().any(|name| names.contains(&name.as_str())),
            "nothing else shared"
        );
    }

    fn activity(active_sessions: u64, last_sign_in: Option<u64>) -> UserActivity {
        UserActivity { active_sessions, last_sign_in }
    }

    #[test]
    fn the_status_shows_live_sessions_and_the_latest_sign_in() {
        let user = OidcUser::test("alice").applied_as("alice");
        let mut status = decide(&user, &[]).status;
        show_activity(&mut status, activity(2, Some(1_000)));
        assert_eq!(status.active_sessions, Some(2));
        assert_eq!(status.last_login, Some(Time(timestamp(1_000))));
        show_activity(&mut status, activity(0, None));
        assert_eq!(status.active_sessions, Some(0), "every session ended");
        assert_eq!(status.last_login, Some(Time(timestamp(1_000))), "the store forgot it; the status keeps it");
        show_activity(&mut status, activity(1, Some(900)));
        assert_eq!(status.last_login, Some(Time(timestamp(1_000))), "never moved back");
        show_activity(&mut status, activity(1, Some(2_000)));
        assert_eq!(status.last_login, Some(Time(timestamp(2_000))));
    }

    #[test]
    fn a_user_who_cannot_sign_in_shows_no_session_count_but_keeps_the_last_login() {
        let mut user = OidcUser::test("alice").applied_as("alice");
        if let Some(status) = &mut user.status {
            status.active_sessions = Some(3);
            status.last_login = Some(Time(timestamp(1_000)));
        }
        let mut status = decide_user(&user, None, &peers(&[&user]), 200).status;
        show_activity(&mut status, activity(0, None));
        assert_eq!(status.active_sessions, None);
        assert_eq!(status.last_login, Some(Time(timestamp(1_000))));
        let kept = decide(&user, &[]).status;
        assert_eq!(
            (kept.active_sessions, kept.last_login),
            (Some(3), Some(Time(timestamp(1_000)))),
            "until read again"
        );
    }

    #[test]
    fn cleanup_removes_the_applied_and_the_current_username() {
        let user = OidcUser::test("alice").applied_as("alice").username("alice2").deleting();
        assert_eq!(user_cleanup(&user, &[]), ["alice", "alice2"]);
    }

    #[test]
    fn cleanup_of_a_twin_leaves_the_holder_alone_even_from_an_older_status() {
        let alice = OidcUser::test("alice").ready_without_username();
        let twin = OidcUser::test("alice-twin").created_at(200).username("alice").deleting();
        assert!(user_cleanup(&twin, &peers(&[&alice, &twin])).is_empty());
    }
}
