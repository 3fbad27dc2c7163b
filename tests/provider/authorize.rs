//! OIDC Core §3.1.2 authorization endpoint, login and consent pages (RFC 6749 §4.1,
//! RFC 7636, RFC 9207).

use crate::harness::{
    Browser, Pkce, SPA_REDIRECT, TestServer, WEBAPP_REDIRECT, hidden, location_base, location_param, webapp_request,
};

#[tokio::test]
async fn oidc_core_3_1_2_full_login_returns_code_state_and_iss() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid profile", "xyz", "n1")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
    assert!(html.contains("Web App"), "the client's name is shown");
    let consent = browser.login(&html, "alice", "alice-password").await;
    assert_eq!(consent.status(), 200);
    let consent_html = consent.text().await.unwrap();
    assert!(consent_html.contains("name=\"decision\""));
    let redirect = browser.consent(&consent_html, "allow").await;
    assert_eq!(redirect.status(), 303);
    assert_eq!(location_base(&redirect), WEBAPP_REDIRECT);
    assert!(location_param(&redirect, "code").is_some_and(|c| c.len() >= 32));
    assert_eq!(location_param(&redirect, "state").as_deref(), Some("xyz"), "RFC 6749 §4.1.2: state echoed");
    assert_eq!(location_param(&redirect, "iss"), Some(server.base.clone()), "RFC 9207 §2: iss in the response");
}

#[tokio::test]
async fn oidc_core_3_1_2_1_post_authorization_request_is_accepted() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let response = browser.post("/authorize", &webapp_request("openid", "s", "n")).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("name=\"password\""));
}

#[tokio::test]
async fn rfc6749_3_1_2_unregistered_or_almost_matching_redirect_uri_gets_an_error_page_not_a_redirect() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    for uri in [
        "https://evil.example/callback",
        "http://127.0.0.1:9000/callback/",
        "http://127.0.0.1:9000/callbacK",
        "http://127.0.0.1:9000/callback?x=1",
        "http://127.0.0.1:9001/callback",
        "http://localhost:9000/callback",
        "http://127.0.0.1:9000/callback/../callback",
    ] {
        let params = [("client_id", "webapp"), ("redirect_uri", uri), ("response_type", "code"), ("scope", "openid")];
        let response = browser.authorize(&params).await;
        assert_eq!(response.status(), 400, "{uri}");
        assert!(response.headers().get("location").is_none(), "{uri} must not be redirected to");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    }
}

#[tokio::test]
async fn unknown_or_missing_client_gets_an_error_page() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    for params in [
        vec![
            ("client_id", "nobody"),
            ("redirect_uri", WEBAPP_REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
        ],
        vec![("redirect_uri", WEBAPP_REDIRECT), ("response_type", "code"), ("scope", "openid")],
    ] {
        let response = browser.authorize(&params).await;
        assert_eq!(response.status(), 400);
        assert!(response.headers().get("location").is_none());
    }
}

async fn redirected_error(server: &TestServer, params: &[(&str, &str)]) -> (String, Option<String>) {
    let response = Browser::new(server).authorize(params).await;
    assert_eq!(response.status(), 302, "{params:?}");
    assert_eq!(location_base(&response), params.iter().find(|(k, _)| *k == "redirect_uri").unwrap().1);
    assert_eq!(location_param(&response, "iss"), Some(server.base.clone()), "RFC 9207 on errors too");
    assert!(location_param(&response, "error_description").is_some());
    (location_param(&response, "error").unwrap(), location_param(&response, "state"))
}

#[tokio::test]
async fn rfc6749_4_1_2_1_errors_after_redirect_verification_are_redirected_with_state() {
    let server = TestServer::start().await;
    let base = [("client_id", "webapp"), ("redirect_uri", WEBAPP_REDIRECT), ("state", "keep-me")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut params = base.to_vec();
        params.extend_from_slice(extra);
        params
    };
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[("scope", "openid")], "invalid_request"),
        (&[("response_type", "token"), ("scope", "openid")], "unsupported_response_type"),
        (&[("response_type", "code id_token"), ("scope", "openid")], "unsupported_response_type"),
        (&[("response_type", "code"), ("scope", "profile")], "invalid_scope"),
        (&[("response_type", "code"), ("scope", "openid"), ("request", "eyJ.x.y")], "request_not_supported"),
        (&[("response_type", "code"), ("scope", "openid"), ("request_uri", "https://x")], "request_uri_not_supported"),
        (&[("response_type", "code"), ("scope", "openid"), ("prompt", "none login")], "invalid_request"),
    ];
    for (extra, expected) in cases {
        let (error, state) = redirected_error(&server, &with(extra)).await;
        assert_eq!(error, expected, "{extra:?}");
        assert_eq!(state.as_deref(), Some("keep-me"));
    }
}

