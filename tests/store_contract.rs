//! The contract every `Store` implementation must keep, port by port. Each check is a
//! function over the port it checks (`&dyn Directory`, `&dyn SingleUse`, ...) and a
//! [`Time`], so the memory store, the Redis store and the wrappers run the very same
//! suite; the instrumented run also proves the suite calls every operation of every port.

#[path = "support/redis_server.rs"]
mod redis_server;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis::clock::Clock;
use portcullis::metrics::Metrics;
use portcullis::model::{
    AuthorizationCode, ButtonIcon, ClaimPaths, ClientPolicy, ClientRecord, ConnectorRecord, DeviceGrant, DeviceStatus,
    FederatedUser, Grant, LogoutDelivery, OidcUpstream, RefreshToken, Session, Upstream, UserProfile, UserRecord,
};
use portcullis::protocol::device;
use portcullis::store::{
    Budget, Cached, Consumed, Coordination, Counters, DeviceGrants, Directory, Ephemeral, Eviction, Grants,
    Instrumented, MemoryStore, OPERATIONS, PublishedKeys, RedisConfig, RedisStore, Reservation, SingleUse, Store,
    StoreError, epoch,
};
use portcullis::store::{
    ClientHoldings, Federation, LogoutQueue, SessionEnds, SessionGrant, UserActivity, UserGrant, UserSession, ending,
};
use portcullis::vocabulary::{GrantType, Scope, TokenEndpointAuthMethod};
use redis_server::RedisServer;

/// How a check lets time pass. Expiries in the checks are two seconds away so that waiting
/// them out for real stays cheap, yet an entry checked right after writing is still live
/// (`now` is whole seconds, so a real expiry is between one and two seconds away).
enum Time {
    /// The memory store reads this counter; passing time is a jump.
    Manual(Arc<AtomicU64>),
    /// Redis expires keys by its own clock; passing time is a sleep.
    Real,
}

impl Time {
    fn now(&self) -> u64 {
        match self {
            Time::Manual(now) => now.load(Ordering::SeqCst),
            Time::Real => Clock::system().now(),
        }
    }

    async fn advance(&self, seconds: u64) {
        match self {
            Time::Manual(now) => {
                now.fetch_add(seconds, Ordering::SeqCst);
            }
            Time::Real => tokio::time::sleep(Duration::from_secs(seconds) + Duration::from_millis(100)).await,
        }
    }
}

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        client_name: Some("Client".into()),
        secret_hash: None,
        auth_method: Some(TokenEndpointAuthMethod::None),
        redirect_uris: vec!["https://app.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode],
        scopes: Scope::parse("openid profile").unwrap(),
        roles: vec![],
        audience: vec![],
        access_token_ttl: None,
        require_pkce: true,
        skip_consent: false,
        web_origins: vec![],
        registration: None,
        policy: ClientPolicy::default(),
    }
}

