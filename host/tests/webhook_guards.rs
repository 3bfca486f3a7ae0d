//! Webhooks tried as an attacker would, in and out: a user-chosen
//! `webhook_url` cannot make the host post to its own admin routes or to a
//! port its policy does not name; a signature header of thousands of entries
//! is refused at once, before any HMAC; a rotated secret signs beside the old
//! one (checked with the reference `standardwebhooks` library) until the
//! overlap ends; an `https://` webhook reaches a receiver whose CA the
//! operator trusts, and never one posing with another CA's certificate,
//! nor one whose private CA the operator did not name.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

/// A webhook secret nobody holds.
const STRANGER: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The dead letters' reasons, as the admin route lists them.
async fn dead_letter_reasons(t: &TestHost) -> Vec<String> {
    let (status, body) = t.get("/admin/v1/dead-letters").await;
    assert_eq!(status, 200, "{body}");
    body["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect()
}

/// Hold `seat` for `user` and start an approved payment whose completion
/// webhook goes to `webhook_url`.
async fn hold_and_pay(t: &TestHost, user: &str, token: &str, seat: &str, webhook_url: &str) {
    let (status, held) = t.hold("e", user, token, &[seat], "k").await;
    assert_eq!(status, 200, "{held}");
    let (status, body) = t
        .post(
            "/api/v1/payments/intent",
            json!({"reservation_id": held["reservation_id"], "user_id": user,
                   "amount": held["total_amount"], "scenario": "PAYMENT_SCENARIO_APPROVE",
                   "webhook_url": webhook_url}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_url_cannot_reach_the_admin_api_or_an_unnamed_port() {
    let t = start().await;
    t.create_event("e", 5, 1_000, 1000).await;
    let port = t.host.addr.port();
    let targets = [
        format!("http://127.0.0.1:{port}/admin/v1/events"),
        format!("http://localhost:{port}/metrics"),
        "http://127.0.0.1:1/hook".to_string(),
        // TLS changes nothing about where a webhook may go.
        format!("https://127.0.0.1:{port}/admin/v1/tenants"),
        "https://127.0.0.1/hook".to_string(),
    ];
    let users: Vec<String> = (0..targets.len()).map(|i| format!("u{i}")).collect();
    let tokens = t.admitted_all("e", &users).await;
    for (i, url) in targets.iter().enumerate() {
        hold_and_pay(&t, &users[i], &tokens[i], &format!("A-{}", i + 1), url).await;
    }
    // The completions come due and retry with backoff (1+2+4+8 s) until
    // they are dead-lettered: every delivery was refused by the host.
    for _ in 0..6 {
        t.advance(10.0).await;
    }
    let reasons = dead_letter_reasons(&t).await;
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    let refused = |what: &str| reasons.iter().filter(|r| r.contains(what)).count();
    assert_eq!(refused("only webhook receivers"), 3, "{reasons:?}");
    assert_eq!(refused("(policy)"), 2, "{reasons:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_signature_header_is_refused_at_once() {
    let t = start().await;
    let now = (t.host.runtime().clock.now_ms() / 1000).to_string();
    let entry = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=";
    let body = vec![b' '; 60 * 1024];
    for entries in [9, 1_200] {
        let sigs = vec![entry; entries].join(" ");
        let (status, resp) = t
            .post_raw(
                "/api/v1/webhooks/payment",
                body.clone(),
                &[
                    ("webhook-id", "wh_1"),
                    ("webhook-timestamp", &now),
                    ("webhook-signature", &sigs),
                ],
            )
            .await;
        assert_eq!(status, 401, "{entries} entries: {resp}");
        assert!(resp.to_string().contains("8 entries"), "{resp}");
    }
}

/// Accept one HTTP request, answer 200: its headers (lowercase) and body.
async fn one_delivery(
    listener: tokio::net::TcpListener,
) -> (std::collections::HashMap<String, String>, String) {
    let (socket, _) = listener.accept().await.unwrap();
    read_delivery(socket).await
}

/// Read one HTTP request from `socket` and answer 200: its headers
/// (lowercase) and body.
async fn read_delivery(
    mut socket: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
) -> (std::collections::HashMap<String, String>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the delivery ended early");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let headers: std::collections::HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let len: usize = headers["content-length"].parse().unwrap();
    while buf.len() < head_end + len {
        let n = socket.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the body ended early");
        buf.extend_from_slice(&chunk[..n]);
    }
    socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    (headers, body)
}

/// Whether the reference Standard Webhooks library verifies a delivery.
fn reference_verifies(
    tool: &std::path::Path,
    secret: &str,
    headers: &std::collections::HashMap<String, String>,
    body: &str,
) -> bool {
    use std::io::Write;
    let mut child = std::process::Command::new(tool)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({"secret": secret, "headers": headers, "body": body});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    out.status.success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends() {
    let Some(tool) = test_tool("standardwebhooks-verify") else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let bundle = tenants::bundle_posting_to(files.path(), "", "127.0.0.1:*");
    let t = start_with(|o| o.bundle = Some(bundle)).await;
    let (status, before) = t.get("/admin/v1/tenants/default/webhook-secret").await;
    assert_eq!(status, 200, "{before}");
    let old = before["secret"].as_str().unwrap().to_string();
    assert!(old.starts_with("whsec_"), "{before}");
    let (status, rotated) = t
        .post(
            "/admin/v1/tenants/default/webhook-secret/rotate",
            json!({"overlap_seconds": 120}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(rotated["previous"], old.as_str());

    // A delivery now carries both signatures: receivers with either verify.
    t.create_event("e", 3, 1_000, 1000).await;
    let token = t.admitted_all("e", &["ann".to_string()]).await.remove(0);
    let (_, held) = t.hold("e", "ann", &token, &["A-1"], "k").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let delivery = tokio::spawn(one_delivery(listener));
    let (status, body) = t
        .post(
            "/api/v1/payments/intent",
            json!({"reservation_id": held["reservation_id"], "user_id": "ann",
                   "amount": held["total_amount"], "scenario": "PAYMENT_SCENARIO_APPROVE",
                   "webhook_url": url}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    t.advance(5.0).await;
    let (headers, body) = tokio::time::timeout(std::time::Duration::from_secs(30), delivery)
        .await
        .expect("the webhook arrives in time")
        .unwrap();
    assert_eq!(headers["webhook-signature"].split(' ').count(), 2);
    for secret in [&old, &new] {
        assert!(
            reference_verifies(&tool, secret, &headers, &body),
            "{secret}"
        );
    }
    assert!(!reference_verifies(&tool, STRANGER, &headers, &body));

    // Inbound: the old key verifies until the overlap ends, the new one after.
    let inbound = |secret: String| {
        let t = &t;
        async move {
            let key = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                secret.trim_start_matches("whsec_"),
            )
            .unwrap();
            let now = t.host.runtime().clock.now_ms() / 1000;
            let body = br#"{"webhook_id": "wh_in"}"#;
            let sig = tacos_host::foundations::signature::sign(&key, "wh_in", now, body);
            let now = now.to_string();
            let headers = [
                ("webhook-id", "wh_in"),
                ("webhook-timestamp", now.as_str()),
                ("webhook-signature", sig.as_str()),
            ];
            t.post_raw("/api/v1/webhooks/payment", body.to_vec(), &headers)
                .await
                .0
        }
    };
    assert_ne!(inbound(old.clone()).await, 401);
    t.advance(121.0).await;
    assert_eq!(inbound(old.clone()).await, 401);
    assert_ne!(inbound(new.clone()).await, 401);
    let (_, after) = t.get("/admin/v1/tenants/default/webhook-secret").await;
    assert_eq!(after["secret"], new.as_str());
    assert_eq!(after["previous"], serde_json::Value::Null);
}

/// A TLS receiver on a loopback port with the certificate and key `cert`:
/// its `https://` URL, and how many requests it read over a finished
/// handshake (each answered 200).
async fn tls_receiver(
    cert: [std::path::PathBuf; 2],
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    tokio::sync::mpsc::UnboundedReceiver<(std::collections::HashMap<String, String>, String)>,
) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    use std::sync::Arc;
    let [cert, key] = cert;
    let certs = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let count = served.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            // A client that does not trust the certificate ends the handshake.
            if let Ok(tls) = acceptor.accept(socket).await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = tx.send(read_delivery(tls).await);
            }
        }
    });
    (url, served, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_webhooks_reach_only_a_receiver_the_operator_trusts() {
    let pki = tacos_testkit::Pki::new().unwrap();
    let files = tempfile::tempdir().unwrap();
    let bundle = tenants::bundle_posting_to(files.path(), "", "127.0.0.1:*");
    let ca = pki.ca();
    let t = start_with(|o| {
        o.bundle = Some(bundle.clone());
        o.webhook_ca = Some(ca);
    })
    .await;
    // Without `--webhook-ca`, only the system's roots are trusted.
    let roots_only = start_with(|o| o.bundle = Some(bundle)).await;
    let (good, good_served, mut deliveries) = tls_receiver(pki.server()).await;
    let (posing, posing_served, _) = tls_receiver(pki.stranger_server()).await;
    t.create_event("e", 3, 1_000, 1000).await;
    let users = ["ann".to_string(), "bob".to_string()];
    let tokens = t.admitted_all("e", &users).await;
    for (i, url) in [&good, &posing].into_iter().enumerate() {
        hold_and_pay(&t, &users[i], &tokens[i], &format!("A-{}", i + 1), url).await;
    }
    t.advance(5.0).await;
    let (headers, body) =
        tokio::time::timeout(std::time::Duration::from_secs(30), deliveries.recv())
            .await
            .expect("the webhook arrives in time")
            .unwrap();
    assert!(
        headers["webhook-signature"].starts_with("v1,"),
        "{headers:?}"
    );
    assert!(
        body.contains("PAYMENT_WEBHOOK_TYPE_APPROVED") && body.contains("ann"),
        "{body}"
    );
    // The one posing with another CA's certificate never reads a request:
    // every try ends in the handshake, and the message is dead-lettered.
    for _ in 0..6 {
        t.advance(10.0).await;
    }
    let reasons = dead_letter_reasons(&t).await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("certificate"), "{reasons:?}");
    assert_eq!(posing_served.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(good_served.load(std::sync::atomic::Ordering::SeqCst), 1);

    // The host that was not told to trust the private CA does not.
    roots_only.create_event("e", 3, 1_000, 1000).await;
    let token = roots_only
        .admitted_all("e", &["cy".to_string()])
        .await
        .remove(0);
    hold_and_pay(&roots_only, "cy", &token, "A-1", &good).await;
    for _ in 0..7 {
        roots_only.advance(10.0).await;
    }
    let reasons = dead_letter_reasons(&roots_only).await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("certificate"), "{reasons:?}");
    assert_eq!(good_served.load(std::sync::atomic::Ordering::SeqCst), 1);
}
