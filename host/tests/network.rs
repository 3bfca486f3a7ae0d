//! A host that is safe on a network, tried as a stranger would: off loopback
//! the admin API is never open; slow and idle clients are cut off and the
//! connection cap answers with a clear refusal; a client's IP bucket is
//! charged before any tenant's budget and naming another tenant buys no
//! second one.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use tacos_host::edge::conn::ConnLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Every wait in this file ends within this.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_the_admin_api_needs_a_token_the_host_made() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.listen = "0.0.0.0:0".parse().unwrap();
    let host = tacos_host::host::Host::start(opts)
        .await
        .expect("host starts");
    let token_file = dir.path().join(tacos_host::host::ADMIN_TOKEN_FILE);
    let token = std::fs::read_to_string(&token_file).expect("the host made a token");
    assert!(token.trim().len() >= 32, "{token}");
    assert!(host.shared.admin_summary.contains("admin-token"));
    let url = format!("http://127.0.0.1:{}", host.addr.port());
    let http = http();
    let before = host.runtime().clock.now_ms();
    let advance = br#"{"seconds": 86400}"#.to_vec();
    let (status, body) = request(
        &http,
        "POST",
        &format!("{url}/admin/v1/clock/advance"),
        Some(advance.clone()),
        &[],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(host.runtime().clock.now_ms(), before, "nothing changed");
    let (status, body) =
        request(&http, "GET", &format!("{url}/admin/v1/services"), None, &[]).await;
    assert_eq!(status, 401, "{body}");
    let bearer = format!("Bearer {}", token.trim());
    let (status, body) = request(
        &http,
        "GET",
        &format!("{url}/admin/v1/services"),
        None,
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // A weak configured token is refused at start.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.admin_token = Some("short".into());
    let err = tacos_host::host::Host::start(opts)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("at least 16 bytes"), "{err:#}");
}

/// Read until the server closes the connection; what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got))
        .await
        .expect("the host closes the connection in time")
        .ok();
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_cut_off() {
    let t = start_with(|o| {
        o.connections = ConnLimits {
            header_read: Duration::from_millis(300),
            body_read: Duration::from_millis(300),
            max_connections: 4,
            ..ConnLimits::default()
        }
    })
    .await;
    let addr = t.host.addr;

    // Half a request head, then nothing.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
        .await
        .unwrap();
    until_closed(&mut slow).await;

    // An idle keep-alive connection after one request.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = until_closed(&mut idle).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

    // A body that never comes: a clear error, then the connection goes.
    let mut trickle = TcpStream::connect(addr).await.unwrap();
    trickle
        .write_all(
            b"POST /api/v1/queue/join HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    let answered = until_closed(&mut trickle).await;
    assert!(answered.contains("ERROR_CODE_TIMEOUT"), "{answered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_told_and_closed() {
    let t = start_with(|o| {
        o.connections = ConnLimits {
            max_connections: 4,
            ..ConnLimits::default()
        }
    })
    .await;
    let addr = t.host.addr;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    // The host accepts in order: once a fifth is refused, all four are in.
    let refused = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let got = until_closed(&mut s).await;
            if got.starts_with("HTTP/1.1 503") {
                return got;
            }
        }
    })
    .await
    .expect("a connection over the cap is refused");
    assert!(refused.contains("ERROR_CODE_UNAVAILABLE"), "{refused}");
    // When they go, the host serves again.
    drop(held);
    // (Raw requests: until the host has seen them go, a try may still be
    // refused and closed, which a pooled client reports as an error.)
    let served = tokio::time::timeout(PATIENCE, async {
        loop {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            if until_closed(&mut s).await.starts_with("HTTP/1.1 200") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(served.is_ok(), "the host serves once the connections close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ip_bucket_is_charged_before_a_tenants_budget() {
    let files = tempfile::tempdir().unwrap();
    let bundle = tenants::bundle(
        files.path(),
        "[tenants.a]\n[tenants.b]\nquotas = { requests_per_second = 1, burst = 10 }\n",
    );
    let t = start_with(|o| {
        o.bundle = Some(bundle);
        o.rate_limits = "queue=5/5".parse().unwrap();
    })
    .await;
    let b = t.client.tenant("b");
    let stats = "/api/v1/queue/stats?event_id=none";
    // Twenty requests naming b: five pass the IP bucket, fifteen are refused
    // by it without touching b's budget.
    let mut by_ip = 0;
    for _ in 0..20 {
        let (status, body) = b.get(stats).await;
        if status == 429 {
            assert!(body.to_string().contains("client IP"), "{body}");
            by_ip += 1;
        }
    }
    assert_eq!(by_ip, 15);
    // Naming another tenant buys no second bucket.
    let (status, body) = t.client.tenant("a").get(stats).await;
    assert_eq!(status, 429, "{body}");
    // A second refills five IP tokens and one of b's; b had five left, so
    // all five pass (were the refused ones charged to b, one would).
    t.advance(1.0).await;
    let mut passed = 0;
    for _ in 0..5 {
        let (status, body) = b.get(stats).await;
        if status != 429 {
            passed += 1;
        } else {
            assert!(!body.to_string().contains("tenant"), "{body}");
        }
    }
    assert_eq!(passed, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_valid_from_tomorrow_is_refused_today() {
    let t = start().await;
    t.create_event("e", 3, 1_000, 1000).await;
    let now_s = t.host.runtime().clock.now_ms() / 1000;
    for claims in [
        json!({"sub": "ann", "exp": now_s + 2 * 86_400, "nbf": now_s + 86_400}),
        json!({"sub": "ann", "exp": now_s + 2 * 86_400, "iat": now_s + 86_400}),
    ] {
        let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes());
        let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
        let (status, body) = t
            .post_raw(
                "/api/v1/queue/join",
                json!({"event_id": "e", "session_id": "s"})
                    .to_string()
                    .into_bytes(),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(status, 401, "{claims}: {body}");
    }
    let (_, stats) = t.get("/api/v1/queue/stats?event_id=e").await;
    assert_eq!(
        stats["events"][0]["total_waiting"], 0,
        "nobody joined: {stats}"
    );
}
