//! Load driver for the flows `wrk` cannot script: the complete browser login (authorize →
//! login → consent → code exchange, with a cookie jar per browser), refresh-token rotation,
//! and client_credentials issuance at a fixed request rate (open loop, for the latency at a
//! given share of peak). Run by `bench/run`; see bench/README.md.
//!
//! Every load command prints one line that `bench/run` parses:
//! `RESULT <per second> <p50 ms> <p99 ms> <p99.9 ms> <completed> <errors>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Parser, Subcommand};
use serde_json::Value;

/// Must match bench/manifests/clients.yaml.
const WEB_CLIENT: (&str, &str) = ("bench-web", "T7yU3iO9pA1sD5fG8hJ2kL6zX4cV0bN3mQ7wE1rT5yU");
const M2M_CLIENT: (&str, &str) = ("bench-m2m", "q0Xbm7Zf2sJ1c6i8KwTnV4rYpLhD3uGeA9oS5xRtWkE");
const REDIRECT_URI: &str = "http://127.0.0.1:9999/callback";
const USER: (&str, &str) = ("bench", "bench-password");

#[derive(Parser)]
#[command(about = "Portcullis benchmark driver (see bench/README.md)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in once and print the access token (for the userinfo run).
    UserToken(Target),
    /// Complete browser logins, each with a fresh cookie jar.
    Login(Load),
    /// Refresh-token rotation: each worker signs in once, then rotates its token in a loop.
    Refresh(Load),
    /// client_credentials at a fixed rate, latency measured per request (open loop).
    FixedRate(FixedRate),
}

#[derive(Args)]
struct Target {
    /// The provider's base URL (its issuer).
    #[arg(long)]
    base: String,
}

