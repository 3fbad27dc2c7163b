//! The `portcullis` command line.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use portcullis::clock::Clock;
use portcullis::controller::replica::Intervals;
use portcullis::listener::{self, ConnectionLimits};
use portcullis::protocol::upstream_credential::CredentialKeys;
use portcullis::provider::{BackchannelSettings, RegistrationPolicy};
use portcullis::server::{self, BuiltProvider, ServerError, ServerOptions};
use portcullis::store::{RedisConfig, RedisStore};
use portcullis::telemetry::{self, LogFormat};
use portcullis::vocabulary::Scope;
use portcullis::{crd, secrets};

#[derive(Parser)]
#[command(name = "portcullis", version, about = "A Kubernetes-native OpenID Connect provider")]
struct Cli {
    /// Log line format (logs go to stderr; filter with RUST_LOG). Defaults to text for
    /// `dev`, json for `serve` and `controller`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the provider on an in-memory store, configured from a folder of manifests.
    Dev(ProviderArgs),
    /// Run a stateless provider replica; every replica sharing the Redis is interchangeable.
    Serve(ServeArgs),
    /// Run the Kubernetes controller: reconcile OidcClients, OidcUsers and SigningKeys into
    /// Secrets and Redis while holding the leader Lease.
    Controller(ControllerArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Read a password from stdin and print its argon2id PHC hash, for an OidcUser's Secret.
    HashPassword,
    /// Sign in from a terminal (authorization code flow with PKCE on a loopback redirect,
    /// RFC 8252, or with --device the device authorization grant, RFC 8628) and print the ID token, or a kubectl ExecCredential; tokens are cached
    /// under $XDG_CACHE_HOME/portcullis/ and refreshed when they expire.
    Login(LoginArgs),
}

#[derive(Args)]
struct LoginArgs {
    /// The provider's issuer URL, exactly as it announces itself.
    #[arg(long)]
    issuer: String,
    /// The client id of a native public client (`applicationType: native`,
    /// `tokenEndpointAuthMethod: none`) with `http://127.0.0.1/callback` registered.
    #[arg(long)]
    client_id: String,
    /// Scopes to request.
    #[arg(long, default_value = "openid profile email groups offline_access")]
    scope: String,
    /// Port of the loopback listener the browser returns to; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    listen_port: u16,
    /// Only print the URL to open, do not try xdg-open.
    #[arg(long)]
    no_browser: bool,
    /// Print a client.authentication.k8s.io/v1 ExecCredential (for a kubeconfig `exec`
    /// user) instead of the bare ID token.
    #[arg(long)]
    exec_credential: bool,
    /// Sign in with the device authorization grant (RFC 8628): print a URL and a code to
    /// confirm on any device, for machines without a browser. The client needs the
    /// `urn:ietf:params:oauth:grant-type:device_code` grant.
    #[arg(long)]
    device: bool,
    /// How long to wait for the sign-in in the browser (or on the other device).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Args)]
struct ProviderArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Issuer identifier, exactly as relying parties will see it. Defaults to http://LISTEN.
    #[arg(long)]
    issuer: Option<String>,
    /// Folder of OidcClient, OidcUser, SigningKey, IdentityConnector and Secret manifests. `dev` defaults to the
    /// examples built into the binary.
    #[arg(long)]
    manifests: Option<PathBuf>,
    /// Default access-token lifetime, e.g. 15m or 1h.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    access_token_ttl: Duration,
    /// Lifetime of a refresh-token family (how long a user stays signed in to an app
    /// with offline_access without logging in again).
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    refresh_token_ttl: Duration,
    /// Lifetime of the single sign-on session.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    session_ttl: Duration,
    /// Who may register clients at /register (RFC 7591): open, token (needs
    /// --registration-token) or disabled. Defaults to open for dev, disabled for serve.
    #[arg(long, value_enum)]
    registration: Option<RegistrationMode>,
    /// The initial access token that `--registration token` requires.
    #[arg(long, env = "PORTCULLIS_REGISTRATION_TOKEN", hide_env_values = true)]
    registration_token: Option<String>,
    /// The most a registered client may ask for (space-separated scopes).
    #[arg(long, default_value = "openid profile email offline_access")]
    registration_scopes: String,
    /// Serve /metrics (with /health and /ready) on this address, e.g. 0.0.0.0:9090 for an
    /// in-cluster-only scrape port. Without it there is no /metrics at all, unless
    /// --metrics-on-main-port.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// The longest a client may take to send a request's head, counted from connecting (or,
    /// on a kept-alive connection, from the request's first byte); then it is closed.
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    header_read_timeout: Duration,
    /// How long a kept-alive connection may go without a request before it is closed.
    #[arg(long, default_value = "30s", value_parser = positive_duration)]
    idle_timeout: Duration,
    /// The most connections open at once on the main port; at the cap, the oldest one with
    /// no request in progress is closed to make room. Defaults to the file-descriptor limit
    /// (raised to the hard limit at start-up) less a reserve of 80.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: Option<u64>,
    /// How often the store's data epoch (lost data is applied again), the shared signing
    /// keys and, every third time, the store's eviction policy are checked.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    store_check_interval: Duration,
    /// How often the back-channel logout queue is looked at (for tests).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, hide = true)]
    backchannel_logout_poll_interval: Duration,
    /// How long a failing back-channel logout delivery is retried (for tests).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration, hide = true)]
    backchannel_logout_give_up_after: Duration,
    /// Also serve /metrics on the main listener. Its login counts are every user's, so only
    /// do this where the main port is not public.
    #[arg(long)]
    metrics_on_main_port: bool,
}

/// A duration above zero, e.g. `10s` or `500ms`.
fn positive_duration(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("must be longer than zero".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RegistrationMode {
    Open,
    Token,
    Disabled,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    provider: ProviderArgs,
    /// Redis holding all shared state: redis://[user:password@]host:port[/db] or rediss:// for TLS.
    #[arg(long, env = "PORTCULLIS_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// First segment of every Redis key, so several installations can share one Redis.
    #[arg(long, default_value = "portcullis")]
    redis_key_prefix: String,
    /// The longest a Redis command may take before the request is answered with 503.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    redis_timeout: Duration,
    /// Read signing keys from the labelled Secrets of --namespace (watched, so rotations need
    /// no restart) and clients and users from Redis, where `portcullis controller` writes them.
    #[arg(long)]
    kubernetes: bool,
    /// With --kubernetes: the namespace of the signing-key Secrets. Defaults to the pod's own
    /// namespace, then `default`.
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// A file of keys (one per line, at least 32 bytes each; the first seals, all open) that
    /// seal the credentials upstream identity providers gave (refresh tokens) in Redis; the
    /// chart mounts it from a Secret. Without it no upstream credential is kept, and people
    /// signed in through a connector sign in again at the connector's first re-check.
    #[arg(long, env = "PORTCULLIS_UPSTREAM_CREDENTIAL_KEY_FILE")]
    upstream_credential_key_file: Option<PathBuf>,
}

#[derive(Args)]
struct ControllerArgs {
    /// The controller's own namespace: holds the SigningKeys, OidcUsers and the Lease.
    /// Defaults to the pod's own namespace, then `default`.
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// Namespaces whose OidcClients are reconciled: a comma-separated list, or `*` for all.
    /// Defaults to the own namespace.
    #[arg(long, env = "PORTCULLIS_WATCH_NAMESPACES")]
    watch_namespaces: Option<String>,
    /// Redis the provider replicas read: redis://[user:password@]host:port[/db] or rediss://.
    #[arg(long, env = "PORTCULLIS_REDIS_URL", hide_env_values = true)]
    redis_url: String,
    /// First segment of every Redis key; must match the provider's.
    #[arg(long, default_value = "portcullis")]
    redis_key_prefix: String,
    /// The longest a Redis command may take.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    redis_timeout: Duration,
    /// The provider's issuer URL, written into generated client Secrets (`issuer`, `discoveryUrl`).
    #[arg(long, env = "PORTCULLIS_ISSUER")]
    issuer: String,
    /// Where /metrics, /health and /ready are served.
    #[arg(long, default_value = "0.0.0.0:9090")]
    metrics_listen: SocketAddr,
    /// Name of the coordination.k8s.io Lease the replicas compete for.
    #[arg(long, default_value = "portcullis-controller")]
    lease_name: String,
    /// How long a silent leader keeps the Lease before a standby takes over.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    lease_duration: Duration,
    /// How often every resource is reconciled, and Redis swept of what no resource
    /// declares, without a change. Lost Redis data is re-applied within seconds anyway.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    resync_period: Duration,
    /// The most reconciles running at once, per kind: bounds the work of a full resync.
    #[arg(long, default_value_t = 8)]
    reconcile_concurrency: u16,
    /// How long a new signing key is published in the JWKS before it signs; at least the
    /// JWKS cache lifetime (5m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    key_publish_delay: Duration,
    /// How long a retired signing key stays published; at least the longest token lifetime.
    #[arg(long, default_value = "25h", value_parser = humantime::parse_duration)]
    key_retire_after: Duration,
}

fn main() -> ExitCode {
    return_large_allocations_to_the_os();
    let cli = Cli::parse();
    let default_format = match cli.command {
        Command::Serve(_) | Command::Controller(_) => LogFormat::Json,
        _ => LogFormat::Text,
    };
    let _telemetry = telemetry::init(cli.log_format.unwrap_or(default_format));
    match cli.command {
        Command::Dev(args) => run("dev", args, None, RegistrationMode::Open),
        Command::Serve(args) => serve(args),
        Command::Controller(args) => controller(args),
        Command::Crds => print_crds(),
        Command::HashPassword => hash_password(),
        Command::Login(args) => login(args),
    }
}

fn login(args: LoginArgs) -> ExitCode {
    let xdg_cache_home = std::env::var("XDG_CACHE_HOME").ok();
    let home = std::env::var("HOME").ok();
    let Some(cache_folder) = portcullis::login::cache::folder(xdg_cache_home.as_deref(), home.as_deref()) else {
        eprintln!("portcullis login: set XDG_CACHE_HOME or HOME for the token cache");
        return ExitCode::from(2);
    };
    let options = portcullis::login::LoginOptions {
        issuer: args.issuer,
        client_id: args.client_id,
        scope: args.scope,
        listen_port: args.listen_port,
        open_browser: !args.no_browser,
        cache_folder,
        timeout: args.timeout,
        device: args.device,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portcullis login: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // One write, and a closed stderr is no reason to abandon the sign-in (eprintln! panics).
    let announce = |message: &str| {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{message}\n").as_bytes());
    };
    match runtime.block_on(portcullis::login::login(&options, std::time::SystemTime::now(), announce)) {
        Ok(tokens) if args.exec_credential => {
            println!("{}", portcullis::login::session::exec_credential(&tokens.id_token));
            ExitCode::SUCCESS
        }
        Ok(tokens) => {
            println!("{}", tokens.id_token);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("portcullis login: {error}");
            ExitCode::FAILURE
        }
    }
}

/// glibc raises its mmap threshold to the size of the largest block freed (up to 32 MiB):
/// after the first argon2 hash (19 MiB) every later one comes from a thread's arena, which
/// keeps the memory for good — 49 MiB of idle RSS after hashing the manifests' client
/// secrets at start-up, against 10 MiB with a fixed threshold, which also turns the
/// threshold's adjustment off so large blocks always go straight back to the OS.
fn return_large_allocations_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let Some(url) = args.redis_url else {
        eprintln!(
            "portcullis serve: --redis-url (or PORTCULLIS_REDIS_URL) is required: replicas share all state through Redis"
        );
        return ExitCode::from(2);
    };
    let kubernetes = match (args.kubernetes, &args.provider.manifests) {
        (true, Some(_)) => {
            eprintln!("portcullis serve: --manifests cannot be combined with --kubernetes: choose one source");
            return ExitCode::from(2);
        }
        (true, None) => Some(portcullis::kubernetes::resolve_namespace(args.namespace)),
        (false, Some(_)) => None,
        (false, None) => {
            eprintln!("portcullis serve: --manifests DIR or --kubernetes is required");
            return ExitCode::from(2);
        }
    };
    let credential_keys = match &args.upstream_credential_key_file {
        Some(path) => match server::read_credential_keys(path) {
            Ok(keys) => Some(Arc::new(keys)),
            Err(error) => {
                eprintln!("portcullis serve: {error}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let redis = RedisConfig { url, key_prefix: args.redis_key_prefix, command_timeout: args.redis_timeout };
    let serving = Serving { redis, kubernetes, credential_keys };
    run("serve", args.provider, Some(serving), RegistrationMode::Disabled)
}

/// What `serve` adds to the provider's settings.
struct Serving {
    redis: RedisConfig,
    /// `--kubernetes`: the namespace of the signing-key Secrets.
    kubernetes: Option<String>,
    credential_keys: Option<Arc<CredentialKeys>>,
}

fn controller(args: ControllerArgs) -> ExitCode {
    use portcullis::kubernetes::{self, ControllerConfig, LeaseConfig, WatchNamespaces, metrics};

    if let Err(error) = server::validate_issuer(&args.issuer) {
        eprintln!("portcullis controller: {error}");
        return ExitCode::from(2);
    }
    let namespace = portcullis::kubernetes::resolve_namespace(args.namespace);
    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("portcullis-{}", std::process::id()));
    let config = ControllerConfig {
        watch_namespaces: WatchNamespaces::parse(args.watch_namespaces.as_deref(), &namespace),
        namespace,
        issuer: args.issuer,
        lease: LeaseConfig { name: args.lease_name, identity, duration: args.lease_duration },
        resync_period: args.resync_period,
        key_publish_delay: args.key_publish_delay,
        key_retire_after: args.key_retire_after,
        concurrency: args.reconcile_concurrency,
    };
    let redis =
        RedisConfig { url: args.redis_url, key_prefix: args.redis_key_prefix, command_timeout: args.redis_timeout };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portcullis controller: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = runtime.block_on(async {
        let metrics = std::sync::Arc::new(metrics::ControllerMetrics::new().map_err(|e| format!("metrics: {e}"))?);
        let client = kubernetes::client().await.map_err(|e| format!("Kubernetes client: {e}"))?;
        let store = RedisStore::connect(redis).await.map_err(|e| format!("connecting to Redis: {e}"))?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let listener = tokio::net::TcpListener::bind(args.metrics_listen)
            .await
            .map_err(|e| format!("listening on {}: {e}", args.metrics_listen))?;
        let mut metrics_stop = stop_rx.clone();
        let metrics_server = tokio::spawn(
            axum::serve(listener, metrics::router(std::sync::Arc::clone(&metrics)))
                .with_graceful_shutdown(async move {
                    let _ = metrics_stop.wait_for(|stop| *stop).await;
                })
                .into_future(),
        );
        println!(
            "Portcullis controller in namespace {} (clients from {:?}), metrics on http://{}",
            config.namespace, config.watch_namespaces, args.metrics_listen
        );
        let shutdown = async move {
            server::shutdown_signal().await;
            let _ = stop_tx.send(true);
        };
        kubernetes::run::run(client, std::sync::Arc::new(store), config, Clock::system(), metrics, shutdown).await;
        drop(stop_rx);
        match metrics_server.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("metrics listener: {error}")),
            Err(error) => Err(format!("metrics listener: {error}")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("portcullis controller: {error}");
            ExitCode::FAILURE
        }
    }
}

fn registration_policy(args: &ProviderArgs, default: RegistrationMode) -> Result<RegistrationPolicy, String> {
    match (args.registration.unwrap_or(default), &args.registration_token) {
        (RegistrationMode::Open, _) => Ok(RegistrationPolicy::Open),
        (RegistrationMode::Disabled, _) => Ok(RegistrationPolicy::Disabled),
        (RegistrationMode::Token, Some(token)) if !token.is_empty() => Ok(RegistrationPolicy::Token(token.clone())),
        (RegistrationMode::Token, _) => {
            Err("--registration token needs --registration-token (or PORTCULLIS_REGISTRATION_TOKEN)".into())
        }
    }
}

/// Binds, builds the provider (in memory for `dev`, on Redis for `serve`) and serves until
/// Ctrl-C or SIGTERM.
fn run(command: &str, args: ProviderArgs, serving: Option<Serving>, registration: RegistrationMode) -> ExitCode {
    let registration = match registration_policy(&args, registration) {
        Ok(policy) => policy,
        Err(message) => {
            eprintln!("portcullis {command}: {message}");
            return ExitCode::from(2);
        }
    };
    let registration_scopes = match Scope::parse(&args.registration_scopes) {
        Ok(scopes) => scopes,
        Err(error) => {
            eprintln!("portcullis {command}: --registration-scopes: {}", error.description);
            return ExitCode::from(2);
        }
    };
    let defaults = ConnectionLimits::for_fd_limit(listener::raise_fd_limit());
    let limits = ConnectionLimits {
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args
            .max_connections
            .map_or(defaults.max_connections, |max| usize::try_from(max).unwrap_or(usize::MAX)),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portcullis {command}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = server::bind(args.listen).await?;
        let address = listener.local_addr().map_err(|source| ServerError::Listen { addr: args.listen, source })?;
        let options = ServerOptions {
            issuer: args.issuer.unwrap_or_else(|| format!("http://{address}")),
            manifests: args.manifests,
            access_token_ttl: args.access_token_ttl,
            refresh_token_ttl: args.refresh_token_ttl,
            session_ttl: args.session_ttl,
            registration,
            registration_scopes,
            intervals: Intervals { store: args.store_check_interval, ..Intervals::default() },
            backchannel: BackchannelSettings {
                poll: args.backchannel_logout_poll_interval,
                give_up_after: args.backchannel_logout_give_up_after,
                ..BackchannelSettings::default()
            },
            metrics_on_main_port: args.metrics_on_main_port,
        };
        let kubernetes = serving.as_ref().and_then(|serving| serving.kubernetes.clone());
        let built: BuiltProvider = match serving {
            Some(Serving { redis, kubernetes: Some(namespace), credential_keys }) => {
                let client = portcullis::kubernetes::client().await?;
                server::build_kubernetes(&options, redis, credential_keys, client, &namespace).await?
            }
            Some(Serving { redis, kubernetes: None, credential_keys }) => {
                server::build_serve(&options, redis, credential_keys).await?
            }
            None => server::build_dev(&options).await?,
        };
        if let Some(addr) = args.metrics_listen {
            let metrics_listener = server::bind(addr).await?;
            let metrics_address =
                metrics_listener.local_addr().map_err(|source| ServerError::Listen { addr, source })?;
            let provider = std::sync::Arc::clone(&built.provider);
            tokio::spawn(async move {
                if let Err(error) =
                    server::serve_metrics(metrics_listener, provider, limits, std::future::pending()).await
                {
                    tracing::error!(%error, "the metrics listener stopped");
                }
            });
            println!("Metrics on http://{}/metrics", metrics_address);
        }
        for generated in &built.generated {
            server::announce_generated(generated);
        }
        let source = match (&kubernetes, &options.manifests) {
            (Some(namespace), _) => {
                format!("keys from the Secrets of namespace {namespace}, clients and users from Redis")
            }
            (None, Some(path)) => format!("manifests from {}", path.display()),
            (None, None) => "manifests from the embedded examples".to_owned(),
        };
        println!("Portcullis {command} listening on http://{address} (issuer {}, {source})", options.issuer);
        server::serve_with(listener, built.provider, limits, server::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("portcullis {command}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn print_crds() -> ExitCode {
    match crd::definitions_yaml() {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("portcullis crds: {error}");
            ExitCode::FAILURE
        }
    }
}

fn hash_password() -> ExitCode {
    let mut input = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("portcullis hash-password: cannot read stdin: {error}");
        return ExitCode::FAILURE;
    }
    let password = input.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&input);
    if password.is_empty() {
        eprintln!("portcullis hash-password: the password read from stdin is empty");
        return ExitCode::FAILURE;
    }
    match secrets::hash(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("portcullis hash-password: {error}");
            ExitCode::FAILURE
        }
    }
}
