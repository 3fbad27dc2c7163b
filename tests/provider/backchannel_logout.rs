//! OpenID Connect Back-Channel Logout 1.0: the logout tokens the provider POSTs to a
//! relying party when a session it got tokens in ends.

use portcullis::keys::JwtType;
use portcullis::protocol::backchannel_logout::LogoutTokenClaims;
use portcullis::provider::RegistrationPolicy;
use serde_json::{Value, json};

use crate::fixtures::fixtures_with_webapp;
use crate::harness::{Browser, TestServer, jwt_part, location_param};
use crate::logout::logout_with_hint;
use crate::logout_rp::LogoutRp;

/// A provider whose webapp client has the back-channel logout URI of `rp`.
async fn server_for(rp: &LogoutRp, name: &str) -> TestServer {
    let folder = fixtures_with_webapp(name, &format!("  backchannelLogoutUri: {}\n", rp.uri));
    TestServer::start_on(folder, RegistrationPolicy::Open).await
}

/// Signs alice in to the webapp twice in one session and logs her out; the ID token.
async fn sign_in_and_out(server: &TestServer) -> String {
    let browser = Browser::new(server);
    server.webapp_tokens(&browser, "openid offline_access").await;
    let tokens = server.webapp_tokens(&browser, "openid").await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    logout_with_hint(server, &browser, &id_token).await;
    id_token
}

async fn outcomes(server: &TestServer) -> [f64; 3] {
    let total = "portcullis_backchannel_logout_total";
    [
        server.metric(total, &[("result", "delivered")]).await,
        server.metric(total, &[("result", "retried")]).await,
        server.metric(total, &[("result", "given_up")]).await,
    ]
}

#[tokio::test]
async fn backchannel_logout_2_4_the_logout_token_is_signed_typed_and_carries_exactly_its_claims() {
    let rp = LogoutRp::start(0).await;
    let server = server_for(&rp, "bcl-claims").await;
    assert_eq!(outcomes(&server).await, [0.0; 3], "the series exist from the start");
    let id_token = sign_in_and_out(&server).await;
    let delivered = rp.wait_for(1).await;
    assert_eq!(delivered.len(), 1, "one token for the session, however many grants it had");
    let token = &delivered[0];
    let now = server.provider.clock.now();
    let verified =
        server.provider.keys.load().verify::<LogoutTokenClaims>(token, JwtType::LogoutToken, &server.base, now);
    assert!(verified.is_ok(), "signed by a key of our JWKS, typ logout+jwt: {verified:?}");
    assert_eq!(jwt_part(token, 0)["typ"], "logout+jwt");
    let claims = jwt_part(token, 1);
    let id_claims = jwt_part(&id_token, 1);
    assert_eq!(claims["sid"], id_claims["sid"], "the ID token's sid");
    assert_eq!(claims["sub"], id_claims["sub"], "the ID token's sub");
    assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some(server.base.as_str()), Some("webapp")));
    assert_eq!(claims["events"], json!({"http://schemas.openid.net/event/backchannel-logout": {}}));
    assert!(claims.get("nonce").is_none(), "§2.4 prohibits a nonce");
    let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert!(exp > iat && exp - iat <= 300, "short-lived");
    assert!(claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()));
    let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["aud", "events", "exp", "iat", "iss", "jti", "sid", "sub"]);
    assert_eq!(outcomes(&server).await, [1.0, 0.0, 0.0]);
}

#[tokio::test]
async fn backchannel_logout_2_8_a_failed_delivery_is_tried_again_and_delivered() {
    let rp = LogoutRp::start(1).await;
    let server = server_for(&rp, "bcl-retry").await;
    sign_in_and_out(&server).await;
    let delivered = rp.wait_for(1).await;
    assert_eq!((delivered.len(), rp.attempts()), (1, 2), "a 500, then delivered");
    assert_eq!(outcomes(&server).await, [1.0, 1.0, 0.0]);
}

