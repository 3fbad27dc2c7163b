//! Headless Chromium under chromedriver, driven over WebDriver: one fresh browser with its
//! own profile per test, whose console is collected so that any error or CSP violation
//! fails the test, with axe-core for accessibility and screenshots at two viewport sizes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::http::Method;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Flags for a browser on a machine without internet: without the `--disable-*` ones
/// Chromium keeps trying to reach Google's services.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-color-profile=srgb",
    "--lang=en-US",
];

/// axe-core 4.14.1, vendored unmodified (see `vendor/axe-core/README.md`).
const AXE: &str = include_str!("vendor/axe-core/axe.min.js");

const INSTALL_HINT: &str =
    "install Debian's `chromium` and `chromium-driver` packages (scripts/test does this when they are missing)";

/// How long a page may take to appear.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// A viewport: CSS pixels and device pixel ratio.
struct Viewport {
    name: &'static str,
    width: u32,
    height: u32,
    scale: f64,
    mobile: bool,
}

const DESKTOP: Viewport = Viewport { name: "desktop", width: 1280, height: 800, scale: 1.0, mobile: false };
const PHONE: Viewport = Viewport { name: "phone", width: 390, height: 844, scale: 2.0, mobile: true };

/// The element that has the keyboard focus, and whether it shows it.
#[derive(Debug)]
pub struct Focus {
    /// `#id` for an element with an id, else `tag:text` (`button:Allow`).
    pub key: String,
    pub focus_visible: bool,
    pub outline_style: String,
    pub outline_width: f64,
}

pub struct Chromium {
    pub client: Client,
    driver: Child,
    driver_port: u16,
    session: String,
    closed: bool,
    profile: PathBuf,
}

impl Chromium {
    /// Starts chromedriver on a free loopback port and a fresh headless Chromium under it.
    /// Panics, saying what is missing, when either cannot start: these tests never skip.
    pub async fn start() -> Self {
        let chromium = executable("PORTCULLIS_CHROMIUM", &["chromium", "chromium-browser"])
            .unwrap_or_else(|| panic!("no Chromium found (`chromium` on PATH or PORTCULLIS_CHROMIUM): {INSTALL_HINT}"));
        let chromedriver = executable("PORTCULLIS_CHROMEDRIVER", &["chromedriver"]).unwrap_or_else(|| {
            panic!("no chromedriver found (`chromedriver` on PATH or PORTCULLIS_CHROMEDRIVER): {INSTALL_HINT}")
        });
        let (mut driver, port) = start_chromedriver(&chromedriver);
        let profile = fresh_profile_dir();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|flag| (*flag).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push(format!("--window-size={},{}", DESKTOP.width, DESKTOP.height));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        capabilities.insert("goog:chromeOptions".into(), json!({"binary": chromium, "args": args}));
        let connected = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match connected {
            Ok(client) => client,
            Err(error) => {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("Chromium ({}) did not start under chromedriver: {error}; {INSTALL_HINT}", chromium.display())
            }
        };
        let session = client.session_id().await.ok().flatten().expect("a WebDriver session id");
        let browser = Self { client, driver, driver_port: port, session, closed: false, profile };
        browser.set_viewport(&DESKTOP).await;
        // A headless window never holds the system focus, so without this `:focus` (and
        // with it `:focus-visible`) would match nothing, as in a window behind another:
        // the page is tested as the focused window a keyboard user is typing into.
        browser.cdp("Emulation.setFocusEmulationEnabled", json!({"enabled": true})).await;
        browser
    }

    /// Ends the browser session (which closes Chromium) and chromedriver.
    pub async fn quit(mut self) {
        self.closed = self.client.clone().close().await.is_ok();
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
        self.wait_until_loaded().await;
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// Runs `script` (a function body) in the page and returns its result.
    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    pub async fn heading(&self) -> String {
        self.eval("return document.querySelector('h1')?.textContent ?? ''").await.as_str().unwrap_or("").to_owned()
    }

    /// The text of the first element matching `selector`.
    pub async fn text_of(&self, selector: &str) -> Option<String> {
        let script = format!("return document.querySelector({})?.textContent ?? null", json!(selector));
        self.eval(&script).await.as_str().map(str::to_owned)
    }

    /// The value of `attribute` on the first element matching `selector`.
    pub async fn attribute(&self, selector: &str, attribute: &str) -> Option<String> {
        let script =
            format!("return document.querySelector({})?.getAttribute({}) ?? null", json!(selector), json!(attribute));
        self.eval(&script).await.as_str().map(str::to_owned)
    }

    /// Waits until the browser has loaded a page whose URL starts with `prefix` (after a
    /// navigation the page starts itself, such as a script submitting a form).
    pub async fn wait_for_url(&self, prefix: &str) {
        self.wait_for(&format!("location.href.startsWith({}) && document.readyState === 'complete'", json!(prefix)))
            .await;
    }

    async fn wait_until_loaded(&self) {
        self.wait_for("document.readyState === 'complete'").await;
    }

    /// Polls `condition` (a JavaScript expression) until it is true.
    pub async fn wait_for(&self, condition: &str) {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        let script = format!("return Boolean({condition})");
        loop {
            // A navigation in progress can make a script fail; that only means "not yet".
            if let Ok(Value::Bool(true)) = self.client.execute(&script, Vec::new()).await {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for `{condition}`");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses `key` and waits for the next document to load (for a key that submits).
    pub async fn press_and_wait(&self, key: Key) {
        self.eval("document.documentElement.dataset.previous = 'yes'").await;
        self.press(key).await;
        self.wait_for("!document.documentElement.dataset.previous && document.readyState === 'complete'").await;
    }

    /// Presses and releases one key, as a keyboard would, wherever the focus is.
    pub async fn press(&self, key: Key) {
        self.keys(&[char::from(key)]).await;
    }

    /// Shift+Tab: the focus moves back.
    pub async fn press_shift_tab(&self) {
        let (shift, tab) = (char::from(Key::Shift), char::from(Key::Tab));
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: shift })
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab })
            .then(KeyAction::Up { value: shift });
        self.client.perform_actions(actions).await.expect("keyboard actions");
    }

