//! The controller's growth run, for `bench/run --scale` (issue 24): `N` `OidcClient`s (half
//! confidential with generated secrets, half public) and `N` `OidcUser`s sharing one
//! password Secret, declared in the tests' fake API server (`tests/support/`), reconciled by
//! one `portcullis controller` process into its own `redis-server`. For each size it prints
//! one `RESULT` line:
//!
//! `RESULT <N> <first reconcile s> <its CPU s> <RSS MiB> <peak RSS MiB> <resync CPU s> <resync Redis
//! changes> <resync invalidations> <resync API writes> <one change ms> <its Redis changes>
//! <its invalidations> <longest Lease gap s>`
//!
//! - first reconcile: from the process start until Redis holds every client and user, and
//!   the controller's CPU time meanwhile (the rest is the API server and Redis);
//! - RSS: `VmRSS` then, and `VmHWM` (the peak) at the end;
//! - resync: CPU the controller used while it reconciled all `2N` resources once more with
//!   nothing changed, and the writes that caused: changes to Redis data, `PUBLISH`es (each
//!   drops keys from every replica's cache) and API server writes;
//! - one change: a client's name edited, until Redis holds the new record, and the Redis
//!   changes and invalidations that cost (one record: its `SET` and one `PUBLISH`);
//! - Lease gap: the longest time between two renewals of the leader Lease seen during the
//!   whole run (renewals are due every third of the 15 s Lease; a gap of 15 s would lose it).
//!
//! `cargo run --release --example controller-scale -- --binary target/release/portcullis
//! --counts 100,1000,10000 --resync 120s [--cpu 0]` (`--cpu`: run the controller on that core
//! only, with `taskset`) (the resync period must be longer than the first
//! reconcile, so that the resync measured starts after it)

// The run uses part of what the tests use.
#[allow(dead_code)]
#[path = "../tests/support/fake_apiserver.rs"]
mod fake_apiserver;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_apiserver::FakeApiServer;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use portcullis::crd::{OidcClient, OidcUser, SigningKey};
use serde_json::{Value, json};

const NAMESPACE: &str = "scale";
const PASSWORD: &str = "scale-redis";
const PREFIX: &str = "scale";
const LEASE: &str = "portcullis-controller";

type Failure = Box<dyn std::error::Error>;

/// A child process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, Failure> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Redis {
    port: u16,
    _process: Process,
}

impl Redis {
    /// A `redis-server` without persistence, so that writing 20,000 records measures the
    /// controller and not the disk.
    fn start() -> Result<Self, Failure> {
        let port = free_port()?;
        let process = Process(
            Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--requirepass", PASSWORD])
                .stdout(Stdio::null())
                .spawn()?,
        );
        let redis = Self { port, _process: process };
        let started = Instant::now();
        while redis.cli(&["PING"]).map(|out| out.trim() != "PONG").unwrap_or(true) {
            if started.elapsed() > Duration::from_secs(10) {
                return Err("redis-server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(redis)
    }

    fn url(&self) -> String {
        format!("redis://:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    fn cli(&self, args: &[&str]) -> Result<String, Failure> {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "-a", PASSWORD, "--no-auth-warning"])
            .args(args)
            .output()?;
        Ok(String::from_utf8(output.stdout)?)
    }

    fn count(&self, set: &str) -> Result<usize, Failure> {
        Ok(self.cli(&["SCARD", &format!("{PREFIX}:v1:{{{set}}}")])?.trim().parse().unwrap_or(0))
    }

    /// Changes Redis made to its data so far (`rdb_changes_since_last_save`, never reset
    /// here since nothing saves): a `SET NX` that finds its key, a script that changes
    /// nothing, or a read count none.
    fn changes(&self) -> Result<u64, Failure> {
        let info = self.cli(&["INFO", "persistence"])?;
        let value = info.lines().find_map(|line| line.strip_prefix("rdb_changes_since_last_save:"));
        Ok(value.ok_or("no rdb_changes_since_last_save in INFO")?.trim().parse()?)
    }

    /// `PUBLISH`es served so far: each tells every replica's cache to drop keys.
    fn publishes(&self) -> Result<u64, Failure> {
        let info = self.cli(&["INFO", "commandstats"])?;
        let calls = info
            .lines()
            .find_map(|line| line.strip_prefix("cmdstat_publish:"))
            .and_then(|stats| stats.split(',').find_map(|field| field.strip_prefix("calls="))?.parse().ok());
        Ok(calls.unwrap_or(0))
    }
}

/// What `/proc` says of a process: resident memory now and at its peak (MiB), and the CPU
/// it used (s).
struct ProcStat {
    rss: f64,
    peak: f64,
    cpu: f64,
}

fn proc_stat(pid: u32) -> Result<ProcStat, Failure> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|value| value.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(ProcStat { rss: kib("VmRSS:"), peak: kib("VmHWM:"), cpu: (ticks(11) + ticks(12)) / clock_ticks()? })
}

fn clock_ticks() -> Result<f64, Failure> {
    let output = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}

fn resource<K: serde::de::DeserializeOwned>(value: Value) -> Result<K, Failure> {
    Ok(serde_json::from_value(value)?)
}

fn client_resource(i: usize) -> Result<OidcClient, Failure> {
    let spec = if i.is_multiple_of(2) {
        json!({ "clientName": format!("Scale service {i}"), "grantTypes": ["client_credentials"], "scopes": ["profile"] })
    } else {
        json!({
            "clientName": format!("Scale app {i}"), "redirectUris": [format!("https://app-{i}.example/callback")],
            "grantTypes": ["authorization_code"], "scopes": ["openid", "profile", "email"],
            "tokenEndpointAuthMethod": "none",
        })
    };
    resource(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcClient",
        "metadata": { "name": format!("scale-app-{i}"), "namespace": NAMESPACE }, "spec": spec,
    }))
}

fn user_resource(i: usize) -> Result<OidcUser, Failure> {
    resource(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "OidcUser",
        "metadata": { "name": format!("scale-user-{i}"), "namespace": NAMESPACE },
        "spec": {
            "username": format!("scale-user-{i}"), "email": format!("user-{i}@example.com"),
            "passwordSecretRef": { "name": "scale-password", "key": "passwordHash" },
        },
    }))
}

