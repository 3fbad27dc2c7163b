//! `OidcUser`s (in the controller's namespace): reads the password Secret and the peers,
//! asks [`decide_user`] what to do and does exactly that — revoke the usernames it no
//! longer uses, write the record only when the stored one differs (its `updated_at` kept
//! from the stored one while nothing else changed), end what a disabled, deleted or
//! renamed user held ([`subjects_to_end`]), act on `portcullis.dev/revoke-sessions`
//! ([`revoke_sessions`]), read the user's sessions for the status ([`read_activity`]),
//! then status and events.

use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store as Reflector;

use super::context::{Context, ControllerError, held_names, object_key};
use super::finalizer::{Event, finalizer};
use super::index::Index;
use super::status::conclude;
use crate::controller::decide::user::{
    UserDecision, decide_user, identity_names, show_activity, user_cleanup, user_names,
};
use crate::controller::decide::{Note, NoteKind};
use crate::controller::ending::{REVOKE_SESSIONS_ANNOTATION, end_users, revocation_to_handle, subjects_to_end};
use crate::controller::reconcile::stamp_updated_at;
use crate::crd::OidcUser;

/// The kind, for metrics and keys.
pub const KIND: &str = "OidcUser";

/// Reconciles one `OidcUser`: the finalizer, then [`apply`] or [`cleanup`].
pub async fn reconcile(user: Arc<OidcUser>, context: Arc<Context>) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let key = object_key(&*user);
    let api: Api<OidcUser> = Api::namespaced(context.shared.client.clone(), &context.shared.config.namespace);
    let result = finalizer(&api, user, |event| async {
        match event {
            Event::Apply(user) => apply(&user, &api, &context).await,
            Event::Cleanup(user) => cleanup(&user, &context).await,
        }
    })
    .await;
    context.finish(KIND, key, started, result.is_ok());
    result
}

async fn apply(user: &OidcUser, api: &Api<OidcUser>, context: &Context) -> Result<Action, ControllerError> {
    let password = match &user.spec.password_secret_ref {
        Some(reference) => context.user_secret(&reference.name).await,
        None => None,
    };
    let peers = context.users_concerning(&user_names(user)).await;
    let mut decision = decide_user(user, password.as_deref(), &peers, context.shared.clock.now());
    let carried_out = match carry_out(user, &decision, context).await {
        Ok(()) => match revoke_sessions(user, api, &mut decision, context).await {
            Ok(()) => read_activity(&mut decision, context).await,
            Err(error) => Err(error),
        },
        Err(error) => Err(error),
    };
    conclude(api, user, user.status.as_ref(), carried_out, &decision, context).await
}

/// Carries out the store side of a decision.
async fn carry_out(user: &OidcUser, decision: &UserDecision, context: &Context) -> Result<(), ControllerError> {
    let shared = &context.shared;
    let key = object_key(user);
    let now = shared.clock.now();
    for username in &decision.delete {
        let removed = shared.store.user_by_username(username).await?;
        shared.store.delete_user(username).await?;
        tracing::info!(%username, user = %user.name_any(), "removed a username the resource no longer uses");
        let ended = subjects_to_end(decision.apply.as_ref(), removed.as_deref());
        end_users(&*shared.store, &ended, now, "username removed").await?;
    }
    let Some(planned) = &decision.apply else {
        shared.memo.forget(&key);
        return Ok(());
    };
    let stored = shared.store.user_by_username(&planned.username).await?;
    let record = stamp_updated_at(planned.clone(), stored.as_deref(), now);
    let ended: Vec<String> = subjects_to_end(Some(&record), stored.as_deref()).into_iter().map(str::to_owned).collect();
    if context.applying(key, &record.username, None, stored.as_deref(), &record) {
        shared.store.put_user(record).await?;
    }
    // After the record: a disabled user can sign in nowhere by now, so nothing is issued
    // behind the ending.
    let ended: Vec<&str> = ended.iter().map(String::as_str).collect();
    end_users(&*shared.store, &ended, now, "user disabled or its subject changed").await?;
    Ok(())
}

