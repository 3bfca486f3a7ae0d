//! A trace id given on a request follows the work it causes, through queued
//! messages too: the payment completes seconds later from the queue, and the
//! webhook it sends still carries the trace of the request that paid.

mod common;

use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Accept one HTTP request, answer 200, and return its `traceparent`.
async fn one_webhook(listener: TcpListener) -> Option<String> {
    let (mut socket, _) = listener.accept().await.ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        buf.extend_from_slice(&chunk[..n]);
        if n == 0 || buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await
        .ok()?;
    String::from_utf8_lossy(&buf)
        .lines()
        .find_map(|l| l.strip_prefix("traceparent: ").map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_survives_the_queue() {
    let files = tempfile::tempdir().unwrap();
    let bundle = tenants::bundle_posting_to(files.path(), "", "127.0.0.1:*");
    let t = start_with(|o| o.bundle = Some(bundle)).await;
    t.create_event("tr", 3, 1_000, 1000).await;
    let token = t.admitted("tr", "ola").await;
    let (_, held) = t.hold("tr", "ola", &token, &["A-1"], "k").await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hook = tokio::spawn(one_webhook(listener));
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = json!({"reservation_id": held["reservation_id"], "amount": held["total_amount"],
                      "scenario": "PAYMENT_SCENARIO_APPROVE", "webhook_url": format!("http://127.0.0.1:{port}/hook")});
    let auth = t.bearer("ola");
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    let (status, resp) = t
        .post_raw(
            "/api/v1/payments/intent",
            body.to_string().into_bytes(),
            &[("authorization", &auth), ("traceparent", &traceparent)],
        )
        .await;
    assert_eq!(status, 200, "{resp}");

    // The completion is a delayed message: 2–4 s of virtual time later.
    t.advance(5.0).await;
    let sent = tokio::time::timeout(std::time::Duration::from_secs(30), hook)
        .await
        .expect("the webhook arrives in time")
        .unwrap()
        .expect("a webhook with a traceparent");
    assert_eq!(
        sent.split('-').nth(1),
        Some(trace),
        "the webhook continues the paying request's trace: {sent}"
    );
}