#[derive(Args)]
struct Load {
    #[command(flatten)]
    target: Target,
    /// Concurrent browsers (workers).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// How long to run, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

#[derive(Args)]
struct FixedRate {
    #[command(flatten)]
    target: Target,
    /// Requests per second to send, whatever the answers' latency.
    #[arg(long)]
    rate: u64,
    /// Authenticate as this client, `ID:SECRET`, instead of the benchmark's m2m client (a
    /// wrong secret makes a flood of failures; each one counts as an error).
    #[arg(long, value_parser = parse_credentials)]
    client: Option<(String, String)>,
    /// How long to run, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn parse_credentials(text: &str) -> Result<(String, String), String> {
    text.split_once(':').map(|(id, secret)| (id.to_owned(), secret.to_owned())).ok_or_else(|| "ID:SECRET".to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    match Cli::parse().command {
        Command::UserToken(target) => {
            let tokens = sign_in(&browser()?, &target.base, "openid profile email").await?;
            println!("{}", tokens.access_token);
        }
        Command::Login(load) => {
            let base = Arc::new(load.target.base);
            let report = run_workers(load.concurrency, load.duration, move |_| {
                let base = Arc::clone(&base);
                async move {
                    sign_in(&browser()?, &base, "openid profile email").await?;
                    Ok(())
                }
            })
            .await;
            report.print();
        }
        Command::Refresh(load) => refresh(load).await?,
        Command::FixedRate(fixed) => fixed_rate(fixed).await?,
    }
    Ok(())
}

/// A browser: its own cookie jar, no redirect following (the driver reads each hop).
fn browser() -> Result<reqwest::Client, Failure> {
    Ok(reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build()?)
}

struct Tokens {
    access_token: String,
    refresh_token: Option<String>,
}

/// authorize → login page → POST /login → consent page → POST /consent → redirect with the
/// code → code exchange at /token (PKCE S256). `prompt=consent` makes every flow include
/// the consent step.
async fn sign_in(http: &reqwest::Client, base: &str, scope: &str) -> Result<Tokens, Failure> {
    let verifier = URL_SAFE_NO_PAD.encode(random_bytes()?);
    let challenge =
        URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref());
    let state = URL_SAFE_NO_PAD.encode(random_bytes()?);
    let login_page = http
        .get(format!("{base}/authorize"))
        .query(&[
            ("client_id", WEB_CLIENT.0),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("scope", scope),
            ("state", &state),
            ("prompt", "consent"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await?;
    let login_page = expect_page(login_page, "login").await?;
    let consent_page = http
        .post(format!("{base}/login"))
        .form(&[
            ("interaction", hidden(&login_page, "interaction")?),
            ("csrf_token", hidden(&login_page, "csrf_token")?),
            ("username", USER.0),
            ("password", USER.1),
        ])
        .send()
        .await?;
    let consent_page = expect_page(consent_page, "consent").await?;
    let redirect = http
        .post(format!("{base}/consent"))
        .form(&[
            ("interaction", hidden(&consent_page, "interaction")?),
            ("csrf_token", hidden(&consent_page, "csrf_token")?),
            ("decision", "allow"),
        ])
        .send()
        .await?;
    let location = redirect.headers().get("location").ok_or("the consent answer did not redirect")?.to_str()?;
    let location = reqwest::Url::parse(location)?;
    let code = location.query_pairs().find(|(k, _)| k == "code").ok_or("no code in the redirect")?.1.into_owned();
    let response = http
        .post(format!("{base}/token"))
        .basic_auth(WEB_CLIENT.0, Some(WEB_CLIENT.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await?;
    token_response(response).await
}

async fn expect_page(response: reqwest::Response, what: &str) -> Result<String, Failure> {
    if response.status() != 200 {
        return Err(format!("expected the {what} page, got {}", response.status()).into());
    }
    Ok(response.text().await?)
}

async fn token_response(response: reqwest::Response) -> Result<Tokens, Failure> {
    let status = response.status();
    let body: Value = response.json().await?;
    if status != 200 {
        return Err(format!("token endpoint answered {status}: {body}").into());
    }
    let access_token = body["access_token"].as_str().ok_or("no access_token")?.to_owned();
    let refresh_token = body["refresh_token"].as_str().map(str::to_owned);
    Ok(Tokens { access_token, refresh_token })
}

/// The `value` of the hidden input named `name` in a page.
fn hidden<'a>(page: &'a str, name: &str) -> Result<&'a str, Failure> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).ok_or_else(|| format!("no hidden field {name}"))? + marker.len();
    page[start..].split('"').next().ok_or_else(|| format!("unterminated field {name}").into())
}

fn random_bytes() -> Result<[u8; 32], Failure> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the system random number generator failed")?;
    Ok(bytes)
}

async fn refresh(load: Load) -> Result<(), Failure> {
    let base = Arc::new(load.target.base);
    let http = reqwest::Client::new();
    let mut chains = Vec::with_capacity(load.concurrency);
    for _ in 0..load.concurrency {
        let tokens = sign_in(&browser()?, &base, "openid profile offline_access").await?;
        chains.push(Arc::new(tokio::sync::Mutex::new(tokens.refresh_token.ok_or("no refresh_token issued")?)));
    }
    let report = run_workers(load.concurrency, load.duration, move |worker| {
        // Each worker rotates its own chain: two concurrent uses of one refresh token are
        // a replay to the provider, which revokes the grant.
        let chain = Arc::clone(&chains[worker]);
        let (base, http) = (Arc::clone(&base), http.clone());
        async move {
            let mut current = chain.lock().await;
            let response = http
                .post(format!("{base}/token"))
                .basic_auth(WEB_CLIENT.0, Some(WEB_CLIENT.1))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", current.as_str())])
                .send()
                .await?;
            *current = token_response(response).await?.refresh_token.ok_or("rotation issued no refresh_token")?;
            Ok(())
        }
    })
    .await;
    report.print();
    Ok(())
}

async fn fixed_rate(fixed: FixedRate) -> Result<(), Failure> {
    let base = fixed.target.base;
    let (id, secret) = fixed.client.unwrap_or_else(|| (M2M_CLIENT.0.to_owned(), M2M_CLIENT.1.to_owned()));
    let credentials = Arc::new((id, secret));
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    let period = Duration::from_secs_f64(1.0 / fixed.rate.max(1) as f64);
    let total = (fixed.duration.as_secs_f64() * fixed.rate as f64) as u64;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Result<Duration, ()>>();
    let start = tokio::time::Instant::now();
    let mut most_behind = Duration::ZERO;
    for i in 0..total {
        let due = start + period * i as u32;
        tokio::time::sleep_until(due).await;
        most_behind = most_behind.max(tokio::time::Instant::now() - due);
        let (http, url, sender) = (http.clone(), format!("{base}/token"), sender.clone());
        let credentials = Arc::clone(&credentials);
        tokio::spawn(async move {
            // Measured from the request's due time, so a slow server cannot hide latency by
            // slowing the sender down (no coordinated omission).
            let response = http
                .post(url)
                .basic_auth(&credentials.0, Some(&credentials.1))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await;
            let ok = match response {
                Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            let _ = sender.send(if ok { Ok(due.elapsed()) } else { Err(()) });
        });
    }
    drop(sender);
    let mut report = Report::default();
    while let Some(outcome) = receiver.recv().await {
        match outcome {
            Ok(latency) => report.latencies.push(latency),
            Err(()) => report.errors += 1,
        }
    }
    report.elapsed = start.elapsed();
    if most_behind > Duration::from_millis(5) {
        eprintln!("warning: the sender fell up to {most_behind:?} behind schedule; the client is saturated");
    }
    report.print();
    Ok(())
}

#[derive(Default)]
struct Report {
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
}

impl Report {
    fn print(mut self) {
        self.latencies.sort_unstable();
        let percentile = |p: f64| {
            if self.latencies.is_empty() {
                return 0.0;
            }
            let index = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
            self.latencies[index.clamp(1, self.latencies.len()) - 1].as_secs_f64() * 1000.0
        };
        println!(
            "RESULT {:.1} {:.3} {:.3} {:.3} {} {}",
            self.latencies.len() as f64 / self.elapsed.as_secs_f64(),
            percentile(50.0),
            percentile(99.0),
            percentile(99.9),
            self.latencies.len(),
            self.errors
        );
    }
}

/// Runs `concurrency` closed-loop workers for `duration`; each iteration is one flow,
/// given the worker's index.
async fn run_workers<F, Fut>(concurrency: usize, duration: Duration, flow: F) -> Report
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let flow = Arc::new(flow);
    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let (stop, flow) = (Arc::clone(&stop), Arc::clone(&flow));
        workers.push(tokio::spawn(async move {
            let mut report = Report::default();
            while !stop.load(Ordering::Relaxed) {
                let begun = Instant::now();
                match flow(worker).await {
                    Ok(()) => report.latencies.push(begun.elapsed()),
                    Err(error) => {
                        if report.errors == 0 {
                            eprintln!("error: {error}");
                        }
                        report.errors += 1;
                    }
                }
            }
            report
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Report::default();
    for worker in workers {
        if let Ok(report) = worker.await {
            total.latencies.extend(report.latencies);
            total.errors += report.errors;
        }
    }
    total.elapsed = start.elapsed();
    total
}
