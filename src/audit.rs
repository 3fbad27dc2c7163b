//! Audit events: one structured log line per security-relevant decision, with stable names
//! that alerting and SIEM rules can match on.
//!
//! Every event is a `tracing` event at INFO with target `portcullis::audit`, the fixed field
//! `audit = true`, `event = "<name>"`, and whichever of `client_id`, `subject`, `source_ip`,
//! `request_id`, `kid`, `grant_type` and `reason` apply. Inside an HTTP request the request id and the caller's
//! address are filled in from the request context ([`crate::context`], set by the provider's
//! request middleware), so call sites name only what they know.
//!
//! ```no_run
//! use portcullis::audit::{self, AuditEvent, AuditFields};
//! audit::emit(AuditEvent::KeyRotated, AuditFields { kid: Some("key-2"), ..AuditFields::default() });
//! ```

/// The stable audit event names. Changing a name breaks operators' alert rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    ConsentGranted,
    ConsentDenied,
    ConsentRevoked,
    TokenIssued,
    TokenRefreshed,
    RefreshReuseDetected,
    TokenRevoked,
    ClientRegistered,
    ClientDeleted,
    Logout,
    KeyRotated,
    CorsOriginRefused,
    BackchannelLogoutDelivered,
    BackchannelLogoutRetried,
    BackchannelLogoutGivenUp,
}

impl AuditEvent {
    /// Every event, in a fixed order (documentation and tests walk it).
    pub const ALL: [AuditEvent; 18] = [
        AuditEvent::LoginSucceeded,
        AuditEvent::LoginFailed,
        AuditEvent::LoginThrottled,
        AuditEvent::ConsentGranted,
        AuditEvent::ConsentDenied,
        AuditEvent::ConsentRevoked,
        AuditEvent::TokenIssued,
        AuditEvent::TokenRefreshed,
        AuditEvent::RefreshReuseDetected,
        AuditEvent::TokenRevoked,
        AuditEvent::ClientRegistered,
        AuditEvent::ClientDeleted,
        AuditEvent::Logout,
        AuditEvent::KeyRotated,
        AuditEvent::CorsOriginRefused,
        AuditEvent::BackchannelLogoutDelivered,
        AuditEvent::BackchannelLogoutRetried,
        AuditEvent::BackchannelLogoutGivenUp,
    ];

    /// The `event` field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::LoginSucceeded => "login_succeeded",
            AuditEvent::LoginFailed => "login_failed",
            AuditEvent::LoginThrottled => "login_throttled",
            AuditEvent::ConsentGranted => "consent_granted",
            AuditEvent::ConsentDenied => "consent_denied",
            AuditEvent::ConsentRevoked => "consent_revoked",
            AuditEvent::TokenIssued => "token_issued",
            AuditEvent::TokenRefreshed => "token_refreshed",
            AuditEvent::RefreshReuseDetected => "refresh_reuse_detected",
            AuditEvent::TokenRevoked => "token_revoked",
            AuditEvent::ClientRegistered => "client_registered",
            AuditEvent::ClientDeleted => "client_deleted",
            AuditEvent::Logout => "logout",
            AuditEvent::KeyRotated => "key_rotated",
            AuditEvent::CorsOriginRefused => "cors_origin_refused",
            AuditEvent::BackchannelLogoutDelivered => "backchannel_logout_delivered",
            AuditEvent::BackchannelLogoutRetried => "backchannel_logout_retried",
            AuditEvent::BackchannelLogoutGivenUp => "backchannel_logout_given_up",
        }
    }
}

/// What an event is about. Never put a secret here: these values are logged as they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditFields<'a> {
    pub client_id: Option<&'a str>,
    /// The user's subject identifier (never the username or password).
    pub subject: Option<&'a str>,
    /// Defaults to the address of the current HTTP request's peer.
    pub source_ip: Option<&'a str>,
    /// Defaults to the current HTTP request's id.
    pub request_id: Option<&'a str>,
    /// A signing key id.
    pub kid: Option<&'a str>,
    /// The grant type, for token events.
    pub grant_type: Option<&'a str>,
    /// Why a login failed: `unknown_user`, `bad_password` or `disabled`. Only here, never in
    /// a metric or a response, since it tells whether a username exists.
    pub reason: Option<&'a str>,
    /// The browser origin of a cross-origin request (`Origin`).
    pub origin: Option<&'a str>,
}

impl<'a> AuditFields<'a> {
    pub fn client(client_id: &'a str) -> Self {
        Self { client_id: Some(client_id), ..Self::default() }
    }

    pub fn subject(mut self, subject: &'a str) -> Self {
        self.subject = Some(subject);
        self
    }

    pub fn grant_type(mut self, grant_type: &'a str) -> Self {
        self.grant_type = Some(grant_type);
        self
    }
}

/// Target of every audit event, for `RUST_LOG` filters and log routing.
pub const TARGET: &str = "portcullis::audit";

/// Emits one audit event, completing the request id and source address from the current
/// request when the caller did not give them. Costs nothing when the target is filtered out.
pub fn emit(event: AuditEvent, fields: AuditFields<'_>) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    let logged = crate::context::with_request_context(|context| {
        let request_id = fields.request_id.or(Some(context.request_id.as_str()));
        let source_ip = fields.source_ip.or(context.source_ip.as_deref());
        log(event, AuditFields { request_id, source_ip, ..fields });
    });
    if logged.is_none() {
        log(event, fields);
    }
}

fn log(event: AuditEvent, fields: AuditFields<'_>) {
    tracing::info!(
        target: TARGET,
        audit = true,
        event = event.as_str(),
        client_id = fields.client_id,
        subject = fields.subject,
        source_ip = fields.source_ip,
        request_id = fields.request_id,
        kid = fields.kid,
        grant_type = fields.grant_type,
        reason = fields.reason,
        origin = fields.origin,
        "audit: {}",
        event.as_str()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let names: std::collections::BTreeSet<_> = AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
        assert_eq!(names.len(), AuditEvent::ALL.len());
        assert!(names.iter().all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }
}
