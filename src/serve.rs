//! The operator's HTTP endpoints: `/healthz` (the process answers), `/readyz` (CRDs established, caches
//! ready to serve), `/metrics` (Prometheus text). A deliberately tiny HTTP/1.1 responder: three GETs,
//! no bodies to parse, so no web framework in the image.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

/// The pause after a failed accept, doubled each time it fails again, up to the maximum.
const ACCEPT_PAUSE_MIN: Duration = Duration::from_millis(100);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_secs(1);

use crate::metrics::Metrics;

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
            let metrics = metrics.clone();
            let refresh = refresh.clone();
            tokio::spawn(async move {
                if let Err(err) = respond(stream, &metrics, &*refresh).await {
                    debug!(%err, "http connection ended with an error");
                }
            });
        }
    });
    Ok(bound)
}

async fn respond(
    mut stream: TcpStream,
    metrics: &Metrics,
    refresh: &(dyn Fn() + Send + Sync),
) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    // Only the request line matters; stop at the end of the headers, a size cap, or a slow client.
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => request.extend_from_slice(&buf[..n]),
            Ok(Err(err)) => return Err(err),
        }
    }
    let line = String::from_utf8_lossy(&request);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", "/readyz") if metrics.is_ready() => ("200 OK", "text/plain", "ready\n".to_string()),
        ("GET", "/readyz") => (
            "503 Service Unavailable",
            "text/plain",
            "not ready\n".to_string(),
        ),
        ("GET", "/metrics") => {
            refresh();
            (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics.encode(),
            )
        }
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
