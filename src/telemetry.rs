//! Logging and tracing setup. Logs go to stderr as text or JSON lines; `RUST_LOG` filters
//! them (default `info`). With `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, spans are also exported over OTLP
//! (HTTP/protobuf): one per request, children for store calls and signing, parented on the
//! caller's W3C `traceparent`. Without it no OpenTelemetry code runs on the request path.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderMap;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Set once OTLP export is installed; read on the request path to skip all tracing work
/// that only OpenTelemetry needs.
static OTEL_ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported over OTLP.
pub fn otel_enabled() -> bool {
    OTEL_ENABLED.load(Ordering::Relaxed)
}

/// The endpoint variables that switch export on (the standard OTLP exporter variables).
const ENDPOINT_VARIABLES: [&str; 2] = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];

/// Keeps the exporter alive; dropping it flushes the spans not sent yet.
#[must_use = "dropping the guard stops the span export"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer_provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("portcullis: flushing the OpenTelemetry spans failed: {error}");
        }
    }
}

/// Installs the global subscriber (a second call installs nothing). Call it before
/// starting the async runtime: the OTLP exporter's HTTP client runs on its own thread.
pub fn init(format: LogFormat) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => fmt::layer().json().with_writer(std::io::stderr).boxed(),
    }
    .with_filter(filter);
    let tracer_provider = if export_configured() { otlp_tracer_provider() } else { None };
    let spans = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("portcullis"))
            .with_filter(Targets::new().with_target("portcullis", tracing::Level::INFO))
    });
    if tracing_subscriber::registry().with(logs).with(spans).try_init().is_ok() && tracer_provider.is_some() {
        OTEL_ENABLED.store(true, Ordering::Relaxed);
    }
    TelemetryGuard { tracer_provider }
}

fn export_configured() -> bool {
    ENDPOINT_VARIABLES.iter().any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// The OTLP HTTP/protobuf exporter behind a batch processor. Endpoint, headers, timeout
/// and the batch settings come from the standard `OTEL_*` variables; the service name
/// defaults to `portcullis` unless `OTEL_SERVICE_NAME` says otherwise.
fn otlp_tracer_provider() -> Option<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build();
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("portcullis: OpenTelemetry export is off: cannot build the OTLP exporter: {error}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("portcullis");
    }
    Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build())
}

/// Reads W3C trace-context headers.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// Makes `span` a child of the caller's `traceparent` (W3C Trace Context), when OTLP
/// export is on and the header is valid.
pub fn set_remote_parent(span: &tracing::Span, headers: &HeaderMap) {
    if !otel_enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "cannot attach the caller's trace context");
    }
}

/// Renames an exported span once its final name is known (the request span learns its
/// route template only after routing, when the span has already started).
pub fn rename_span(span: &tracing::Span, name: String) {
    if otel_enabled() {
        span.context().span().update_name(name);
    }
}
