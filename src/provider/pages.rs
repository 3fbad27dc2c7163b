//! The HTML pages a person sees: login, consent, logout and errors.
//!
//! Templates live in `templates/` (askama, auto-escaped); the one stylesheet lives in
//! `assets/portcullis.css`. Pages carry no script and no inline style, so they work under a
//! strict Content-Security-Policy. Their words come from a [`Text`] catalogue.

use askama::Template;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use super::text::Text;

/// The policy every page is served with. Handlers whose form posts to another origin (a
/// `form_post` response, a logout redirect) widen `form-action` themselves.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet, compiled into the binary.
pub const STYLESHEET: &str = include_str!("../../assets/portcullis.css");

/// The script that submits a `form_post` response page's form on load.
pub const FORM_POST_SCRIPT: &str = include_str!("../../assets/form-post.js");

/// The script that continues from a front-channel logout page once its frames have loaded.
pub const FRONTCHANNEL_LOGOUT_SCRIPT: &str = include_str!("../../assets/frontchannel-logout.js");

/// OAuth 2.0 Form Post Response Mode §2: the authorization response as hidden fields of a
/// form posted to the client's redirect URI. The static [`FORM_POST_SCRIPT`] submits it; with
/// no script the person presses Continue.
#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub script: &'a str,
    pub redirect_uri: &'a str,
    pub destination: &'a str,
    pub params: &'a [(&'static str, String)],
}

/// The sign-in form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub action: &'a str,
    pub client_name: &'a str,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
    /// Prefilled after a failed attempt; empty on first display.
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// Set when the form signs in for a device authorization (posted to `/device`), in
    /// place of `interaction`.
    pub device: Option<DeviceFields<'a>>,
    /// The upstream identity providers the client lets people sign in with.
    pub connectors: Vec<ConnectorButton>,
    /// Whether the password form is shown (a client may allow upstream sign-in only).
    pub local_users: bool,
    /// Set when the form signs in through a directory connector (posted to
    /// `/login/upstream`) rather than as a local user.
    pub directory: Option<DirectoryFields<'a>>,
}

/// The directory connector a password form signs in through.
pub struct DirectoryFields<'a> {
    /// The connector's name, posted back.
    pub connector: &'a str,
    /// Its display name.
    pub label: &'a str,
    /// The username field's label, if the connector names it (e.g. "Corp username").
    pub username_prompt: Option<&'a str>,
}

/// A "Continue with …" link to sign in through a connector.
pub struct ConnectorButton {
    pub href: String,
    pub label: String,
    /// The picture's SVG, one of [`super::icons`]'s (never anything a request or a
    /// resource wrote: it is put into the page as it is).
    pub icon: Option<&'static str>,
}

/// What the forms of a device authorization carry to name it: its key and its user code.
pub struct DeviceFields<'a> {
    pub key: &'a str,
    pub user_code: &'a str,
}

/// The consent form: what the client asks for, allow or deny.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub action: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<ScopeLine<'a>>,
    /// Where the browser goes after the decision (see [`destination`]), so the person can
    /// tell a look-alike application from the real one.
    pub return_to: &'a str,
    pub interaction: &'a str,
    pub csrf_token: &'a str,
}

/// RFC 8628 §3.3: where the user enters the code their device shows.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub action: &'a str,
    pub csrf_token: &'a str,
    /// Prefilled from `verification_uri_complete`, or what was typed.
    pub user_code: &'a str,
    pub error: Option<&'a str>,
}

/// RFC 8628 §5.4: the consent form of a device authorization, naming the client and
/// showing the code, so the user can tell it is their own device asking.
#[derive(Template)]
#[template(path = "device_consent.html")]
pub struct DeviceConsentPage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub action: &'a str,
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<ScopeLine<'a>>,
    pub device: DeviceFields<'a>,
    pub csrf_token: &'a str,
}

