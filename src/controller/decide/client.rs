//! Deciding an `OidcClient`: which record the registry holds for it, which client ids it
//! no longer uses (a rename revokes the old one at once), whether its credentials Secret
//! is to be generated, and what its status says.
//!
//! The client id a resource *applied* is the one its `status.clientId` records: the
//! registry holds it on the resource's behalf until the resource uses another, becomes
//! unusable or goes ([`super::claim`] has the rules).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use super::claim::{Claimant, owner, released};
use super::{Decision, Names, Readiness, Reason, Settled, settle};
use crate::controller::reconcile::{
    CLIENT_SECRET_KEY, ClientSecret, DesiredClient, credentials_secret_name, desired_client, desired_client_id,
};
use crate::crd::{OidcClient, OidcClientStatus};

/// Client ids: lost to an older client, revoked on a rename.
const CLIENT_IDS: Names = Names {
    conflict: Reason::ClientIdConflict,
    revoked: "ClientIdRevoked",
    revoked_message: |old| format!("client id `{old}` is no longer registered"),
};

/// What to do for one `OidcClient`.
pub type ClientDecision = Decision<ClientApply, OidcClientStatus>;

/// The record the registry is to hold for a client, and how to get its secret.
#[derive(Debug, Clone)]
pub struct ClientApply {
    /// The record, its secret not hashed yet.
    pub desired: DesiredClient,
    /// The credentials Secret to create, with a generated secret: it does not exist.
    pub create_secret: Option<String>,
}

impl Claimant for OidcClient {
    fn applied(&self) -> Option<&str> {
        self.status.as_ref()?.client_id.as_deref()
    }

    /// Without the Secret, peers see `spec.clientId`, else the name.
    fn claimed(&self) -> &str {
        self.applied().or(self.spec.client_id.as_deref()).or(self.metadata.name.as_deref()).unwrap_or_default()
    }
}

/// The names a decision about `client` looks at in its peers: the id it applied and the
/// one it asks for.
pub fn client_names(client: &OidcClient, credentials: Option<&Secret>) -> Vec<String> {
    client.applied().map(str::to_owned).into_iter().chain(desired_client_id(client, credentials).ok()).collect()
}

/// Decides `client`, given its credentials Secret (if it exists), the `OidcClient`s the
/// controller watches that concern its [`client_names`] (`peers`; `client` itself may be
/// among them) and the time.
pub fn decide_client(
    client: &OidcClient,
    credentials: Option<&Secret>,
    peers: &[Arc<OidcClient>],
    now: u64,
) -> ClientDecision {
    let previous = client.status.clone().unwrap_or_default();
    let generation = client.metadata.generation;
    let secret_name = credentials_secret_name(client);
    let outcome = match desired_client(client, credentials) {
        Err(error) => Err(Readiness::not_ready(Reason::of(&error.problem), error.problem.to_string())),
        Ok(desired) if desired.secret == (ClientSecret::Missing { secret_exists: true }) => Err(Readiness::not_ready(
            Reason::SecretMissingKey,
            format!(
                "Secret {secret_name} has no key `{CLIENT_SECRET_KEY}`: add one, or delete the Secret to have credentials generated"
            ),
        )),
        Ok(desired) => match owner(client, &desired.record.client_id, peers) {
            Some(owner) => Err(Readiness::not_ready(
                Reason::ClientIdConflict,
                format!(
                    "client id `{}` is already used by OidcClient {}/{}",
                    desired.record.client_id,
                    owner.namespace().unwrap_or_default(),
                    owner.name_any()
                ),
            )),
            None => Ok(desired),
        },
    };
    let (apply, readiness) = match outcome {
        Ok(desired) => {
            let readiness = Readiness::ready(format!("client `{}` is registered", desired.record.client_id));
            (Some(desired), readiness)
        }
        Err(readiness) => (None, readiness),
    };
    let kept = apply.as_ref().map(|desired| desired.record.client_id.clone());
    let Settled { delete, events, condition, requeue } =
        settle(client, kept.as_deref(), &readiness, &previous.conditions, peers, &CLIENT_IDS, now);
    let apply = apply.map(|desired| {
        let create_secret = (desired.secret == ClientSecret::Missing { secret_exists: false }).then_some(secret_name);
        ClientApply { desired, create_secret }
    });
    Decision {
        apply,
        delete,
        status: OidcClientStatus { client_id: kept, observed_generation: generation, conditions: vec![condition] },
        readiness,
        events,
        requeue,
    }
}