    /// Types `text` into whatever has the focus.
    pub async fn type_text(&self, text: &str) {
        self.keys(&text.chars().collect::<Vec<_>>()).await;
    }

    async fn keys(&self, keys: &[char]) {
        let mut actions = KeyActions::new("keyboard".into());
        for &value in keys {
            actions = actions.then(KeyAction::Down { value }).then(KeyAction::Up { value });
        }
        self.client.perform_actions(actions).await.expect("keyboard actions");
    }

    /// Which element has the focus and how it is drawn.
    pub async fn focus(&self) -> Focus {
        let value = self
            .eval(
                "const e = document.activeElement;
                 const style = getComputedStyle(e);
                 const key = e.id ? '#' + e.id : e.tagName.toLowerCase() + ':' + e.textContent.trim();
                 return { key, visible: e.matches(':focus-visible'), style: style.outlineStyle,
                          width: parseFloat(style.outlineWidth) || 0 };",
            )
            .await;
        Focus {
            key: value["key"].as_str().unwrap_or_default().to_owned(),
            focus_visible: value["visible"].as_bool().unwrap_or(false),
            outline_style: value["style"].as_str().unwrap_or_default().to_owned(),
            outline_width: value["width"].as_f64().unwrap_or(0.0),
        }
    }

    /// Asserts that the focused element is `expected` and that the focus is visible: a
    /// keyboard user must see where they are (WCAG 2.4.7).
    pub async fn assert_focus(&self, expected: &str) {
        let focus = self.focus().await;
        assert_eq!(focus.key, expected, "focus is on {focus:?}");
        assert!(
            focus.focus_visible && focus.outline_style != "none" && focus.outline_width >= 2.0,
            "focus on {expected} is not visible: {focus:?}"
        );
    }

    /// The browser console since the last call (chromedriver's `goog:loggingPrefs` log).
    pub async fn console(&self) -> Vec<Value> {
        match self.client.issue_cmd(BrowserLog).await.expect("reading the browser log") {
            Value::Array(entries) => entries,
            other => panic!("unexpected browser log: {other}"),
        }
    }

