//! A [`Store`] that measures every operation of the store it wraps: duration and errors per
//! operation in Prometheus, and (with OpenTelemetry on) one child span per call.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use prometheus::{Histogram, IntCounter};
use tracing::Instrument;

use super::{Consumed, Store, StoreError};
use crate::metrics::Metrics;
use crate::model::{AuthorizationCode, ClientRecord, Grant, Interaction, RefreshToken, Session, UserRecord};
use crate::protocol::scope::Scope;

/// The `op` label values: the [`Store`] method names.
const OPS: &[&str] = &[
    "put_client",
    "client",
    "delete_client",
    "client_ids",
    "put_user",
    "user_by_username",
    "user_by_subject",
    "delete_user",
    "revoke_token",
    "is_token_revoked",
    "put_session",
    "session",
    "delete_session",
    "put_interaction",
    "interaction",
    "delete_interaction",
    "put_code",
    "consume_code",
    "put_refresh_token",
    "consume_refresh_token",
    "peek_refresh_token",
    "put_grant",
    "update_grant",
    "grant",
    "revoke_grant",
    "put_consent",
    "consent",
    "claim",
    "ping",
    "increment_counter",
    "counter",
    "clear_counter",
    "active_sessions",
];

/// Wraps a store; the metric children of every operation are resolved once, up front.
pub struct InstrumentedStore {
    inner: Arc<dyn Store>,
    ops: HashMap<&'static str, (Histogram, IntCounter)>,
}

impl InstrumentedStore {
    pub fn new(inner: Arc<dyn Store>, metrics: &Metrics) -> Self {
        let ops = OPS.iter().map(|op| (*op, metrics.store_op(op))).collect();
        Self { inner, ops }
    }

    async fn observe<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = if crate::telemetry::otel_enabled() {
            call.instrument(tracing::info_span!("store", otel.name = op, op)).await
        } else {
            call.await
        };
        if let Some((duration, errors)) = self.ops.get(op) {
            duration.observe(started.elapsed().as_secs_f64());
            if result.is_err() {
                errors.inc();
            }
        }
        result
    }
}

#[async_trait]
impl Store for InstrumentedStore {
    async fn put_client(&self, client: ClientRecord) -> Result<(), StoreError> {
        self.observe("put_client", self.inner.put_client(client)).await
    }

    async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, StoreError> {
        self.observe("client", self.inner.client(client_id)).await
    }

    async fn delete_client(&self, client_id: &str) -> Result<(), StoreError> {
        self.observe("delete_client", self.inner.delete_client(client_id)).await
    }

    async fn client_ids(&self) -> Result<Vec<String>, StoreError> {
        self.observe("client_ids", self.inner.client_ids()).await
    }

    async fn put_user(&self, user: UserRecord) -> Result<(), StoreError> {
        self.observe("put_user", self.inner.put_user(user)).await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.observe("user_by_username", self.inner.user_by_username(username)).await
    }

    async fn user_by_subject(&self, subject: &str) -> Result<Option<Arc<UserRecord>>, StoreError> {
        self.observe("user_by_subject", self.inner.user_by_subject(subject)).await
    }

    async fn delete_user(&self, username: &str) -> Result<(), StoreError> {
        self.observe("delete_user", self.inner.delete_user(username)).await
    }

    async fn revoke_token(&self, jti: &str, expires_at: u64) -> Result<(), StoreError> {
        self.observe("revoke_token", self.inner.revoke_token(jti, expires_at)).await
    }

    async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        self.observe("is_token_revoked", self.inner.is_token_revoked(jti)).await
    }

    async fn put_session(&self, session: &Session, expires_at: u64) -> Result<(), StoreError> {
        self.observe("put_session", self.inner.put_session(session, expires_at)).await
    }

    async fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        self.observe("session", self.inner.session(id)).await
    }

    async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.observe("delete_session", self.inner.delete_session(id)).await
    }

    async fn put_interaction(&self, interaction: &Interaction, expires_at: u64) -> Result<(), StoreError> {
        self.observe("put_interaction", self.inner.put_interaction(interaction, expires_at)).await
    }

    async fn interaction(&self, id: &str) -> Result<Option<Interaction>, StoreError> {
        self.observe("interaction", self.inner.interaction(id)).await
    }

    async fn delete_interaction(&self, id: &str) -> Result<(), StoreError> {
        self.observe("delete_interaction", self.inner.delete_interaction(id)).await
    }

    async fn put_code(&self, code_hash: &str, code: &AuthorizationCode, expires_at: u64) -> Result<(), StoreError> {
        self.observe("put_code", self.inner.put_code(code_hash, code, expires_at)).await
    }

    async fn consume_code(&self, code_hash: &str) -> Result<Consumed<AuthorizationCode>, StoreError> {
        self.observe("consume_code", self.inner.consume_code(code_hash)).await
    }

    async fn put_refresh_token(&self, token_hash: &str, token: &RefreshToken) -> Result<(), StoreError> {
        self.observe("put_refresh_token", self.inner.put_refresh_token(token_hash, token)).await
    }

    async fn consume_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError> {
        self.observe("consume_refresh_token", self.inner.consume_refresh_token(token_hash)).await
    }

    async fn peek_refresh_token(&self, token_hash: &str) -> Result<Consumed<RefreshToken>, StoreError> {
        self.observe("peek_refresh_token", self.inner.peek_refresh_token(token_hash)).await
    }

    async fn put_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        self.observe("put_grant", self.inner.put_grant(grant)).await
    }

    async fn update_grant(&self, grant: &Grant) -> Result<bool, StoreError> {
        self.observe("update_grant", self.inner.update_grant(grant)).await
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.observe("grant", self.inner.grant(id)).await
    }

    async fn revoke_grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        self.observe("revoke_grant", self.inner.revoke_grant(id)).await
    }

    async fn put_consent(
        &self,
        subject: &str,
        client_id: &str,
        scope: &Scope,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        self.observe("put_consent", self.inner.put_consent(subject, client_id, scope, expires_at)).await
    }

    async fn consent(&self, subject: &str, client_id: &str) -> Result<Option<Scope>, StoreError> {
        self.observe("consent", self.inner.consent(subject, client_id)).await
    }

    async fn claim(&self, name: &str, value: &str) -> Result<String, StoreError> {
        self.observe("claim", self.inner.claim(name, value)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.observe("ping", self.inner.ping()).await
    }

    async fn increment_counter(&self, key: &str, expires_at: u64) -> Result<u32, StoreError> {
        self.observe("increment_counter", self.inner.increment_counter(key, expires_at)).await
    }

    async fn counter(&self, key: &str) -> Result<u32, StoreError> {
        self.observe("counter", self.inner.counter(key)).await
    }

    async fn clear_counter(&self, key: &str) -> Result<(), StoreError> {
        self.observe("clear_counter", self.inner.clear_counter(key)).await
    }

    async fn active_sessions(&self) -> Result<u64, StoreError> {
        self.observe("active_sessions", self.inner.active_sessions()).await
    }
}
