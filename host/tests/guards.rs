//! One guard table for both protocols, tried as a stranger would: every
//! contract method over gRPC and every REST route is called with no
//! credentials, and each answers as its entry in the table says; the
//! service-to-service RPCs are not reachable at all; an unsigned webhook is
//! refused over gRPC as over REST. Each attack checks that nothing changed.

mod common;

use common::*;
use prost::Message;
use serde_json::json;
use tacos_host::edge::grpc::Raw;
use tacos_host::edge::guards::{self, Guard};
use tacos_proto::gateway::v1::{PaymentWebhookData, PaymentWebhookRequest, PaymentWebhookType};
use tonic::Code;

const ADMIN: &str = "admin-token-0123456789abcdef";

async fn guarded_host() -> TestHost {
    let t = start_with(|o| o.admin_token = Some(ADMIN.into())).await;
    let (status, body) = request(
        &t.http,
        "POST",
        &format!("{}/admin/v1/events", t.url),
        Some(
            json!({"event_id": "e", "name": "E", "seat_count": 3,
                   "price": {"amount": 1000, "currency": "KRW"}, "admission_per_second": 1000})
            .to_string()
            .into_bytes(),
        ),
        &[("authorization", &format!("Bearer {ADMIN}"))],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    t
}

/// A raw gRPC call of `path` with `msg` and `headers`: its status code.
async fn grpc_call(
    url: &str,
    path: &str,
    msg: Vec<u8>,
    headers: &[(&'static str, String)],
) -> Code {
    let channel = tonic::transport::Channel::from_shared(url.to_string())
        .expect("a URL")
        .connect()
        .await
        .expect("gRPC connects");
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("the channel is ready");
    let mut req = tonic::Request::new(msg);
    for (k, v) in headers {
        req.metadata_mut()
            .insert(*k, v.parse().expect("ASCII metadata"));
    }
    let path = path.parse().expect("a gRPC path");
    match grpc.unary::<_, bytes::Bytes, _>(req, path, Raw).await {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

/// What a stranger gets from a method behind `guard`.
fn stranger_gets(guard: Option<Guard>) -> &'static [Code] {
    match guard {
        None | Some(Guard::Internal) => &[Code::Unimplemented],
        Some(Guard::User | Guard::SignedWebhook | Guard::Admin) => &[Code::Unauthenticated],
        // Open methods run: a refusal of the empty request is fine, a
        // credentials refusal or a missing method is not.
        Some(Guard::Open | Guard::MaybeUser) => &[
            Code::Ok,
            Code::InvalidArgument,
            Code::NotFound,
            Code::FailedPrecondition,
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grpc_method_answers_a_stranger_as_the_table_says() {
    let t = guarded_host().await;
    let pool = prost_reflect::DescriptorPool::decode(tacos_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut tried = 0;
    for service in pool.services() {
        for m in service.methods() {
            // tacos.internal services are for components and the REST admin
            // API only: gRPC serves none of them.
            let guard = guards::of(service.full_name(), m.name())
                .filter(|_| !service.full_name().starts_with("tacos."));
            let path = format!("/{}/{}", service.full_name(), m.name());
            let code = grpc_call(&t.url, &path, Vec::new(), &[]).await;
            assert!(
                stranger_gets(guard).contains(&code),
                "{path} ({guard:?}) answered a stranger {code:?}"
            );
            tried += 1;
        }
    }
    assert!(tried > 30, "{tried} methods");
    // The table itself: the doors this file was written for stay shut.
    for (service, method, want) in [
        ("reservation.v1.Inventory", "ReserveSeat", Guard::Internal),
        (
            "reservation.v1.Inventory",
            "CommitReservation",
            Guard::Internal,
        ),
        ("reservation.v1.Inventory", "ReleaseHold", Guard::Internal),
        (
            "gateway.v1.WebhookService",
            "ReceivePaymentWebhook",
            Guard::SignedWebhook,
        ),
        ("payment.v1.PaymentService", "SimulateWebhook", Guard::User),
        (
            "reservation.v1.WorkerService",
            "ProcessPaymentResult",
            Guard::Admin,
        ),
        (
            "tacos.internal.v1.ReservationLifecycle",
            "FailReservation",
            Guard::Internal,
        ),
    ] {
        assert_eq!(
            guards::of(service, method),
            Some(want),
            "{service}/{method}"
        );
    }
    assert_eq!(t.seats("e").await["A-1"], "SEAT_STATUS_AVAILABLE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_route_answers_a_stranger_as_the_table_says() {
    let t = guarded_host().await;
    for route in tacos_host::edge::routes::table() {
        let guard = guards::of(route.service, route.rpc).expect("every route has a guard");
        assert_ne!(guard, Guard::Internal, "{route:?}");
        let path = route
            .path
            .replace("{event_id}", "e")
            .replace("{reservation_id}", "res_x")
            .replace("{payment_intent_id}", "pi_x");
        let body = (route.method == hyper::Method::POST).then(|| b"{}".to_vec());
        let url = format!("{}{path}", t.url);
        let (status, resp) = request(&t.http, route.method.as_str(), &url, body, &[]).await;
        let credentials_refused = status == 401;
        assert_eq!(
            credentials_refused,
            matches!(guard, Guard::User | Guard::SignedWebhook | Guard::Admin),
            "{} {path} ({guard:?}) answered a stranger {status}: {resp}",
            route.method
        );
    }
    // Admin-only host routes, the clock's reading included.
    for (method, path) in [
        ("GET", "/admin/v1/clock"),
        ("POST", "/admin/v1/clock/advance"),
        ("GET", "/admin/v1/tenants"),
        ("GET", "/admin/v1/services"),
        ("GET", "/admin/v1/dead-letters"),
        ("GET", "/metrics"),
    ] {
        let url = format!("{}{path}", t.url);
        let body = (method == "POST").then(|| br#"{"seconds": 3600}"#.to_vec());
        for auth in [None, Some("Bearer admin-token-0123456789abcdeX")] {
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
            let (status, resp) = request(&t.http, method, &url, body.clone(), &headers).await;
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {resp}");
            assert_eq!(code(&resp), "ERROR_CODE_UNAUTHENTICATED");
        }
    }
    let bearer = format!("Bearer {ADMIN}");
    let (status, clock) = request(
        &t.http,
        "GET",
        &format!("{}/admin/v1/clock", t.url),
        None,
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(status, 200, "{clock}");
}

/// A FAILED payment webhook for `reservation`, encoded.
fn failed_webhook(reservation: &str) -> Vec<u8> {
    PaymentWebhookRequest {
        webhook_id: "wh_forged".into(),
        event_type: PaymentWebhookType::Failed as i32,
        data: Some(PaymentWebhookData {
            reservation_id: reservation.into(),
            payment_intent_id: "pi_forged".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_writes_and_unsigned_webhooks_are_shut_over_grpc() {
    let t = start().await;
    t.create_event("e", 3, 1_000, 1000).await;
    let token = t.admitted("e", "ann").await;
    let (status, held) = t.hold("e", "ann", &token, &["A-1"], "k").await;
    assert_eq!(status, 200, "{held}");
    let id = held["reservation_id"].as_str().unwrap();

    // Sell a seat, or free ann's, straight through inventory: no such method.
    let reserve = tacos_proto::reservation::v1::ReserveSeatRequest {
        reservation_id: "res_evil".into(),
        event_id: "e".into(),
        seat_ids: vec!["A-2".into()],
        user_id: "mallory".into(),
        ..Default::default()
    };
    for (method, msg) in [
        ("ReserveSeat", reserve.encode_to_vec()),
        (
            "CommitReservation",
            tacos_proto::reservation::v1::CommitReservationRequest {
                reservation_id: "res_evil".into(),
                event_id: "e".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            "ReleaseHold",
            tacos_proto::reservation::v1::ReleaseHoldRequest {
                reservation_id: id.into(),
                event_id: "e".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    ] {
        let path = format!("/reservation.v1.Inventory/{method}");
        let code = grpc_call(&t.url, &path, msg, &[]).await;
        assert_eq!(code, Code::Unimplemented, "{method}");
    }

    // A forged FAILED webhook for ann's hold: unsigned, then badly signed.
    let path = "/gateway.v1.WebhookService/ReceivePaymentWebhook";
    let now = (t.host.runtime().clock.now_ms() / 1000).to_string();
    let bad_sig = vec![
        ("webhook-id", "wh_forged".to_string()),
        ("webhook-timestamp", now.clone()),
        ("webhook-signature", "v1,AAAA".to_string()),
    ];
    for headers in [vec![], bad_sig] {
        let code = grpc_call(&t.url, path, failed_webhook(id), &headers).await;
        assert_eq!(code, Code::Unauthenticated);
    }
    t.advance(1.0).await;
    assert_eq!(
        t.reservation(id, "ann").await["status"],
        "RESERVATION_STATUS_HOLD"
    );
    let seats = t.seats("e").await;
    assert_eq!(seats["A-1"], "SEAT_STATUS_RESERVED");
    assert_eq!(seats["A-2"], "SEAT_STATUS_AVAILABLE");

    // Signed with the tenant's key over the message bytes, it is accepted.
    let tenant = t.host.runtime().tenant("default").expect("default tenant");
    let msg = failed_webhook(id);
    let ts: u64 = now.parse().unwrap();
    let sig = tacos_host::foundations::signature::sign(
        &tenant.webhook_keys().current,
        "wh_signed",
        ts,
        &msg,
    );
    let signed = vec![
        ("webhook-id", "wh_signed".to_string()),
        ("webhook-timestamp", now),
        ("webhook-signature", sig),
    ];
    assert_eq!(grpc_call(&t.url, path, msg, &signed).await, Code::Ok);
}