/// Creates every resource, 32 requests at a time.
async fn declare(api: &FakeApiServer, count: usize) -> Result<(), Failure> {
    let client = api.client();
    let params = PostParams::default();
    let hash = portcullis::secrets::hash("scale-password")?;
    let secret: Secret = resource(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": { "name": "scale-password", "namespace": NAMESPACE }, "stringData": { "passwordHash": hash },
    }))?;
    Api::<Secret>::namespaced(client.clone(), NAMESPACE).create(&params, &secret).await?;
    let key: SigningKey = resource(json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "SigningKey",
        "metadata": { "name": "main", "namespace": NAMESPACE }, "spec": { "algorithm": "EdDSA" },
    }))?;
    Api::<SigningKey>::namespaced(client.clone(), NAMESPACE).create(&params, &key).await?;
    let clients = Api::<OidcClient>::namespaced(client.clone(), NAMESPACE);
    let users = Api::<OidcUser>::namespaced(client, NAMESPACE);
    let mut creations = futures::stream::iter((1..=count).flat_map(|i| {
        let (clients, users, params) = (clients.clone(), users.clone(), params.clone());
        let client =
            async move { clients.create(&params, &client_resource(i)?).await.map(|_| ()).map_err(Failure::from) };
        let (params, users) = (PostParams::default(), users);
        let user = async move { users.create(&params, &user_resource(i)?).await.map(|_| ()).map_err(Failure::from) };
        [futures::future::Either::Left(client), futures::future::Either::Right(user)]
    }))
    .buffer_unordered(32);
    while let Some(created) = creations.next().await {
        created?;
    }
    Ok(())
}

fn kubeconfig(api: &FakeApiServer, count: usize) -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("portcullis-controller-scale-{}-{count}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("config");
    std::fs::write(&path, api.kubeconfig(NAMESPACE))?;
    Ok(path)
}