/// The client ids to remove when `client` is deleted: the applied one and the one it asks
/// for now, unless another resource holds them.
pub fn client_cleanup(client: &OidcClient, credentials: Option<&Secret>, peers: &[Arc<OidcClient>]) -> Vec<String> {
    released(client, desired_client_id(client, credentials).ok(), peers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::decide::fixtures::{SecretData, secret};
    use crate::controller::decide::{NoteKind, Requeue};

    fn peers(clients: &[&OidcClient]) -> Vec<Arc<OidcClient>> {
        clients.iter().map(|c| Arc::new((*c).clone())).collect()
    }

    fn secret_with(pairs: &[(&str, &str)]) -> Secret {
        pairs.iter().fold(secret("app-credentials"), |secret, (k, v)| secret.with(k, v))
    }

    fn decide(client: &OidcClient, credentials: Option<&Secret>, others: &[&OidcClient]) -> ClientDecision {
        let mut all = vec![client];
        all.extend_from_slice(others);
        decide_client(client, credentials, &peers(&all), 200)
    }

    #[test]
    fn a_new_confidential_client_without_a_secret_gets_one_generated() {
        let client = OidcClient::test("app").machine();
        let decision = decide(&client, None, &[]);
        let apply = decision.apply.unwrap();
        assert_eq!(apply.create_secret.as_deref(), Some("app-credentials"));
        let desired = apply.desired;
        assert_eq!(desired.record.client_id, "app");
        assert_eq!(desired.secret, ClientSecret::Missing { secret_exists: false });
        assert_eq!(decision.status.client_id.as_deref(), Some("app"));
        assert_eq!(decision.readiness.reason, Reason::Reconciled);
        assert!(decision.delete.is_empty());
    }

    #[test]
    fn a_provided_secret_is_used_and_nothing_is_created() {
        let client = OidcClient::test("app");
        let decision = decide(&client, Some(&secret_with(&[("clientSecret", "s3cret")])), &[]);
        let apply = decision.apply.unwrap();
        assert_eq!(apply.create_secret, None);
        assert!(matches!(apply.desired.secret, ClientSecret::Provided(s) if s.expose() == "s3cret"));
    }

    #[test]
    fn a_secret_without_client_secret_is_reported_and_nothing_is_generated() {
        let client = OidcClient::test("app").applied_as("app");
        let decision = decide(&client, Some(&secret_with(&[("clientId", "app")])), &[]);
        assert!(decision.apply.is_none(), "nothing registered, no Secret generated");
        assert_eq!(decision.readiness.reason, Reason::SecretMissingKey);
        assert_eq!(decision.delete, ["app"], "the secret it was registered with stops working");
        assert_eq!(decision.status.client_id, None);
        let warning = decision.events.iter().find(|n| n.kind == NoteKind::Warning).unwrap();
        assert_eq!(warning.reason, "SecretMissingKey");
        assert!(warning.message.contains("app-credentials has no key `clientSecret`"), "{}", warning.message);
        assert_eq!(decision.requeue, Requeue::AtResync, "no hot loop: the Secret watch brings the fix");
    }

    #[test]
    fn a_missing_key_reported_before_is_not_reported_again() {
        let client = OidcClient::test("app");
        let credentials = secret_with(&[("clientId", "app")]);
        let first = decide(&client, Some(&credentials), &[]);
        let mut again = client.clone();
        again.status = Some(first.status.clone());
        let second = decide(&again, Some(&credentials), &[]);
        assert!(second.events.is_empty(), "{:?}", second.events);
        assert_eq!(second.status, first.status, "an unchanged resource keeps an identical status");
    }

    #[test]
    fn a_renamed_client_id_revokes_the_old_one_at_once() {
        let client = OidcClient::test("app").machine().client_id("app-v2").applied_as("app");
        let decision = decide(&client, Some(&secret_with(&[("clientSecret", "s")])), &[]);
        assert_eq!(decision.apply.unwrap().desired.record.client_id, "app-v2");
        assert_eq!(decision.delete, ["app"]);
        assert_eq!(decision.status.client_id.as_deref(), Some("app-v2"));
        assert!(decision.events.iter().any(|n| n.reason == "ClientIdRevoked" && n.message.contains("`app`")));
    }

    #[test]
    fn a_client_id_renamed_in_the_secret_revokes_the_old_one() {
        let client = OidcClient::test("app").applied_as("app");
        let credentials = secret_with(&[("clientId", "renamed"), ("clientSecret", "s")]);
        let decision = decide(&client, Some(&credentials), &[]);
        assert_eq!(decision.status.client_id.as_deref(), Some("renamed"));
        assert_eq!(decision.delete, ["app"]);
    }

    #[test]
    fn an_unchanged_client_deletes_nothing_and_announces_nothing() {
        let client = OidcClient::test("app").applied_as("app");
        let decision = decide(&client, Some(&secret_with(&[("clientSecret", "s")])), &[]);
        assert!(decision.delete.is_empty() && decision.events.is_empty(), "{decision:?}");
        assert_eq!(Some(decision.status), client.status);
    }

    #[test]
    fn an_old_id_another_resource_took_over_is_left_to_it() {
        let client = OidcClient::test("app").client_id("app-v2").applied_as("app");
        let heir = OidcClient::test("heir").created_at(300).client_id("app").applied_as("app");
        let decision = decide(&client, Some(&secret_with(&[("clientSecret", "s")])), &[&heir]);
        assert!(decision.delete.is_empty());
    }

    #[test]
    fn an_invalid_client_stops_working_with_its_last_valid_settings() {
        let client = OidcClient::test("app").redirect_uri("https://app.example/cb#fragment").applied_as("app");
        let decision = decide(&client, Some(&secret_with(&[("clientSecret", "s")])), &[]);
        assert!(decision.apply.is_none());
        assert_eq!(decision.readiness.reason, Reason::InvalidSpec);
        assert_eq!(decision.delete, ["app"]);
    }

    #[test]
    fn the_older_resource_keeps_a_client_id_the_later_one_conflicts() {
        let first = OidcClient::test("first").client_id("shared").applied_as("shared");
        let second = OidcClient::test("second").created_at(200).client_id("shared");
        let decision = decide(&second, None, &[&first]);
        assert!(decision.apply.is_none(), "the loser creates nothing");
        assert_eq!(decision.readiness.reason, Reason::ClientIdConflict);
        assert!(decision.readiness.message.contains("team/first"));
        assert_eq!(decision.requeue, Requeue::ConflictRecheck);
        assert!(decide(&first, None, &[&second]).apply.is_some());
    }

    #[test]
    fn a_deleting_resource_releases_its_client_id() {
        let first = OidcClient::test("first").client_id("shared").applied_as("shared").deleting();
        let second = OidcClient::test("second").created_at(200).client_id("shared");
        assert!(decide(&second, None, &[&first]).apply.is_some());
    }

    #[test]
    fn rfc7591_declared_clients_cannot_take_a_registered_client_id() {
        let client = OidcClient::test("app").client_id("dcr_abc");
        assert_eq!(decide(&client, None, &[]).readiness.reason, Reason::InvalidSpec);
    }

    #[test]
    fn a_public_client_needs_no_secret() {
        let client = OidcClient::test("spa").public();
        let decision = decide(&client, None, &[]);
        let apply = decision.apply.unwrap();
        assert_eq!(apply.create_secret, None);
        assert_eq!(apply.desired.secret, ClientSecret::Public);
    }

    #[test]
    fn cleanup_removes_the_applied_and_the_current_client_id() {
        let client = OidcClient::test("app").client_id("app-v2").applied_as("app").deleting();
        assert_eq!(client_cleanup(&client, None, &peers(&[&client])), ["app", "app-v2"]);
        let unchanged = OidcClient::test("app").applied_as("app").deleting();
        assert_eq!(client_cleanup(&unchanged, None, &[]), ["app"]);
    }

    #[test]
    fn cleanup_of_a_conflict_loser_leaves_the_winner_alone() {
        let winner = OidcClient::test("first").client_id("shared").applied_as("shared");
        let loser = OidcClient::test("second").created_at(200).client_id("shared").deleting();
        assert!(client_cleanup(&loser, None, &peers(&[&winner, &loser])).is_empty());
    }
}