    /// Fails on any console error or warning since the last call, CSP violations included.
    /// `status` allows exactly the one entry Chromium logs for a page that is itself
    /// served with that HTTP error status (an error page is meant to be one).
    pub async fn assert_console_clean(&self, page: &str, status: Option<u16>) {
        let url = self.url().await;
        let allowed = status
            .map(|status| format!("{url} - Failed to load resource: the server responded with a status of {status}"));
        let problems: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|entry| matches!(entry["level"].as_str(), Some("SEVERE" | "WARNING")))
            .filter(|entry| {
                let message = entry["message"].as_str().unwrap_or_default();
                !allowed.as_deref().is_some_and(|allowed| message.starts_with(allowed))
            })
            .collect();
        assert!(problems.is_empty(), "{page}: console errors or CSP violations: {problems:#?}");
    }

    /// Runs axe-core on the page and fails on serious or critical violations; lesser ones
    /// are printed.
    pub async fn assert_accessible(&self, page: &str) {
        let loaded = self.eval(&format!("{AXE}\n;return typeof window.axe")).await;
        assert_eq!(loaded, json!("object"), "axe-core did not load");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document).then(
                   r => done({ passes: r.passes.length, violations: r.violations.map(v => ({
                     id: v.id, impact: v.impact, help: v.help,
                     nodes: v.nodes.map(n => n.target.join(' ') + ' — ' + n.failureSummary) })) }),
                   e => done({ error: String(e) }));",
                Vec::new(),
            )
            .await
            .expect("axe.run");
        assert!(result.get("error").is_none(), "{page}: axe failed: {result}");
        assert!(result["passes"].as_u64().unwrap_or(0) > 10, "{page}: axe checked nothing: {result}");
        let violations = result["violations"].as_array().cloned().unwrap_or_default();
        let (serious, minor): (Vec<_>, Vec<_>) =
            violations.into_iter().partition(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")));
        for violation in &minor {
            eprintln!("{page}: minor accessibility finding: {violation}");
        }
        assert!(serious.is_empty(), "{page}: serious accessibility violations: {serious:#?}");
    }

    /// The page's own promises: `lang` set, the stylesheet applied (not blocked by the
    /// CSP), every visible form control labelled.
    pub async fn assert_page_basics(&self, page: &str) {
        let facts = self
            .eval(
                "const controls = [...document.querySelectorAll('input:not([type=hidden]), button, select, textarea')];
                 return {
                   lang: document.documentElement.lang,
                   styled: document.styleSheets.length === 1 && document.styleSheets[0].cssRules.length > 20
                     && getComputedStyle(document.querySelector('main')).borderTopStyle === 'solid',
                   unlabelled: controls.filter(c => c.tagName === 'BUTTON' ? !c.textContent.trim()
                     : !(c.labels && c.labels.length)).map(c => c.outerHTML),
                 };",
            )
            .await;
        assert_eq!(facts["lang"], "en", "{page}: html lang");
        assert_eq!(facts["styled"], true, "{page}: the stylesheet is not applied");
        assert_eq!(facts["unlabelled"], json!([]), "{page}: form controls without a label");
    }

    /// Everything a page must pass, light and dark, plus its screenshots: console clean,
    /// basics, axe in both colour schemes.
    pub async fn inspect(&self, page: &str, status: Option<u16>) {
        self.assert_console_clean(page, status).await;
        self.assert_page_basics(page).await;
        self.assert_accessible(page).await;
        self.screenshot(page, &DESKTOP, "").await;
        self.screenshot(page, &PHONE, "").await;
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
        )
        .await;
        self.assert_accessible(&format!("{page} (dark)")).await;
        self.screenshot(page, &DESKTOP, "-dark").await;
        self.cdp("Emulation.setEmulatedMedia", json!({"features": []})).await;
        self.assert_console_clean(page, None).await;
    }

    /// Saves a PNG of the viewport as `target/screenshots/{page}-{viewport}{suffix}.png`.
    async fn screenshot(&self, page: &str, viewport: &Viewport, suffix: &str) {
        self.set_viewport(viewport).await;
        let png = self.client.screenshot().await.expect("screenshot");
        self.set_viewport(&DESKTOP).await;
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("creating target/screenshots");
        let name = format!("{}-{}{suffix}.png", page.replace(' ', "-"), viewport.name);
        std::fs::write(dir.join(name), png).expect("writing a screenshot");
    }

    async fn set_viewport(&self, viewport: &Viewport) {
        let metrics = json!({"width": viewport.width, "height": viewport.height,
                             "deviceScaleFactor": viewport.scale, "mobile": viewport.mobile});
        self.cdp("Emulation.setDeviceMetricsOverride", metrics).await;
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client.issue_cmd(Cdp { cmd, params }).await.unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }
}

impl Drop for Chromium {
    /// Also after a failed assertion: ends the session first, because Chromium outlives a
    /// killed chromedriver.
    fn drop(&mut self) {
        if !self.closed {
            delete_session(self.driver_port, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `DELETE /session/{id}` without the async client, which may be mid-command or gone when
/// a test panics.
fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return };
    let _ = stream.set_read_timeout(Some(PAGE_TIMEOUT));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // chromedriver answers once Chromium is gone; the answer itself does not matter.
        let _ = stream.read(&mut [0; 512]);
    }
}

/// chromedriver's log endpoint (`POST /session/{id}/se/log`), which W3C WebDriver lacks.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({"type": "browser"}).to_string()))
    }
}

/// chromedriver's DevTools pass-through (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({"cmd": self.cmd, "params": self.params}).to_string()))
    }
}

/// `$env` if set, else the first of `names` on `PATH`.
fn executable(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |name| dir.join(name))).find(|p| p.is_file())
}

/// Starts chromedriver on a port of its choosing and reads the port from its banner.
fn start_chromedriver(chromedriver: &Path) -> (Child, u16) {
    let mut driver = Command::new(chromedriver)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("chromedriver ({}) did not start: {e}; {INSTALL_HINT}", chromedriver.display()));
    let stdout = driver.stdout.take().expect("chromedriver stdout");
    let (port_tx, port_rx) = mpsc::channel();
    std::thread::spawn(move || {
        // Keeps reading after the banner so chromedriver never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.split("started successfully on port ").nth(1) {
                let _ = port_tx.send(port.trim_end_matches('.').parse::<u16>().ok());
            }
        }
    });
    match port_rx.recv_timeout(PAGE_TIMEOUT) {
        Ok(Some(port)) => (driver, port),
        _ => {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("chromedriver ({}) did not report its port; {INSTALL_HINT}", chromedriver.display())
        }
    }
}

fn fresh_profile_dir() -> PathBuf {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-profile-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a Chromium profile directory");
    dir
}

/// `target/screenshots`, beside the tests' temporary directory.
pub fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("screenshots")
}