/// A redirect URI anyone can register for itself (RFC 7591): the provider does not vouch
/// for it.
const REGISTERED_ELSEWHERE: &str = "https://elsewhere.example/cb";

/// RFC 9700 §4.11.2: a self-registered client's erroneous request, made before the user did
/// anything, gets the error page, so registering a client does not make the provider an
/// open redirector. A declared client's same requests are redirected (above).
#[tokio::test]
async fn rfc9700_4_11_2_a_self_registered_clients_errors_before_any_interaction_get_the_error_page() {
    let server = TestServer::start().await;
    let client = server.register_client(serde_json::json!({"redirect_uris": [REGISTERED_ELSEWHERE]})).await;
    let base =
        [("client_id", client["client_id"].as_str().unwrap()), ("redirect_uri", REGISTERED_ELSEWHERE), ("state", "s")];
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("response_type", "bogus"), ("scope", "openid")], "only response_type=code is supported"),
        (&[("response_type", "code"), ("scope", "profile")], "scope must include openid"),
        (
            &[("response_type", "code"), ("scope", "openid"), ("prompt", "create")],
            "prompt contains an unsupported value",
        ),
        (&[("response_type", "code"), ("scope", "openid"), ("prompt", "none")], "the user must log in"),
        (&[("response_type", "code"), ("scope", "openid"), ("id_token_hint", "a.b.c")], "id_token_hint is not"),
    ];
    for (extra, description) in cases {
        let mut params = base.to_vec();
        params.extend_from_slice(extra);
        let response = Browser::new(&server).authorize(&params).await;
        assert_eq!(response.status(), 400, "{extra:?}");
        assert!(response.headers().get("location").is_none(), "{extra:?} must not be redirected");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(response.text().await.unwrap().contains(description), "{extra:?}: {description}");
    }
    let mut declared = webapp_request("openid", "s", "n");
    declared[2] = ("response_type", "bogus");
    assert_eq!(redirected_error(&server, &declared).await.0, "unsupported_response_type", "declared clients redirect");
}

/// RFC 9700 §4.11.2: once the user has acted — signed in and consented, or refused — a
/// self-registered client gets its answer at its redirect URI like any other.
#[tokio::test]
async fn rfc9700_4_11_2_a_self_registered_client_is_answered_at_its_redirect_uri_after_the_user_acted() {
    let server = TestServer::start().await;
    let client = server.register_client(serde_json::json!({"redirect_uris": [REGISTERED_ELSEWHERE]})).await;
    let params = [
        ("client_id", client["client_id"].as_str().unwrap()),
        ("redirect_uri", REGISTERED_ELSEWHERE),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
    ];
    let browser = Browser::new(&server);
    let login = browser.authorize(&params).await.text().await.unwrap();
    let consent = browser.login(&login, "alice", "alice-password").await.text().await.unwrap();
    let denied = browser.consent(&consent, "deny").await;
    assert_eq!(denied.status(), 303);
    assert_eq!(location_base(&denied), REGISTERED_ELSEWHERE);
    assert_eq!(location_param(&denied, "error").as_deref(), Some("access_denied"));
    let allowed = browser.sign_in(&params).await;
    assert_eq!(location_base(&allowed), REGISTERED_ELSEWHERE);
    assert!(location_param(&allowed, "code").is_some());
}

