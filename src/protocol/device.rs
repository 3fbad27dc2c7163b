//! The Device Authorization Grant (RFC 8628): user codes, the device authorization
//! response, and what each poll of the token endpoint and each decision of the user does
//! to a [`DeviceGrant`]. Every rule returns the grant's next state for the store to swap
//! in atomically (so two replicas never both redeem one approval); time is passed in.

use serde::{Deserialize, Serialize};

use super::endpoints;
use crate::model::{DeviceGrant, DeviceStatus};
use crate::vocabulary::{ErrorCode, OAuthError, Scope};

/// RFC 8628 §6.1: consonants only (no vowels, so no words), upper case, no look-alikes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code: 20^8 ≈ 2^34.6 codes, so guessing needs the throttle of
/// RFC 8628 §5.1 on top.
pub const USER_CODE_LENGTH: usize = 8;
/// RFC 8628 §3.2: the polling interval when the server names none is 5 seconds.
pub const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: every `slow_down` adds 5 seconds to the interval, for good.
pub const SLOW_DOWN_STEP: u64 = 5;
/// RFC 8628 §3.5: a device code is kept this long past its expiry, so that polls then are
/// told `expired_token` rather than `invalid_grant`.
pub const KEPT_AFTER_EXPIRY: u64 = 300;
/// The most characters of user input read as a user code (dashes and spaces included).
const MAX_USER_CODE_INPUT: usize = 32;
/// Random bytes below this are used (a multiple of the alphabet's size), so every
/// character is equally likely.
const UNBIASED_BELOW: u8 = (256 / USER_CODE_ALPHABET.len() * USER_CODE_ALPHABET.len()) as u8;

/// RFC 8628 §6.1: a user code from uniformly random bytes, by rejection sampling; `None`
/// when the bytes did not hold enough usable ones (the caller draws again).
pub fn user_code_from_random(random: &[u8]) -> Option<String> {
    let code: String = random
        .iter()
        .filter(|byte| **byte < UNBIASED_BELOW)
        .map(|byte| char::from(USER_CODE_ALPHABET[usize::from(*byte) % USER_CODE_ALPHABET.len()]))
        .take(USER_CODE_LENGTH)
        .collect();
    (code.len() == USER_CODE_LENGTH).then_some(code)
}

/// RFC 8628 §6.1: what the user typed, as the stored code: case, dashes and spaces do not
/// matter; anything else outside the alphabet, or the wrong length, is no code.
pub fn normalize_user_code(input: &str) -> Option<String> {
    if input.len() > MAX_USER_CODE_INPUT {
        return None;
    }
    let code: String =
        input.chars().filter(|c| *c != '-' && !c.is_ascii_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    let valid = code.len() == USER_CODE_LENGTH && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// RFC 8628 §6.1: a code shown as two groups of four, `WDJB-MJHT`, easier to read aloud.
pub fn display_user_code(code: &str) -> String {
    match (code.get(..USER_CODE_LENGTH / 2), code.get(USER_CODE_LENGTH / 2..)) {
        (Some(first), Some(second)) => format!("{first}-{second}"),
        _ => code.to_owned(),
    }
}

/// RFC 8628 §3.2: the device authorization response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorizationResponse {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// RFC 8628 §3.2 and §3.3.1: the response for a new device authorization, its
/// `verification_uri_complete` carrying the user code so a QR code needs no typing.
pub fn authorization_response(
    issuer: &str,
    device_code: String,
    user_code: &str,
    ttl: u64,
) -> DeviceAuthorizationResponse {
    let verification_uri = format!("{}{}", issuer.trim_end_matches('/'), endpoints::DEVICE);
    let shown = display_user_code(user_code);
    DeviceAuthorizationResponse {
        device_code,
        verification_uri_complete: format!("{verification_uri}?user_code={shown}"),
        verification_uri,
        user_code: shown,
        expires_in: ttl,
        interval: DEFAULT_INTERVAL,
    }
}

/// RFC 8628 §3.1: a new, pending authorization of `scope` for `client_id`.
pub fn new_grant(client_id: &str, scope: Scope, now: u64, ttl: u64) -> DeviceGrant {
    DeviceGrant {
        client_id: client_id.to_owned(),
        scope,
        interval: DEFAULT_INTERVAL,
        last_poll_at: None,
        expires_at: now + ttl,
        status: DeviceStatus::Pending,
    }
}

/// Who approved a device authorization, for the tokens it is redeemed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub subject: String,
    pub auth_time: u64,
    pub session_id: String,
}

/// What one poll decided: the answer, and the state to store in place of the one read
/// (`None`: unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    pub answer: Result<Approval, OAuthError>,
    pub next: Option<DeviceGrant>,
}

