//! Idempotency keys: replay within the window, refuse a different request.

mod common;

use common::*;
use serde_json::json;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_replays_other_body_is_refused() {
    let t = start().await;
    t.create_event("e", 10, 1_000, 1000).await;
    let token = t.admitted("e", "dave").await;
    let (s1, first) = t.hold("e", "dave", &token, &["A-1"], "key-1").await;
    assert_eq!(s1, 200, "{first}");
    let (s2, again) = t.hold("e", "dave", &token, &["A-1"], "key-1").await;
    assert_eq!(s2, 200, "{again}");
    assert_eq!(first, again, "the first response is replayed");
    let seats = t.seats("e").await;
    assert_eq!(
        seats
            .values()
            .filter(|s| *s == "SEAT_STATUS_RESERVED")
            .count(),
        1
    );

    let (s3, other) = t.hold("e", "dave", &token, &["A-2"], "key-1").await;
    assert_eq!(
        (s3, code(&other)),
        (422, "ERROR_CODE_IDEMPOTENCY_CONFLICT"),
        "{other}"
    );
    assert_eq!(t.seats("e").await["A-2"], "SEAT_STATUS_AVAILABLE");

    // A missing key is refused before anything happens.
    let (s4, none) = t.post("/api/v1/reservations", json!({"event_id": "e", "seat_ids": ["A-3"], "user_id": "dave", "reservation_token": token})).await;
    assert_eq!(
        (s4, code(&none)),
        (428, "ERROR_CODE_IDEMPOTENCY_REQUIRED"),
        "{none}"
    );

    // A replay keeps working after the first response's hold expired, until the window ends.
    t.advance(120.0).await;
    let (_, replay) = t.hold("e", "dave", &token, &["A-1"], "key-1").await;
    assert_eq!(replay, first);
    t.advance(300.0).await;
    let (status, after) = t.hold("e", "dave", &token, &["A-1"], "key-1").await;
    assert_eq!(
        (status, code(&after)),
        (401, "ERROR_CODE_UNAUTHENTICATED"),
        "the key expired, so the stale token is checked: {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_hold_once() {
    let t = Arc::new(start().await);
    t.create_event("e", 10, 1_000, 1000).await;
    let token = t.admitted("e", "erin").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (t, token) = (t.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            t.hold("e", "erin", &token, &["A-4"], "dup").await
        }));
    }
    let mut ok = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => ok.push(body),
            409 => assert_eq!(code(&body), "ERROR_CODE_CONCURRENT_MODIFICATION", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!ok.is_empty());
    assert!(
        ok.windows(2).all(|w| w[0] == w[1]),
        "every success is the same reservation"
    );
    let seats = t.seats("e").await;
    assert_eq!(
        seats
            .values()
            .filter(|s| *s == "SEAT_STATUS_RESERVED")
            .count(),
        1
    );
}