/// What became of a device authorization the user decided on.
#[derive(Template)]
#[template(path = "device_done.html")]
pub struct DeviceDonePage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub title: &'a str,
    pub description: &'a str,
}

/// One requested scope, described in plain words.
pub struct ScopeLine<'a> {
    pub name: &'a str,
    pub description: &'a str,
}

/// An error shown to the person, for when there is nowhere safe to redirect it.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub title: &'a str,
    pub description: &'a str,
}

/// OIDC RP-Initiated Logout: the confirmation asked before signing out.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub action: &'a str,
    pub csrf_token: &'a str,
    pub client_id: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub client_name: Option<&'a str>,
}

/// Shown after logout when there is no redirect to follow.
#[derive(Template)]
#[template(path = "logged_out.html")]
pub struct LoggedOutPage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
}

/// Front-Channel Logout 1.0 §3: the signed-out page that frames each relying party's
/// front-channel logout URI, then (with [`FRONTCHANNEL_LOGOUT_SCRIPT`], or the Continue link
/// without script) goes on to the `post_logout_redirect_uri`, when there is one.
#[derive(Template)]
#[template(path = "frontchannel_logout.html")]
pub struct FrontchannelLogoutPage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub script: &'a str,
    pub frames: &'a [String],
    /// The `post_logout_redirect_uri` with `state`, already verified for the client.
    pub continue_to: Option<&'a str>,
}

/// `/account`: the signed-in user's applications (the clients they consented to) and
/// sessions, each with a form that revokes or signs out, carrying the session's CSRF token.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub text: &'a Text,
    pub stylesheet: &'a str,
    pub action: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub applications: Vec<AccountApplication>,
    pub sessions: Vec<AccountSession>,
}

/// A client the user consented to, and what it may do, in words.
pub struct AccountApplication {
    pub client_id: String,
    pub name: String,
    pub access: String,
}

/// One of the user's live sessions, its times as UTC text.
pub struct AccountSession {
    pub sid: String,
    /// The session of the browser looking at the page.
    pub current: bool,
    pub signed_in: String,
    pub ends: String,
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_minute(seconds: u64) -> String {
    let at = i64::try_from(seconds)
        .ok()
        .and_then(|seconds| cookie::time::OffsetDateTime::from_unix_timestamp(seconds).ok())
        .unwrap_or(cookie::time::OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}-{:02} {:02}:{:02} UTC", at.year(), u8::from(at.month()), at.day(), at.hour(), at.minute())
}

/// What a person recognises of a redirect URI: `host[:port]`, or the scheme of a
/// private-use URI (`com.example.app`).
pub fn destination(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => url.scheme().to_owned(),
        },
        Err(_) => redirect_uri.to_owned(),
    }
}

/// Renders `page` as an uncacheable HTML response under [`CONTENT_SECURITY_POLICY`].
/// A rendering failure is logged and answered as a plain-text 500.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    render_with_policy(status, page, HeaderValue::from_static(CONTENT_SECURITY_POLICY))
}

/// Like [`render`], for a page whose form submission ends in a redirect to `target` (the
/// client's redirect URI): browsers apply `form-action` to the redirect too, so the
/// target's origin (or, for a private-use scheme, the scheme) is allowed as well.
pub fn render_with_form_target<T: Template>(status: StatusCode, page: &T, target: &str) -> Response {
    let policy = form_action_source(target)
        .map(|source| CONTENT_SECURITY_POLICY.replace("form-action 'self'", &format!("form-action 'self' {source}")))
        .and_then(|policy| HeaderValue::from_str(&policy).ok())
        .unwrap_or_else(|| HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    render_with_policy(status, page, policy)
}

/// The CSP source expression for a URI: `scheme://host[:port]`, or `scheme:` for URIs
/// without a host.
fn form_action_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let source = match url.host_str() {
        Some(_) => url.origin().ascii_serialization(),
        None => format!("{}:", url.scheme()),
    };
    source.bytes().all(|b| b.is_ascii_graphic() && b != b';' && b != b',').then_some(source)
}

