//! Connections: accepted, bounded and timed so that slow or hostile clients
//! cannot hold the host.
//!
//! - at most [`ConnLimits::max_connections`] open at once; one more is
//!   answered `503` with the contract's error and closed at once;
//! - HTTP/1: the request head must arrive within `header_read` of the
//!   connection opening or of the previous response (so an idle keep-alive
//!   connection is closed too), heads are capped at 64 KiB;
//! - HTTP/2: at most `max_streams` concurrent streams, pings every
//!   `keepalive` that must be answered within it, header lists capped, reset
//!   floods capped (hyper's defaults);
//! - a body must arrive within `body_read` once its head has (see the REST
//!   and gRPC handlers);
//! - a connection upgraded to a WebSocket keeps its place among the open
//!   ones until the socket closes ([`ConnPlace`]).

use super::Edge;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// How many connections, and how long they may idle.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_connections: usize,
    /// HTTP/1: time to send a request head, from the connection opening or
    /// the previous response.
    pub header_read: Duration,
    /// HTTP/2: ping interval and the time its answer may take.
    pub keepalive: Duration,
    /// HTTP/2: concurrent streams per connection.
    pub max_streams: u32,
    /// Time for a request's body to arrive once its head has.
    pub body_read: Duration,
}

impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits {
            max_connections: 10_000,
            header_read: Duration::from_secs(10),
            keepalive: Duration::from_secs(20),
            max_streams: 256,
            body_read: Duration::from_secs(10),
        }
    }
}

/// A connection's place among the open ones, shared by its requests: a
/// request that upgrades the connection takes it along, so the socket keeps
/// the place after hyper lets go of the connection.
#[derive(Clone)]
pub struct ConnPlace(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

/// The largest HTTP/1 request head, and HTTP/2 header list.
const MAX_HEAD: usize = 64 * 1024;

/// The answer to a connection over the cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 102\r\n\r\n{\"error\":{\"code\":\"ERROR_CODE_UNAVAILABLE\",\"message\":\"too many open connections; retry\",\"trace_id\":\"\"}}";

impl Edge {
    /// Accept connections until `shutdown` resolves.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut stop = shutdown.clone();
        let open = Arc::new(tokio::sync::Semaphore::new(self.conn.max_connections));
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => return,
            };
            let (mut stream, peer) = match accepted {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Ok(permit) = open.clone().try_acquire_owned() else {
                self.shared.runtime.metrics.connections_refused.inc();
                tokio::spawn(async move {
                    let write = stream.write_all(BUSY);
                    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
                });
                continue;
            };
            let _ = stream.set_nodelay(true);
            let edge = self.clone();
            tokio::spawn(async move {
                let place = ConnPlace(Arc::new(permit));
                let limits = edge.conn.clone();
                let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                    let edge = edge.clone();
                    req.extensions_mut().insert(place.clone());
                    async move {
                        Ok::<_, std::convert::Infallible>(edge.serve_one(req, peer.ip()).await)
                    }
                });
                let mut builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_read)
                    .max_buf_size(MAX_HEAD)
                    // Small JSON responses: one flattened write beats writev.
                    .writev(false);
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .keep_alive_interval(limits.keepalive)
                    .keep_alive_timeout(limits.keepalive)
                    .max_concurrent_streams(limits.max_streams)
                    .max_header_list_size(MAX_HEAD as u32);
                if let Err(e) = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn busy_answer_is_well_formed() {
        let text = std::str::from_utf8(super::BUSY).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(v["error"]["code"], "ERROR_CODE_UNAVAILABLE");
    }
}