#[tokio::test]
async fn backchannel_logout_2_8_a_delivery_that_keeps_failing_is_given_up_after_the_bound() {
    let rp = LogoutRp::start(u32::MAX).await;
    let server = server_for(&rp, "bcl-give-up").await;
    sign_in_and_out(&server).await;
    for _ in 0..200 {
        if outcomes(&server).await[2] == 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let [delivered, retried, given_up] = outcomes(&server).await;
    assert_eq!((delivered, given_up), (0.0, 1.0), "given up once the (3 s) bound is spent");
    assert!(retried >= 1.0, "tried again before giving up");
    assert_eq!(f64::from(rp.attempts()), retried + 1.0, "every attempt reached the RP");
    let now = server.provider.clock.now();
    let left: Vec<Value> =
        portcullis::store::LogoutQueue::claim_logouts(server.provider.store.as_ref(), now + 600, now + 700, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| json!(d.sid))
            .collect();
    assert_eq!(left, Vec::<Value>::new(), "nothing left queued");
}

const REGISTERED_CALLBACK: &str = "https://registered.example/cb";

/// Registers a client through RFC 7591 with `metadata` (and the initial access token
/// `token`, if any); the response's status and body.
async fn register(server: &TestServer, token: Option<&str>, metadata: &Value) -> (u16, Value) {
    let mut request = server.http.post(server.url("/register")).json(metadata);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Signs alice in to the registered `client` and logs her out with the ID token as the
/// hint; the logged-out page.
async fn sign_in_and_out_of(server: &TestServer, client: &Value) -> (String, String) {
    let (id, secret) = (client["client_id"].as_str().unwrap(), client["client_secret"].as_str().unwrap());
    let params =
        [("client_id", id), ("redirect_uri", REGISTERED_CALLBACK), ("response_type", "code"), ("scope", "openid")];
    let browser = Browser::new(server);
    let code = location_param(&browser.sign_in(&params).await, "code").expect("a code");
    let form = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REGISTERED_CALLBACK)];
    let tokens: Value = server.post_basic("/token", id, secret, &form).await.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let logout = browser.http.get(server.url("/logout")).query(&[("id_token_hint", &id_token)]).send().await.unwrap();
    assert_eq!(logout.status(), 200, "signed out, no redirect asked for");
    (id_token, logout.text().await.unwrap())
}

/// Back-Channel Logout 1.0 §2.2 through RFC 7591: a client registered with the operator's
/// initial access token names its back-channel logout URI, sees it echoed and gets its
/// logout token; open registration refuses the URI with `invalid_client_metadata`, since
/// the provider would POST wherever an anonymous registrant pointed it.
#[tokio::test]
async fn backchannel_logout_2_2_a_uri_registered_with_the_initial_access_token_gets_the_logout_token() {
    let rp = LogoutRp::start(0).await;
    let metadata = json!({
        "redirect_uris": [REGISTERED_CALLBACK],
        "backchannel_logout_uri": rp.uri,
        "backchannel_logout_session_required": true,
    });
    let open = TestServer::start().await;
    let (status, refused) = register(&open, None, &metadata).await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_client_metadata")), "{refused}");

    let server = TestServer::start_with(RegistrationPolicy::Token("initial-token".into())).await;
    let (status, client) = register(&server, Some("initial-token"), &metadata).await;
    assert_eq!(status, 201, "{client}");
    assert_eq!(
        (&client["backchannel_logout_uri"], &client["backchannel_logout_session_required"]),
        (&json!(rp.uri), &json!(true))
    );
    let (id_token, _) = sign_in_and_out_of(&server, &client).await;
    let delivered = rp.wait_for(1).await;
    assert_eq!(delivered.len(), 1);
    let claims = jwt_part(&delivered[0], 1);
    assert_eq!(claims["aud"], client["client_id"], "for the registered client");
    assert_eq!(claims["sid"], jwt_part(&id_token, 1)["sid"]);
    let read = server
        .http
        .get(client["registration_client_uri"].as_str().unwrap())
        .bearer_auth(client["registration_access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["backchannel_logout_uri"], json!(rp.uri), "RFC 7592 §2.1 reads it back");
}

/// Front-Channel Logout 1.0 §2 through RFC 7591: even an open registration may name a
/// front-channel logout URI (the browser loads it, not the provider); the logged-out page
/// frames it with `iss` and `sid` when the client requires them.
#[tokio::test]
async fn frontchannel_logout_2_a_self_registered_client_is_framed_at_logout() {
    let server = TestServer::start().await;
    let metadata = json!({
        "redirect_uris": [REGISTERED_CALLBACK],
        "frontchannel_logout_uri": "https://registered.example/frontchannel",
        "frontchannel_logout_session_required": true,
    });
    let (status, client) = register(&server, None, &metadata).await;
    assert_eq!(status, 201, "{client}");
    assert_eq!(client["frontchannel_logout_session_required"], true);
    let (id_token, page) = sign_in_and_out_of(&server, &client).await;
    let sid = jwt_part(&id_token, 1)["sid"].as_str().unwrap().to_owned();
    let iss = url::form_urlencoded::byte_serialize(server.base.as_bytes()).collect::<String>();
    let frame = format!(r#"<iframe src="https://registered.example/frontchannel?iss={iss}&#38;sid={sid}""#);
    assert!(page.contains(&frame), "{page}");
}
