//! `OidcClient`s: reads the resource's credentials Secret and its peers, asks
//! [`decide_client`] what to do and does exactly that — revoke the client ids it no longer
//! uses, generate its Secret when it has none, write its record only when the stored one
//! differs, then its status and events.
//!
//! The secret is checked against the stored hash before a new hash is made (argon2 salts
//! every hash, so re-hashing would rewrite the record at each resync), and what was
//! verified is remembered, so an unchanged client costs no argon2 work and no write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store as Reflector;
use kube::{Resource, ResourceExt};

use super::context::{Context, ControllerError, Verified, is_conflict, object_key};
use super::create_params;
use super::finalizer::{Event, finalizer};
use super::index::{Index, secret_key, secret_readers};
use super::status::{conclude, publish};
use crate::audit::{self, AuditEvent, AuditFields};
use crate::controller::decide::client::{ClientApply, ClientDecision, client_cleanup, client_names, decide_client};
use crate::controller::decide::{Note, NoteKind, is_ready};
use crate::controller::reconcile::{CLIENT_ID_KEY, CLIENT_SECRET_KEY, ClientSecret, credentials_secret_name};
use crate::crd::OidcClient;
use crate::model::ClientRecord;
use crate::secrets::{self, SecretString};
use crate::store::ending;

/// The kind, for metrics and keys.
pub const KIND: &str = "OidcClient";

/// Reconciles one `OidcClient`: the finalizer, then [`apply`] or [`cleanup`].
pub async fn reconcile(client: Arc<OidcClient>, context: Arc<Context>) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let key = object_key(&*client);
    let api = resource_api(&client, &context);
    let result = finalizer(&api, client, |event| async {
        match event {
            Event::Apply(client) => apply(&client, &context).await,
            Event::Cleanup(client) => cleanup(&client, &context).await,
        }
    })
    .await;
    context.finish(KIND, key, started, result.is_ok());
    result
}

fn namespace(client: &OidcClient, context: &Context) -> String {
    client.namespace().unwrap_or_else(|| context.shared.config.namespace.clone())
}

fn resource_api(client: &OidcClient, context: &Context) -> Api<OidcClient> {
    Api::namespaced(context.shared.client.clone(), &namespace(client, context))
}

fn secrets_api(client: &OidcClient, context: &Context) -> Api<Secret> {
    Api::namespaced(context.shared.client.clone(), &namespace(client, context))
}

async fn apply(client: &OidcClient, context: &Context) -> Result<Action, ControllerError> {
    let api = resource_api(client, context);
    let secrets = secrets_api(client, context);
    let credentials = context.client_secret(&namespace(client, context), &credentials_secret_name(client)).await;
    let peers = context.clients_concerning(&client_names(client, credentials.as_deref())).await;
    let decision = decide_client(client, credentials.as_deref(), &peers, context.shared.clock.now());
    let carried_out = carry_out(client, &decision, &secrets, context).await;
    let action = conclude(&api, client, client.status.as_ref(), carried_out, &decision, context).await?;
    let was_ready = client.status.as_ref().is_some_and(|s| is_ready(&s.conditions));
    if let (Some(client_id), false) = (&decision.status.client_id, was_ready) {
        tracing::info!(target: "portcullis::audit", audit = true, event = "client_registered", client_id = %client_id);
    }
    Ok(action)
}

/// Carries out the store side of a decision, and creates the credentials Secret.
async fn carry_out(
    client: &OidcClient,
    decision: &ClientDecision,
    secrets: &Api<Secret>,
    context: &Context,
) -> Result<(), ControllerError> {
    let shared = &context.shared;
    let key = object_key(client);
    for client_id in &decision.delete {
        ending::remove_client(&*shared.store, client_id).await?;
        audit::emit(AuditEvent::ClientDeleted, AuditFields::client(client_id));
    }
    let Some(ClientApply { desired, create_secret }) = &decision.apply else {
        shared.memo.forget(&key);
        return Ok(());
    };
    let stored = shared.store.client(&desired.record.client_id).await?;
    let mut record: ClientRecord = desired.record.clone();
    let stored_hash = stored.as_ref().and_then(|s| s.secret_hash.clone());
    let known = shared.memo.get(&key).and_then(|applied| applied.secret);
    let verified = match &desired.secret {
        ClientSecret::Public => None,
        ClientSecret::Provided(secret) => Some(verified_hash(context, secret, stored_hash, known).await?),
        ClientSecret::Missing { .. } => {
            let secret = SecretString::new(secrets::generate_client_secret()?);
            let verified = Verified {
                digest: secrets::token_digest(secret.expose()),
                hash: secrets::hash_generated(secret.expose()),
            };
            if let Some(name) = create_secret {
                create_credentials(client, name, &record.client_id, &secret, secrets, context).await?;
            }
            Some(verified)
        }
    };
    record.secret_hash = verified.as_ref().map(|v| v.hash.clone());
    let client_id = record.client_id.clone();
    if context.applying(key, &client_id, verified, stored.as_deref(), &record) {
        shared.store.put_client(record).await?;
    }
    Ok(())
}

