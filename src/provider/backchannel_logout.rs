//! The delivery of back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0
//! §2.5–§2.8). Ending a session only queues them ([`super::session_end`]); every replica
//! runs this worker, which claims due deliveries from the shared queue (a claim lends each
//! to one replica), signs a fresh logout token (§2.4) and POSTs it to the client's
//! `backchannel_logout_uri` with a bounded timeout. A failure (an error, a timeout, a
//! status other than 2xx) is tried again after 1 s, 2 s, 4 s … until a bound, then given up.

use std::sync::Weak;
use std::time::Duration;

use super::state::Provider;
use crate::audit::{self, AuditEvent, AuditFields};
use crate::keys::JwtType;
use crate::metrics::BackchannelLogoutResult;
use crate::model::LogoutDelivery;
use crate::outbound::{self, HttpClient, OutboundError};
use crate::protocol::backchannel_logout::{LogoutSubject, logout_token_claims, next_attempt_at};
use crate::secrets;
use crate::store::StoreError;

/// Bytes of randomness in a logout token's `jti`.
const JTI_BYTES: usize = 16;
/// Deliveries claimed at a time.
const BATCH: u64 = 16;

/// How the worker delivers.
#[derive(Debug, Clone, Copy)]
pub struct BackchannelSettings {
    /// How often the queue is looked at.
    pub poll: Duration,
    /// How long one POST may take.
    pub timeout: Duration,
    /// How long after its first attempt a delivery is given up.
    pub give_up_after: Duration,
}

impl Default for BackchannelSettings {
    fn default() -> Self {
        Self { poll: Duration::from_secs(1), timeout: Duration::from_secs(5), give_up_after: Duration::from_secs(120) }
    }
}

/// Runs the delivery worker for as long as the provider lives.
pub async fn deliver_logouts(provider: Weak<Provider>, settings: BackchannelSettings) {
    let http = match outbound::client() {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "no TLS roots for back-channel logout: no logout tokens are sent");
            return;
        }
    };
    let mut tick = tokio::time::interval(settings.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(provider) = provider.upgrade() else { break };
        if let Err(error) = deliver_due(&provider, &http, &settings).await {
            tracing::warn!(%error, "back-channel logout deliveries wait for the store");
        }
    }
}

async fn deliver_due(provider: &Provider, http: &HttpClient, settings: &BackchannelSettings) -> Result<(), StoreError> {
    let now = provider.clock.now();
    // Lent for longer than an attempt can take, so no other replica claims it meanwhile.
    let lease_until = now + settings.timeout.as_secs() + 2;
    for delivery in provider.store.claim_logouts(now, lease_until, BATCH).await? {
        let result = deliver(provider, http, settings.timeout, &delivery).await?;
        let outcome = match result {
            Attempt::Delivered => BackchannelLogoutResult::Delivered,
            Attempt::Refused => BackchannelLogoutResult::GivenUp,
            Attempt::Failed => {
                let failed_attempts = delivery.failed_attempts + 1;
                let bound = settings.give_up_after.as_secs();
                match next_attempt_at(delivery.first_due_at, failed_attempts, provider.clock.now(), bound) {
                    Some(due_at) => {
                        provider
                            .store
                            .requeue_logout(&LogoutDelivery { due_at, failed_attempts, ..delivery.clone() })
                            .await?;
                        BackchannelLogoutResult::Retried
                    }
                    None => BackchannelLogoutResult::GivenUp,
                }
            }
        };
        if outcome != BackchannelLogoutResult::Retried {
            provider.store.finish_logout(&delivery.sid, &delivery.client_id).await?;
        }
        provider.metrics.backchannel_logout(outcome);
        let event = match outcome {
            BackchannelLogoutResult::Delivered => AuditEvent::BackchannelLogoutDelivered,
            BackchannelLogoutResult::Retried => AuditEvent::BackchannelLogoutRetried,
            BackchannelLogoutResult::GivenUp => AuditEvent::BackchannelLogoutGivenUp,
        };
        audit::emit(event, AuditFields::client(&delivery.client_id).subject(&delivery.subject));
    }
    Ok(())
}

/// How one attempt went.
enum Attempt {
    Delivered,
    /// Not worth trying again: the client no longer has a back-channel logout URI.
    Refused,
    Failed,
}

/// Back-Channel Logout 1.0 §2.5: POSTs a fresh logout token, form-encoded as
/// `logout_token`, to the client's back-channel logout URI.
async fn deliver(
    provider: &Provider,
    http: &HttpClient,
    timeout: Duration,
    delivery: &LogoutDelivery,
) -> Result<Attempt, StoreError> {
    let client = provider.store.client(&delivery.client_id).await?;
    let Some(uri) = client.as_ref().and_then(|client| client.policy.backchannel_logout_uri.clone()) else {
        return Ok(Attempt::Refused);
    };
    let about = LogoutSubject {
        issuer: &provider.config.issuer,
        client_id: &delivery.client_id,
        subject: &delivery.subject,
        sid: &delivery.sid,
    };
    let token = secrets::random_token(JTI_BYTES)
        .map_err(|error| error.to_string())
        .map(|jti| logout_token_claims(&about, jti, provider.clock.now()))
        .and_then(|claims| {
            provider.keys.load().sign(None, JwtType::LogoutToken, &claims).map_err(|error| error.to_string())
        });
    let token = match token {
        Ok(token) => token,
        Err(error) => {
            tracing::warn!(%error, client_id = %delivery.client_id, "cannot sign a logout token");
            return Ok(Attempt::Failed);
        }
    };
    match outbound::post_form(http, &uri, &[("logout_token", &token)], timeout).await {
        Ok(answer) if answer.is_success() => Ok(Attempt::Delivered),
        Ok(answer) => {
            tracing::info!(client_id = %delivery.client_id, status = answer.status, "a back-channel logout was refused");
            Ok(Attempt::Failed)
        }
        Err(OutboundError::Request(error)) => {
            tracing::warn!(%error, client_id = %delivery.client_id, "unusable back-channel logout URI");
            Ok(Attempt::Refused)
        }
        Err(error) => {
            tracing::info!(client_id = %delivery.client_id, %error, "a back-channel logout failed");
            Ok(Attempt::Failed)
        }
    }
}
