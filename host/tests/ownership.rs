//! A user acts only on their own objects, tried as another user would:
//! someone else's reservation and payment intent are answered as if they did
//! not exist, on REST and gRPC; one admission makes one hold; a join never
//! hands out another session's place. Each attack checks nothing changed.

mod common;

use common::*;
use serde_json::{Value, json};
use tacos_proto::payment::v1::SimulateWebhookRequest;
use tacos_proto::payment::v1::payment_service_client::PaymentServiceClient;

/// Join and enter `e` as `user`, letting (virtual) time admit them.
async fn admitted(t: &TestHost, user: &str) -> String {
    t.admitted_all("e", &[user.to_string()]).await.remove(0)
}

/// Ann holds A-1 of event `e`: her reservation and the token it took.
async fn anns_hold(t: &TestHost) -> (Value, String) {
    t.create_event("e", 4, 1_000, 1000).await;
    let token = admitted(t, "ann").await;
    let (status, held) = t.hold("e", "ann", &token, &["A-1"], "k").await;
    assert_eq!(status, 200, "{held}");
    (held, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_reservation_and_intent_do_not_exist_for_mallory() {
    let t = start().await;
    let (held, _) = anns_hold(&t).await;
    let id = held["reservation_id"].as_str().unwrap();

    // A FAIL intent on ann's reservation would fail her hold.
    let (status, body) = t
        .post(
            "/api/v1/payments/intent",
            json!({"reservation_id": id, "user_id": "mallory", "amount": held["total_amount"],
                   "scenario": "PAYMENT_SCENARIO_FAIL"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(code(&body), "ERROR_CODE_NOT_FOUND");
    for path in [
        format!("/api/v1/reservations/{id}"),
        format!("/api/v1/reservations/{id}/cancel"),
    ] {
        let (status, body) = if path.ends_with("cancel") {
            t.post(&path, json!({"user_id": "mallory"})).await
        } else {
            t.get_as("mallory", &path).await
        };
        assert_eq!(status, 404, "{path}: {body}");
    }

    // Ann's own intent: mallory can neither read it nor simulate its outcome.
    let intent = t.pay(&held, "ann", "PAYMENT_SCENARIO_DELAY").await;
    let (status, body) = t
        .post(
            &format!("/api/v1/payments/{intent}/simulate-webhook"),
            json!({"user_id": "mallory", "target_status": "PAYMENT_STATUS_FAILED"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = t
        .get_as("mallory", &format!("/api/v1/payments/{intent}"))
        .await;
    assert_eq!(status, 404, "{body}");
    // Over gRPC, the same.
    let channel = tonic::transport::Channel::from_shared(t.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut payments = PaymentServiceClient::new(channel);
    let mut req = tonic::Request::new(SimulateWebhookRequest {
        payment_intent_id: intent.clone(),
        target_status: tacos_proto::payment::v1::PaymentStatus::Failed as i32,
        ..Default::default()
    });
    req.metadata_mut()
        .insert("authorization", t.bearer("mallory").parse().unwrap());
    let err = payments.simulate_webhook(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");

    // Nothing changed: ann's hold stands, her intent is pending.
    t.advance(3.0).await;
    assert_eq!(
        t.reservation(id, "ann").await["status"],
        "RESERVATION_STATUS_HOLD"
    );
    let (_, ann_intent) = t.get_as("ann", &format!("/api/v1/payments/{intent}")).await;
    assert_eq!(ann_intent["payment"]["status"], "PAYMENT_STATUS_PENDING");
    // Ann herself may simulate hers.
    let (status, body) = t
        .post(
            &format!("/api/v1/payments/{intent}/simulate-webhook"),
            json!({"user_id": "ann", "target_status": "PAYMENT_STATUS_COMPLETED"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_admission_makes_one_hold() {
    let t = start().await;
    let (held, first_token) = anns_hold(&t).await;
    let token = admitted(&t, "ann").await; // the same ticket, granted again
    // A second hold with the same admission, under another key: refused.
    let (status, body) = t.hold("e", "ann", &token, &["A-2"], "k2").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(code(&body), "ERROR_CODE_FORBIDDEN");
    // The first request again replays its answer.
    let (status, replay) = t.hold("e", "ann", &first_token, &["A-1"], "k").await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["reservation_id"], held["reservation_id"]);
    let seats = t.seats("e").await;
    assert_eq!(seats["A-2"], "SEAT_STATUS_AVAILABLE");

    // Two concurrent tries with one fresh admission: one hold.
    let token = admitted(&t, "bob").await;
    let (a, b) = tokio::join!(
        t.hold("e", "bob", &token, &["A-3"], "b1"),
        t.hold("e", "bob", &token, &["A-4"], "b2"),
    );
    let ok = [&a, &b].iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{a:?} {b:?}");
    let seats = t.seats("e").await;
    let reserved = ["A-3", "A-4"]
        .iter()
        .filter(|s| seats[**s] == "SEAT_STATUS_RESERVED")
        .count();
    assert_eq!(reserved, 1, "{seats:?}");

    // A hold that fails (a seat taken) gives the admission back.
    let token = admitted(&t, "cy").await;
    let (status, body) = t.hold("e", "cy", &token, &["A-1"], "c1").await;
    assert_eq!(status, 409, "{body}");
    let free = if seats["A-3"] == "SEAT_STATUS_AVAILABLE" {
        "A-3"
    } else {
        "A-4"
    };
    let (status, body) = t.hold("e", "cy", &token, &[free], "c2").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_never_hands_out_another_sessions_place() {
    let t = start().await;
    t.create_event("q", 10, 1_000, 1).await; // one admission a second: people wait
    for u in ["u1", "u2", "u3"] {
        t.join("q", u).await;
    }
    let victim = t.join("q", "victim").await; // session s-victim
    let status_of = |token: String| {
        let t = &t;
        async move {
            let (s, body) = t.get(&format!("/api/v1/queue/status?token={token}")).await;
            assert_eq!(s, 200, "{body}");
            body
        }
    };
    let before = status_of(victim.clone()).await;

    // Anonymous, naming the victim from another session: a place of its own.
    let (status, body) = t
        .post_raw(
            "/api/v1/queue/join",
            json!({"event_id": "q", "user_id": "victim", "session_id": "mallory"})
                .to_string()
                .into_bytes(),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let theirs = body["waiting_token"].as_str().unwrap().to_string();
    assert_ne!(theirs, victim);
    // Leaving with it leaves the victim where they were.
    let (status, body) = t
        .post_raw(
            "/api/v1/queue/leave",
            json!({"waiting_token": theirs}).to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let after = status_of(victim.clone()).await;
    assert_eq!(after["status"], "QUEUE_STATUS_WAITING", "{after}");
    assert_eq!(after["position"], before["position"]);

    // Signed in, the user is the token's: naming another is refused.
    let (status, body) = t
        .post_raw(
            "/api/v1/queue/join",
            json!({"event_id": "q", "user_id": "victim", "session_id": "s-victim"})
                .to_string()
                .into_bytes(),
            &[("authorization", &t.bearer("mallory"))],
        )
        .await;
    assert_eq!(status, 403, "{body}");
    // The victim rejoining from their own session keeps their place.
    assert_eq!(t.join("q", "victim").await, victim);
}
