//! The metrics endpoint: `GET /metrics` on a TCP address (loopback by default).
//! A deliberately small HTTP/1.1 responder: one request per connection, bounded
//! request size and time, and a bounded number of connections, so a slow or
//! hostile client cannot hold the agent.
//!
//! Why the bound: every connection is a file descriptor, and the agent's
//! descriptors are also what classification reads /proc with, what a reload
//! opens the policy with and what the audit log is reopened with. ~1,000 idle
//! connections from a local user once took all 1,024 of them (systemd's
//! default soft limit): new processes went unclassified, reload failed, and
//! the accept loop spun on EMFILE. Now at most [`MAX_CONNECTIONS`] are open;
//! one more is accepted and closed at once (so the kernel's backlog does not
//! hold a flood for later), and accept errors back off instead of spinning.
//! [`raise_fd_limit`] gives the agent its hard limit, so it keeps a reserve.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::report::{Format, MetricsState, render_metrics};

const MAX_REQUEST: usize = 8192;
/// The request line and headers must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// The whole exchange, the answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; a scraper needs one.
pub(super) const MAX_CONNECTIONS: usize = 64;
/// Descriptors kept free for everything else the agent opens.
pub(super) const FD_RESERVE: u64 = 512;
/// Pause after a failed accept (out of descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub(super) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Raises the soft limit on open files to the hard one (systemd starts
/// services at 1,024 soft, 524,288 hard) and returns the soft limit now in
/// force.
pub(super) fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `lim`, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit from `raised`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const raised) } == 0 {
            tracing::debug!(
                from = lim.rlim_cur,
                to = lim.rlim_max,
                "raised the open files limit"
            );
            return lim.rlim_max;
        }
    }
    lim.rlim_cur
}

/// How many connections the metrics server may hold: [`MAX_CONNECTIONS`],
/// fewer if the open files limit leaves less than that above the reserve
/// and what is open now (at least one, so a scrape can get through).
pub(super) fn connection_limit(soft_limit: u64) -> usize {
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let room = soft_limit.saturating_sub(open.saturating_add(FD_RESERVE));
    let n = usize::try_from(room)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_CONNECTIONS);
    if n < MAX_CONNECTIONS {
        tracing::warn!(
            limit = soft_limit,
            open,
            connections = n,
            "few file descriptors: the metrics endpoint serves {n} connection(s) at a time \
             (raise LimitNOFILE)"
        );
    }
    n
}

pub(super) async fn serve(
    listener: TcpListener,
    state: Arc<RwLock<MetricsState>>,
    connections: usize,
) {
    let slots = Arc::new(Semaphore::new(connections));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and its kin stay until something closes: waiting is
                // all there is to do (an immediate retry spins).
                tracing::debug!("metrics accept failed: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Full: closed at once, the descriptor given back now.
            drop(stream);
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, state)).await {
                tracing::debug!("metrics request timed out: {e}");
            }
            drop(permit);
        });
    }
}

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

async fn answer(mut stream: TcpStream, state: Arc<RwLock<MetricsState>>) -> std::io::Result<()> {
    let buf = tokio::time::timeout(HEADER_TIMEOUT, read_request(&mut stream))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_keeps_the_reserve() {
        assert_eq!(connection_limit(u64::MAX), MAX_CONNECTIONS);
        // Not even the reserve is left: one connection still.
        assert_eq!(connection_limit(FD_RESERVE), 1);
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_closed_at_once() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::default(), 2));
        // Two idle connections take both slots.
        let idle: Vec<TcpStream> = vec![
            TcpStream::connect(addr).await.unwrap(),
            TcpStream::connect(addr).await.unwrap(),
        ];
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut third = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(1), third.read(&mut buf))
            .await
            .expect("closed at once, not left waiting")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // The idle ones are dropped after the header timeout: a scrape
        // gets through again.
        tokio::time::sleep(HEADER_TIMEOUT + Duration::from_millis(300)).await;
        drop(idle);
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /nothing HTTP/1.1\r\n\r\n").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    }
}
