//! An authorization request waiting for the user (OIDC Core §3.1.2.3–3.1.2.4), carried by
//! the browser rather than stored: sealed into the login and consent forms with an AEAD key
//! every replica shares, bound to the browser that started it, and expiring. A stranger's
//! `/authorize` therefore writes nothing anywhere; state is written only once the user has
//! authenticated (the session, then the code).
//!
//! Sealed form (base64url): version `1`, the key period (4 bytes, big-endian), a random
//! 96-bit nonce, then the AES-256-GCM encryption of the JSON [`PendingRequest`] with its
//! tag; version and period are authenticated as associated data. Each hour's key is derived
//! from the shared master key with HKDF-SHA256 (RFC 5869), so a key seals an hour's forms at
//! most (far below AES-GCM's 2^32 random nonces per key) and rotates without coordination;
//! the previous and next hours' keys still open, so a page opened just before a rotation, or
//! on a replica whose clock is a little ahead, works for its whole lifetime.
//!
//! Sealing and opening are pure: the caller passes the nonce, the keys and `now`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::form::{FormParams, MAX_VALUE_LEN};
use crate::vocabulary::{AuthorizationRequest, OAuthError};

/// A login or consent page may be answered within this many seconds of being shown.
pub const LIFETIME: u64 = 600;

/// Each sealing key seals the forms of this many seconds.
const KEY_PERIOD: u64 = 3600;

/// A page sealed by a replica whose clock is ahead by up to this many seconds still opens.
const CLOCK_SKEW: u64 = 60;

/// The longest sealed request: what a form value may carry (8 KiB).
pub const MAX_SEALED_LEN: usize = MAX_VALUE_LEN;

/// Room a request sealed before authentication leaves for the session id the consent step
/// adds, so that it can always be sealed again.
const SESSION_ROOM: usize = 64;

/// The longest value of each parameter that travels sealed, in bytes. OIDC Core and RFC 6749
/// set no limit; these hold what relying parties send, with room to spare (`state` often
/// carries an encoded return URL: Mattermost allows 1024 bytes and Keycloak 4000 by default;
/// IdentityServer allows a 300-byte `nonce`; an e-mail address, the usual `login_hint`, has
/// at most 254). With every one at its limit the sealed form is about 5.3 KiB, and with a
/// 2000-byte redirect URI (the most a registered client may have) it still fits a form
/// field; a usual request seals into about 1 KiB. A `claims` request (OIDC Core §5.5) is
/// sealed as the names of the claims that can be released only, so its limit bounds what
/// is parsed, not what is sealed.
pub const SEALED_PARAMETER_LIMITS: [(&str, usize); 5] =
    [("state", 2048), ("nonce", 1024), ("login_hint", 256), ("ui_locales", 128), ("claims", 2048)];

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;
const HKDF_SALT: &[u8] = b"portcullis pending request";

/// What the browser carries between `/authorize`, the login form and the consent form.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// The browser-binding cookie of the browser that started it.
    pub browser: String,
    /// The CSRF token its forms must carry.
    pub csrf_token: String,
    /// When it was sealed (seconds since the epoch); it expires [`LIFETIME`] later.
    pub issued_at: u64,
    /// The public id (`sid`) of the session that may consent: set once the user has
    /// authenticated, so only that session answers the consent form.
    pub sid: Option<String>,
    /// The validated request, without `id_token_hint`, which only `/authorize` reads.
    pub request: AuthorizationRequest,
}

/// A sign-in at an upstream identity provider between its start and its callback, carried
/// in a cookie to the callback: sealed for the browser that started it with the upstream
/// `state` as its CSRF token, so only the callback carrying that `state` opens it (RFC
/// 6749 §10.12).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamAttempt {
    pub browser: String,
    /// The upstream `state`.
    pub state: String,
    /// When it was sealed; it expires [`LIFETIME`] later.
    pub issued_at: u64,
    /// The connector's name.
    pub connector: String,
    pub nonce: String,
    /// The PKCE verifier (RFC 7636) of the upstream request.
    pub code_verifier: String,
    /// What the sign-in goes on with once the upstream has vouched.
    pub resume: Resume,
}

