//! Live streams on the edge: a place in the waiting room
//! (`gateway.v1.QueueService/StreamQueueUpdates`) and an event's seat map
//! (`reservation.v1.Inventory/StreamSeatUpdates`), over WebSocket and as
//! gRPC server streams.
//!
//! Both protocols admit a watcher through the one admission path (the
//! stream RPC's guard from the one table, the client's and tenant's limits)
//! and open the same [`Watch`] ([`Edge::open_watch`]), then put its
//! messages on the wire: WebSocket below, gRPC streams in [`grpc_stream`].
//!
//! WebSocket: `GET /ws/queue/{waiting_token}?session_id=…` (the original
//! front end's path) and `GET /ws/events/{event_id}/seats`, HTTP/1.1
//! upgrade (RFC 6455), each message one JSON text frame in the contract's
//! mapping. A request refused at admission gets the contract's error as an
//! ordinary HTTP response; once upgraded, a watch that cannot open (a bad
//! token, another session's token, an unknown event) or ends is closed
//! with a reason: code 1000 when the place is done (expired, left), 4000 +
//! the HTTP status of the contract error (4400, 4404, …) with
//! `ERROR_CODE_…: message`, 1013 when the client fell behind. Sockets are
//! bounded: small buffers, frames from the client capped at 4 KiB (it has
//! nothing to say but pings and close), a write that does not drain within
//! [`SEND_TIMEOUT`] drops the client, and a client that answers no ping for
//! two [`PING_EVERY`] is dropped too. An upgraded socket keeps its place
//! among the host's open connections until it closes.

use super::admission::Admitted;
use super::pipeline::MAX_DEADLINE;
use super::{Body, Edge, MAX_BODY, errors, grpc, guards, routes};
use crate::live::{Closing, Live, Next, Watch};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prost::Message as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};
use tacos_proto::gateway::v1::StreamQueueUpdatesRequest;
use tacos_proto::reservation::v1::StreamSeatUpdatesRequest;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tonic::Status;

/// Where the WebSocket routes start.
pub(super) const PREFIX: &str = "/ws/";
/// The longest a message may take to leave before the client is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle socket is pinged.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// The largest frame or message a client may send.
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

/// What a watcher asks for, from either protocol.
pub(super) enum Wanted {
    Place {
        waiting_token: String,
        session_id: String,
        event_id: String,
    },
    Seats {
        event_id: String,
    },
}

impl Wanted {
    /// The stream RPC this is, whose guard admits it.
    pub(super) fn rpc(&self) -> (&'static str, &'static str) {
        match self {
            Wanted::Place { .. } => ("gateway.v1.QueueService", "StreamQueueUpdates"),
            Wanted::Seats { .. } => ("reservation.v1.Inventory", "StreamSeatUpdates"),
        }
    }
}

/// The WebSocket routes.
#[derive(Clone, Copy)]
pub(super) enum WsRoute {
    Place,
    Seats,
}

pub(super) fn ws_routes() -> anyhow::Result<routes::Router<WsRoute>> {
    routes::Router::new([
        ("/ws/queue/{waiting_token}", Method::GET, WsRoute::Place),
        ("/ws/events/{event_id}/seats", Method::GET, WsRoute::Seats),
    ])
}

impl Edge {
    /// Open the watch `wanted` names, for an admitted request.
    pub(super) async fn open_watch(
        &self,
        admitted: &Admitted,
        wanted: Wanted,
        trace: &str,
    ) -> Result<Watch, ProtoError> {
        let live = &self.shared.live;
        match wanted {
            Wanted::Place {
                waiting_token,
                session_id,
                event_id,
            } => {
                live.watch_place(
                    &admitted.tenant,
                    &waiting_token,
                    &session_id,
                    &event_id,
                    trace,
                )
                .await
            }
            Wanted::Seats { event_id } => {
                live.watch_seats(&admitted.tenant, &event_id, trace).await
            }
        }
    }