/// Reconciliations so far, from the controller's metrics.
async fn reconciles(http: &reqwest::Client, metrics: &str) -> Result<u64, Failure> {
    let text = http.get(format!("{metrics}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with("portcullis_reconcile_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum())
}

/// Watches the leader Lease's `renewTime` and keeps the longest time between two renewals.
struct LeaseWatch {
    last: Option<(String, Instant)>,
    longest: Duration,
}

impl LeaseWatch {
    fn look(&mut self, api: &FakeApiServer) {
        let Some(renewed) = api
            .get("leases", NAMESPACE, LEASE)
            .and_then(|lease| lease["spec"]["renewTime"].as_str().map(str::to_owned))
        else {
            return;
        };
        match &self.last {
            Some((seen, _)) if *seen == renewed => {}
            Some((_, at)) => {
                self.longest = self.longest.max(at.elapsed());
                self.last = Some((renewed, Instant::now()));
            }
            None => self.last = Some((renewed, Instant::now())),
        }
    }

    /// The longest gap, counting the time since the last renewal seen.
    fn longest(&self) -> Duration {
        self.last.as_ref().map_or(self.longest, |(_, at)| self.longest.max(at.elapsed()))
    }
}

/// Polls `done` every 100 ms (looking at the Lease meanwhile) until it holds, or fails
/// after `limit`.
async fn until<F, Fut>(
    what: &str,
    limit: Duration,
    api: &FakeApiServer,
    lease: &mut LeaseWatch,
    mut done: F,
) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Failure>>,
{
    let started = Instant::now();
    loop {
        lease.look(api);
        if done().await? {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(format!("{what}: not within {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(binary: &str, cpu: Option<&str>, count: usize, resync: Duration) -> Result<String, Failure> {
    let redis = Redis::start()?;
    let api = FakeApiServer::start().await;
    declare(&api, count).await?;
    let config = kubeconfig(&api, count)?;
    let metrics_port = free_port()?;
    let metrics = format!("http://127.0.0.1:{metrics_port}");
    let resync_arg = format!("{}s", resync.as_secs());
    let started = Instant::now();
    // `taskset` execs the binary, so the pid stays the controller's.
    let mut command = match cpu {
        Some(cpu) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpu, binary]);
            taskset
        }
        None => Command::new(binary),
    };
    let controller = Process(
        command
            .args(["controller", "--namespace", NAMESPACE, "--issuer", "https://id.scale.test"])
            .args(["--redis-url", &redis.url(), "--redis-key-prefix", PREFIX])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}"), "--resync-period", &resync_arg])
            .env("KUBECONFIG", &config)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("POD_NAME", "scale-controller")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = controller.0.id();
    let mut lease = LeaseWatch { last: None, longest: Duration::ZERO };
    let limit = Duration::from_secs(600);
    until("every record in Redis", limit, &api, &mut lease, || async {
        Ok(redis.count("clients")? >= count && redis.count("users")? >= count)
    })
    .await?;
    let first = started.elapsed();
    let loaded = proc_stat(pid)?;

    // Settled: the reconciles the controller's own status writes caused have passed.
    let http = reqwest::Client::new();
    let mut last = (reconciles(&http, &metrics).await?, Instant::now());
    while last.1.elapsed() < Duration::from_secs(2) {
        lease.look(&api);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = reconciles(&http, &metrics).await?;
        if now != last.0 {
            last = (now, Instant::now());
        }
        if started.elapsed() > limit {
            return Err(format!(
                "the reconciles did not settle in {limit:?}: the first reconcile (and the one each status write \
                 causes) must end before the resync period ({resync:?}) starts the next round; give a longer --resync"
            )
            .into());
        }
    }

    // One resync of everything, nothing changed.
    let (before, changes, publishes, mark) = (proc_stat(pid)?, redis.changes()?, redis.publishes()?, api.mark());
    let resynced_from = reconciles(&http, &metrics).await?;
    until("a full resync", resync * 3 + limit, &api, &mut lease, || {
        let (http, metrics) = (&http, &metrics);
        async move { Ok(reconciles(http, metrics).await? >= resynced_from + 2 * count as u64) }
    })
    .await?;
    let resync_cpu = proc_stat(pid)?.cpu - before.cpu;
    let resync_redis = (redis.changes()? - changes, redis.publishes()? - publishes);
    let writes = api.requests_since(mark);
    let resync_api_writes: usize =
        ["oidcclients", "oidcusers", "signingkeys", "secrets", "events"].iter().map(|r| writes.writes(r)).sum();

    // One client changed.
    let (changes, publishes) = (redis.changes()?, redis.publishes()?);
    let clients = Api::<OidcClient>::namespaced(api.client(), NAMESPACE);
    let patch = json!({ "spec": { "clientName": "Scale service 2, renamed" } });
    let changed = Instant::now();
    clients.patch("scale-app-2", &PatchParams::default(), &Patch::Merge(patch)).await?;
    let key = format!("{PREFIX}:v1:{{clients}}:client:scale-app-2");
    until("the changed client in Redis", limit, &api, &mut lease, || async {
        Ok(redis.cli(&["GET", &key])?.contains("renamed"))
    })
    .await?;
    let change = changed.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let change_redis = (redis.changes()? - changes, redis.publishes()? - publishes);
    let end = proc_stat(pid)?;
    drop(controller);
    Ok(format!(
        "RESULT {count} {:.1} {:.1} {:.1} {:.1} {resync_cpu:.2} {} {} {resync_api_writes} {} {} {} {:.1}",
        first.as_secs_f64(),
        loaded.cpu,
        loaded.rss,
        end.peak,
        resync_redis.0,
        resync_redis.1,
        change.as_millis(),
        change_redis.0,
        change_redis.1,
        lease.longest().as_secs_f64(),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let (mut binary, mut cpu, mut counts, mut resync) = (None, None, vec![100, 1000, 10_000], Duration::from_secs(60));
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--binary" => binary = Some(value),
            "--cpu" => cpu = Some(value),
            "--counts" => counts = value.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--resync" => resync = humantime::parse_duration(&value)?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let binary = binary.ok_or("--binary is required")?;
    for count in counts {
        eprintln!("[controller-scale {count}] …");
        println!("{}", run(&binary, cpu.as_deref(), count, resync).await?);
    }
    Ok(())
}