/// RFC 8628 §3.4–§3.5: one poll of the token endpoint with a device code, by `client_id`.
/// Pending: `authorization_pending`, or `slow_down` (the interval grows by
/// [`SLOW_DOWN_STEP`] for good) when it comes sooner than the interval after the last;
/// denied: `access_denied`; past its life: `expired_token`; approved: the approval, once,
/// the grant becoming redeemed; redeemed or another client's: `invalid_grant`.
pub fn poll(grant: &DeviceGrant, client_id: &str, now: u64) -> Poll {
    let refuse = |code, description: &'static str| Poll { answer: Err(OAuthError::new(code, description)), next: None };
    if grant.client_id != client_id {
        return refuse(ErrorCode::InvalidGrant, "the device code was issued to another client");
    }
    if now >= grant.expires_at {
        return refuse(ErrorCode::ExpiredToken, "the device code has expired");
    }
    match &grant.status {
        DeviceStatus::Pending => {
            let too_soon = grant.last_poll_at.is_some_and(|last| now < last + grant.interval);
            let interval = if too_soon { grant.interval + SLOW_DOWN_STEP } else { grant.interval };
            let next = DeviceGrant { last_poll_at: Some(now), interval, ..grant.clone() };
            let error = if too_soon {
                OAuthError::new(ErrorCode::SlowDown, "polling too often: wait the interval, now 5 seconds longer")
            } else {
                OAuthError::new(ErrorCode::AuthorizationPending, "the user has not decided yet")
            };
            Poll { answer: Err(error), next: Some(next) }
        }
        DeviceStatus::Approved { subject, auth_time, session_id } => Poll {
            answer: Ok(Approval { subject: subject.clone(), auth_time: *auth_time, session_id: session_id.clone() }),
            next: Some(DeviceGrant { status: DeviceStatus::Redeemed, last_poll_at: Some(now), ..grant.clone() }),
        },
        DeviceStatus::Denied => refuse(ErrorCode::AccessDenied, "the user denied the authorization request"),
        DeviceStatus::Redeemed => refuse(ErrorCode::InvalidGrant, "the device code was already used"),
    }
}

/// RFC 8628 §3.3: whether the authorization still waits for its user: pending, unexpired.
pub fn awaits_decision(grant: &DeviceGrant, now: u64) -> bool {
    grant.status == DeviceStatus::Pending && now < grant.expires_at
}