    /// A request under [`PREFIX`].
    pub(super) async fn websocket(
        &self,
        mut req: Request<Incoming>,
        peer: IpAddr,
        trace: &str,
    ) -> Result<Response<Body>, ProtoError> {
        let err = |code, msg: &str| errors::error(code, msg.to_string(), trace);
        let path = req.uri().path().to_string();
        let (route, captures) = match self.ws_routes.find(req.method(), &path) {
            routes::Found::Route(route, captures) => (*route, captures),
            routes::Found::WrongMethod => {
                return Err(err(ErrorCode::InvalidArgument, "WebSocket routes take GET"));
            }
            routes::Found::NotFound => {
                return Err(err(ErrorCode::NotFound, &format!("no route for {path}")));
            }
        };
        let capture = |name: &str| {
            captures
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut session_id = String::new();
        let mut event_id = String::new();
        for (k, v) in routes::query_pairs(req.uri().query().unwrap_or("")) {
            match (route, k.as_ref()) {
                (WsRoute::Place, "session_id") => session_id = v,
                (WsRoute::Place, "event_id") => event_id = v,
                _ => {
                    let msg = format!("unknown query parameter `{k}`");
                    return Err(err(ErrorCode::InvalidArgument, &msg));
                }
            }
        }
        let wanted = match route {
            WsRoute::Place => Wanted::Place {
                waiting_token: capture("waiting_token"),
                session_id,
                event_id,
            },
            WsRoute::Seats => Wanted::Seats {
                event_id: capture("event_id"),
            },
        };
        let accept = handshake(&req).map_err(|m| err(ErrorCode::InvalidArgument, m))?;
        let (service, method) = wanted.rpc();
        let guard = guards::of(service, method).unwrap_or(guards::Guard::Internal);
        let admitted = self.admit(guard, service, req.headers(), req.uri(), peer, trace)?;
        let watch = self.open_watch(&admitted, wanted, trace).await;
        // The socket keeps the connection's place among the open ones.
        let place = req.extensions_mut().remove::<super::conn::ConnPlace>();
        let on_upgrade = hyper::upgrade::on(req);
        let live = self.shared.live.clone();
        tokio::spawn(async move {
            let _place = place;
            let io = match on_upgrade.await {
                Ok(io) => TokioIo::new(io),
                Err(e) => {
                    tracing::debug!(error = %e, "websocket upgrade failed");
                    return;
                }
            };
            let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await;
            serve(live, watch, ws).await;
        });
        let mut resp = Response::new(Body::default());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(SEC_WEBSOCKET_ACCEPT, accept);
        if let Ok(v) = HeaderValue::from_str(trace) {
            h.insert("x-trace-id", v);
        }
        Ok(resp)
    }
}

/// The `sec-websocket-accept` for a valid opening handshake (RFC 6455 4.2.1).
fn handshake(req: &Request<Incoming>) -> Result<HeaderValue, &'static str> {
    let h = req.headers();
    let has = |name, token: &str| {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if req.version() != hyper::Version::HTTP_11 {
        return Err("WebSocket routes take an HTTP/1.1 upgrade");
    }
    if !has(UPGRADE, "websocket") || !has(CONNECTION, "upgrade") {
        return Err("this route speaks WebSocket: send `Upgrade: websocket`");
    }
    if h.get("sec-websocket-version").map(|v| v.as_bytes()) != Some(b"13") {
        return Err("sec-websocket-version must be 13");
    }
    let key = h
        .get(SEC_WEBSOCKET_KEY)
        .filter(|k| k.len() == 24)
        .ok_or("sec-websocket-key must be 16 bytes in base64")?;
    HeaderValue::from_str(&derive_accept_key(key.as_bytes())).map_err(|_| "bad key")
}

/// Small buffers: a watcher receives a few hundred bytes at a time and sends nothing.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Push `watch`'s messages until it ends or the client goes.
async fn serve(live: Arc<Live>, watch: Result<Watch, ProtoError>, ws: Socket) {
    let (mut tx, mut rx) = ws.split();
    let mut watch = match watch {
        Ok(w) => w,
        Err(e) => {
            let _ = send(&mut tx, close(&Closing::Failed(e))).await;
            return;
        }
    };
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = true;
    loop {
        tokio::select! {
            next = watch.next() => {
                let push = match next {
                    Next::Push(push) => push,
                    Next::End(closing) => {
                        let _ = send(&mut tx, close(&closing)).await;
                        return;
                    }
                };
                let text = live.json(&watch, &push);
                let Ok(text) = String::from_utf8(text.to_vec()) else { return };
                if send(&mut tx, Message::text(text)).await.is_err() {
                    return; // slow or gone: drop it
                }
                if let Some(closing) = &push.last {
                    let _ = send(&mut tx, close(closing)).await;
                    return;
                }
            }
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // Pongs are queued by the socket; send them out.
                Some(Ok(_)) => {
                    heard = true;
                    if tokio::time::timeout(SEND_TIMEOUT, tx.flush()).await.is_err() {
                        return;
                    }
                }
            },
            _ = ping.tick() => {
                if !std::mem::replace(&mut heard, false)
                    || send(&mut tx, Message::Ping(Default::default())).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn send(
    tx: &mut futures_util::stream::SplitSink<Socket, Message>,
    message: Message,
) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// The close frame saying why a stream ends.
fn close(closing: &Closing) -> Message {
    let (code, reason) = match closing {
        Closing::Done(reason) => (1000, reason.to_string()),
        Closing::Failed(e) => (
            4000 + errors::status_of(e.code).as_u16(),
            format!("{}: {}", errors::code_name(e.code), e.message),
        ),
        Closing::Behind => (1013, "fell behind the updates; reconnect".to_string()),
        Closing::Stopping => (1001, "the host is stopping".to_string()),
    };
    // A close reason is at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason[..end].to_string().into(),
    }))
}

/// A server stream: the request names what to watch; each push is one
/// message, and the stream ends with OK once the place is done or with
/// the error that ended it.
pub(super) async fn grpc_stream(
    edge: &Edge,
    method: &str,
    req: hyper::Request<Incoming>,
    admitted: Admitted,
    trace: String,
    status: impl Fn(&ProtoError) -> Status,
) -> hyper::Response<tonic::body::Body> {
    let open = tower::service_fn(|request: tonic::Request<Bytes>| {
        let (trace, status, admitted) = (&trace, &status, &admitted);
        async move {
            let bad = |e: prost::DecodeError| {
                status(&errors::error(
                    ErrorCode::InvalidArgument,
                    e.to_string(),
                    trace,
                ))
            };
            let bytes = request.get_ref().as_ref();
            let wanted = match method {
                "StreamQueueUpdates" => {
                    let r = StreamQueueUpdatesRequest::decode(bytes).map_err(bad)?;
                    Wanted::Place {
                        waiting_token: r.waiting_token,
                        session_id: r.session_id,
                        event_id: r.event_id,
                    }
                }
                _ => {
                    let r = StreamSeatUpdatesRequest::decode(bytes).map_err(bad)?;
                    Wanted::Seats {
                        event_id: r.event_id,
                    }
                }
            };
            let watch = edge
                .open_watch(admitted, wanted, trace)
                .await
                .map_err(|e| status(&e))?;
            let pushes = futures_util::stream::unfold(Some(watch), |watch| async move {
                let mut watch = watch?;
                let push = match watch.next().await {
                    Next::Push(push) => push,
                    Next::End(closing) => return ended(&closing).map(|s| (Err(s), None)),
                };
                let item = Ok(push.proto.to_vec());
                // After the last message: OK, or the error that ended it.
                let rest = match &push.last {
                    None => Some(watch),
                    Some(_) => None,
                };
                Some((item, rest))
            });
            let mut response = tonic::Response::new(pushes);
            grpc::add_trace(response.metadata_mut(), trace);
            Ok::<_, Status>(response)
        }
    });
    let mut server = tonic::server::Grpc::new(grpc::Raw).max_decoding_message_size(MAX_BODY);
    let opening = server.server_streaming(open, req);
    match tokio::time::timeout(edge.conn.body_read + MAX_DEADLINE, opening).await {
        Ok(resp) => resp,
        Err(_) => status(&errors::error(
            ErrorCode::Timeout,
            "the stream did not open in time",
            &trace,
        ))
        .into_http(),
    }
}

/// How a stream that ends without a last message ends: a watcher that fell
/// behind or a stopping host is told to come back.
fn ended(closing: &Closing) -> Option<Status> {
    match closing {
        Closing::Done(_) => None,
        Closing::Failed(e) => Some(grpc::status(e)),
        Closing::Behind => Some(Status::unavailable("fell behind the updates; reconnect")),
        Closing::Stopping => Some(Status::unavailable("the host is stopping")),
    }
}