/// The parameters the login pages carry sealed are bounded (issue 18.2); one over its
/// limit is `invalid_request`, sent to the verified redirect URI with `state`.
#[tokio::test]
async fn oidc_core_3_1_2_1_parameters_longer_than_the_sealed_limits_are_invalid_request() {
    let server = TestServer::start().await;
    for (name, limit) in portcullis::protocol::pending::SEALED_PARAMETER_LIMITS {
        let mut params = webapp_request("openid", "s", "n");
        params.retain(|(param, _)| *param != name);
        let at_limit = crate::fixtures::sealed_parameter_value(name, limit);
        assert_eq!(at_limit.len(), limit);
        params.push((name, &at_limit));
        assert_eq!(Browser::new(&server).authorize(&params).await.status(), 200, "{name} at {limit} bytes");
        let over = crate::fixtures::sealed_parameter_value(name, limit + 1);
        *params.last_mut().unwrap() = (name, &over);
        let response = Browser::new(&server).authorize(&params).await;
        assert_eq!(response.status(), 302, "{name}");
        assert_eq!(location_param(&response, "error").as_deref(), Some("invalid_request"));
        let description = format!("{name} is longer than {limit} bytes");
        assert_eq!(location_param(&response, "error_description"), Some(description));
    }
}

/// The sealed interaction opens only unmodified, in the browser that started it.
#[tokio::test]
async fn a_tampered_interaction_is_an_expired_page() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid", "s", "n")).await.text().await.unwrap();
    let interaction = hidden(&page, "interaction");
    let mut tampered = interaction.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let form = [
        ("interaction", tampered.as_str()),
        ("csrf_token", &hidden(&page, "csrf_token")),
        ("username", "alice"),
        ("password", "alice-password"),
    ];
    let refused = browser.post("/login", &form).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("This page has expired"));
    assert_eq!(browser.login(&page, "alice", "alice-password").await.status(), 200, "the original still works");
}

#[tokio::test]
async fn rfc6749_3_3_scope_order_does_not_matter_and_unknown_scopes_are_dropped() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let tokens = server.webapp_tokens(&browser, "email unknown-scope openid").await;
    assert_eq!(tokens["scope"], "email openid");
}

#[tokio::test]
async fn oidc_core_3_1_2_1_unknown_parameters_and_display_hints_are_ignored() {
    let server = TestServer::start().await;
    let mut params = webapp_request("openid", "s", "n");
    params.extend([
        ("display", "page"),
        ("ui_locales", "fr"),
        ("claims_locales", "fr"),
        ("acr_values", "0"),
        ("foo", "bar"),
    ]);
    let response = Browser::new(&server).authorize(&params).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn oidc_core_3_1_2_1_login_hint_prefills_the_username() {
    let server = TestServer::start().await;
    let mut params = webapp_request("openid", "s", "n");
    params.push(("login_hint", "alice"));
    let html = Browser::new(&server).authorize(&params).await.text().await.unwrap();
    assert!(html.contains("value=\"alice\""), "{html}");
}

#[tokio::test]
async fn rfc7636_4_4_1_public_client_without_pkce_is_refused() {
    let server = TestServer::start().await;
    let params = [
        ("client_id", "spa"),
        ("redirect_uri", SPA_REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s"),
    ];
    let (error, _) = redirected_error(&server, &params).await;
    assert_eq!(error, "invalid_request");
}

#[tokio::test]
async fn rfc7636_4_3_plain_code_challenge_method_is_refused() {
    let server = TestServer::start().await;
    let pkce = Pkce::new("plain");
    for method in [Some("plain"), None] {
        let mut params = vec![
            ("client_id", "spa"),
            ("redirect_uri", SPA_REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", pkce.challenge.as_str()),
        ];
        if let Some(method) = method {
            params.push(("code_challenge_method", method));
        }
        let (error, _) = redirected_error(&server, &params).await;
        assert_eq!(error, "invalid_request", "{method:?}");
    }
}

#[tokio::test]
async fn wrong_password_shows_the_form_again_with_a_generic_message_and_no_code() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid", "s", "n")).await.text().await.unwrap();
    let wrong = browser.login(&page, "alice", "not-her-password").await;
    assert_eq!(wrong.status(), 200);
    assert!(wrong.headers().get("location").is_none());
    let wrong_html = wrong.text().await.unwrap();
    assert!(wrong_html.contains("Incorrect username or password."));
    let unknown = browser.login(&page, "mallory", "whatever").await;
    let unknown_html = unknown.text().await.unwrap();
    assert!(unknown_html.contains("Incorrect username or password."), "no user enumeration");
    let retry = browser.login(&wrong_html, "alice", "alice-password").await;
    assert_eq!(retry.status(), 200, "the same form works after a failure");
}

#[tokio::test]
async fn login_form_without_csrf_token_or_from_another_browser_is_refused() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid", "s", "n")).await.text().await.unwrap();
    let interaction = hidden(&page, "interaction");
    let no_csrf = browser
        .post("/login", &[("interaction", &interaction), ("username", "alice"), ("password", "alice-password")])
        .await;
    assert_eq!(no_csrf.status(), 403);
    let wrong_csrf = browser
        .post(
            "/login",
            &[
                ("interaction", &interaction),
                ("csrf_token", "forged"),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
        )
        .await;
    assert_eq!(wrong_csrf.status(), 403);
    let other_browser = Browser::new(&server);
    let stolen = other_browser.login(&page, "alice", "alice-password").await;
    assert_eq!(stolen.status(), 403, "the CSRF token is bound to the browser that started the login");
    assert!(stolen.headers().get("location").is_none());
}

#[tokio::test]
async fn logins_are_throttled_per_username() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid", "s", "n")).await.text().await.unwrap();
    for _ in 0..5 {
        assert_eq!(browser.login(&page, "alice", "wrong").await.status(), 200);
    }
    let throttled = browser.login(&page, "alice", "alice-password").await;
    assert_eq!(throttled.status(), 429, "even the right password waits once throttled");
    assert!(throttled.text().await.unwrap().contains("Too many failed sign-in attempts"));
}

#[tokio::test]
async fn consent_deny_returns_access_denied() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid email", "st", "n")).await.text().await.unwrap();
    let consent = browser.login(&page, "alice", "alice-password").await.text().await.unwrap();
    assert!(consent.contains("See your email address"), "scopes are described in plain words");
    let denied = browser.consent(&consent, "deny").await;
    assert_eq!(denied.status(), 303);
    assert_eq!(location_param(&denied, "error").as_deref(), Some("access_denied"));
    assert_eq!(location_param(&denied, "state").as_deref(), Some("st"));
}