/// Renders a `form_post` response page under a policy that lets it run the provider's own
/// script and post only to the client's origin (or private-use scheme): not even to the
/// provider itself.
pub fn render_form_post(page: &FormPostPage<'_>) -> Option<Response> {
    let source = form_action_source(page.redirect_uri)?;
    let policy = CONTENT_SECURITY_POLICY
        .replace("form-action 'self'", &format!("form-action {source}"))
        .replace("default-src 'none';", "default-src 'none'; script-src 'self';");
    Some(render_with_policy(StatusCode::OK, page, HeaderValue::from_str(&policy).ok()?))
}

/// Renders a front-channel logout page under a policy that lets it frame exactly
/// `frame_sources` (the relying parties' origins) and run the provider's own script.
pub fn render_frontchannel_logout(page: &FrontchannelLogoutPage<'_>, frame_sources: &[String]) -> Option<Response> {
    let frame_src = frame_sources.join(" ");
    if frame_src.is_empty() || frame_src.bytes().any(|b| matches!(b, b';' | b',' | b'\'') || !b.is_ascii()) {
        return None;
    }
    let policy = CONTENT_SECURITY_POLICY
        .replace("default-src 'none';", &format!("default-src 'none'; script-src 'self'; frame-src {frame_src};"));
    Some(render_with_policy(StatusCode::OK, page, HeaderValue::from_str(&policy).ok()?))
}

fn render_with_policy<T: Template>(status: StatusCode, page: &T, policy: HeaderValue) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
                (header::CONTENT_SECURITY_POLICY, policy),
                (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (header::PRAGMA, HeaderValue::from_static("no-cache")),
            ],
            html,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "rendering a page failed");
            plain_server_error()
        }
    }
}

fn plain_server_error() -> Response {
    let headers: [(HeaderName, HeaderValue); 2] = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    (StatusCode::INTERNAL_SERVER_ERROR, headers, "internal server error\n").into_response()
}

#[cfg(test)]
mod form_target_tests {
    use super::super::text::ENGLISH;
    use super::*;

