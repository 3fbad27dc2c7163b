//! The controller's Prometheus metrics and its `/metrics`, `/health` and `/ready` listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};
use tokio::net::TcpListener;

/// Metrics of one controller process, in their own registry (tests run several at once).
pub struct ControllerMetrics {
    registry: Registry,
    reconcile_total: IntCounterVec,
    reconcile_duration: HistogramVec,
    /// 1 while this replica holds the Lease.
    pub leader: IntGauge,
    /// Set once the API server answered (the lease was read), so `/ready` says the replica
    /// can work; a standby that is not the leader is ready too.
    pub api_reachable: AtomicBool,
}

impl ControllerMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconcile_total = IntCounterVec::new(
            Opts::new("portcullis_reconcile_total", "Reconciliations by resource kind and result (ok or error)."),
            &["kind", "result"],
        )?;
        let reconcile_duration = HistogramVec::new(
            HistogramOpts::new("portcullis_reconcile_duration_seconds", "Time spent reconciling one resource.")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["kind"],
        )?;
        let leader = IntGauge::new("portcullis_leader", "1 while this controller replica holds the leader Lease.")?;
        registry.register(Box::new(reconcile_total.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Self { registry, reconcile_total, reconcile_duration, leader, api_reachable: AtomicBool::new(false) })
    }

    /// Records one reconciliation.
    pub fn observe(&self, kind: &str, ok: bool, elapsed: Duration) {
        self.reconcile_total.with_label_values(&[kind, if ok { "ok" } else { "error" }]).inc();
        self.reconcile_duration.with_label_values(&[kind]).observe(elapsed.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

async fn render_metrics(State(metrics): State<Arc<ControllerMetrics>>) -> Response {
    match metrics.render() {
        Ok(body) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response(),
        Err(error) => {
            tracing::warn!(%error, "rendering metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn ready(State(metrics): State<Arc<ControllerMetrics>>) -> StatusCode {
    if metrics.api_reachable.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

/// The router of the metrics listener.
pub fn router(metrics: Arc<ControllerMetrics>) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .with_state(metrics)
}

/// Serves the metrics listener until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<ControllerMetrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    axum::serve(listener, router(metrics)).with_graceful_shutdown(shutdown).await
}
