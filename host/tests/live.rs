//! Live updates on a real host: a place in the waiting room and an event's
//! seat map pushed over WebSocket and gRPC streams as the virtual clock and
//! other buyers move them; what a stranger's socket gets (a clear close
//! reason, nothing opened); the same admission limits as every request.

mod common;

use common::ws::{self, Got};
use common::*;
use serde_json::json;
use std::time::Duration;
use tacos_host::edge::conn::ConnLimits;
use tacos_proto::gateway::v1::queue_service_client::QueueServiceClient;
use tacos_proto::gateway::v1::{QueueEventType, StreamQueueUpdatesRequest};
use tacos_proto::reservation::v1::StreamSeatUpdatesRequest;
use tacos_proto::reservation::v1::inventory_client::InventoryClient;

/// Wait, bounded, until the host counts `want` watchers (places, seat maps).
async fn watchers(t: &TestHost, want: (usize, usize)) {
    tokio::time::timeout(ws::PUSH_WAIT, async {
        while t.host.shared.live.watchers() != want {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("watchers {:?}, not {want:?}", t.host.shared.live.watchers()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_place_is_pushed_as_it_moves_until_its_token_expires() {
    let t = start().await;
    t.create_event("gig", 10, 1_000, 1).await;
    // One admission a second: the third joiner waits two seconds.
    t.join("gig", "u1").await;
    t.join("gig", "u2").await;
    let wt = t.join("gig", "u3").await;
    let mut s = ws::open(&t.url, &format!("/ws/queue/{wt}?session_id=s-u3")).await;
    let first = ws::json(&mut s).await;
    assert_eq!(
        first["type"], "QUEUE_EVENT_TYPE_POSITION_CHANGED",
        "{first}"
    );
    assert_eq!(first["queue_update"]["position"], 2, "{first}");
    assert_eq!(first["queue_update"]["status"], "QUEUE_STATUS_WAITING");
    assert!(first["timestamp"].is_string(), "{first}");

    t.advance(1.0).await;
    let moved = ws::json(&mut s).await;
    assert_eq!(
        moved["type"], "QUEUE_EVENT_TYPE_POSITION_CHANGED",
        "{moved}"
    );
    assert_eq!(moved["queue_update"]["position"], 1, "{moved}");

    t.advance(1.0).await;
    let ready = ws::json(&mut s).await;
    assert_eq!(ready["type"], "QUEUE_EVENT_TYPE_ADMISSION_READY", "{ready}");
    assert_eq!(ready["queue_update"]["admission_ready"], true);
    // Nothing changes while the place waits to be used: no pushes.
    t.advance(60.0).await;
    // A waiting token lasts an hour past its due time.
    t.advance(3_600.0).await;
    let expired = ws::json(&mut s).await;
    assert_eq!(
        expired["type"], "QUEUE_EVENT_TYPE_TOKEN_EXPIRED",
        "{expired}"
    );
    assert_eq!(
        ws::closed(&mut s).await,
        (1000, "waiting token expired".into())
    );
    watchers(&t, (0, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_ends_the_watch_and_a_reconnect_resumes() {
    let t = start().await;
    t.create_event("gig", 10, 1_000, 1).await;
    t.join("gig", "u1").await;
    let wt = t.join("gig", "u2").await;
    let path = format!("/ws/queue/{wt}?session_id=s-u2");
    let mut s = ws::open(&t.url, &path).await;
    assert_eq!(ws::json(&mut s).await["queue_update"]["position"], 1);
    drop(s);
    // Reconnecting starts from where the place stands now.
    t.advance(1.0).await;
    let mut s = ws::open(&t.url, &path).await;
    let now = ws::json(&mut s).await;
    assert_eq!(now["type"], "QUEUE_EVENT_TYPE_ADMISSION_READY", "{now}");

    let (status, body) = t
        .post("/api/v1/queue/leave", json!({ "waiting_token": wt }))
        .await;
    assert_eq!(status, 200, "{body}");
    let left = ws::json(&mut s).await;
    assert_eq!(left["type"], "QUEUE_EVENT_TYPE_LEFT", "{left}");
    assert_eq!(left["queue_update"]["status"], "QUEUE_STATUS_LEFT");
    assert_eq!(
        ws::closed(&mut s).await,
        (1000, "left the waiting room".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_get_a_reason_and_open_nothing() {
    let t = start().await;
    t.create_event("gig", 10, 1_000, 1000).await;
    let wt = t.join("gig", "u1").await;

    // Not a waiting token: closed with the contract's error.
    let mut s = ws::open(&t.url, "/ws/queue/not-a-token").await;
    let (code, reason) = ws::closed(&mut s).await;
    assert_eq!(code, 4400);
    assert!(
        reason.starts_with("ERROR_CODE_INVALID_ARGUMENT"),
        "{reason}"
    );
    // A token altered by one character.
    let mut forged = wt.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let mut s = ws::open(&t.url, &format!("/ws/queue/{forged}?session_id=s-u1")).await;
    assert_eq!(ws::closed(&mut s).await.0, 4400);
    // Someone else's token from another session.
    let mut s = ws::open(&t.url, &format!("/ws/queue/{wt}?session_id=other")).await;
    let (code, reason) = ws::closed(&mut s).await;
    assert_eq!(code, 4400);
    assert!(reason.contains("session_id"), "{reason}");
    // Or claimed for another event.
    let mut s = ws::open(
        &t.url,
        &format!("/ws/queue/{wt}?session_id=s-u1&event_id=x"),
    )
    .await;
    assert_eq!(ws::closed(&mut s).await.0, 4400);
    // A seat map of no event.
    let mut s = ws::open(&t.url, "/ws/events/nope/seats").await;
    let (code, reason) = ws::closed(&mut s).await;
    assert_eq!(
        (code, reason.starts_with("ERROR_CODE_NOT_FOUND")),
        (4404, true)
    );
    watchers(&t, (0, 0)).await;

    // Not a WebSocket handshake, or not the routes: the contract's error.
    let (status, body) = t.get(&format!("/ws/queue/{wt}")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "ERROR_CODE_INVALID_ARGUMENT");
    let (status, _) = t.get("/ws/elsewhere").await;
    assert_eq!(status, 404);
    let (status, _) = t.post_raw(&format!("/ws/queue/{wt}"), vec![], &[]).await;
    assert_eq!(status, 400);
    let ws_url = format!("{}/ws/queue/{wt}?bogus=1", t.url.replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(ws_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("an unknown parameter is refused: {other:?}"),
    }
    // The place itself is untouched by all this.
    let (_, status) = t.get(&format!("/api/v1/queue/status?token={wt}")).await;
    assert_eq!(status["status"], "QUEUE_STATUS_READY", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seat_changes_reach_every_watcher_once() {
    let t = start().await;
    t.create_event("gig", 5, 1_000, 1000).await;
    let mut a = ws::open(&t.url, "/ws/events/gig/seats").await;
    let snap = ws::json(&mut a).await;
    assert_eq!(snap["snapshot"], true, "{snap}");
    assert_eq!(snap["seats"].as_array().unwrap().len(), 5);
    assert_eq!(snap["remaining_seats"], 5);

    let token = t.admitted("gig", "alice").await;
    let (status, res) = t.hold("gig", "alice", &token, &["A-2", "A-4"], "k1").await;
    assert_eq!(status, 200, "{res}");
    let change = ws::json(&mut a).await;
    assert_eq!(change["snapshot"], false, "{change}");
    let changed: Vec<(&str, &str)> = change["seats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changed,
        [
            ("A-2", "SEAT_STATUS_RESERVED"),
            ("A-4", "SEAT_STATUS_RESERVED")
        ]
    );
    assert_eq!(change["remaining_seats"], 3);

    // A later watcher starts from the map as it is.
    let mut b = ws::open(&t.url, "/ws/events/gig/seats").await;
    let snap = ws::json(&mut b).await;
    assert_eq!(snap["seats"][1]["status"], "SEAT_STATUS_RESERVED", "{snap}");
    watchers(&t, (0, 2)).await;

    // No payment: the hold expires and both see the seats come back.
    t.advance(61.0).await;
    for s in [&mut a, &mut b] {
        let back = ws::json(s).await;
        assert_eq!(back["seats"].as_array().unwrap().len(), 2, "{back}");
        assert_eq!(back["seats"][0]["status"], "SEAT_STATUS_AVAILABLE");
        assert_eq!(back["remaining_seats"], 5);
    }
    drop((a, b));
    watchers(&t, (0, 0)).await;
}

/// The next message of a gRPC stream, within the wait.
async fn next<T>(stream: &mut tonic::Streaming<T>) -> Result<Option<T>, tonic::Status> {
    tokio::time::timeout(ws::PUSH_WAIT, stream.message())
        .await
        .expect("a message in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_streams_push_the_same() {
    let t = start().await;
    t.create_event("gig", 3, 1_000, 1).await;
    t.join("gig", "u1").await;
    let wt = t.join("gig", "u2").await;
    let channel = tonic::transport::Channel::from_shared(t.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut queue = QueueServiceClient::new(channel.clone());
    let mut stream = queue
        .stream_queue_updates(StreamQueueUpdatesRequest {
            waiting_token: wt.clone(),
            session_id: "s-u2".into(),
            event_id: String::new(),
        })
        .await
        .expect("the stream opens")
        .into_inner();
    let first = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(first.r#type, QueueEventType::PositionChanged as i32);
    t.advance(1.0).await;
    let ready = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(ready.r#type, QueueEventType::AdmissionReady as i32);
    t.advance(3_700.0).await;
    let expired = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(expired.r#type, QueueEventType::TokenExpired as i32);
    // Then the stream ends with OK.
    assert!(next(&mut stream).await.unwrap().is_none());

    let refused = queue
        .stream_queue_updates(StreamQueueUpdatesRequest {
            waiting_token: wt,
            session_id: "someone-else".into(),
            event_id: String::new(),
        })
        .await
        .expect_err("another session's token is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");

    let mut inventory = InventoryClient::new(channel);
    let mut seats = inventory
        .stream_seat_updates(StreamSeatUpdatesRequest {
            event_id: "gig".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let snap = next(&mut seats).await.unwrap().unwrap();
    assert!(snap.snapshot);
    assert_eq!(snap.seats.len(), 3);
    let missing = inventory
        .stream_seat_updates(StreamSeatUpdatesRequest {
            event_id: "nope".into(),
        })
        .await
        .expect_err("no such event");
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_pass_the_same_limits_as_requests() {
    // One open a second per client for the queue's class, as for a status poll.
    let t = start_with(|o| o.rate_limits = "queue=1/1".parse().unwrap()).await;
    t.create_event("gig", 3, 1_000, 1000).await;
    let wt = t.join("gig", "u1").await;
    let ws_url = format!(
        "{}/ws/queue/{wt}?session_id=s-u1",
        t.url.replacen("http", "ws", 1)
    );
    match tokio_tungstenite::connect_async(ws_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            assert!(resp.headers().contains_key("retry-after"));
        }
        other => panic!("over the client's rate the open is refused: {other:?}"),
    }
    watchers(&t, (0, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgraded_sockets_keep_their_place_under_the_connection_cap() {
    const CAP: usize = 3;
    let t = start_with(|o| {
        o.connections = ConnLimits {
            max_connections: CAP,
            ..ConnLimits::default()
        };
    })
    .await;
    t.create_event("gig", 3, 1_000, 1000).await;
    // Sockets are held until one more connection is refused: then at most
    // CAP connections are open, the sockets among them.
    let ws_url = format!("{}/ws/events/gig/seats", t.url.replacen("http", "ws", 1));
    let mut held = Vec::new();
    let refused = tokio::time::timeout(ws::PUSH_WAIT, async {
        loop {
            match tokio_tungstenite::connect_async(ws_url.as_str()).await {
                Ok((socket, _)) => held.push(socket),
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => return resp.status(),
                Err(e) => panic!("refused with a 503, not {e}"),
            }
        }
    })
    .await
    .expect("a connection over the cap is refused");
    assert_eq!(refused, 503);
    assert!(
        (1..=CAP).contains(&held.len()),
        "{} sockets held",
        held.len()
    );
    drop(held);
    watchers(&t, (0, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_opens_and_closes_leave_nothing_behind() {
    let t = start().await;
    t.create_event("gig", 3, 1_000, 1000).await;
    let wt = t.join("gig", "u1").await;
    for round in 0..5 {
        let mut open = Vec::new();
        for i in 0..40 {
            let path = match i % 2 {
                0 => format!("/ws/queue/{wt}?session_id=s-u1"),
                _ => "/ws/events/gig/seats".to_string(),
            };
            let mut s = ws::open(&t.url, &path).await;
            assert!(
                matches!(ws::next(&mut s).await, Got::Json(_)),
                "round {round}"
            );
            open.push(s);
        }
        watchers(&t, (20, 20)).await;
        drop(open);
        watchers(&t, (0, 0)).await;
    }
    let (status, _) = t.get("/healthz").await;
    assert_eq!(status, 200);
}

/// The same place watched by Python's `websockets` (scripts/ws-watch.py): the
/// messages and the close reason as a client nobody here wrote reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_client_reads_the_same_stream() {
    let Some(tool) = test_tool("ws-watch") else {
        return;
    };
    let t = start().await;
    t.create_event("gig", 3, 1_000, 1).await;
    t.join("gig", "u1").await;
    let wt = t.join("gig", "u2").await;
    let url = format!(
        "{}/ws/queue/{wt}?session_id=s-u2",
        t.url.replacen("http", "ws", 1)
    );
    let mut child = std::process::Command::new(tool)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ws-watch starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut line = async || -> serde_json::Value {
        let l = tokio::time::timeout(ws::PUSH_WAIT, rx.recv())
            .await
            .expect("a line in time")
            .expect("ws-watch is running");
        serde_json::from_str(&l).expect("a JSON line")
    };
    let first = line().await;
    assert_eq!(
        first["type"], "QUEUE_EVENT_TYPE_POSITION_CHANGED",
        "{first}"
    );
    assert_eq!(first["queue_update"]["position"], 1);
    t.advance(1.0).await;
    assert_eq!(line().await["type"], "QUEUE_EVENT_TYPE_ADMISSION_READY");
    t.advance(3_700.0).await;
    assert_eq!(line().await["type"], "QUEUE_EVENT_TYPE_TOKEN_EXPIRED");
    let closed = line().await;
    assert_eq!(
        closed,
        json!({"closed": 1000, "reason": "waiting token expired"})
    );
    let _ = child.wait();
}