/// What a sign-in at an upstream identity provider was started for.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    /// An authorization request, with the CSRF token of its own pages.
    Authorization(Box<PendingRequest>),
    /// A device authorization to approve (RFC 8628 §3.3): its key and its user code.
    Device { key: String, user_code: String },
}

impl std::fmt::Debug for UpstreamAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAttempt")
            .field("connector", &self.connector)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

/// What may be sealed into a page or a cookie: carried by one browser, answered with one
/// CSRF token, within [`LIFETIME`] of being sealed.
pub trait Sealable: Serialize + serde::de::DeserializeOwned {
    /// The browser-binding cookie of the browser it belongs to.
    fn browser(&self) -> &str;
    /// The token the answer must carry.
    fn csrf_token(&self) -> &str;
    /// When it was sealed.
    fn issued_at(&self) -> u64;
    /// Bytes to keep free so that a later step may seal it again with more in it.
    fn room(&self) -> usize {
        0
    }
}

impl Sealable for PendingRequest {
    fn browser(&self) -> &str {
        &self.browser
    }
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
    fn issued_at(&self) -> u64 {
        self.issued_at
    }
    fn room(&self) -> usize {
        if self.sid.is_none() { SESSION_ROOM } else { 0 }
    }
}

impl Sealable for UpstreamAttempt {
    fn browser(&self) -> &str {
        &self.browser
    }
    fn csrf_token(&self) -> &str {
        &self.state
    }
    fn issued_at(&self) -> u64 {
        self.issued_at
    }
}

/// The browser binding, CSRF token and session id are bearer secrets of the browser:
/// `Debug` shows the request only.
impl std::fmt::Debug for PendingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingRequest")
            .field("issued_at", &self.issued_at)
            .field("authenticated", &self.sid.is_some())
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// The master key every replica shares, from which each period's sealing key derives.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// A key from its 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A key from its base64url form, as kept in the store.
    pub fn from_base64(encoded: &str) -> Option<Self> {
        let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(encoded).ok()?);
        <[u8; 32]>::try_from(bytes.as_slice()).ok().map(Self::new)
    }

    /// The base64url form, for the store.
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_ref())
    }

    /// RFC 5869: the AES-256-GCM key of one period.
    fn for_period(&self, period: u32) -> Option<LessSafeKey> {
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(self.0.as_ref());
        let period = period.to_be_bytes();
        let info: [&[u8]; 1] = [&period];
        let okm = prk.expand(&info, &AES_256_GCM).ok()?;
        Some(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.0.as_ref().ct_eq(other.0.as_ref()))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Why a request could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the authorization request is too large to carry through the sign-in pages")]
    TooLarge,
    #[error("sealing failed")]
    Crypto,
}

/// Why a sealed request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not sealed by any current key (tampered, forged, or from before a key change), or
    /// past its lifetime: the page has expired.
    #[error("the sign-in page has expired")]
    Expired,
    /// Sealed for another browser, or the form's CSRF token does not match.
    #[error("the form does not belong to this browser")]
    Forged,
}

/// OIDC Core §3.1.2.1 sets no length for these parameters; [`SEALED_PARAMETER_LIMITS`]
/// bounds them so the sealed request fits a form field. A longer one is `invalid_request`.
pub fn check_sizes(params: &FormParams) -> Result<(), OAuthError> {
    for (name, limit) in SEALED_PARAMETER_LIMITS {
        if params.get(name)?.is_some_and(|value| value.len() > limit) {
            return Err(OAuthError::invalid_request(format!("{name} is longer than {limit} bytes")));
        }
    }
    Ok(())
}

fn period_of(time: u64) -> Option<u32> {
    u32::try_from(time / KEY_PERIOD).ok()
}