fn user(username: &str, subject: &str) -> UserRecord {
    UserRecord {
        subject: subject.into(),
        username: username.into(),
        email: None,
        email_verified: false,
        name: None,
        given_name: None,
        family_name: None,
        groups: vec![],
        roles: vec![],
        client_roles: BTreeMap::new(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        disabled: false,
        profile: UserProfile::default(),
        custom_claims: Default::default(),
        claimed_subjects: Vec::new(),
    }
}

async fn clients_are_upserted_found_listed_and_deleted(store: &dyn Directory) {
    assert!(store.client("a").await.unwrap().is_none());
    store.put_client(client("a")).await.unwrap();
    store.put_client(client("b")).await.unwrap();
    let mut changed = client("a");
    changed.client_name = Some("Renamed".into());
    store.put_client(changed.clone()).await.unwrap();
    assert_eq!(*store.client("a").await.unwrap().unwrap(), changed);
    assert_eq!(store.client_ids().await.unwrap(), vec!["a".to_owned(), "b".to_owned()]);
    store.delete_client("a").await.unwrap();
    store.delete_client("a").await.unwrap();
    assert!(store.client("a").await.unwrap().is_none());
}

async fn users_are_found_by_username_and_subject(store: &dyn Directory) {
    store.put_user(user("alice", "sub-1")).await.unwrap();
    assert_eq!(store.user_by_username("alice").await.unwrap().unwrap().subject, "sub-1");
    assert_eq!(store.user_by_subject("sub-1").await.unwrap().unwrap().username, "alice");
    store.put_user(user("alice", "sub-2")).await.unwrap();
    assert!(store.user_by_subject("sub-1").await.unwrap().is_none(), "the old subject index is dropped");
    assert_eq!(store.user_by_subject("sub-2").await.unwrap().unwrap().username, "alice");
    store.delete_user("alice").await.unwrap();
    assert!(store.user_by_username("alice").await.unwrap().is_none());
    assert!(store.user_by_subject("sub-2").await.unwrap().is_none());
    store.put_user(user("ann", "s-1")).await.unwrap();
    store.put_user(user("ben", "s-2")).await.unwrap();
    store.put_user(user("ann", "s-2")).await.unwrap();
    store.put_user(user("ben", "s-1")).await.unwrap();
    assert_eq!(store.user_by_subject("s-1").await.unwrap().unwrap().username, "ben", "swapped subjects resolve");
    assert_eq!(store.user_by_subject("s-2").await.unwrap().unwrap().username, "ann");
}

/// Issue 21: a user is found by each upstream identity it claims, and only while it claims
/// it: a change of claims or a deletion leaves no stale entry behind.
async fn users_are_found_by_the_identities_they_claim(store: &dyn Directory) {
    let claiming = |subjects: &[&str]| UserRecord {
        claimed_subjects: subjects.iter().map(|s| s.to_string()).collect(),
        ..user("claimant", "claimant-subject")
    };
    store.put_user(claiming(&["corp-1", "corp-2"])).await.unwrap();
    assert_eq!(store.user_claiming("corp-1").await.unwrap().unwrap().username, "claimant");
    assert_eq!(store.user_claiming("corp-2").await.unwrap().unwrap().username, "claimant");
    assert!(store.user_claiming("claimant-subject").await.unwrap().is_none(), "its own subject is not a claim");
    store.put_user(claiming(&["corp-2", "corp-3"])).await.unwrap();
    assert!(store.user_claiming("corp-1").await.unwrap().is_none(), "a dropped claim no longer resolves");
    assert_eq!(store.user_claiming("corp-3").await.unwrap().unwrap().username, "claimant");
    store.put_user(claiming(&[])).await.unwrap();
    assert!(store.user_claiming("corp-2").await.unwrap().is_none(), "no claims left");
    store.put_user(claiming(&["corp-4"])).await.unwrap();
    store.delete_user("claimant").await.unwrap();
    assert!(store.user_claiming("corp-4").await.unwrap().is_none(), "a deleted user claims nothing");
}

/// What a sweep compares with the declared users: every stored username, once, sorted.
async fn usernames_list_the_stored_users(store: &dyn Directory) {
    for name in ["zoe", "ann", "ben"] {
        store.put_user(user(name, &format!("subject-of-{name}"))).await.unwrap();
    }
    store.put_user(user("zoe", "renamed-subject")).await.unwrap();
    assert_eq!(store.usernames().await.unwrap(), ["ann", "ben", "zoe"]);
    store.delete_user("zoe").await.unwrap();
    store.delete_user("ann").await.unwrap();
    store.delete_user("ben").await.unwrap();
    assert!(store.usernames().await.unwrap().is_empty());
}

/// The data epoch is created by its first reader and then stays what it is.
async fn the_data_epoch_is_created_once(store: &dyn Coordination) {
    let first = epoch(store).await.unwrap();
    let second = epoch(store).await.unwrap();
    assert!(!second.created, "an existing epoch is not created again");
    assert_eq!(second.id, first.id);
}

async fn revoked_tokens_stay_denied_until_they_expire(store: &dyn Ephemeral, time: &Time) {
    let t = time.now();
    store.revoke_token("jti-1", t + 2).await.unwrap();
    store.revoke_token("jti-old", t).await.unwrap();
    assert!(store.token_check("jti-1").await.unwrap().revoked);
    assert!(!store.token_check("jti-2").await.unwrap().revoked);
    assert!(!store.token_check("jti-old").await.unwrap().revoked, "an already expired token needs no entry");
    time.advance(2).await;
    assert!(!store.token_check("jti-1").await.unwrap().revoked, "the entry lives exactly as long as the token");
}

/// A token check reads the data epoch with the deny-list entry: none before the epoch
/// exists (as after a loss of the data), the epoch once it does.
async fn a_token_check_reads_the_data_epoch_too(store: &dyn Store) {
    assert_eq!(store.token_check("jti-1").await.unwrap().epoch, None, "no epoch yet");
    let current = epoch(store).await.unwrap();
    store.revoke_token("jti-epoch", Clock::system().now() + 60).await.unwrap();
    let check = store.token_check("jti-epoch").await.unwrap();
    assert!(check.revoked);
    assert_eq!(check.epoch, Some(current.id.clone()));
    assert_eq!(store.token_check("jti-unknown").await.unwrap().epoch, Some(current.id));
}

/// Retired public keys are listed until they expire; a later expiry wins.
async fn retired_keys_are_listed_until_they_expire(store: &dyn Coordination, time: &Time) {
    assert!(store.retired_keys().await.unwrap().is_empty());
    let t = time.now();
    store.publish_retired_key("kid-a", r#"{"kid":"kid-a"}"#, t + 2).await.unwrap();
    store.publish_retired_key("kid-b", r#"{"kid":"kid-b"}"#, t + 4).await.unwrap();
    store.publish_retired_key("kid-b", r#"{"kid":"kid-b"}"#, t + 1).await.unwrap();
    store.publish_retired_key("kid-c", r#"{"kid":"kid-c"}"#, t).await.unwrap();
    assert_eq!(store.retired_keys().await.unwrap(), [r#"{"kid":"kid-a"}"#, r#"{"kid":"kid-b"}"#]);
    time.advance(2).await;
    assert_eq!(store.retired_keys().await.unwrap(), [r#"{"kid":"kid-b"}"#], "kid-b kept its later expiry");
}

fn code(grant_id: &str) -> AuthorizationCode {
    AuthorizationCode {
        grant_id: grant_id.into(),
        client_id: "a".into(),
        redirect_uri: "https://app.example/cb".into(),
        scope: Scope::parse("openid").unwrap(),
        nonce: Some("n".into()),
        code_challenge: None,
        subject: "sub-1".into(),
        auth_time: 1,
        session_id: "sid".into(),
        claims: Default::default(),
    }
}

async fn codes_are_consumed_exactly_once(store: &dyn SingleUse, time: &Time) {
    let t = time.now();
    store.put_code("h1", &code("g1"), t + 60).await.unwrap();
    assert_eq!(store.consume_code("h1", "client a").await.unwrap(), Consumed::Fresh(code("g1")));
    let replay = store.consume_code("h1", "client a").await.unwrap();
    assert!(
        used_since(&replay, &code("g1"), "client a", t),
        "a replay is recognised, with who used it first and when: {replay:?}"
    );
    assert_eq!(store.consume_code("unknown", "client a").await.unwrap(), Consumed::Unknown);
    store.put_code("h2", &code("g2"), t + 2).await.unwrap();
    time.advance(2).await;
    assert_eq!(store.consume_code("h2", "client a").await.unwrap(), Consumed::Unknown, "expired codes are gone");
}

/// The record of the first use is kept as it was: a later use by someone else learns who
/// came first, and a use right after the first is never taken for a retry.
async fn the_first_use_is_recorded_with_who_and_when(store: &dyn Store, time: &Time) {
    let t = time.now();
    store.put_code("who", &code("g"), t + 60).await.unwrap();
    store.consume_code("who", "the client").await.unwrap();
    let replay = store.consume_code("who", "a thief").await.unwrap();
    assert!(used_since(&replay, &code("g"), "the client", t), "{replay:?}");
    assert!(
        matches!(replay, Consumed::Reused { may_be_retry: false, .. }),
        "a use at once after the first is concurrent, not a retry: {replay:?}"
    );
    let token = RefreshToken {
        grant_id: "g".into(),
        client_id: "a".into(),
        scope: Scope::parse("openid").unwrap(),
        expires_at: t + 100,
    };
    issue_refresh_token(store, "who", &token, t).await;
    store.consume_refresh_token("who", "the client", "a").await.unwrap();
    assert!(used_since(&store.peek_refresh_token("who").await.unwrap(), &token, "the client", t));
    assert!(used_since(&store.consume_refresh_token("who", "another", "a").await.unwrap(), &token, "the client", t));
}

/// Stores `token` under `hash` as the provider does: with the update of its grant.
async fn issue_refresh_token(store: &dyn Store, hash: &str, token: &RefreshToken, t: u64) {
    let grant = grant(&token.grant_id, t);
    store.put_grant(&grant).await.unwrap();
    assert!(store.update_grant(&grant, Some((hash, token))).await.unwrap(), "the grant is there");
}

async fn refresh_tokens_can_be_peeked_and_consumed_once(store: &dyn Store, time: &Time) {
    let t = time.now();
    let token = RefreshToken {
        grant_id: "g".into(),
        client_id: "a".into(),
        scope: Scope::parse("openid").unwrap(),
        expires_at: t + 100,
    };
    issue_refresh_token(store, "r1", &token, t).await;
    assert_eq!(store.peek_refresh_token("r1").await.unwrap(), Consumed::Fresh(token.clone()), "peeking uses nothing");
    assert_eq!(
        store.consume_refresh_token("r1", "client b", "b").await.unwrap(),
        Consumed::Fresh(token.clone()),
        "another client's token is answered as it is"
    );
    assert_eq!(store.peek_refresh_token("r1").await.unwrap(), Consumed::Fresh(token.clone()), "and stays unused");
    assert_eq!(store.consume_refresh_token("r1", "client a", "a").await.unwrap(), Consumed::Fresh(token.clone()));
    assert!(used_since(&store.peek_refresh_token("r1").await.unwrap(), &token, "client a", t));
    assert!(used_since(&store.consume_refresh_token("r1", "client a", "a").await.unwrap(), &token, "client a", t));
    assert!(
        used_since(&store.consume_refresh_token("r1", "client b", "b").await.unwrap(), &token, "client a", t),
        "a used token is answered as used, whoever asks"
    );
}

async fn refresh_successors_are_kept_for_their_interval(store: &dyn SingleUse, time: &Time) {
    let t = time.now();
    assert_eq!(store.refresh_successor("r2").await.unwrap(), None);
    store.put_refresh_successor("r2", "sealed", t + 2).await.unwrap();
    assert_eq!(store.refresh_successor("r2").await.unwrap().as_deref(), Some("sealed"));
    assert_eq!(store.refresh_successor("r3").await.unwrap(), None, "kept per token");
    time.advance(2).await;
    assert_eq!(store.refresh_successor("r2").await.unwrap(), None, "gone once the interval is over");
}

/// Whether `consumed` is a reuse of `value` first used by `first` at or after `since` (and
/// not in the future).
fn used_since<T: PartialEq>(consumed: &Consumed<T>, value: &T, first: &str, since: u64) -> bool {
    matches!(consumed, Consumed::Reused { value: v, by, at, .. }
        if v == value && by == first && *at >= since && *at <= since + 1)
}

async fn claims_keep_the_first_value(store: &dyn Coordination) {
    assert_eq!(store.claim("client-secret:a", "first").await.unwrap(), "first");
    assert_eq!(store.claim("client-secret:a", "second").await.unwrap(), "first", "a later claim gets the kept value");
    assert_eq!(store.claim("client-secret:b", "other").await.unwrap(), "other");
    store.ping().await.unwrap();
}

async fn published_keys_are_read_back_and_replaced(store: &dyn Coordination) {
    assert_eq!(store.published_keys().await.unwrap(), None, "nothing is published yet");
    let first = PublishedKeys { jwks: r#"{"keys":[{"kid":"k1"}]}"#.into(), active_kids: r#"{"RS256":"k1"}"#.into() };
    store.publish_keys(&first.jwks, &first.active_kids).await.unwrap();
    assert_eq!(store.published_keys().await.unwrap(), Some(first));
    let second = PublishedKeys { jwks: r#"{"keys":[]}"#.into(), active_kids: "{}".into() };
    store.publish_keys(&second.jwks, &second.active_kids).await.unwrap();
    assert_eq!(store.published_keys().await.unwrap(), Some(second), "a publication replaces the last one");
}

async fn concurrent_consumers_get_one_fresh_code(store: Arc<dyn Store>, time: &Time) {
    store.put_code("race", &code("g"), time.now() + 60).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.consume_code("race", "the client").await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Consumed::Fresh(_)) {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

/// A grant that lives ten seconds from `t`, with one access token.
fn grant(id: &str, t: u64) -> Grant {
    Grant {
        id: id.into(),
        client_id: "a".into(),
        subject: "s".into(),
        scope: Scope::parse("openid").unwrap(),
        auth_time: t,
        session_id: "sid".into(),
        expires_at: t + 10,
        access_tokens: vec![("jti".into(), t + 5)],
        claims: Default::default(),
    }
}

async fn grants_are_updated_while_present_and_revoked_whole(store: &dyn Grants, time: &Time) {
    let t = time.now();
    let grant = grant("g", t);
    store.put_grant(&grant).await.unwrap();
    assert_eq!(store.grant("g").await.unwrap(), Some(grant.clone()));
    let updated = Grant { access_tokens: vec![("jti".into(), t + 5), ("jti-2".into(), t + 6)], ..grant.clone() };
    assert!(store.update_grant(&updated, None).await.unwrap());
    assert_eq!(store.grant("g").await.unwrap(), Some(updated.clone()));
    assert_eq!(store.revoke_grant("g").await.unwrap(), Some(updated.clone()), "revoking hands over the tokens");
    assert_eq!(store.grant("g").await.unwrap(), None);
    assert_eq!(store.revoke_grant("g").await.unwrap(), None);
    assert!(!store.update_grant(&updated, None).await.unwrap(), "a revoked grant is not brought back");
    let token =
        RefreshToken { grant_id: "g".into(), client_id: "a".into(), scope: Scope::default(), expires_at: t + 9 };
    assert!(!store.update_grant(&updated, Some(("late", &token))).await.unwrap(), "nor by issuing a refresh token");
    assert_eq!(store.grant("g").await.unwrap(), None);
}

async fn device_grants_are_found_by_user_code_swapped_only_from_what_is_stored_and_expire(
    store: &dyn DeviceGrants,
    time: &Time,
) {
    let pending = device::new_grant("tv", Scope::parse("openid").unwrap(), time.now(), 2);
    assert!(store.put_device_grant("dc", "uc", &pending, pending.expires_at + 2).await.unwrap());
    let other = device::new_grant("tv", Scope::default(), time.now(), 2);
    assert!(
        !store.put_device_grant("dc-2", "uc", &other, other.expires_at).await.unwrap(),
        "a live user code is not taken twice"
    );
    assert_eq!(store.device_grant("dc-2").await.unwrap(), None, "nothing of the refused one is stored");
    assert_eq!(store.device_code_of_user_code("uc").await.unwrap().as_deref(), Some("dc"));
    assert_eq!(store.device_grant("dc").await.unwrap(), Some(pending.clone()));

    let approved = DeviceGrant {
        status: DeviceStatus::Approved { subject: "alice".into(), auth_time: time.now(), session_id: "sid".into() },
        ..pending.clone()
    };
    let denied = DeviceGrant { status: DeviceStatus::Denied, ..pending.clone() };
    assert!(store.swap_device_grant("dc", &pending, &approved).await.unwrap());
    assert!(!store.swap_device_grant("dc", &pending, &denied).await.unwrap(), "swapped from a stale read");
    assert_eq!(store.device_grant("dc").await.unwrap(), Some(approved.clone()));
    assert!(!store.swap_device_grant("absent", &pending, &denied).await.unwrap());
    assert_eq!(store.device_grant("absent").await.unwrap(), None, "a swap creates nothing");

    time.advance(2).await;
    assert_eq!(store.device_code_of_user_code("uc").await.unwrap(), None, "the user code goes at the expiry");
    assert_eq!(store.device_grant("dc").await.unwrap(), Some(approved.clone()), "the record is kept longer");
    time.advance(2).await;
    assert_eq!(store.device_grant("dc").await.unwrap(), None, "the swap kept the record's expiry");
    assert!(!store.swap_device_grant("dc", &approved, &denied).await.unwrap());
    let later = device::new_grant("tv", Scope::default(), time.now(), 2);
    assert!(
        store.put_device_grant("dc-3", "uc", &later, later.expires_at).await.unwrap(),
        "an expired user code is free again"
    );
}

async fn concurrent_polls_redeem_an_approval_once(store: Arc<dyn Store>, time: &Time) {
    let pending = device::new_grant("tv", Scope::default(), time.now(), 60);
    assert!(store.put_device_grant("race-dc", "race-uc", &pending, pending.expires_at).await.unwrap());
    let approval = device::Approval { subject: "alice".into(), auth_time: time.now(), session_id: "sid".into() };
    let approved = device::decide(&pending, Some(approval), time.now()).unwrap();
    assert!(store.swap_device_grant("race-dc", &pending, &approved).await.unwrap());
    let now = time.now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let read = store.device_grant("race-dc").await.unwrap().unwrap();
                let polled = device::poll(&read, "tv", now);
                match (polled.answer, polled.next) {
                    (Ok(_), Some(next)) => store.swap_device_grant("race-dc", &read, &next).await.unwrap(),
                    _ => false,
                }
            })
        })
        .collect();
    let mut redeemed = 0;
    for task in tasks {
        if task.await.unwrap() {
            redeemed += 1;
        }
    }
    assert_eq!(redeemed, 1);
}

async fn a_users_consents_are_listed_until_they_expire_or_are_deleted(store: &dyn Ephemeral, time: &Time) {
    let t = time.now();
    let (openid, profile) = (Scope::parse("openid").unwrap(), Scope::parse("openid profile").unwrap());
    assert_eq!(store.user_consents("listed").await.unwrap(), [], "nobody consented yet");
    store.put_consent("listed", "zeta", &openid, t + 2).await.unwrap();
    store.put_consent("listed", "alpha", &openid, t + 10).await.unwrap();
    store.put_consent("listed", "alpha", &profile, t + 10).await.unwrap();
    store.put_consent("listed:x", "y", &openid, t + 10).await.unwrap();
    store.put_consent("listed", "born-expired", &openid, t).await.unwrap();
    let both = [("alpha".to_owned(), profile.clone()), ("zeta".to_owned(), openid.clone())];
    assert_eq!(store.user_consents("listed").await.unwrap(), both, "sorted by client, the latest scope");
    assert_eq!(store.user_consents("listed:x").await.unwrap(), [("y".to_owned(), openid.clone())]);
    time.advance(2).await;
    assert_eq!(store.user_consents("listed").await.unwrap(), [("alpha".to_owned(), profile.clone())], "expired");
    store.delete_consent("listed", "alpha").await.unwrap();
    assert_eq!(store.consent("listed", "alpha").await.unwrap(), None, "deleted");
    assert_eq!(store.user_consents("listed").await.unwrap(), [], "and unlisted");
    store.delete_consent("listed", "never").await.unwrap();
    assert_eq!(store.user_consents("listed:x").await.unwrap(), [("y".to_owned(), openid)], "another user's stay");
}

async fn sessions_and_consents_expire_and_can_be_removed(store: &dyn Ephemeral, time: &Time) {
    let t = time.now();
    let session =
        Session { id: "secret".into(), sid: "sid".into(), subject: "s".into(), auth_time: t, csrf_token: "c".into() };
    store.put_session(&session, t + 10).await.unwrap();
    assert_eq!(store.session("secret").await.unwrap(), Some(session));
    store.delete_session("secret").await.unwrap();
    assert_eq!(store.session("secret").await.unwrap(), None);

    let scope = Scope::parse("openid profile").unwrap();
    store.put_consent("s", "a", &scope, t + 2).await.unwrap();
    assert_eq!(store.consent("s", "a").await.unwrap(), Some(scope));
    assert_eq!(store.consent("s", "b").await.unwrap(), None, "consent is per client");
    assert_eq!(store.consent("a", "s").await.unwrap(), None);
    time.advance(2).await;
    assert_eq!(store.consent("s", "a").await.unwrap(), None, "consent expires");
}

/// The user index lists what a subject holds, only while it exists: a session until it is
/// deleted or expires, a grant (with its expiry moved by an update) until it is revoked or
/// expires; other subjects' entries are never listed.
async fn the_user_index_lists_a_subjects_live_sessions_and_grants(store: &dyn Store, time: &Time) {
    let t = time.now();
    let session = |id: &str, sid: &str, subject: &str| Session {
        id: id.into(),
        sid: sid.into(),
        subject: subject.into(),
        auth_time: t,
        csrf_token: "c".into(),
    };
    store.put_session(&session("cookie-b", "sid-b", "index-s"), t + 10).await.unwrap();
    store.put_session(&session("cookie-a", "sid-a", "index-s"), t + 2).await.unwrap();
    store.put_session(&session("cookie-o", "sid-o", "index-other"), t + 10).await.unwrap();
    let listed = |sid: &str, id: &str, expires_at| UserSession {
        sid: sid.into(),
        signed_in_at: t,
        expires_at,
        session_id: id.into(),
    };
    assert_eq!(
        store.user_sessions("index-s").await.unwrap(),
        [listed("sid-a", "cookie-a", t + 2), listed("sid-b", "cookie-b", t + 10)]
    );
    store.delete_session("cookie-b").await.unwrap();
    assert_eq!(store.user_sessions("index-s").await.unwrap(), [listed("sid-a", "cookie-a", t + 2)], "ended: gone");

    let online = Grant { subject: "index-s".into(), expires_at: t + 2, ..grant("index-online", t) };
    let offline = Grant {
        subject: "index-s".into(),
        client_id: "b".into(),
        scope: Scope::parse("openid offline_access").unwrap(),
        ..grant("index-offline", t)
    };
    let others = Grant { subject: "index-other".into(), ..grant("index-others", t) };
    for grant in [&online, &offline, &others] {
        store.put_grant(grant).await.unwrap();
    }
    let user_grant = |grant_id: &str, client_id: &str, offline| UserGrant {
        grant_id: grant_id.into(),
        client_id: client_id.into(),
        offline,
    };
    let both = [user_grant("index-offline", "b", true), user_grant("index-online", "a", false)];
    assert_eq!(store.user_grants("index-s").await.unwrap(), both);
    let extended = Grant { expires_at: t + 10, ..online.clone() };
    assert!(store.update_grant(&extended, None).await.unwrap());
    time.advance(2).await;
    assert_eq!(store.user_sessions("index-s").await.unwrap(), [], "an expired session is not listed");
    assert_eq!(store.user_grants("index-s").await.unwrap(), both, "the update moved the grant's expiry");
    store.revoke_grant("index-offline").await.unwrap();
    assert_eq!(store.user_grants("index-s").await.unwrap(), [user_grant("index-online", "a", false)], "revoked: gone");
    assert_eq!(store.user_grants("index-other").await.unwrap(), [user_grant("index-others", "a", false)]);
    assert_eq!(store.user_sessions("index-other").await.unwrap(), [listed("sid-o", "cookie-o", t + 10)]);
    assert_eq!(store.user_grants("index-nobody").await.unwrap(), []);
}

/// A user's activity counts their live sessions; the latest sign-in is that of a session
/// not yet expired, ended or not.
async fn user_activity_counts_live_sessions_and_the_latest_sign_in(store: &dyn Store, time: &Time) {
    let t = time.now();
    let session = |id: &str, sid: &str, auth_time: u64| Session {
        id: id.into(),
        sid: sid.into(),
        subject: "active-s".into(),
        auth_time,
        csrf_token: "c".into(),
    };
    let nobody = UserActivity { active_sessions: 0, last_sign_in: None };
    assert_eq!(store.user_activity("active-s").await.unwrap(), nobody);
    store.put_session(&session("active-a", "active-sid-a", t - 5), t + 2).await.unwrap();
    store.put_session(&session("active-b", "active-sid-b", t - 1), t + 10).await.unwrap();
    assert_eq!(
        store.user_activity("active-s").await.unwrap(),
        UserActivity { active_sessions: 2, last_sign_in: Some(t - 1) }
    );
    store.delete_session("active-b").await.unwrap();
    let ended = UserActivity { active_sessions: 1, last_sign_in: Some(t - 1) };
    assert_eq!(store.user_activity("active-s").await.unwrap(), ended, "an ended session's sign-in still counts");
    time.advance(2).await;
    let expired = UserActivity { active_sessions: 0, last_sign_in: Some(t - 1) };
    assert_eq!(store.user_activity("active-s").await.unwrap(), expired, "until it would have expired");
    assert_eq!(store.user_activity("active-other").await.unwrap(), nobody);
}

/// The client index lists the grants issued to a client and the subjects who consented to
/// it, while each lives; removing the client ends them all and leaves other clients' alone.
async fn the_client_index_lists_a_clients_live_grants_and_consents(store: &dyn Store, time: &Time) {
    let t = time.now();
    let openid = Scope::parse("openid").unwrap();
    store.put_client(client("held")).await.unwrap();
    let short = Grant { client_id: "held".into(), expires_at: t + 2, ..grant("held-short", t) };
    let long = Grant { client_id: "held".into(), ..grant("held-long", t) };
    let revoked = Grant { client_id: "held".into(), ..grant("held-revoked", t) };
    let others = Grant { client_id: "held-other".into(), ..grant("held-others", t) };
    for grant in [&short, &long, &revoked, &others] {
        store.put_grant(grant).await.unwrap();
    }
    store.revoke_grant("held-revoked").await.unwrap();
    store.put_consent("bob", "held", &openid, t + 10).await.unwrap();
    store.put_consent("alice", "held", &openid, t + 10).await.unwrap();
    store.put_consent("carol", "held", &openid, t + 2).await.unwrap();
    store.put_consent("dave", "held", &openid, t + 10).await.unwrap();
    store.delete_consent("dave", "held").await.unwrap();
    store.put_consent("alice", "held-other", &openid, t + 10).await.unwrap();
    store.put_consent("alice:held", "x", &openid, t + 10).await.unwrap();
    let holdings = |grants: &[&str], consents: &[&str]| ClientHoldings {
        grants: grants.iter().map(|g| g.to_string()).collect(),
        consents: consents.iter().map(|c| c.to_string()).collect(),
    };
    let all = holdings(&["held-long", "held-short"], &["alice", "bob", "carol"]);
    assert_eq!(store.client_holdings("held").await.unwrap(), all, "sorted; revoked and deleted ones are not listed");
    time.advance(2).await;
    let live = holdings(&["held-long"], &["alice", "bob"]);
    assert_eq!(store.client_holdings("held").await.unwrap(), live, "expired ones are not listed");

    assert_eq!(ending::remove_client(store, "held").await.unwrap(), live);
    assert_eq!(store.client("held").await.unwrap(), None);
    assert_eq!(store.grant("held-long").await.unwrap(), None, "its grant is revoked");
    assert_eq!(store.consent("alice", "held").await.unwrap(), None, "its consents are deleted");
    assert_eq!(store.user_consents("bob").await.unwrap(), [], "and gone from the user's list");
    assert_eq!(store.client_holdings("held").await.unwrap(), ClientHoldings::default());
    assert!(store.grant("held-others").await.unwrap().is_some(), "another client's grant stays");
    assert_eq!(store.consent("alice", "held-other").await.unwrap(), Some(openid.clone()));
    assert_eq!(store.consent("alice:held", "x").await.unwrap(), Some(openid));
    assert_eq!(store.client_holdings("held-never").await.unwrap(), ClientHoldings::default());
}

async fn reservations_stay_within_their_budget_and_window(store: &dyn Counters, time: &Time) {
    let t = time.now();
    let alice = [Budget { key: "user:alice", limit: 2 }];
    assert_eq!(
        store.reserve(&alice, t + 10).await.unwrap(),
        Reservation { allowed: true, counts: vec![1], retry_after: 0 }
    );
    assert_eq!(store.reserve(&alice, t + 10).await.unwrap().counts, vec![2]);
    let refused = store.reserve(&alice, t + 10).await.unwrap();
    assert!(!refused.allowed, "the budget is spent");
    assert_eq!(refused.counts, vec![2], "a refused attempt is not counted");
    assert!((8..=10).contains(&refused.retry_after), "the window ends in 10 s: {refused:?}");
    store.refund(&["user:alice"]).await.unwrap();
    assert_eq!(store.reserve(&alice, t + 10).await.unwrap().counts, vec![2], "a refund makes room for one");
    for _ in 0..3 {
        store.refund(&["user:alice"]).await.unwrap();
    }
    store.refund(&["user:nobody"]).await.unwrap();
    assert_eq!(store.reserve(&alice, t + 10).await.unwrap().counts, vec![1], "refunds stop at zero");

    let both = [Budget { key: "user:bob", limit: 5 }, Budget { key: "address:a", limit: 1 }];
    assert_eq!(store.reserve(&both, t + 10).await.unwrap().counts, vec![1, 1]);
    let refused = store.reserve(&both, t + 10).await.unwrap();
    assert!(!refused.allowed, "one spent budget refuses the attempt");
    assert_eq!(refused.counts, vec![1, 1], "and it is counted in neither");
    assert_eq!(store.reserve(&both[..1], t + 10).await.unwrap().counts, vec![2]);

    let carol = [Budget { key: "user:carol", limit: 1 }];
    assert!(store.reserve(&carol, t + 2).await.unwrap().allowed);
    assert!(!store.reserve(&carol, t + 2).await.unwrap().allowed);
    time.advance(2).await;
    let reopened = store.reserve(&carol, t + 20).await.unwrap();
    assert_eq!((reopened.allowed, reopened.counts), (true, vec![1]), "the window ends, a new one starts at 1");
}

/// Many attempts at once, on one budget shared with a roomier one: exactly `limit` are
/// granted, and the refused ones leave nothing counted in the other budget.
async fn concurrent_reservations_grant_exactly_the_limit(store: Arc<dyn Store>, time: &Time) {
    let window_ends_at = time.now() + 60;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let budgets = [Budget { key: "race:user", limit: 5 }, Budget { key: "race:address", limit: 64 }];
                store.reserve(&budgets, window_ends_at).await.unwrap().allowed
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += u32::from(task.await.unwrap());
    }
    assert_eq!(granted, 5);
    let address = store.reserve(&[Budget { key: "race:address", limit: 64 }], window_ends_at).await.unwrap();
    assert_eq!(address.counts, vec![6], "the 59 refused attempts were given back");
}

async fn active_sessions_counts_live_sessions_only(store: &dyn Ephemeral, time: &Time) {
    let t = time.now();
    assert_eq!(store.active_sessions().await.unwrap(), 0);
    let session = |id: &str| Session {
        id: id.into(),
        sid: format!("sid-{id}"),
        subject: "s".into(),
        auth_time: t,
        csrf_token: "c".into(),
    };
    store.put_session(&session("short"), t + 2).await.unwrap();
    store.put_session(&session("long"), t + 10).await.unwrap();
    store.put_session(&session("gone"), t + 10).await.unwrap();
    store.put_session(&session("born-expired"), t).await.unwrap();
    assert_eq!(store.active_sessions().await.unwrap(), 3);
    store.delete_session("gone").await.unwrap();
    assert_eq!(store.active_sessions().await.unwrap(), 2, "a logout ends the count");
    time.advance(2).await;
    assert_eq!(store.active_sessions().await.unwrap(), 1, "an expired session no longer counts");
    store.delete_session("long").await.unwrap();
    assert_eq!(store.active_sessions().await.unwrap(), 0);
}
fn link(grant_id: &str, client_id: &str) -> SessionGrant {
    SessionGrant { grant_id: grant_id.into(), client_id: client_id.into() }
}

async fn a_closed_session_lists_its_grants_and_links_no_more(store: &dyn SessionEnds, time: &Time) {
    let t = time.now();
    assert!(store.link_session_grant("sid-a", "g2", "app", t + 10).await.unwrap());
    assert!(store.link_session_grant("sid-a", "g1", "other", t + 10).await.unwrap());
    assert!(store.link_session_grant("sid-b", "g3", "app", t + 10).await.unwrap());
    let closed = store.close_session_grants("sid-a", t + 10).await.unwrap();
    assert_eq!(closed, [link("g1", "other"), link("g2", "app")], "sorted, with their clients");
    assert!(!store.link_session_grant("sid-a", "g4", "app", t + 10).await.unwrap(), "a closed session links no more");
    assert_eq!(store.close_session_grants("sid-a", t + 10).await.unwrap(), closed, "closing again lists the same");
    assert_eq!(store.close_session_grants("sid-b", t + 10).await.unwrap(), [link("g3", "app")], "per session");
    assert_eq!(store.close_session_grants("sid-never", t + 2).await.unwrap(), []);
    assert!(!store.link_session_grant("sid-never", "g5", "app", t + 2).await.unwrap(), "closed before any grant");
    assert!(store.link_session_grant("sid-short", "g6", "app", t + 2).await.unwrap());
    time.advance(2).await;
    assert_eq!(store.close_session_grants("sid-short", t + 10).await.unwrap(), [], "the links expire with the session");
    assert!(store.link_session_grant("sid-never", "g7", "app", t + 10).await.unwrap(), "the closing expires too");
}

async fn a_session_signed_in_to_again_keeps_its_grants_listed_past_its_first_expiry(
    store: &dyn SessionEnds,
    time: &Time,
) {
    let t = time.now();
    assert!(store.link_session_grant("sid-again", "g1", "app", t + 2).await.unwrap());
    store.keep_session_grants("sid-again", t + 10).await.unwrap();
    store.keep_session_grants("sid-again", t + 1).await.unwrap();
    store.keep_session_grants("sid-unlinked", t + 10).await.unwrap();
    time.advance(3).await;
    assert_eq!(
        store.close_session_grants("sid-again", t + 10).await.unwrap(),
        [link("g1", "app")],
        "kept, never shortened"
    );
    assert!(store.link_session_grant("sid-unlinked", "g2", "app", t + 10).await.unwrap(), "keeping creates nothing");
}

async fn a_session_token_check_reads_the_session_end_with_the_deny_list(store: &dyn Store, time: &Time) {
    let t = time.now();
    store.revoke_token("jti-denied", t + 10).await.unwrap();
    let check = store.session_token_check("jti-live", "sid-ended").await.unwrap();
    assert_eq!((check.token.revoked, check.session_ended_at), (false, None), "nothing ended yet");
    assert_eq!(check.token.epoch, store.token_check("jti-live").await.unwrap().epoch, "the same data epoch");
    store.remember_session_end("sid-ended", t - 1, t + 2).await.unwrap();
    store.remember_session_end("sid-born-expired", t - 1, t).await.unwrap();
    let check = store.session_token_check("jti-denied", "sid-ended").await.unwrap();
    assert_eq!((check.token.revoked, check.session_ended_at), (true, Some(t - 1)));
    let other = store.session_token_check("jti-live", "sid-other").await.unwrap();
    assert_eq!(other.session_ended_at, None, "per session");
    let expired = store.session_token_check("jti-live", "sid-born-expired").await.unwrap();
    assert_eq!(expired.session_ended_at, None, "a marker no token needs is not kept");
    time.advance(2).await;
    let check = store.session_token_check("jti-live", "sid-ended").await.unwrap();
    assert_eq!(check.session_ended_at, None, "the marker lives as long as the session's last token");
}

fn delivery(sid: &str, client_id: &str, due_at: u64) -> LogoutDelivery {
    LogoutDelivery {
        sid: sid.into(),
        client_id: client_id.into(),
        subject: "alice".into(),
        first_due_at: due_at,
        due_at,
        failed_attempts: 0,
    }
}

async fn logout_deliveries_are_queued_once_per_session_and_client_and_claimed_by_one(store: &dyn LogoutQueue, t: u64) {
    assert!(store.queue_logout(&delivery("sid-a", "app", t)).await.unwrap());
    assert!(!store.queue_logout(&delivery("sid-a", "app", t - 5)).await.unwrap(), "one per (session, client)");
    assert!(store.queue_logout(&delivery("sid-a", "other app", t - 1)).await.unwrap());
    assert!(store.queue_logout(&delivery("sid-b", "app", t + 10)).await.unwrap());
    let claimed = store.claim_logouts(t, t + 30, 10).await.unwrap();
    assert_eq!(claimed, [delivery("sid-a", "other app", t - 1), delivery("sid-a", "app", t)], "due ones, oldest first");
    assert_eq!(store.claim_logouts(t + 29, t + 60, 10).await.unwrap(), [delivery("sid-b", "app", t + 10)], "leased");
    let retry = LogoutDelivery { due_at: t + 31, failed_attempts: 1, ..delivery("sid-a", "app", t) };
    store.requeue_logout(&retry).await.unwrap();
    store.finish_logout("sid-a", "other app").await.unwrap();
    assert_eq!(store.claim_logouts(t + 30, t + 90, 10).await.unwrap(), [], "requeued for later; finished");
    assert_eq!(store.claim_logouts(t + 31, t + 90, 1).await.unwrap(), [retry], "due again once its time comes");
    assert!(!store.queue_logout(&delivery("sid-a", "app", t)).await.unwrap(), "still queued while unfinished");
    store.finish_logout("sid-a", "app").await.unwrap();
    store.finish_logout("sid-b", "app").await.unwrap();
    assert_eq!(store.claim_logouts(t + 1000, t + 2000, 10).await.unwrap(), [], "nothing left");
    assert!(store.queue_logout(&delivery("sid-a", "app", t)).await.unwrap(), "a finished one can be queued again");
    store.finish_logout("sid-a", "app").await.unwrap();
}

async fn concurrent_claims_lend_each_logout_delivery_once(store: Arc<dyn Store>, time: &Time) {
    let t = time.now();
    for i in 0..20 {
        assert!(store.queue_logout(&delivery(&format!("sid-{i}"), "app", t)).await.unwrap());
    }
    let claims = (0..8).map(|_| {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.claim_logouts(t, t + 30, 3).await.unwrap() })
    });
    let mut claimed: Vec<String> = Vec::new();
    for claim in claims {
        claimed.extend(claim.await.unwrap().into_iter().map(|d| d.sid));
    }
    claimed.sort();
    let mut unique = claimed.clone();
    unique.dedup();
    assert_eq!((claimed.len(), unique.len()), (20, 20), "every delivery claimed exactly once");
    for i in 0..20 {
        store.finish_logout(&format!("sid-{i}"), "app").await.unwrap();
    }
}

/// The checks of the directory port.
fn connector(name: &str, issuer: &str) -> ConnectorRecord {
    ConnectorRecord {
        name: name.into(),
        display_name: format!("Continue with {name}"),
        icon: ButtonIcon::OpenId,
        upstream: Upstream::Oidc(OidcUpstream {
            issuer: issuer.into(),
            client_id: "portcullis".into(),
            client_secret: "upstream-secret".into(),
            scopes: vec!["openid".into(), "email".into()],
            claims: ClaimPaths::default(),
            skip_email_verified: false,
            userinfo: true,
        }),
        group_prefix: "corp:".into(),
        allowed_groups: vec!["staff".into()],
        refresh_interval: 600,
        login_hint_domains: vec![],
    }
}

async fn connectors_are_upserted_found_listed_in_name_order_and_deleted(store: &dyn Federation) {
    let (zeta, alpha) = (connector("zeta", "https://z.example"), connector("alpha", "https://a.example"));
    store.put_connector(zeta.clone()).await.unwrap();
    store.put_connector(alpha.clone()).await.unwrap();
    assert_eq!(store.connector("alpha").await.unwrap(), Some(alpha.clone()));
    assert_eq!(store.connector("none").await.unwrap(), None);
    let moved = connector("zeta", "https://moved.example");
    store.put_connector(moved.clone()).await.unwrap();
    assert_eq!(store.connectors().await.unwrap(), [alpha, moved], "replaced, and sorted by name");
    store.delete_connector("alpha").await.unwrap();
    store.delete_connector("never").await.unwrap();
    assert_eq!(store.connectors().await.unwrap().len(), 1);
    store.delete_connector("zeta").await.unwrap();
    assert_eq!(store.connectors().await.unwrap(), []);
}

async fn federated_users_are_kept_until_they_expire(store: &dyn Federation, time: &Time) {
    let t = time.now();
    let federated = FederatedUser {
        user: user("ann@corp", "federated-subject"),
        connector: "corp".into(),
        upstream_subject: "u-1".into(),
        upstream_credential: Some("1.sealed".into()),
        checked_at: t,
    };
    store.put_federated_user(&federated, t + 2).await.unwrap();
    assert_eq!(store.federated_user("federated-subject").await.unwrap(), Some(federated.clone()));
    assert_eq!(store.federated_user("other").await.unwrap(), None);
    let rechecked = FederatedUser { checked_at: t + 1, upstream_credential: None, ..federated };
    store.put_federated_user(&rechecked, t + 2).await.unwrap();
    assert_eq!(store.federated_user("federated-subject").await.unwrap(), Some(rechecked), "replaced");
    time.advance(2).await;
    assert_eq!(store.federated_user("federated-subject").await.unwrap(), None, "expired");
}

async fn keeps_the_directory_contract(store: &dyn Directory) {
    clients_are_upserted_found_listed_and_deleted(store).await;
    users_are_found_by_username_and_subject(store).await;
    users_are_found_by_the_identities_they_claim(store).await;
    usernames_list_the_stored_users(store).await;
}

/// Every contract check, port by port, against one store.
async fn keeps_the_contract(store: &dyn Store, time: &Time) {
    keeps_the_directory_contract(store).await;
    connectors_are_upserted_found_listed_in_name_order_and_deleted(store).await;
    federated_users_are_kept_until_they_expire(store, time).await;
    codes_are_consumed_exactly_once(store, time).await;
    the_first_use_is_recorded_with_who_and_when(store, time).await;
    refresh_tokens_can_be_peeked_and_consumed_once(store, time).await;
    refresh_successors_are_kept_for_their_interval(store, time).await;
    grants_are_updated_while_present_and_revoked_whole(store, time).await;
    revoked_tokens_stay_denied_until_they_expire(store, time).await;
    sessions_and_consents_expire_and_can_be_removed(store, time).await;
    a_users_consents_are_listed_until_they_expire_or_are_deleted(store, time).await;
    device_grants_are_found_by_user_code_swapped_only_from_what_is_stored_and_expire(store, time).await;
    active_sessions_counts_live_sessions_only(store, time).await;
    a_closed_session_lists_its_grants_and_links_no_more(store, time).await;
    a_session_signed_in_to_again_keeps_its_grants_listed_past_its_first_expiry(store, time).await;
    a_session_token_check_reads_the_session_end_with_the_deny_list(store, time).await;
    logout_deliveries_are_queued_once_per_session_and_client_and_claimed_by_one(store, time.now()).await;
    the_user_index_lists_a_subjects_live_sessions_and_grants(store, time).await;
    user_activity_counts_live_sessions_and_the_latest_sign_in(store, time).await;
    the_client_index_lists_a_clients_live_grants_and_consents(store, time).await;
    reservations_stay_within_their_budget_and_window(store, time).await;
    claims_keep_the_first_value(store).await;
    published_keys_are_read_back_and_replaced(store).await;
    retired_keys_are_listed_until_they_expire(store, time).await;
    assert_eq!(store.eviction().await.unwrap(), Eviction::Never, "the test stores never evict");
    a_token_check_reads_the_data_epoch_too(store).await;
    the_data_epoch_is_created_once(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_keeps_the_contract() {
    let now = Arc::new(AtomicU64::new(1_000_000));
    let store = Arc::new(MemoryStore::new(Clock::manual(Arc::clone(&now))));
    let time = Time::Manual(now);
    keeps_the_contract(store.as_ref(), &time).await;
    store.purge_expired();
    concurrent_consumers_get_one_fresh_code(Arc::clone(&store) as Arc<dyn Store>, &time).await;
    concurrent_claims_lend_each_logout_delivery_once(Arc::clone(&store) as Arc<dyn Store>, &time).await;
    concurrent_polls_redeem_an_approval_once(Arc::clone(&store) as Arc<dyn Store>, &time).await;
    concurrent_reservations_grant_exactly_the_limit(store, &time).await;
}

/// The metrics wrapper the provider puts around every store changes no behaviour, and
/// its metrics show that the contract exercises every operation of every port.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instrumented_store_keeps_the_contract() {
    let now = Arc::new(AtomicU64::new(1_000_000));
    let inner: Arc<dyn Store> = Arc::new(MemoryStore::new(Clock::manual(Arc::clone(&now))));
    let metrics = Metrics::new();
    let store: Arc<dyn Store> = Arc::new(Instrumented::new(inner, &metrics));
    let time = Time::Manual(now);
    keeps_the_contract(store.as_ref(), &time).await;
    let untested: Vec<&str> =
        OPERATIONS.iter().copied().filter(|op| metrics.store_op(op).0.get_sample_count() == 0).collect();
    assert!(untested.is_empty(), "the contract calls every operation; not called: {untested:?}");
    concurrent_consumers_get_one_fresh_code(Arc::clone(&store), &time).await;
    concurrent_claims_lend_each_logout_delivery_once(Arc::clone(&store), &time).await;
    concurrent_reservations_grant_exactly_the_limit(store, &time).await;
}

/// The per-replica copy answers like the directory behind it.
#[tokio::test]
async fn cached_directory_keeps_the_directory_contract() {
    keeps_the_directory_contract(&Cached::new(MemoryStore::new(Clock::system()))).await;
}

const REDIS_PASSWORD: &str = "contract-secret";

/// A key prefix of this run's own, so runs sharing a server never meet.
fn unique_config(server: &RedisServer) -> RedisConfig {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    RedisConfig {
        key_prefix: format!("contract-{}-{nanos}", std::process::id()),
        ..RedisConfig::new(server.url(REDIS_PASSWORD))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_keeps_the_contract() {
    let server = RedisServer::start(REDIS_PASSWORD);
    let config = unique_config(&server);
    let wrong_password = RedisConfig { url: server.url("wrong"), ..config.clone() };
    assert!(
        matches!(RedisStore::connect(wrong_password).await, Err(StoreError::Unavailable(_))),
        "refused credentials fail the connect"
    );
    let store: Arc<dyn Store> = Arc::new(RedisStore::connect(config).await.unwrap());
    let time = Time::Real;
    keeps_the_contract(store.as_ref(), &time).await;
    concurrent_consumers_get_one_fresh_code(Arc::clone(&store), &time).await;
    concurrent_claims_lend_each_logout_delivery_once(Arc::clone(&store), &time).await;
    concurrent_polls_redeem_an_approval_once(Arc::clone(&store), &time).await;
    concurrent_reservations_grant_exactly_the_limit(store, &time).await;
}

/// A stalled Redis applies a consume after its caller gave up on it (`CLIENT PAUSE` holds
/// the script until the pause ends): the caller's next use finds the value used, and is
/// told it may be its own retry, with the fingerprint of the first use to compare.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_reports_a_use_after_a_late_applied_one_as_a_possible_retry() {
    let server = RedisServer::start(REDIS_PASSWORD);
    let config = RedisConfig { command_timeout: Duration::from_millis(500), ..unique_config(&server) };
    let store = RedisStore::connect(config).await.unwrap();
    let t = Clock::system().now();
    // The consume script is loaded first, as it is in any running installation.
    assert_eq!(store.consume_code("never stored", "the client").await.unwrap(), Consumed::Unknown);
    store.put_code("stalled", &code("g"), t + 60).await.unwrap();
    server.cli(&["CLIENT", "PAUSE", "1500", "WRITE"]);
    let stalled = store.consume_code("stalled", "the client").await;
    assert!(matches!(stalled, Err(StoreError::Unavailable(_))), "the caller gives up after 500 ms: {stalled:?}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let retry = store.consume_code("stalled", "the client").await.unwrap();
    assert!(
        matches!(&retry, Consumed::Reused { by, may_be_retry: true, .. } if by == "the client"),
        "the stalled consume was applied later; this use may be its retry: {retry:?}"
    );
    store.put_code("prompt", &code("g"), t + 60).await.unwrap();
    store.consume_code("prompt", "the client").await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = store.consume_code("prompt", "the client").await.unwrap();
    assert!(
        matches!(later, Consumed::Reused { may_be_retry: true, .. }),
        "after the command timeout, a use may be a retry of one whose answer was lost: {later:?}"
    );
}

/// Waits for `check` to hold, five seconds at most: announcements travel asynchronously.
async fn eventually<F: Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "{what}, within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn client_name(store: &RedisStore, client_id: &str) -> Option<String> {
    store.client(client_id).await.unwrap().and_then(|client| client.client_name.clone())
}

async fn username_of(store: &RedisStore, subject: &str) -> Option<String> {
    store.user_by_subject(subject).await.unwrap().map(|user| user.username.clone())
}

/// Two replicas: what one writes reaches the other's directory copy key by key, while a
/// key nobody announced keeps being served from the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_replicas_drop_exactly_the_directory_entries_that_changed() {
    let server = RedisServer::start(REDIS_PASSWORD);
    let config = unique_config(&server);
    let writer = RedisStore::connect(config.clone()).await.unwrap();
    let reader = RedisStore::connect(config.clone()).await.unwrap();
    let named = |id: &str, name: &str| ClientRecord { client_name: Some(name.into()), ..client(id) };
    writer.put_client(named("one", "One")).await.unwrap();
    writer.put_client(named("two", "Two")).await.unwrap();
    assert_eq!(client_name(&reader, "one").await.as_deref(), Some("One"));
    assert_eq!(client_name(&reader, "two").await.as_deref(), Some("Two"));

    let unannounced = serde_json::to_string(&named("two", "Two, unannounced")).unwrap();
    server.cli(&["SET", &format!("{}:v1:{{clients}}:client:two", config.key_prefix), &unannounced]);
    writer.put_client(named("one", "One, announced")).await.unwrap();
    eventually("the reader sees the announced client", || async {
        client_name(&reader, "one").await.as_deref() == Some("One, announced")
    })
    .await;
    assert_eq!(client_name(&reader, "two").await.as_deref(), Some("Two"), "an unannounced key stays cached");
    writer.delete_client("two").await.unwrap();
    eventually("the reader sees the removal", || async { client_name(&reader, "two").await.is_none() }).await;

    writer.put_user(user("ann", "s-1")).await.unwrap();
    assert_eq!(username_of(&reader, "s-1").await.as_deref(), Some("ann"));
    writer.put_user(user("ann", "s-2")).await.unwrap();
    eventually("the reader drops ann's old subject and finds her new one", || async {
        username_of(&reader, "s-1").await.is_none() && username_of(&reader, "s-2").await.as_deref() == Some("ann")
    })
    .await;
    writer.delete_user("ann").await.unwrap();
    eventually("the reader sees ann removed", || async {
        reader.user_by_username("ann").await.unwrap().is_none() && username_of(&reader, "s-2").await.is_none()
    })
    .await;
}

/// An evicting `maxmemory-policy` is reported, and so is the change back.
#[tokio::test]
async fn redis_reports_an_evicting_policy() {
    let server = RedisServer::start(REDIS_PASSWORD);
    let store = RedisStore::connect(unique_config(&server)).await.unwrap();
    assert_eq!(store.eviction().await.unwrap(), Eviction::Never);
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    assert_eq!(store.eviction().await.unwrap(), Eviction::Evicts("allkeys-lru".into()));
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    assert_eq!(store.eviction().await.unwrap(), Eviction::Never);
}

/// A Redis that lost its data has no epoch, so the next reader creates a new one: that is
/// how replicas and the controller learn that the declared state must be applied again.
#[tokio::test]
async fn a_flushed_redis_gets_a_new_data_epoch() {
    let server = RedisServer::start(REDIS_PASSWORD);
    let store = RedisStore::connect(unique_config(&server)).await.unwrap();
    let before = epoch(&store).await.unwrap();
    assert_eq!(epoch(&store).await.unwrap().id, before.id);
    server.cli(&["FLUSHALL"]);
    let after = epoch(&store).await.unwrap();
    assert!(after.created, "the first reader after the loss creates the epoch");
    assert_ne!(after.id, before.id);
    assert_eq!(epoch(&store).await.unwrap().id, after.id);
}
