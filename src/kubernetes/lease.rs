//! Leader election on a `coordination.k8s.io/v1` Lease, the way client-go does it: the
//! holder renews `renewTime` every `duration / 3`; another replica takes over only after it
//! has seen the record unchanged for a whole `duration` (measured on its own monotonic
//! clock, so clock skew between nodes does not matter). Writes use `replace` with the
//! read `resourceVersion`, so two replicas racing for the Lease cannot both win.
//!
//! Verbs used: get, create, update (own namespace only).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use tokio::sync::watch;

use super::config::LeaseConfig;
use super::create_params;

/// What this replica knows about the Lease between attempts.
struct Observed {
    record: Option<(Option<String>, Option<MicroTime>)>,
    since: Instant,
}

/// Competes for the Lease until `stop` turns true; `leader` says whether this replica holds
/// it. On stop, a held Lease is released so a standby takes over at once.
pub async fn run(
    api: Api<Lease>,
    config: LeaseConfig,
    leader: watch::Sender<bool>,
    reachable: impl Fn() + Send,
    mut stop: watch::Receiver<bool>,
) {
    let retry = config.duration / 3;
    let mut observed = Observed { record: None, since: Instant::now() };
    let mut last_renewal: Option<Instant> = None;
    loop {
        match try_acquire_or_renew(&api, &config, &mut observed).await {
            Ok(held) => {
                reachable();
                if held {
                    last_renewal = Some(Instant::now());
                }
                if held != *leader.borrow() {
                    tracing::info!(identity = %config.identity, lease = %config.name, leader = held, "leadership changed");
                }
                leader.send_replace(held);
            }
            Err(error) => {
                tracing::warn!(%error, lease = %config.name, "leader election");
                // A leader that cannot renew steps down before another replica may take over.
                if last_renewal.is_some_and(|at| at.elapsed() >= config.duration.saturating_sub(retry)) {
                    leader.send_replace(false);
                    last_renewal = None;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
    if *leader.borrow() {
        release(&api, &config).await;
        leader.send_replace(false);
    }
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn duration_seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// One round: `Ok(true)` when this replica holds the Lease afterwards.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaseConfig,
    observed: &mut Observed,
) -> Result<bool, kube::Error> {
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: kube::api::ObjectMeta { name: Some(config.name.clone()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration_seconds(config.duration)),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&create_params(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        };
    };
    let spec = lease.spec.get_or_insert_with(Default::default);
    let record = (spec.holder_identity.clone(), spec.renew_time.clone());
    if observed.record.as_ref() != Some(&record) {
        observed.record = Some(record);
        observed.since = Instant::now();
    }
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
    let held_by_me = holder == Some(config.identity.as_str());
    let duration =
        spec.lease_duration_seconds.map_or(config.duration, |s| Duration::from_secs(u64::from(s.unsigned_abs())));
    let expired = holder.is_none() || observed.since.elapsed() >= duration;
    if !held_by_me && !expired {
        return Ok(false);
    }
    if !held_by_me {
        spec.holder_identity = Some(config.identity.clone());
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.lease_duration_seconds = Some(duration_seconds(config.duration));
    spec.renew_time = Some(now());
    match api.replace(&config.name, &create_params(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

/// Gives the Lease up (holder cleared), as client-go's `ReleaseOnCancel` does.
async fn release(api: &Api<Lease>, config: &LeaseConfig) {
    let result = async {
        let mut lease = api.get(&config.name).await?;
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        api.replace(&config.name, &create_params(), &lease).await.map(|_| ())
    }
    .await;
    match result {
        Ok(()) => tracing::info!(lease = %config.name, "released the leader Lease"),
        Err(error) => tracing::warn!(%error, lease = %config.name, "releasing the leader Lease"),
    }
}