/// Seals `carried` with this period's key of `key`, under a nonce the caller drew at random.
pub fn seal<T: Sealable>(key: &MasterKey, carried: &T, nonce: [u8; NONCE_LEN]) -> Result<String, SealError> {
    let period = period_of(carried.issued_at()).ok_or(SealError::Crypto)?;
    let mut sealed = Vec::with_capacity(HEADER_LEN + 1024);
    sealed.push(VERSION);
    sealed.extend_from_slice(&period.to_be_bytes());
    sealed.extend_from_slice(&nonce);
    let mut body = serde_json::to_vec(carried).map_err(|_| SealError::Crypto)?;
    let sealing_key = key.for_period(period).ok_or(SealError::Crypto)?;
    sealing_key
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&sealed[..5]), &mut body)
        .map_err(|_| SealError::Crypto)?;
    sealed.extend_from_slice(&body);
    let encoded = URL_SAFE_NO_PAD.encode(&sealed);
    if encoded.len() + carried.room() > MAX_SEALED_LEN {
        return Err(SealError::TooLarge);
    }
    Ok(encoded)
}

/// Opens a sealed `T` with the first of `keys` that sealed it (the current master key, then
/// the previous one), if it is still within its lifetime at `now`, was sealed for the
/// browser `browser` and the answer's `csrf_token` is its own (both compared in constant
/// time). Something sealed as another type does not open.
pub fn open<T: Sealable>(
    keys: &[&MasterKey],
    sealed: &str,
    now: u64,
    browser: Option<&str>,
    csrf_token: &str,
) -> Result<T, OpenError> {
    let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| OpenError::Expired)?;
    if raw.len() < HEADER_LEN + TAG_LEN || raw[0] != VERSION {
        return Err(OpenError::Expired);
    }
    let period = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]);
    let current = period_of(now).ok_or(OpenError::Expired)?;
    if !(current.saturating_sub(1)..=current.saturating_add(1)).contains(&period) {
        return Err(OpenError::Expired);
    }
    let nonce: [u8; NONCE_LEN] = raw[5..HEADER_LEN].try_into().map_err(|_| OpenError::Expired)?;
    let (header, body) = raw.split_at(HEADER_LEN);
    let carried: T = keys
        .iter()
        .filter_map(|key| key.for_period(period))
        .find_map(|key| {
            let mut body = Zeroizing::new(body.to_vec());
            let plain = key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(&header[..5]), &mut body);
            plain.ok().and_then(|json| serde_json::from_slice::<T>(json).ok())
        })
        .ok_or(OpenError::Expired)?;
    let issued_at = carried.issued_at();
    let fresh = period_of(issued_at) == Some(period)
        && issued_at <= now.saturating_add(CLOCK_SKEW)
        && now < issued_at.saturating_add(LIFETIME);
    if !fresh {
        return Err(OpenError::Expired);
    }
    let same = |given: &str, expected: &str| bool::from(given.as_bytes().ct_eq(expected.as_bytes()));
    if !browser.is_some_and(|browser| same(browser, carried.browser())) || !same(csrf_token, carried.csrf_token()) {
        return Err(OpenError::Forged);
    }
    Ok(carried)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::{ClaimsRequest, Prompt, ResponseMode, Scope};

    const NOW: u64 = 1_800_000_000;

    fn request(state: Option<&str>) -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "app".into(),
            redirect_uri: "https://app.example/cb".into(),
            scope: Scope::parse("openid profile").unwrap(),
            state: state.map(str::to_owned),
            nonce: Some("n-0S6_WzA2Mj".into()),
            prompt: Prompt::default(),
            max_age: None,
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            login_hint: None,
            id_token_hint: None,
            ui_locales: None,
            response_mode: ResponseMode::FormPost,
            claims: ClaimsRequest::default(),
        }
    }

    fn pending(issued_at: u64) -> PendingRequest {
        PendingRequest {
            browser: "browser-b".into(),
            csrf_token: "csrf-c".into(),
            issued_at,
            sid: None,
            request: request(Some("xyz")),
        }
    }

    fn key(byte: u8) -> MasterKey {
        MasterKey::new([byte; 32])
    }

    /// The pending request a form carries.
    fn open(
        keys: &[&MasterKey],
        sealed: &str,
        now: u64,
        browser: Option<&str>,
        csrf_token: &str,
    ) -> Result<PendingRequest, OpenError> {
        super::open(keys, sealed, now, browser, csrf_token)
    }

    fn attempt(resume: Resume) -> UpstreamAttempt {
        UpstreamAttempt {
            browser: "browser-b".into(),
            state: "state-s".into(),
            issued_at: NOW,
            connector: "corp".into(),
            nonce: "nonce-n".into(),
            code_verifier: "verifier-v".into(),
            resume,
        }
    }

    fn sealed(key: &MasterKey, pending: &PendingRequest) -> String {
        seal(key, pending, [7; NONCE_LEN]).unwrap()
    }

    #[test]
    fn a_sealed_request_opens_for_its_browser_and_csrf_token_within_its_lifetime() {
        let form = sealed(&key(1), &pending(NOW));
        assert_eq!(open(&[&key(1)], &form, NOW, Some("browser-b"), "csrf-c").unwrap(), pending(NOW));
        assert_eq!(open(&[&key(1)], &form, NOW + LIFETIME - 1, Some("browser-b"), "csrf-c").unwrap(), pending(NOW));
        assert_eq!(open(&[&key(1)], &form, NOW + LIFETIME, Some("browser-b"), "csrf-c"), Err(OpenError::Expired));
    }

    #[test]
    fn another_browser_or_csrf_token_is_forged() {
        let form = sealed(&key(1), &pending(NOW));
        for (browser, csrf) in [(Some("browser-x"), "csrf-c"), (None, "csrf-c"), (Some("browser-b"), "csrf-x")] {
            assert_eq!(open(&[&key(1)], &form, NOW, browser, csrf), Err(OpenError::Forged), "{browser:?} {csrf}");
        }
    }

    #[test]
    fn tampered_truncated_or_foreign_forms_do_not_open() {
        let form = sealed(&key(1), &pending(NOW));
        let mut raw = URL_SAFE_NO_PAD.decode(&form).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(&raw);
        let mut header = URL_SAFE_NO_PAD.decode(&form).unwrap();
        header[4] ^= 1;
        let other_period = URL_SAFE_NO_PAD.encode(&header);
        for bad in [tampered.as_str(), other_period.as_str(), &form[..40], "", "not base64!", "AQAAAA"] {
            assert_eq!(open(&[&key(1)], bad, NOW, Some("browser-b"), "csrf-c"), Err(OpenError::Expired), "{bad}");
        }
        assert_eq!(open(&[&key(2)], &form, NOW, Some("browser-b"), "csrf-c"), Err(OpenError::Expired), "another key");
    }

    #[test]
    fn the_previous_master_key_still_opens_and_periods_rotate_the_working_key() {
        let form = sealed(&key(1), &pending(NOW));
        assert!(open(&[&key(2), &key(1)], &form, NOW, Some("browser-b"), "csrf-c").is_ok(), "previous master");
        let next_hour = NOW - NOW % KEY_PERIOD + KEY_PERIOD;
        let before = sealed(&key(1), &pending(next_hour - 1));
        assert!(open(&[&key(1)], &before, next_hour + 1, Some("browser-b"), "csrf-c").is_ok(), "across the hour");
        let seal_in = |period: u32| {
            let mut body = b"the same plaintext".to_vec();
            let nonce = Nonce::assume_unique_for_key([7; NONCE_LEN]);
            key(1).for_period(period).unwrap().seal_in_place_append_tag(nonce, Aad::empty(), &mut body).unwrap();
            body
        };
        assert_ne!(seal_in(1), seal_in(2), "each period has a key of its own");
    }

    #[test]
    fn an_upstream_attempt_opens_with_its_state_only_and_never_as_a_form_nor_a_form_as_it() {
        let device = Resume::Device { key: "device-key".into(), user_code: "BCDFGHJK".into() };
        for resume in [Resume::Authorization(Box::new(pending(NOW))), device] {
            let cookie = seal(&key(1), &attempt(resume.clone()), [7; NONCE_LEN]).unwrap();
            let opened = super::open::<UpstreamAttempt>(&[&key(1)], &cookie, NOW, Some("browser-b"), "state-s");
            assert_eq!(opened.unwrap(), attempt(resume));
            let with_csrf = super::open::<UpstreamAttempt>(&[&key(1)], &cookie, NOW, Some("browser-b"), "csrf-c");
            assert_eq!(with_csrf.unwrap_err(), OpenError::Forged, "the form's CSRF token is not the state");
            for token in ["state-s", "csrf-c"] {
                assert_eq!(open(&[&key(1)], &cookie, NOW, Some("browser-b"), token), Err(OpenError::Expired));
            }
        }
        let form = sealed(&key(1), &pending(NOW));
        let as_attempt = super::open::<UpstreamAttempt>(&[&key(1)], &form, NOW, Some("browser-b"), "csrf-c");
        assert_eq!(as_attempt.unwrap_err(), OpenError::Expired);
        let debug = format!("{:?}", attempt(Resume::Authorization(Box::new(pending(NOW)))));
        assert!(!["state-s", "nonce-n", "verifier-v", "browser-b"].iter().any(|s| debug.contains(s)), "{debug}");
    }

    #[test]
    fn a_form_from_the_future_opens_only_within_the_clock_skew() {
        let ahead = sealed(&key(1), &pending(NOW + CLOCK_SKEW));
        assert!(open(&[&key(1)], &ahead, NOW, Some("browser-b"), "csrf-c").is_ok());
        let far = sealed(&key(1), &pending(NOW + CLOCK_SKEW + 1));
        assert_eq!(open(&[&key(1)], &far, NOW, Some("browser-b"), "csrf-c"), Err(OpenError::Expired));
    }

    #[test]
    fn every_parameter_at_its_limit_with_the_longest_registered_redirect_uri_still_fits_a_form_field() {
        let limit = |name: &str| SEALED_PARAMETER_LIMITS.iter().find(|(n, _)| *n == name).unwrap().1;
        let mut longest = pending(NOW);
        longest.request.state = Some("s".repeat(limit("state")));
        longest.request.nonce = Some("n".repeat(limit("nonce")));
        longest.request.login_hint = Some("h".repeat(limit("login_hint")));
        longest.request.ui_locales = Some("l".repeat(limit("ui_locales")));
        longest.request.client_id = format!("dcr_{}", "c".repeat(43));
        longest.request.scope = Scope::parse("openid profile email offline_access").unwrap();
        longest.browser = "b".repeat(43);
        longest.csrf_token = "c".repeat(43);
        longest.sid = Some("s".repeat(22));
        let short_redirect = sealed(&key(1), &longest).len();
        assert!(short_redirect <= 5632, "every parameter at its limit: {short_redirect} bytes");
        longest.request.redirect_uri = format!("https://app.example/{}", "p".repeat(1980));
        let long_redirect = sealed(&key(1), &longest).len();
        assert!(long_redirect <= MAX_SEALED_LEN, "and a 2000-byte redirect URI: {long_redirect} bytes");
        let before_login = sealed(&key(1), &PendingRequest { sid: None, ..longest.clone() }).len();
        assert!(before_login + SESSION_ROOM <= MAX_SEALED_LEN, "room for the session id: {before_login} bytes");
        longest.request.state = Some("\u{1}".repeat(limit("state")));
        assert_eq!(seal(&key(1), &longest, [7; NONCE_LEN]), Err(SealError::TooLarge), "JSON escapes are counted");
    }

    #[test]
    fn oidc_core_3_1_2_1_parameters_over_their_limit_are_invalid_request() {
        for (name, limit) in SEALED_PARAMETER_LIMITS {
            let at = FormParams::parse(format!("{name}={}", "a".repeat(limit)).as_bytes()).unwrap();
            assert!(check_sizes(&at).is_ok(), "{name} at {limit}");
            let over = FormParams::parse(format!("{name}={}", "a".repeat(limit + 1)).as_bytes()).unwrap();
            let error = check_sizes(&over).unwrap_err();
            assert_eq!(error.code.as_str(), "invalid_request");
            assert_eq!(error.description, format!("{name} is longer than {limit} bytes"));
        }
    }

    #[test]
    fn master_keys_round_trip_through_base64_and_debug_hides_them() {
        let encoded = key(9).to_base64();
        assert_eq!(MasterKey::from_base64(&encoded), Some(key(9)));
        assert_eq!(MasterKey::from_base64("c2hvcnQ"), None);
        assert_eq!(format!("{:?}", key(9)), "MasterKey(<redacted>)");
        let debug = format!("{:?}", pending(NOW));
        assert!(!debug.contains("browser-b") && !debug.contains("csrf-c"), "{debug}");
    }
}
