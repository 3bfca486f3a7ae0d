//! Bad input gets a clear error in the contract's shape and changes nothing.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_change_nothing() {
    let t = start().await;
    t.create_event("e", 5, 100, 1000).await;
    let before = t.seats("e").await;
    let token = t.admitted("e", "frank").await;

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("/api/v1/reservations", b"{not json".to_vec(), 400, "ERROR_CODE_INVALID_ARGUMENT"),
        ("/api/v1/reservations", br#"{"event_id": 12}"#.to_vec(), 400, "ERROR_CODE_INVALID_ARGUMENT"),
        ("/api/v1/reservations", br#"{"event_id": "e", "seat_ids": "A-1"}"#.to_vec(), 400, "ERROR_CODE_INVALID_ARGUMENT"),
        ("/api/v1/reservations", br#"{"event_id": "e", "no_such_field": 1}"#.to_vec(), 400, "ERROR_CODE_INVALID_ARGUMENT"),
        ("/api/v1/queue/join", br#"{"user_id": "frank"}"#.to_vec(), 400, "ERROR_CODE_INVALID_ARGUMENT"),
        ("/api/v1/queue/join", br#"{"event_id": "nope", "user_id": "frank"}"#.to_vec(), 404, "ERROR_CODE_NOT_FOUND"),
        ("/api/v1/queue/enter", br#"{"waiting_token": "forged.token"}"#.to_vec(), 400, "ERROR_CODE_INVALID_ARGUMENT"),
        ("/api/v1/payments/intent", br#"{"reservation_id": "r", "user_id": "frank", "amount": {"amount": -5, "currency": "KRW"}}"#.to_vec(), 400, "ERROR_CODE_INVALID_ARGUMENT"),
        ("/api/v1/reservations", vec![b' '; 70 * 1024], 400, "ERROR_CODE_INVALID_ARGUMENT"),
    ];
    let frank = t.bearer("frank");
    for (path, body, status, want) in cases {
        let (got, resp) = t.post_raw(path, body, &[("authorization", &frank)]).await;
        assert_eq!((got, code(&resp)), (status, want), "{path}: {resp}");
        assert!(!resp["error"]["message"].as_str().unwrap().is_empty());
        assert_eq!(
            resp["error"]["trace_id"].as_str().unwrap().len(),
            32,
            "{resp}"
        );
    }

    let hold = |seats: serde_json::Value, tok: &str, user: &str, event: &str| json!({"event_id": event, "seat_ids": seats, "user_id": user, "reservation_token": tok, "idempotency_key": format!("k-{tok}-{user}-{event}")});
    // Missing ids, unknown event and seat, bad or borrowed tokens.
    let refused = [
        (
            hold(json!([]), &token, "frank", "e"),
            400,
            "ERROR_CODE_INVALID_ARGUMENT",
        ),
        (
            hold(json!(["A-1"]), "not-a-token", "frank", "e"),
            401,
            "ERROR_CODE_UNAUTHENTICATED",
        ),
        (
            hold(json!(["A-1"]), &token, "mallory", "e"),
            403,
            "ERROR_CODE_FORBIDDEN",
        ),
        (
            hold(json!(["A-1"]), &token, "frank", "other"),
            403,
            "ERROR_CODE_FORBIDDEN",
        ),
        (
            hold(json!(["A-99"]), &token, "frank", "e"),
            404,
            "ERROR_CODE_NOT_FOUND",
        ),
        (
            hold(json!(["A-1", "A-1"]), &token, "frank", "e"),
            400,
            "ERROR_CODE_INVALID_ARGUMENT",
        ),
    ];
    for (body, status, want) in refused {
        let (got, resp) = t.post("/api/v1/reservations", body.clone()).await;
        assert_eq!((got, code(&resp)), (status, want), "{body}: {resp}");
    }

    // A forged webhook signature never reaches the worker.
    let webhook = json!({"webhook_id": "wh_1", "event_type": "PAYMENT_WEBHOOK_TYPE_APPROVED",
                         "data": {"payment_intent_id": "pi_1", "reservation_id": "res_1"}});
    let now = (t.host.runtime().clock.now_ms() / 1000).to_string();
    let (status, resp) = t
        .post_raw(
            "/api/v1/webhooks/payment",
            webhook.to_string().into_bytes(),
            &[
                ("webhook-id", "wh_1"),
                ("webhook-timestamp", &now),
                ("webhook-signature", "v1,Zm9yZ2Vk"),
            ],
        )
        .await;
    assert_eq!(
        (status, code(&resp)),
        (401, "ERROR_CODE_UNAUTHENTICATED"),
        "{resp}"
    );
    let (status, _) = t
        .post_raw(
            "/api/v1/webhooks/payment",
            webhook.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(status, 401);

    // Routing errors keep the shape too.
    let (status, resp) = t.get("/api/v1/nowhere").await;
    assert_eq!((status, code(&resp)), (404, "ERROR_CODE_NOT_FOUND"));
    let (status, _) = t.get("/api/v1/reservations/r1/confirm").await;
    assert_eq!(status, 405);
    let (status, resp) = t.get("/api/v1/queue/status?token=x&bogus=1").await;
    assert_eq!(
        (status, code(&resp)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{resp}"
    );
    let (status, resp) = t
        .post("/admin/v1/clock/advance", json!({"seconds": -1}))
        .await;
    assert_eq!(
        (status, code(&resp)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{resp}"
    );

    assert_eq!(t.seats("e").await, before, "nothing changed");
    // The token still works: nothing was consumed by the refusals.
    let (status, resp) = t.hold("e", "frank", &token, &["A-1"], "good").await;
    assert_eq!(status, 200, "{resp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_no_call_could_run_with_are_refused() {
    let t = start().await;
    for (quotas, want) in [
        (json!({"deadline_ms": u64::MAX}), "at most 600000"),
        (json!({"deadline_ms": 0}), "at least 1"),
    ] {
        let (status, body) = t.put_tenant("huge", json!({ "quotas": quotas })).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.to_string().contains(want), "{body}");
    }
    let (_, list) = t.get("/admin/v1/tenants").await;
    assert!(
        !list.to_string().contains("\"huge\""),
        "nothing was added: {list}"
    );
    // A policy with one is refused too.
    let policy = "[defaults]\ndeadline_ms = 18446744073709551615\n";
    let err = tacos_host::foundations::policy::Policy::parse(policy, "t").unwrap_err();
    assert!(format!("{err:#}").contains("deadline_ms"), "{err:#}");
}
