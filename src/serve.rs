//! The operator's HTTP endpoints: `/healthz` (the process answers), `/readyz` (CRDs established, caches
//! ready to serve), `/metrics` (Prometheus text). Served by hyper's HTTP/1 connection handling (already in
//! the build through kube); the accept loop is ours, so that a failed accept backs off instead of spinning.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;

/// The pause after a failed accept, doubled each time it fails again, up to the maximum.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(100);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);
/// A client that sends no complete request head within this is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

const TEXT: &str = "text/plain; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` and serves in the background; returns the bound address (port 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    refresh: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    info!(%bound, "serving /healthz, /readyz and /metrics");
    tokio::spawn(async move {
        let mut pause = ACCEPT_PAUSE_MIN;
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: retrying at once would spin a core; wait, longer each time.
                Err(err) => {
                    warn!(%err, ?pause, "could not accept a connection; pausing");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(ACCEPT_PAUSE_MAX);
                    continue;
                }
            };
            pause = ACCEPT_PAUSE_MIN;
            let (metrics, refresh) = (metrics.clone(), refresh.clone());
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(&request, &metrics, &*refresh);
                async move { Ok::<_, Infallible>(response) }
            });
            tokio::spawn(async move {
                // One request per connection: scrapers and probes open a new one each time anyway.
                let connection = http1::Builder::new()
                    .keep_alive(false)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(err) = connection.await {
                    debug!(%err, "http connection ended with an error");
                }
            });
        }
    });
    Ok(bound)
}

fn respond(
    request: &Request<Incoming>,
    metrics: &Metrics,
    refresh: &(dyn Fn() + Send + Sync),
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => (StatusCode::OK, TEXT, "ok\n".to_string()),
        (&Method::GET, "/readyz") if metrics.is_ready() => (StatusCode::OK, TEXT, "ready\n".into()),
        (&Method::GET, "/readyz") => (StatusCode::SERVICE_UNAVAILABLE, TEXT, "not ready\n".into()),
        (&Method::GET, "/metrics") => {
            refresh();
            (StatusCode::OK, OPENMETRICS, metrics.encode())
        }
        (&Method::GET, _) => (StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "method not allowed\n".into(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
