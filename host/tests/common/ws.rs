//! A WebSocket client of the live routes, for the tests: every wait is bounded.

use futures_util::StreamExt;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for a push (a tick is 250 ms).
pub const PUSH_WAIT: Duration = Duration::from_secs(10);

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// What a socket yields next.
#[derive(Debug)]
pub enum Got {
    Json(Value),
    /// Closed by the host: code and reason.
    Closed(u16, String),
}

/// Open `path` (`/ws/…`) on the host at `url` (`http://…`).
pub async fn open(url: &str, path: &str) -> Socket {
    let ws = format!("{}{path}", url.replacen("http://", "ws://", 1));
    let (socket, resp) = tokio::time::timeout(PUSH_WAIT, tokio_tungstenite::connect_async(ws))
        .await
        .expect("the socket opens in time")
        .expect("the socket opens");
    assert_eq!(resp.status(), 101);
    socket
}

/// The next message or the close, within [`PUSH_WAIT`].
pub async fn next(socket: &mut Socket) -> Got {
    loop {
        let got = tokio::time::timeout(PUSH_WAIT, socket.next())
            .await
            .expect("a push or a close within the wait");
        match got {
            Some(Ok(Message::Text(t))) => {
                return Got::Json(serde_json::from_str(&t).expect("JSON text"));
            }
            Some(Ok(Message::Close(Some(f)))) => {
                return Got::Closed(f.code.into(), f.reason.to_string());
            }
            Some(Ok(Message::Close(None))) | None => return Got::Closed(1005, String::new()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            Some(Err(e)) => panic!("socket failed: {e}"),
        }
    }
}

/// The next message, which must be JSON.
pub async fn json(socket: &mut Socket) -> Value {
    match next(socket).await {
        Got::Json(v) => v,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The close, which must come next.
pub async fn closed(socket: &mut Socket) -> (u16, String) {
    match next(socket).await {
        Got::Closed(code, reason) => (code, reason),
        other => panic!("expected a close, got {other:?}"),
    }
}
