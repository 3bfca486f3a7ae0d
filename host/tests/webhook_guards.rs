//! Webhooks tried as an attacker would, in and out: a user-chosen
//! `webhook_url` cannot make the host post to its own admin routes or to a
//! port its policy does not name; a signature header of thousands of entries
//! is refused at once, before any HMAC.

mod common;

use common::*;
use serde_json::json;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_url_cannot_reach_the_admin_api_or_an_unnamed_port() {
    let t = start().await;
    t.create_event("e", 3, 1_000, 1000).await;
    let port = t.host.addr.port();
    let targets = [
        format!("http://127.0.0.1:{port}/admin/v1/events"),
        format!("http://localhost:{port}/metrics"),
        "http://127.0.0.1:1/hook".to_string(),
    ];
    for (i, url) in targets.iter().enumerate() {
        let user = format!("u{i}");
        let seat = format!("A-{}", i + 1);
        let token = t.admitted("e", &user).await;
        let (status, held) = t.hold("e", &user, &token, &[&seat], "k").await;
        assert_eq!(status, 200, "{held}");
        let (status, body) = t
            .post(
                "/api/v1/payments/intent",
                json!({"reservation_id": held["reservation_id"], "user_id": user,
                       "amount": held["total_amount"], "scenario": "PAYMENT_SCENARIO_APPROVE",
                       "webhook_url": url}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // The completions come due and retry with backoff (1+2+4+8 s) until
    // they are dead-lettered: every delivery was refused by the host.
    for _ in 0..6 {
        t.advance(10.0).await;
    }
    let reasons = dead_letter_reasons(&t).await;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    let refused = |what: &str| reasons.iter().filter(|r| r.contains(what)).count();
    assert_eq!(refused("only webhook receivers"), 2, "{reasons:?}");
    assert_eq!(refused("(policy)"), 1, "{reasons:?}");
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