/// RFC 8628 §3.3: the user's decision on a pending, unexpired authorization, as its next
/// state (`None` for approval means denial); `None` when it is no longer waiting for one.
pub fn decide(grant: &DeviceGrant, approval: Option<Approval>, now: u64) -> Option<DeviceGrant> {
    if !awaits_decision(grant, now) {
        return None;
    }
    let status = match approval {
        Some(Approval { subject, auth_time, session_id }) => DeviceStatus::Approved { subject, auth_time, session_id },
        None => DeviceStatus::Denied,
    };
    Some(DeviceGrant { status, ..grant.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000;
    const TTL: u64 = 600;

    fn pending() -> DeviceGrant {
        new_grant("tv", Scope::parse("openid").unwrap(), NOW, TTL)
    }

    fn alice() -> Approval {
        Approval { subject: "alice".into(), auth_time: NOW, session_id: "sid".into() }
    }

    fn code(poll: &Poll) -> ErrorCode {
        poll.answer.as_ref().unwrap_err().code
    }

    #[test]
    fn rfc8628_6_1_user_codes_use_the_consonant_alphabet_uniformly() {
        let code = user_code_from_random(&[0, 1, 19, 20, 239, 240, 255, 2, 3, 4]).unwrap();
        assert_eq!(code, "BCZBZDFG", "bytes of 240 and above are skipped, the rest taken modulo 20");
        assert_eq!(user_code_from_random(&[250; 32]), None, "too few usable bytes: draw again");
        assert_eq!(user_code_from_random(&[0; 7]), None);
        assert!(USER_CODE_ALPHABET.iter().all(|c| !b"AEIOUY".contains(c)), "no vowels, so no words");
    }

    #[test]
    fn rfc8628_6_1_user_codes_are_shown_in_two_groups_of_four() {
        assert_eq!(display_user_code("WDJBMJHT"), "WDJB-MJHT");
    }

    #[test]
    fn rfc8628_6_1_user_code_input_ignores_case_dashes_and_spaces() {
        for typed in ["WDJB-MJHT", "wdjbmjht", "wdjb-mjht", " WDJB MJHT ", "W-D-J-B-M-J-H-T"] {
            assert_eq!(normalize_user_code(typed).as_deref(), Some("WDJBMJHT"), "{typed}");
        }
        for wrong in ["", "WDJB-MJH", "WDJB-MJHTG", "WDJB-MJHA", "WDJB_MJHT", "ÆDJB-MJHT", &"-".repeat(40)] {
            assert_eq!(normalize_user_code(wrong), None, "{wrong}");
        }
    }

    #[test]
    fn rfc8628_3_2_response_names_both_verification_uris_and_the_interval() {
        let response = authorization_response("https://id.example/", "dc".into(), "WDJBMJHT", TTL);
        assert_eq!(response.verification_uri, "https://id.example/device");
        assert_eq!(response.verification_uri_complete, "https://id.example/device?user_code=WDJB-MJHT");
        assert_eq!((response.user_code.as_str(), response.expires_in, response.interval), ("WDJB-MJHT", TTL, 5));
    }

    #[test]
    fn rfc8628_3_5_pending_answers_authorization_pending_and_records_the_poll() {
        let first = poll(&pending(), "tv", NOW);
        assert_eq!(code(&first), ErrorCode::AuthorizationPending);
        let next = first.next.unwrap();
        assert_eq!((next.last_poll_at, next.interval), (Some(NOW), DEFAULT_INTERVAL));
        let on_time = poll(&next, "tv", NOW + DEFAULT_INTERVAL);
        assert_eq!(code(&on_time), ErrorCode::AuthorizationPending);
    }

    #[test]
    fn rfc8628_3_5_polling_sooner_than_the_interval_is_slow_down_and_adds_5_seconds_for_good() {
        let polled = poll(&pending(), "tv", NOW).next.unwrap();
        let hasty = poll(&polled, "tv", NOW + 1);
        assert_eq!(code(&hasty), ErrorCode::SlowDown);
        let slowed = hasty.next.unwrap();
        assert_eq!((slowed.interval, slowed.last_poll_at), (10, Some(NOW + 1)));
        assert_eq!(code(&poll(&slowed, "tv", NOW + 6)), ErrorCode::SlowDown, "the old interval is not enough");
        let patient = poll(&slowed, "tv", NOW + 11);
        assert_eq!(code(&patient), ErrorCode::AuthorizationPending);
        assert_eq!(patient.next.unwrap().interval, 10, "the longer interval stays");
    }

    #[test]
    fn rfc8628_3_5_an_approved_grant_is_redeemed_exactly_once() {
        let approved = decide(&pending(), Some(alice()), NOW).unwrap();
        let redeemed = poll(&approved, "tv", NOW + 1);
        assert_eq!(redeemed.answer, Ok(alice()));
        let next = redeemed.next.unwrap();
        assert_eq!(next.status, DeviceStatus::Redeemed);
        let again = poll(&next, "tv", NOW + 10);
        assert_eq!((code(&again), again.next), (ErrorCode::InvalidGrant, None));
    }

    #[test]
    fn rfc8628_3_5_a_denied_grant_answers_access_denied() {
        let denied = decide(&pending(), None, NOW).unwrap();
        assert_eq!(denied.status, DeviceStatus::Denied);
        let polled = poll(&denied, "tv", NOW + 5);
        assert_eq!((code(&polled), polled.next), (ErrorCode::AccessDenied, None));
    }

    #[test]
    fn rfc8628_3_5_past_its_life_the_device_code_is_expired_token() {
        for grant in [pending(), decide(&pending(), Some(alice()), NOW).unwrap()] {
            let polled = poll(&grant, "tv", NOW + TTL);
            assert_eq!((code(&polled), polled.next), (ErrorCode::ExpiredToken, None));
        }
        assert_eq!(code(&poll(&pending(), "tv", NOW + TTL - 1)), ErrorCode::AuthorizationPending);
    }

    #[test]
    fn rfc8628_3_4_a_device_code_is_bound_to_its_client() {
        let approved = decide(&pending(), Some(alice()), NOW).unwrap();
        let stolen = poll(&approved, "other", NOW);
        assert_eq!((code(&stolen), stolen.next), (ErrorCode::InvalidGrant, None));
    }

    #[test]
    fn rfc8628_3_3_only_a_pending_unexpired_grant_takes_a_decision() {
        let approved = decide(&pending(), Some(alice()), NOW).unwrap();
        assert_eq!(decide(&approved, None, NOW), None, "an approval is not turned into a denial");
        assert_eq!(decide(&decide(&pending(), None, NOW).unwrap(), Some(alice()), NOW), None);
        assert_eq!(decide(&pending(), Some(alice()), NOW + TTL), None, "too late");
        assert!(awaits_decision(&pending(), NOW + TTL - 1) && !awaits_decision(&approved, NOW));
    }
}
