//! The metrics endpoint: `GET /metrics` on a TCP address (loopback by default).
//! A deliberately small HTTP/1.1 responder: one request per connection, bounded
//! request size and time, so a slow or hostile client cannot hold the agent.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::report::{Format, MetricsState, render_metrics};

const MAX_REQUEST: usize = 8192;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub(super) async fn serve(listener: TcpListener, state: Arc<RwLock<MetricsState>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, state)).await {
                tracing::debug!("metrics request timed out: {e}");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, state: Arc<RwLock<MetricsState>>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf);
    let mut first = request.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
    // OpenMetrics for a scraper that asks for it, Prometheus text 0.0.4 for
    // everyone else (promtool, curl).
    let accept = request.lines().skip(1).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("accept")
            .then(|| value.trim())
    });
    let format = Format::negotiate(accept);
    let (status, ctype, body) =
        if method == "GET" && (target == "/metrics" || target.starts_with("/metrics?")) {
            match render_metrics(&state, format) {
                Ok(text) => ("200 OK", format.content_type(), text),
                Err(_) => (
                    "500 Internal Server Error",
                    "text/plain",
                    "encoding failed\n".to_string(),
                ),
            }
        } else {
            (
                "404 Not Found",
                "text/plain",
                "try GET /metrics\n".to_string(),
            )
        };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
