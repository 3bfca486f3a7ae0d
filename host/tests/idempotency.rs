//! Idempotency keys: replay within the window, refuse a different request.

mod common;

use common::*;
use prost::Message;
use serde_json::{Value, json};
use std::sync::Arc;
use tacos_host::edge::grpc::RpcStatus;
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode};

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

/// A hold sent with an `Idempotency-Key` header (and no key in the body).
async fn hold_with_header(t: &TestHost, token: &str, seat: &str, key: &str) -> (u16, Value) {
    let body = json!({"event_id": "e", "seat_ids": [seat], "reservation_token": token});
    let auth = t.bearer("gina");
    t.post_raw(
        "/api/v1/reservations",
        body.to_string().into_bytes(),
        &[("authorization", &auth), ("idempotency-key", key)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_key_fifty_concurrent_duplicates_hold_once_and_answer_alike() {
    let t = Arc::new(start().await);
    t.create_event("e", 10, 1_000, 1000).await;
    let token = t.admitted("e", "gina").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (t, token) = (t.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            hold_with_header(&t, &token, "A-5", "hdr-1").await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "all 50 answers are identical: {answers:?}"
    );
    let seats = t.seats("e").await;
    let held: Vec<_> = seats
        .iter()
        .filter(|(_, s)| *s == "SEAT_STATUS_RESERVED")
        .collect();
    assert_eq!(held.len(), 1, "{seats:?}");
    let (_, list) = t.get_as("gina", "/api/v1/reservations").await;
    assert_eq!(list["reservations"].as_array().map(Vec::len), Some(1));

    // The same key for another request is refused and changes nothing.
    let (status, body) = hold_with_header(&t, &token, "A-6", "hdr-1").await;
    assert_eq!(
        (status, code(&body)),
        (422, "ERROR_CODE_IDEMPOTENCY_CONFLICT"),
        "{body}"
    );
    assert_eq!(t.seats("e").await["A-6"], "SEAT_STATUS_AVAILABLE");
    // A body key that disagrees with the header is refused.
    let auth = t.bearer("gina");
    let body = json!({"event_id": "e", "seat_ids": ["A-7"], "reservation_token": token, "idempotency_key": "other"});
    let (status, resp) = t
        .post_raw(
            "/api/v1/reservations",
            body.to_string().into_bytes(),
            &[("authorization", &auth), ("idempotency-key", "hdr-2")],
        )
        .await;
    assert_eq!(
        (status, code(&resp)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{resp}"
    );
    // A malformed key too.
    let (status, _) = hold_with_header(&t, &token, "A-7", "has space").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_key_replays_on_open_routes_until_the_window_ends() {
    let t = start_with(|o| o.idempotency_window = std::time::Duration::from_secs(30)).await;
    t.create_event("e", 10, 1_000, 1000).await;
    let join = |user: &str| {
        let body = json!({"event_id": "e", "user_id": user, "session_id": "s"});
        let t = &t;
        async move {
            t.post_raw(
                "/api/v1/queue/join",
                body.to_string().into_bytes(),
                &[("idempotency-key", "join-1")],
            )
            .await
        }
    };
    let (status, first) = join("hal").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(join("hal").await, (200, first.clone()), "replayed");
    let (status, other) = join("ivy").await;
    assert_eq!(
        (status, code(&other)),
        (422, "ERROR_CODE_IDEMPOTENCY_CONFLICT"),
        "{other}"
    );
    t.advance(31.0).await;
    let (status, later) = join("ivy").await;
    assert_eq!(status, 200, "the key's record has expired: {later}");
    assert_ne!(later["waiting_token"], first["waiting_token"]);
}

/// The same key over gRPC (`idempotency-key` metadata) follows the same rule,
/// and one key is one answer whichever protocol carries the retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_one_answer_across_rest_and_grpc() {
    use tacos_proto::reservation::v1::CreateReservationRequest;
    use tacos_proto::reservation::v1::reservation_service_client::ReservationServiceClient;
    let t = start().await;
    t.create_event("e", 10, 1_000, 1000).await;
    let admitted = t
        .admitted_all("e", &["gina".to_string(), "hana".to_string()])
        .await;
    let token = admitted[0].clone();
    let channel = tonic::transport::Channel::from_shared(t.url.clone())
        .expect("a URL")
        .connect()
        .await
        .expect("gRPC connects");
    let mut client = ReservationServiceClient::new(channel);
    // A second buyer: one admission makes one hold.
    let tokens = [
        ("gina", token.clone()),
        ("hana", t.admitted("e", "hana").await),
    ];
    let grpc_hold = |seat: &str, key: &str| {
        let (user, token) = if key == "both-1" {
            &tokens[0]
        } else {
            &tokens[1]
        };
        let mut req = tonic::Request::new(CreateReservationRequest {
            event_id: "e".into(),
            seat_ids: vec![seat.into()],
            reservation_token: token.clone(),
            ..Default::default()
        });
        let md = req.metadata_mut();
        md.insert("authorization", t.bearer(user).parse().expect("ASCII"));
        md.insert("idempotency-key", key.parse().expect("ASCII"));
        req
    };

    // REST first, then the retry over gRPC: the first answer, replayed.
    let (status, first) = hold_with_header(&t, &token, "A-1", "both-1").await;
    assert_eq!(status, 200, "{first}");
    let again = client
        .create_reservation(grpc_hold("A-1", "both-1"))
        .await
        .expect("a replayed answer");
    let replayed = again.metadata().get("idempotent-replayed");
    assert_eq!(replayed.and_then(|v| v.to_str().ok()), Some("true"));
    let again = again.into_inner();
    assert_eq!(
        Some(again.reservation_id.as_str()),
        first["reservation_id"].as_str(),
        "the same reservation"
    );

    // gRPC twice under a new key: one hold; another request under it is refused.
    let one = client
        .create_reservation(grpc_hold("A-2", "grpc-1"))
        .await
        .expect("a hold over gRPC");
    assert!(one.metadata().get("idempotent-replayed").is_none());
    let two = client
        .create_reservation(grpc_hold("A-2", "grpc-1"))
        .await
        .expect("the replay");
    assert_eq!(one.into_inner(), two.into_inner());
    let conflict = client
        .create_reservation(grpc_hold("A-3", "grpc-1"))
        .await
        .expect_err("another request under the same key");
    let rpc = RpcStatus::decode(conflict.details()).expect("google.rpc.Status details");
    let any = rpc.details.first().expect("the contract error");
    let e = ProtoError::decode(any.value.as_slice()).expect("a common.v1.Error");
    assert_eq!(
        e.code,
        ErrorCode::IdempotencyConflict as i32,
        "{conflict:?}"
    );
    // Another user's request under the same key is theirs: never a replay of
    // hana's hold (gina's admission is spent, so hers is refused).
    let mut other = grpc_hold("A-2", "grpc-1");
    let gina = t.bearer("gina").parse().expect("ASCII");
    other.metadata_mut().insert("authorization", gina);
    let theirs = client
        .create_reservation(other)
        .await
        .expect_err("not hana's answer");
    assert_eq!(theirs.code(), tonic::Code::PermissionDenied, "{theirs:?}");
    assert!(theirs.metadata().get("idempotent-replayed").is_none());
    let bad = client
        .create_reservation(grpc_hold("A-3", "has space"))
        .await
        .expect_err("a malformed key");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    let seats = t.seats("e").await;
    let held = seats.values().filter(|s| *s == "SEAT_STATUS_RESERVED");
    assert_eq!(held.count(), 2, "A-1 and A-2 only: {seats:?}");
}