#[tokio::test]
async fn consent_is_remembered_per_user_client_and_scopes() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    browser.sign_in(&webapp_request("openid profile", "s", "n")).await;
    let again = browser.authorize(&webapp_request("profile openid", "s2", "n")).await;
    assert_eq!(again.status(), 302, "same scopes: straight back with a code");
    assert!(location_param(&again, "code").is_some());
    let more = browser.authorize(&webapp_request("openid profile email", "s3", "n")).await;
    assert_eq!(more.status(), 200, "a new scope needs consent");
    assert!(more.text().await.unwrap().contains("name=\"decision\""));
}

#[tokio::test]
async fn oidc_core_3_1_2_1_prompt_none_without_session_is_login_required() {
    let server = TestServer::start().await;
    let mut params = webapp_request("openid", "quiet", "n");
    params.push(("prompt", "none"));
    let response = Browser::new(&server).authorize(&params).await;
    assert_eq!(response.status(), 302);
    assert_eq!(location_param(&response, "error").as_deref(), Some("login_required"));
    assert_eq!(location_param(&response, "state").as_deref(), Some("quiet"));
}

#[tokio::test]
async fn oidc_core_3_1_2_1_prompt_none_with_session_returns_a_code_or_consent_required() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    browser.sign_in(&webapp_request("openid", "s", "n")).await;
    let mut params = webapp_request("openid", "quiet", "n");
    params.push(("prompt", "none"));
    let response = browser.authorize(&params).await;
    assert_eq!(response.status(), 302);
    assert!(location_param(&response, "code").is_some());
    let mut params = webapp_request("openid email", "quiet", "n");
    params.push(("prompt", "none"));
    let response = browser.authorize(&params).await;
    assert_eq!(location_param(&response, "error").as_deref(), Some("consent_required"));
}

#[tokio::test]
async fn oidc_core_3_1_2_1_prompt_login_forces_the_password_form() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    browser.sign_in(&webapp_request("openid", "s", "n")).await;
    let mut params = webapp_request("openid", "s", "n");
    params.push(("prompt", "login"));
    let page = browser.authorize(&params).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"password\""));
    let redirect = browser.login(&html, "alice", "alice-password").await;
    assert_eq!(redirect.status(), 303, "one login satisfies prompt=login; consent was remembered");
    assert!(location_param(&redirect, "code").is_some());
}