    #[test]
    fn csp_form_action_allows_the_redirect_target_origin_only() {
        assert_eq!(form_action_source("https://app.example:8443/cb?x=1").as_deref(), Some("https://app.example:8443"));
        assert_eq!(form_action_source("com.example.app:/cb").as_deref(), Some("com.example.app:"));
        assert_eq!(form_action_source("not a uri"), None);
        let page = LoggedOutPage { text: &ENGLISH, stylesheet: "/assets/portcullis.css" };
        let response = render_with_form_target(StatusCode::OK, &page, "http://127.0.0.1:9000/callback");
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains("form-action 'self' http://127.0.0.1:9000;"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn oauth_form_post_2_page_posts_the_parameters_to_the_redirect_uri_only() {
        let params = [("code", "c<0>de".to_owned()), ("state", "s\"t".to_owned()), ("iss", "https://id".to_owned())];
        let page = FormPostPage {
            text: &ENGLISH,
            stylesheet: "/assets/portcullis.css",
            script: "/assets/form-post.js",
            redirect_uri: "https://app.example:8443/cb?x=1&y=2",
            destination: "app.example:8443",
            params: &params,
        };
        let response = render_form_post(&page).unwrap();
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert_eq!(
            policy,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action https://app.example:8443; frame-ancestors 'none'; base-uri 'none'"
        );
        let html = page.render().unwrap();
        assert!(html.contains("<form method=\"post\" action=\"https://app.example:8443/cb?x=1&#38;y=2\">"), "{html}");
        assert!(html.contains("<input type=\"hidden\" name=\"code\" value=\"c&#60;0&#62;de\">"), "{html}");
        assert!(html.contains("name=\"state\" value=\"s&#34;t\""), "{html}");
        assert!(html.contains("<button type=\"submit\">Continue</button>"));
        assert!(html.contains("<script src=\"/assets/form-post.js\"></script>"));
        assert_eq!(html.matches("<script").count(), 1, "no inline script");
    }

    #[test]
    fn frontchannel_logout_3_page_frames_each_client_under_a_policy_naming_exactly_their_origins() {
        let frames = ["https://a.example/fc?iss=x&sid=1".to_owned(), "http://127.0.0.1:9000/fc".to_owned()];
        let page = FrontchannelLogoutPage {
            text: &ENGLISH,
            stylesheet: "/assets/portcullis.css",
            script: "/assets/frontchannel-logout.js",
            frames: &frames,
            continue_to: Some("https://a.example/bye?state=s\"1"),
        };
        let sources = ["http://127.0.0.1:9000".to_owned(), "https://a.example".to_owned()];
        let response = render_frontchannel_logout(&page, &sources).unwrap();
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert_eq!(
            policy,
            "default-src 'none'; script-src 'self'; frame-src http://127.0.0.1:9000 https://a.example; \
             style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        let html = page.render().unwrap();
        assert_eq!(html.matches("<iframe ").count(), 2);
        assert!(html.contains(r#"<iframe src="https://a.example/fc?iss=x&#38;sid=1" title="Signing out of an application" tabindex="-1">"#), "{html}");
        assert!(
            html.contains(
                r#"<a id="continue" class="button primary" href="https://a.example/bye?state=s&#34;1">Continue</a>"#
            ),
            "{html}"
        );
        assert!(html.contains(r#"<script src="/assets/frontchannel-logout.js"></script>"#));
        assert_eq!(html.matches("<script").count(), 1, "no inline script");
        assert_eq!(html.matches("<h1>").count(), 1);

        let stay = FrontchannelLogoutPage { continue_to: None, ..page };
        let html = stay.render().unwrap();
        assert!(!html.contains("<script") && !html.contains("id=\"continue\""), "nowhere to continue to: {html}");
        assert!(html.contains("You can close this page now."));
        assert!(render_frontchannel_logout(&stay, &[]).is_none(), "no frames, no frame-src to widen");
        assert!(render_frontchannel_logout(&stay, &["https://a.example; script-src *".to_owned()]).is_none());
    }

    #[test]
    fn destination_is_what_a_person_recognises_of_a_redirect_uri() {
        assert_eq!(destination("https://app.example/cb?x=1"), "app.example");
        assert_eq!(destination("http://127.0.0.1:9000/callback"), "127.0.0.1:9000");
        assert_eq!(destination("com.example.app:/cb"), "com.example.app");
    }
}

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::super::text::ENGLISH;
    use super::*;

    const CSS: &str = "/assets/portcullis.css";
    const XSS: &str = "<script>alert(1)</script>";
    /// askama 0.16 escapes `<` and `>` as numeric references, not `&lt;` / `&gt;`.
    const XSS_ESCAPED: &str = "&#60;script&#62;alert(1)&#60;/script&#62;";

    fn login<'a>(username: &'a str, error: Option<&'a str>) -> LoginPage<'a> {
        LoginPage {
            text: &ENGLISH,
            stylesheet: CSS,
            action: "/login",
            client_name: "Grafana",
            interaction: "int-123",
            csrf_token: "csrf-456",
            username,
            error,
            device: None,
            connectors: vec![],
            local_users: true,
            directory: None,
        }
    }

    #[test]
    fn a_directory_form_names_its_connector_and_posts_it_back_with_its_own_username_label() {
        let directory = DirectoryFields { connector: "corp-ldap", label: XSS, username_prompt: Some("Corp ID") };
        let page = LoginPage { action: "/login/upstream", directory: Some(directory), ..login("", None) };
        let html = page.render().unwrap();
        assert!(html.contains(r#"<form method="post" action="/login/upstream">"#), "{html}");
        assert!(html.contains(r#"<input type="hidden" name="connector" value="corp-ldap">"#), "{html}");
        assert!(html.contains(&format!("<strong>{XSS_ESCAPED}</strong>")) && !html.contains(XSS), "{html}");
        assert!(html.contains(r#"<label for="username">Corp ID</label>"#), "{html}");
        assert!(html.contains(r#"name="interaction" value="int-123""#) && html.contains(r#"name="password""#));
        let local = login("", None).render().unwrap();
        assert!(!local.contains(r#"name="connector""#) && local.contains(r#"<label for="username">Username</label>"#));
    }

    #[test]
    fn connector_links_are_escaped_and_a_connectors_only_page_has_no_password_form() {
        let connectors =
            vec![ConnectorButton { href: "/login/upstream?connector=a&x=\"1\"".into(), label: XSS.into(), icon: None }];
        let page = LoginPage { connectors, local_users: false, ..login("", None) }.render().unwrap();
        assert!(page.contains(&format!("Continue with {XSS_ESCAPED}")), "{page}");
        assert!(!page.contains(XSS) && !page.contains("x=\"1\""), "{page}");
        assert!(!page.contains("name=\"password\""), "no password form: {page}");
        let pictured =
            vec![ConnectorButton { href: "/l".into(), label: "Corp".into(), icon: Some("<svg class=\"icon\"></svg>") }];
        let page = LoginPage { connectors: pictured, ..login("", None) }.render().unwrap();
        assert!(
            page.contains("<a class=\"button full\" href=\"/l\"><svg class=\"icon\"></svg>Continue with Corp</a>"),
            "{page}"
        );
        let both = LoginPage { connectors: vec![], ..login("", None) }.render().unwrap();
        assert!(both.contains("name=\"password\"") && !both.contains("Continue with"));
    }

    fn consent(client_name: &str) -> ConsentPage<'_> {
        ConsentPage {
            text: &ENGLISH,
            stylesheet: CSS,
            action: "/consent",
            client_name,
            username: "alice",
            scopes: vec![
                ScopeLine { name: "openid", description: "Know who you are" },
                ScopeLine { name: "email", description: "See your email address" },
            ],
            return_to: "grafana.example",
            interaction: "int-123",
            csrf_token: "csrf-456",
        }
    }

    fn logout(client_name: Option<&str>) -> LogoutPage<'_> {
        LogoutPage {
            text: &ENGLISH,
            stylesheet: CSS,
            action: "/logout",
            csrf_token: "csrf-456",
            client_id: Some("grafana"),
            post_logout_redirect_uri: Some("https://grafana.example/?a=1&b=2"),
            state: Some("st\"ate"),
            client_name,
        }
    }

    fn account(client_name: &str) -> AccountPage<'static> {
        AccountPage {
            text: &ENGLISH,
            stylesheet: CSS,
            action: "/account",
            csrf_token: "csrf-456",
            username: "alice",
            applications: vec![AccountApplication {
                client_id: "grafana".into(),
                name: client_name.into(),
                access: "Confirm who you are".into(),
            }],
            sessions: vec![
                AccountSession { sid: "sid-1".into(), current: true, signed_in: "a".into(), ends: "b".into() },
                AccountSession { sid: "sid-2".into(), current: false, signed_in: "c".into(), ends: "d".into() },
            ],
        }
    }

    /// Every page, rendered, with its name.
    fn all_pages() -> Vec<(&'static str, String)> {
        vec![
            ("login", login("", None).render().expect("login renders")),
            ("login with error", login("alice", Some("Wrong username or password.")).render().expect("renders")),
            ("consent", consent("Grafana").render().expect("consent renders")),
            (
                "error",
                ErrorPage { text: &ENGLISH, stylesheet: CSS, title: "Unknown client", description: "No such client." }
                    .render()
                    .expect("error renders"),
            ),
            ("logout", logout(Some("Grafana")).render().expect("logout renders")),
            (
                "logout bare",
                LogoutPage {
                    text: &ENGLISH,
                    stylesheet: CSS,
                    action: "/logout",
                    csrf_token: "c",
                    client_id: None,
                    post_logout_redirect_uri: None,
                    state: None,
                    client_name: None,
                }
                .render()
                .expect("renders"),
            ),
            ("logged out", LoggedOutPage { text: &ENGLISH, stylesheet: CSS }.render().expect("logged out renders")),
            ("account", account("Grafana").render().expect("account renders")),
            ("account empty", AccountPage { applications: Vec::new(), ..account("x") }.render().expect("renders")),
        ]
    }

    /// Whether `html` holds something shaped like ` onclick=`.
    fn has_event_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(at, _)| {
            let rest = &html[at + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn every_page_is_a_complete_accessible_document() {
        for (name, html) in all_pages() {
            assert!(html.starts_with("<!doctype html>"), "{name}: doctype");
            assert!(html.contains(r#"<html lang="en">"#), "{name}: lang");
            assert!(
                html.contains(r#"<link rel="icon" href="data:image/svg+xml,"#),
                "{name}: icon, so no /favicon.ico request"
            );
            assert!(html.contains(r#"<meta name="viewport""#), "{name}: viewport");
            assert!(html.contains(r#"<meta name="referrer" content="no-referrer">"#), "{name}: referrer");
            assert!(html.contains("<title>") && html.contains("Portcullis</title>"), "{name}: title");
            assert!(html.contains(r#"<link rel="stylesheet" href="/assets/portcullis.css">"#), "{name}: stylesheet");
            assert!(html.contains("<main>"), "{name}: main");
            assert_eq!(html.matches("<h1>").count(), 1, "{name}: exactly one h1");
        }
    }

    #[test]
    fn no_page_has_script_or_inline_style() {
        for (name, html) in all_pages() {
            let lower = html.to_ascii_lowercase();
            assert!(!lower.contains("<script"), "{name}: script element");
            assert!(!lower.contains("style="), "{name}: style attribute");
            assert!(!lower.contains("<style"), "{name}: style element");
            assert!(!has_event_handler(&lower), "{name}: event handler attribute");
            assert!(!lower.contains("javascript:"), "{name}: javascript url");
            assert!(
                !lower.contains("href=\"http") && !lower.contains("src=") && !lower.contains("//cdn"),
                "{name}: external asset"
            );
        }
    }

    #[test]
    fn login_has_the_expected_fields() {
        let html = login("", None).render().expect("renders");
        assert!(html.contains(r#"<form method="post" action="/login">"#));
        assert!(html.contains(r#"<input type="hidden" name="interaction" value="int-123">"#));
        assert!(html.contains(r#"<input type="hidden" name="csrf_token" value="csrf-456">"#));
        assert!(html.contains(r#"name="username""#));
        assert!(html.contains(r#"name="password""#));
        assert!(html.contains(r#"<label for="username">"#) && html.contains(r#"id="username""#));
        assert!(html.contains(r#"<label for="password">"#) && html.contains(r#"id="password""#));
        assert!(html.contains(r#"autocomplete="username""#));
        assert!(html.contains(r#"autocomplete="current-password""#));
        assert_eq!(html.matches("required").count(), 2);
        assert!(html.contains(r#"<button type="submit" class="button primary full">Sign in</button>"#));
        assert!(html.contains("to continue to <strong>Grafana</strong>"));
        assert!(!html.contains(r#"role="alert""#));
        assert!(!html.contains("aria-describedby"));
        // The empty username field takes the focus.
        let username_input = html.split(r#"id="username""#).nth(1).expect("username input");
        let username_input = username_input.split('>').next().expect("tag end");
        assert!(username_input.contains("autofocus"));
        assert_eq!(html.matches("autofocus").count(), 1);
    }

    #[test]
    fn login_error_is_announced_and_linked() {
        let html = login("alice", Some("Wrong username or password.")).render().expect("renders");
        assert!(html.contains(r#"<p id="login-error" class="error" role="alert">Wrong username or password.</p>"#));
        assert_eq!(html.matches(r#"aria-describedby="login-error""#).count(), 2);
        assert!(html.contains(r#"value="alice""#));
        // With the username known, the password field takes the focus.
        let password_input = html.split(r#"id="password""#).nth(1).expect("password input");
        let password_input = password_input.split('>').next().expect("tag end");
        assert!(password_input.contains("autofocus"));
        assert_eq!(html.matches("autofocus").count(), 1);
    }

    #[test]
    fn login_escapes_user_controlled_strings() {
        let page = LoginPage {
            client_name: XSS,
            username: "\"><script>alert(1)</script>",
            error: Some(XSS),
            interaction: "\" autofocus onfocus=\"alert(1)",
            ..login("", None)
        };
        let html = page.render().expect("renders");
        assert!(!html.contains("<script"));
        assert!(html.contains(XSS_ESCAPED));
        assert!(!html.contains(r#"" onfocus=""#));
        assert!(html.contains("&#34;") || html.contains("&quot;"));
    }

    #[test]
    fn consent_lists_scopes_and_both_decisions() {
        let html = consent("Grafana").render().expect("renders");
        assert!(html.contains(r#"<form method="post" action="/consent">"#));
        assert!(html.contains(r#"name="interaction" value="int-123""#));
        assert!(html.contains(r#"name="csrf_token" value="csrf-456""#));
        assert!(html.contains("<strong>Grafana</strong> would like to:"));
        assert!(html.contains("sent back to <strong>grafana.example</strong>."));
        assert!(html.contains("Signed in as <strong>alice</strong>"));
        assert!(html.contains("Know who you are <small>openid</small>"));
        assert!(html.contains("See your email address <small>email</small>"));
        assert!(html.contains(r#"name="decision" value="allow""#));
        assert!(html.contains(r#"name="decision" value="deny""#));
        assert!(html.contains(">Allow</button>") && html.contains(">Deny</button>"));
    }

    #[test]
    fn consent_escapes_user_controlled_strings() {
        let mut page = consent(XSS);
        page.username = XSS;
        page.scopes = vec![ScopeLine { name: XSS, description: XSS }];
        let html = page.render().expect("renders");
        assert!(!html.contains("<script"));
        assert_eq!(html.matches(XSS_ESCAPED).count(), 4);
    }

    #[test]
    fn error_page_shows_title_and_escaped_description() {
        let html =
            ErrorPage { text: &ENGLISH, stylesheet: CSS, title: XSS, description: XSS }.render().expect("renders");
        assert!(!html.contains("<script"));
        assert!(html.contains(&format!("<h1>{XSS_ESCAPED}</h1>")));
        assert!(html.contains(&format!(r#"<p class="error" role="alert">{XSS_ESCAPED}</p>"#)));
    }

    #[test]
    fn logout_carries_the_request_parameters() {
        let html = logout(Some("Grafana")).render().expect("renders");
        assert!(html.contains("Sign out of Portcullis?"));
        assert!(html.contains("<strong>Grafana</strong>"));
        assert!(html.contains(r#"<form method="post" action="/logout">"#));
        assert!(html.contains(r#"<input type="hidden" name="csrf_token" value="csrf-456">"#));
        assert!(html.contains(r#"<input type="hidden" name="client_id" value="grafana">"#));
        assert!(html.contains(r#"name="post_logout_redirect_uri" value="https://grafana.example/?a=1&#38;b=2""#));
        assert!(html.contains(r#"name="state" value="st&#34;ate""#));
        assert!(html.contains(r#"name="decision" value="logout" class="button primary">Sign out</button>"#));
        assert!(html.contains(r#"name="decision" value="cancel" class="button secondary">Stay signed in</button>"#));
    }

    #[test]
    fn logout_omits_absent_parameters() {
        let page = LogoutPage { client_id: None, post_logout_redirect_uri: None, state: None, ..logout(None) };
        let html = page.render().expect("renders");
        assert!(html.contains(r#"name="csrf_token""#));
        assert!(!html.contains(r#"name="client_id""#));
        assert!(!html.contains(r#"name="post_logout_redirect_uri""#));
        assert!(!html.contains(r#"name="state""#));
        assert!(!html.contains("<strong>"));
    }

    #[test]
    fn logout_escapes_client_name() {
        let html = logout(Some(XSS)).render().expect("renders");
        assert!(!html.contains("<script"));
        assert!(html.contains(XSS_ESCAPED));
    }

    #[test]
    fn logged_out_page_says_so() {
        let html = LoggedOutPage { text: &ENGLISH, stylesheet: CSS }.render().expect("renders");
        assert!(html.contains("<h1>You are signed out.</h1>"));
    }

    #[test]
    fn account_page_has_a_csrf_protected_form_per_action_each_described_by_its_item() {
        let html = account("Grafana").render().expect("renders");
        assert_eq!(html.matches(r#"<form method="post" action="/account">"#).count(), 3);
        assert_eq!(html.matches(r#"<input type="hidden" name="csrf_token" value="csrf-456">"#).count(), 3);
        assert!(html.contains(r#"<div class="account-item" id="application-1"><strong>Grafana</strong> <small>Confirm who you are</small></div>"#), "{html}");
        assert!(html.contains(r#"name="revoke" value="grafana" class="button secondary" aria-describedby="application-1">Revoke access</button>"#), "{html}");
        assert!(html.contains(r#"name="sign_out" value="sid-2" class="button secondary" aria-describedby="session-2">Sign out</button>"#), "{html}");
        assert!(html.contains("<strong>This browser</strong> <small>Signed in a, ends b</small>"), "{html}");
        assert!(html.contains("<strong>Another browser or device</strong>"));
        assert_eq!(html.matches("<h2>").count(), 2, "applications, sessions");
        let empty = AccountPage { applications: Vec::new(), ..account("x") }.render().expect("renders");
        assert!(empty.contains("You have not allowed any application yet.") && !empty.contains("name=\"revoke\""));
    }

    #[test]
    fn account_page_escapes_client_names() {
        let html = account(XSS).render().expect("renders");
        assert!(!html.contains("<script"));
        assert!(html.contains(XSS_ESCAPED));
    }

    #[test]
    fn utc_minute_is_a_readable_utc_time() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(1_796_205_600), "2026-12-02 10:00 UTC");
        assert_eq!(utc_minute(u64::MAX), "1970-01-01 00:00 UTC", "out of range reads as the epoch, never panics");
    }

    #[test]
    fn stylesheet_href_is_escaped() {
        let html = LoggedOutPage { text: &ENGLISH, stylesheet: "/x\"><script>" }.render().expect("renders");
        assert!(!html.contains("<script"));
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn render_sets_security_headers() {
        let response = render(StatusCode::BAD_REQUEST, &login("", None));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::PRAGMA], "no-cache");
        let html = body(response).await;
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains(r#"name="password""#));
    }

    /// A value whose formatting fails, to make rendering fail.
    struct Broken;

    impl fmt::Display for Broken {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Err(fmt::Error)
        }
    }

    #[derive(Template)]
    #[template(source = "<p>{{ value }}</p>", ext = "html")]
    struct BrokenPage {
        value: Broken,
    }

    #[tokio::test]
    async fn render_failure_is_a_plain_500() {
        let response = render(StatusCode::OK, &BrokenPage { value: Broken });
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(body(response).await, "internal server error\n");
    }
}