/// The hash to store for a secret: the stored one if it verifies (or was verified
/// before) and is current — the digest of the secret Portcullis generated into this
/// Secret, or an argon2id hash under the policy (one made with other parameters would make
/// this client's authentication cost another time than the others') — else a new argon2id
/// one: a secret that does not match the stored digest was not generated here.
async fn verified_hash(
    context: &Context,
    secret: &SecretString,
    stored: Option<String>,
    known: Option<Verified>,
) -> Result<Verified, ControllerError> {
    let digest = secrets::token_digest(secret.expose());
    let known = known.filter(|known| known.digest == digest);
    if let Some(stored) = stored.filter(|stored| secrets::is_current_client_secret_hash(stored)) {
        if known.as_ref().is_some_and(|known| known.hash == stored) {
            return Ok(Verified { digest, hash: stored });
        }
        let (candidate, hash) = (secret.clone(), stored.clone());
        if context.blocking(move || secrets::verify_client_secret(candidate.expose(), &hash)).await? {
            return Ok(Verified { digest, hash: stored });
        }
    }
    match known {
        Some(known) => Ok(known),
        None => new_hash(context, secret).await,
    }
}

async fn new_hash(context: &Context, secret: &SecretString) -> Result<Verified, ControllerError> {
    let candidate = secret.clone();
    let hash = context.blocking(move || secrets::hash(candidate.expose())).await??;
    Ok(Verified { digest: secrets::token_digest(secret.expose()), hash })
}

/// Creates the credentials Secret, owned by the client. A 409 means it appeared
/// meanwhile: the retry reads it.
async fn create_credentials(
    client: &OidcClient,
    name: &str,
    client_id: &str,
    secret: &SecretString,
    secrets: &Api<Secret>,
    context: &Context,
) -> Result<(), ControllerError> {
    let object = credentials_secret(client, name, client_id, secret.expose(), &context.shared.config.issuer);
    match secrets.create(&create_params(), &object).await {
        Ok(_) => {
            tracing::info!(client_id = %client_id, secret = %name, "generated client credentials");
            let note = Note {
                kind: NoteKind::Normal,
                reason: "SecretCreated",
                message: format!("generated credentials in Secret {name}"),
            };
            publish(context, &client.object_ref(&()), &[note], "Reconcile").await;
            Ok(())
        }
        Err(error) if is_conflict(&error) => {
            tracing::info!(secret = %name, "the credentials Secret appeared meanwhile; reading it again");
            Err(error.into())
        }
        Err(error) => Err(error.into()),
    }
}

fn credentials_secret(client: &OidcClient, name: &str, client_id: &str, client_secret: &str, issuer: &str) -> Secret {
    let discovery = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let data = BTreeMap::from([
        (CLIENT_ID_KEY.to_owned(), ByteString(client_id.as_bytes().to_vec())),
        (CLIENT_SECRET_KEY.to_owned(), ByteString(client_secret.as_bytes().to_vec())),
        ("issuer".to_owned(), ByteString(issuer.as_bytes().to_vec())),
        ("discoveryUrl".to_owned(), ByteString(discovery.into_bytes())),
    ]);
    let mut secret = Secret { data: Some(data), type_: Some("Opaque".into()), ..Default::default() };
    secret.metadata.name = Some(name.to_owned());
    secret.metadata.namespace = client.namespace();
    secret.metadata.labels =
        Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), "portcullis".to_owned())]));
    secret.metadata.owner_references = client.controller_owner_ref(&()).map(|owner| vec![owner]);
    secret
}

/// Removes what the client applied and what it asks for now, unless another resource
/// holds it, with every grant and consent it holds ([`ending::remove_client`]).
async fn cleanup(client: &OidcClient, context: &Context) -> Result<Action, ControllerError> {
    let credentials = context.client_secret(&namespace(client, context), &credentials_secret_name(client)).await;
    let peers = context.clients_concerning(&client_names(client, credentials.as_deref())).await;
    for client_id in client_cleanup(client, credentials.as_deref(), &peers) {
        ending::remove_client(&*context.shared.store, &client_id).await?;
        audit::emit(AuditEvent::ClientDeleted, AuditFields::client(&client_id));
    }
    context.shared.memo.forget(&object_key(client));
    Ok(Action::await_change())
}

/// The key a client is indexed under for the Secret watch: its credentials Secret.
pub fn secret_keys(client: &OidcClient) -> Vec<String> {
    vec![secret_key(client.namespace().as_deref(), &credentials_secret_name(client))]
}

/// The `OidcClient`s whose credentials Secret `secret` is, for the Secret watch.
pub fn owners_of(secret: &Secret, index: &Index<OidcClient>, clients: &Reflector<OidcClient>) -> Vec<Arc<OidcClient>> {
    secret_readers(secret, index, clients, |client, name| credentials_secret_name(client) == name)
}
