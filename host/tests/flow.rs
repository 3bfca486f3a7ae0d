//! The ticket flow end to end over HTTP, on the virtual clock: approve →
//! confirmed and sold; fail → seats back; no payment → expired after 60 s.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_payment_confirms_and_sells() {
    let t = start().await;
    t.create_event("concert", 10, 30_000, 1000).await;

    let wt = t.join("concert", "alice").await;
    let (_, status) = t.get(&format!("/api/v1/queue/status?token={wt}")).await;
    assert_eq!(status["status"], "QUEUE_STATUS_READY", "{status}");
    let token = t.enter(&wt).await;

    let (code_, res) = t
        .hold("concert", "alice", &token, &["A-1", "A-2"], "k1")
        .await;
    assert_eq!(code_, 200, "{res}");
    assert_eq!(res["status"], "RESERVATION_STATUS_HOLD");
    assert_eq!(res["total_amount"]["amount"], 60_000);
    let seats = t.seats("concert").await;
    assert_eq!(seats["A-1"], "SEAT_STATUS_RESERVED");
    assert_eq!(seats["A-3"], "SEAT_STATUS_AVAILABLE");

    let pi = t.pay(&res, "alice", "PAYMENT_SCENARIO_APPROVE").await;
    // APPROVE completes 2–4 s later; the advance returns once the webhook,
    // the worker and the confirmation have all run.
    t.advance(5.0).await;
    let r = t
        .reservation(res["reservation_id"].as_str().unwrap(), "alice")
        .await;
    assert_eq!(r["status"], "RESERVATION_STATUS_CONFIRMED", "{r}");
    assert!(r["order_id"].as_str().unwrap().starts_with("ord_"), "{r}");
    assert_eq!(r["payment_intent_id"], pi.as_str());
    let seats = t.seats("concert").await;
    assert_eq!(seats["A-1"], "SEAT_STATUS_SOLD");
    assert_eq!(seats["A-2"], "SEAT_STATUS_SOLD");
    let (_, payment) = t.get_as("alice", &format!("/api/v1/payments/{pi}")).await;
    assert_eq!(payment["payment"]["status"], "PAYMENT_STATUS_COMPLETED");

    // The hold's expiry later is a no-op for a confirmed reservation.
    t.advance(61.0).await;
    let r = t
        .reservation(res["reservation_id"].as_str().unwrap(), "alice")
        .await;
    assert_eq!(r["status"], "RESERVATION_STATUS_CONFIRMED");
    assert_eq!(t.seats("concert").await["A-1"], "SEAT_STATUS_SOLD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_payment_releases_the_seats() {
    let t = start().await;
    t.create_event("concert", 10, 30_000, 1000).await;
    let token = t.admitted("concert", "bob").await;
    let (_, res) = t.hold("concert", "bob", &token, &["A-5"], "k1").await;
    t.pay(&res, "bob", "PAYMENT_SCENARIO_FAIL").await;
    t.advance(3.0).await;
    let r = t
        .reservation(res["reservation_id"].as_str().unwrap(), "bob")
        .await;
    assert_eq!(r["status"], "RESERVATION_STATUS_FAILED", "{r}");
    assert_eq!(t.seats("concert").await["A-5"], "SEAT_STATUS_AVAILABLE");
    // Confirming with the failed payment is refused.
    let (status, body) = t
        .post(
            &format!(
                "/api/v1/reservations/{}/confirm",
                res["reservation_id"].as_str().unwrap()
            ),
            json!({"payment_intent_id": "pi_x", "user_id": "bob"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_hold_expires_after_sixty_seconds() {
    let t = start().await;
    t.create_event("concert", 10, 30_000, 1000).await;
    let token = t.admitted("concert", "carol").await;
    let (_, res) = t
        .hold("concert", "carol", &token, &["A-7", "A-8"], "k1")
        .await;
    let id = res["reservation_id"].as_str().unwrap().to_string();

    t.advance(59.0).await;
    assert_eq!(
        t.reservation(&id, "carol").await["status"],
        "RESERVATION_STATUS_HOLD"
    );
    t.advance(2.0).await;
    let r = t.reservation(&id, "carol").await;
    assert_eq!(r["status"], "RESERVATION_STATUS_EXPIRED", "{r}");
    let seats = t.seats("concert").await;
    assert_eq!(seats["A-7"], "SEAT_STATUS_AVAILABLE");
    assert_eq!(seats["A-8"], "SEAT_STATUS_AVAILABLE");
    // A late confirmation is refused as expired.
    let (status, body) = t
        .post(
            &format!("/api/v1/reservations/{id}/confirm"),
            json!({"payment_intent_id": "pi_late", "user_id": "carol"}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (410, "ERROR_CODE_RESERVATION_EXPIRED"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_releases_and_queue_admits_at_the_set_rate() {
    let t = start().await;
    t.create_event("slow", 5, 10_000, 2).await; // two admissions per second
    let tokens: Vec<String> = futures_join(&t, 6).await;
    let mut ready = 0;
    let mut positions = Vec::new();
    for wt in &tokens {
        let (_, s) = t.get(&format!("/api/v1/queue/status?token={wt}")).await;
        if s["status"] == "QUEUE_STATUS_READY" {
            ready += 1;
        }
        positions.push(s["position"].as_i64().unwrap());
    }
    assert_eq!(
        ready, 1,
        "only the first is admitted at once: {positions:?}"
    );
    assert!(
        positions.windows(2).all(|w| w[0] <= w[1]),
        "positions grow: {positions:?}"
    );
    // Entering before admission is refused.
    let (status, body) = t
        .post("/api/v1/queue/enter", json!({"waiting_token": tokens[5]}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "ERROR_CODE_FAILED_PRECONDITION"),
        "{body}"
    );
    t.advance(3.0).await;
    let token = t.enter(&tokens[5]).await;

    let (_, res) = t.hold("slow", "user-5", &token, &["A-1"], "k").await;
    let id = res["reservation_id"].as_str().unwrap();
    let (status, body) = t
        .post(
            &format!("/api/v1/reservations/{id}/cancel"),
            json!({"user_id": "user-5"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "RESERVATION_STATUS_CANCELLED");
    assert_eq!(t.seats("slow").await["A-1"], "SEAT_STATUS_AVAILABLE");
}

async fn futures_join(t: &TestHost, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(t.join("slow", &format!("user-{i}")).await);
    }
    out
}
