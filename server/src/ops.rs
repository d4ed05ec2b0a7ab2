//! What every surge process serves for operators: `/metrics` (Prometheus text), `/healthz`
//! and `/readyz` on an HTTP port, and `grpc.health.v1` plus server reflection on the gRPC port.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::Encoder;
use surge_grpc::tls::Transport;

/// Readiness as the process judges it (e.g. "a Raft leader is known", "registered").
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

async fn metrics() -> impl IntoResponse {
    let encoder = prometheus::TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&prometheus::gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_string())],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_string())],
            e.to_string().into_bytes(),
        ),
    }
}

async fn readyz(State(ready): State<Readiness>) -> impl IntoResponse {
    if ready.get() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Serves the HTTP endpoints on `listener` until `shutdown` resolves.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    ready: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(ready);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The `grpc.health.v1` service (its reporter, to mark services serving) and server reflection
/// over `surge.v1` and the health protocol.
pub fn health_and_reflection() -> (
    tonic_health::server::HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(surge_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .unwrap_or_else(|e| panic!("the compiled-in descriptor sets are valid: {e}"));
    (reporter, health, reflection)
}

/// Installs the process-wide tracing subscriber (RUST_LOG, default `info`); raft-rs's slog
/// output arrives through the `log` bridge.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// How long a server gets to finish in-flight calls once shutdown begins. Peer Raft streams
/// never finish on their own, so graceful shutdown is bounded and then cut.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Concurrent calls one client connection may have open on a client port: enough for any
/// ERP's pipelining, and a bound on what one connection can hold of a process.
pub const CLIENT_STREAMS_PER_CONNECTION: u32 = 256;

/// Concurrent calls one connection may have open on a peer port: the Raft stream, snapshots
/// and every call one node forwards to another multiplex on it.
pub const PEER_STREAMS_PER_CONNECTION: u32 = 1024;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(5);

/// A tonic server for a client port: TLS with the server certificate (clients verify it;
/// they present none), bounded streams per connection and a deadline on every call's answer
/// (a streamed answer's stream runs on; a caller's shorter `grpc-timeout` wins).
pub fn client_server(
    transport: &Transport,
    deadline: std::time::Duration,
) -> Result<tonic::transport::Server, String> {
    transport.serve(
        tonic::transport::Server::builder()
            .max_concurrent_streams(CLIENT_STREAMS_PER_CONNECTION)
            .timeout(deadline),
        false,
        TLS_HANDSHAKE,
    )
}

/// A tonic server for a peer port: mutual TLS (a client certificate from the cluster CA or no
/// connection), bounded streams per connection. No server deadline: the Raft stream is
/// long-lived by design and snapshot streams carry their own limits.
pub fn peer_server(transport: &Transport) -> Result<tonic::transport::Server, String> {
    transport.serve(
        tonic::transport::Server::builder().max_concurrent_streams(PEER_STREAMS_PER_CONNECTION),
        true,
        TLS_HANDSHAKE,
    )
}

/// Says how this process talks: a warning at start, and `surge_transport_insecure` (1 for
/// plaintext) in /metrics, when it runs with `insecure = true`.
pub fn report_transport(transport: &Transport) {
    let gauge = prometheus::IntGauge::new(
        "surge_transport_insecure",
        "1 when this process runs without TLS (insecure = true), 0 with TLS",
    );
    if let Ok(gauge) = gauge {
        gauge.set(i64::from(!transport.is_tls()));
        // Registered once per process; a second server in one test process keeps the first.
        let _ = prometheus::register(Box::new(gauge));
    }
    if !transport.is_tls() {
        tracing::warn!(
            "insecure = true: peer and client ports run in PLAINTEXT, without certificates; \
             anyone who reaches a port can read and forge traffic"
        );
    }
}

/// Waits up to [`SHUTDOWN_GRACE`] for a server task, then aborts it.
pub async fn stop_within_grace<T>(task: tokio::task::JoinHandle<T>) -> Option<T> {
    let abort = task.abort_handle();
    match tokio::time::timeout(SHUTDOWN_GRACE, task).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(_)) => None,
        Err(_) => {
            abort.abort();
            None
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