/// `portcullis.dev/revoke-sessions`: when the annotation holds a value not handled yet,
/// ends every session and grant of the user and records the value in the status written
/// next, so it is acted on once. The handled value is read from the resource live, not
/// from the watch cache, which may predate our last status write (a restart or a new
/// leader reads it the same way); an ending that fails is retried, never recorded.
async fn revoke_sessions(
    user: &OidcUser,
    api: &Api<OidcUser>,
    decision: &mut UserDecision,
    context: &Context,
) -> Result<(), ControllerError> {
    if !user.annotations().contains_key(REVOKE_SESSIONS_ANNOTATION) {
        return Ok(());
    }
    let live = api.get(&user.name_any()).await?;
    let live_status = live.status.as_ref();
    let handled = live_status.and_then(|status| status.revoked_sessions.clone());
    let requested = live.annotations().get(REVOKE_SESSIONS_ANNOTATION).map(String::as_str);
    let Some(value) = revocation_to_handle(requested, handled.as_deref()).map(str::to_owned) else {
        decision.status.revoked_sessions = handled;
        return Ok(());
    };
    let subject = decision.status.subject.clone().or_else(|| live_status.and_then(|status| status.subject.clone()));
    let subjects: Vec<&str> = subject.as_deref().into_iter().collect();
    end_users(&*context.shared.store, &subjects, context.shared.clock.now(), REVOKE_SESSIONS_ANNOTATION).await?;
    decision.status.revoked_sessions = Some(value);
    decision.events.push(Note {
        kind: NoteKind::Normal,
        reason: "SessionsRevoked",
        message: "every session and refresh token of the user was ended".into(),
    });
    Ok(())
}

/// Shows the user's live sessions and latest sign-in in the status written next
/// ([`show_activity`]); the status is written only when they changed.
async fn read_activity(decision: &mut UserDecision, context: &Context) -> Result<(), ControllerError> {
    let Some(subject) = decision.status.subject.as_deref() else { return Ok(()) };
    let activity = context.shared.store.user_activity(subject).await?;
    show_activity(&mut decision.status, activity);
    Ok(())
}

/// Removes the applied and the current username unless another resource holds them,
/// and ends the sessions and grants of each removed user.
async fn cleanup(user: &OidcUser, context: &Context) -> Result<Action, ControllerError> {
    let peers = context.users_concerning(&user_names(user)).await;
    let store = &*context.shared.store;
    for username in user_cleanup(user, &peers) {
        let removed = store.user_by_username(&username).await?;
        store.delete_user(&username).await?;
        end_users(store, &subjects_to_end(None, removed.as_deref()), context.shared.clock.now(), "user deleted")
            .await?;
    }
    context.shared.memo.forget(&object_key(user));
    Ok(Action::await_change())
}

/// The keys a user is indexed under among its peers: the usernames it holds and the
/// upstream identities it claims.
pub fn index_names(user: &OidcUser) -> Vec<String> {
    held_names(user).into_iter().chain(identity_names(user)).collect()
}

/// The key a user is indexed under for the Secret watch: its password Secret, if it has one.
pub fn secret_keys(user: &OidcUser) -> Vec<String> {
    user.spec.password_secret_ref.iter().map(|reference| reference.name.clone()).collect()
}

/// The `OidcUser`s whose password Secret `secret` is, for the Secret watch: only a Secret
/// of the controller's namespace, where the users are.
pub fn owners_of(
    secret: &Secret,
    namespace: &str,
    index: &Index<OidcUser>,
    users: &Reflector<OidcUser>,
) -> Vec<Arc<OidcUser>> {
    if secret.namespace().as_deref() != Some(namespace) {
        return Vec::new();
    }
    let name = secret.name_any();
    let mut owners = index.get(users, &[&name]);
    owners.retain(|u| u.spec.password_secret_ref.as_ref().is_some_and(|reference| reference.name == name));
    owners
}