#[tokio::test]
async fn oidc_core_3_1_2_1_max_age_zero_forces_login_and_large_max_age_does_not() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    browser.sign_in(&webapp_request("openid", "s", "n")).await;
    let mut params = webapp_request("openid", "s", "n");
    params.push(("max_age", "3600"));
    assert_eq!(browser.authorize(&params).await.status(), 302);
    let mut params = webapp_request("openid", "s", "n");
    params.push(("max_age", "0"));
    let page = browser.authorize(&params).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("name=\"password\""));
    let mut params = webapp_request("openid", "s", "n");
    params.push(("max_age", "-1"));
    let (error, _) = redirected_error(&server, &params).await;
    assert_eq!(error, "invalid_request");
}

#[tokio::test]
async fn html_pages_carry_strict_security_headers() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let login = browser.authorize(&webapp_request("openid", "s", "n")).await;
    let error = browser.authorize(&[("client_id", "nobody")]).await;
    for response in [login, error] {
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("script-src"), "no script at all: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script"));
    }
    let css = server.http.get(server.url("/assets/portcullis.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
}

#[tokio::test]
async fn sso_cookie_is_http_only_and_same_site_lax() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let page = browser.authorize(&webapp_request("openid", "s", "n")).await.text().await.unwrap();
    let response = browser.login(&page, "alice", "alice-password").await;
    let cookies: Vec<&str> = response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    let session = cookies.iter().find(|c| c.starts_with("portcullis_session=")).expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "not Secure for an http issuer");
}

/// The hidden fields of a `form_post` response page, by name.
fn posted_fields(html: &str) -> std::collections::HashMap<String, String> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|field| {
            let (name, rest) = field.split_once("\" value=\"")?;
            Some((name.to_owned(), rest.split_once('"')?.0.to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn oauth_form_post_2_code_state_and_iss_are_posted_to_the_redirect_uri() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let mut request = webapp_request("openid", "xyz", "n1");
    request.push(("response_mode", "form_post"));
    let login = browser.authorize(&request).await.text().await.unwrap();
    let consent = browser.login(&login, "alice", "alice-password").await.text().await.unwrap();
    let response = browser.consent(&consent, "allow").await;
    assert_eq!(response.status(), 200, "a page, not a redirect");
    assert!(response.headers().get("location").is_none());
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self';") && policy.contains("form-action http://127.0.0.1:9000;"), "{policy}");
    let html = response.text().await.unwrap();
    assert!(html.contains(&format!("<form method=\"post\" action=\"{WEBAPP_REDIRECT}\">")), "{html}");
    let fields = posted_fields(&html);
    assert_eq!(fields.len(), 3, "{fields:?}");
    assert_eq!((fields["state"].as_str(), fields["iss"].as_str()), ("xyz", server.base.as_str()));
    assert_eq!(server.exchange(&fields["code"], &[]).await.status(), 200, "the posted code is redeemable");

    // A second request rides the session: the form comes straight from /authorize.
    request.retain(|(name, _)| *name != "state");
    request.push(("state", "again"));
    let response = browser.authorize(&request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(posted_fields(&response.text().await.unwrap())["state"], "again");
}

#[tokio::test]
async fn oauth_form_post_2_errors_after_the_redirect_uri_check_are_posted_too() {
    let server = TestServer::start().await;
    let browser = Browser::new(&server);
    let mut request = webapp_request("openid", "xyz", "n1");
    request.extend([("response_mode", "form_post"), ("prompt", "bogus")]);
    let response = browser.authorize(&request).await;
    assert_eq!(response.status(), 200);
    let fields = posted_fields(&response.text().await.unwrap());
    assert_eq!(fields["error"], "invalid_request");
    assert_eq!((fields["state"].as_str(), fields["iss"].as_str()), ("xyz", server.base.as_str()));
}

#[tokio::test]
async fn form_post_script_is_served_as_javascript() {
    let server = TestServer::start().await;
    let response = server.http.get(server.url("/assets/form-post.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(response.text().await.unwrap().contains("document.forms[0].submit()"));
}
