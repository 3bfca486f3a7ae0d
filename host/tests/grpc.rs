//! gRPC on the edge's port: a generated tonic client and `grpcurl` (no local
//! protos, reflection only) each run the whole ticket flow; reflection lists
//! every service; health reports SERVING; errors carry `common.v1.Error`;
//! deadlines apply; GatewayService fronts the owning services.

mod common;

use common::*;
use prost::Message;
use tacos_host::edge::errors::grpc_code_of;
use tacos_host::edge::grpc::{Raw, RpcStatus};
use tacos_proto::common::v1::{Error as ProtoError, ErrorCode, SeatStatus};
use tacos_proto::gateway::v1::queue_service_client::QueueServiceClient;
use tacos_proto::gateway::v1::{
    GetQueueStatusRequest, JoinQueueRequest, QueueStatus, RequestAdmissionRequest,
};
use tacos_proto::payment::v1::payment_service_client::PaymentServiceClient;
use tacos_proto::payment::v1::{CreatePaymentIntentRequest, PaymentScenario};
use tacos_proto::reservation::v1::inventory_client::InventoryClient;
use tacos_proto::reservation::v1::reservation_service_client::ReservationServiceClient;
use tacos_proto::reservation::v1::{
    CreateReservationRequest, GetInventoryStatusRequest, GetReservationRequest, ReservationStatus,
};
use tonic::Code;
use tonic::transport::Channel;

async fn channel(t: &TestHost) -> Channel {
    Channel::from_shared(t.url.clone())
        .expect("a valid URL")
        .connect()
        .await
        .expect("gRPC connects")
}

/// A request as `user`, with their bearer token.
fn as_user<T>(t: &TestHost, user: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        t.bearer(user).parse().expect("an ASCII header value"),
    );
    req
}

async fn seat_status(inv: &mut InventoryClient<Channel>, event: &str, seat: &str) -> SeatStatus {
    let r = inv
        .get_inventory_status(GetInventoryStatusRequest {
            event_id: event.into(),
            ..Default::default()
        })
        .await
        .expect("inventory status")
        .into_inner();
    let s = r
        .sections
        .iter()
        .flat_map(|s| &s.seats)
        .find(|s| s.id == seat)
        .expect("seat listed");
    SeatStatus::try_from(s.status).expect("a known seat status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_client_runs_the_whole_flow() {
    let t = start().await;
    t.create_event("g", 10, 25_000, 1000).await;
    let ch = channel(&t).await;
    let mut queue = QueueServiceClient::new(ch.clone());
    let mut reservations = ReservationServiceClient::new(ch.clone());
    let mut payments = PaymentServiceClient::new(ch.clone());
    let mut inventory = InventoryClient::new(ch);

    let joined = queue
        .join_queue(JoinQueueRequest {
            event_id: "g".into(),
            user_id: "dora".into(),
            session_id: "s1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(joined.metadata().get("x-trace-id").is_some());
    let served_by = joined.metadata().get("x-tacos-served-by").unwrap();
    assert!(served_by.to_str().unwrap().starts_with("queue@"));
    let wt = joined.into_inner().waiting_token;
    let status = queue
        .get_queue_status(GetQueueStatusRequest {
            waiting_token: wt.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, QueueStatus::Ready as i32);
    let token = queue
        .request_admission(RequestAdmissionRequest {
            waiting_token: wt,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .reservation_token;

    let hold = reservations
        .create_reservation(as_user(
            &t,
            "dora",
            CreateReservationRequest {
                event_id: "g".into(),
                seat_ids: vec!["A-3".into()],
                user_id: "dora".into(),
                reservation_token: token,
                idempotency_key: "k1".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hold.status, ReservationStatus::Hold as i32);
    assert_eq!(
        seat_status(&mut inventory, "g", "A-3").await,
        SeatStatus::Reserved
    );

    // The user comes from the token; the field may be left empty.
    payments
        .create_payment_intent(as_user(
            &t,
            "dora",
            CreatePaymentIntentRequest {
                reservation_id: hold.reservation_id.clone(),
                amount: hold.total_amount,
                scenario: PaymentScenario::Approve as i32,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    t.advance(5.0).await;

    let r = reservations
        .get_reservation(as_user(
            &t,
            "dora",
            GetReservationRequest {
                reservation_id: hold.reservation_id,
                user_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .reservation
        .unwrap();
    assert_eq!(r.status, ReservationStatus::Confirmed as i32, "{r:?}");
    assert!(r.order_id.starts_with("ord_"));
    assert_eq!(
        seat_status(&mut inventory, "g", "A-3").await,
        SeatStatus::Sold
    );
}

fn contract_error(s: &tonic::Status) -> ProtoError {
    let rpc = RpcStatus::decode(s.details()).expect("google.rpc.Status details");
    assert_eq!(rpc.code, s.code() as i32);
    let any = rpc.details.first().expect("one detail");
    assert_eq!(any.type_url, "type.googleapis.com/common.v1.Error");
    ProtoError::decode(any.value.as_slice()).expect("a common.v1.Error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_status_codes_with_the_contract_error() {
    let t = start().await;
    t.create_event("g", 2, 1_000, 1000).await;
    let ch = channel(&t).await;

    let mut inventory = InventoryClient::new(ch.clone());
    let s = inventory
        .get_inventory_status(GetInventoryStatusRequest {
            event_id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    let e = contract_error(&s);
    assert_eq!(e.code, ErrorCode::NotFound as i32);
    assert!(!e.trace_id.is_empty());
    assert_eq!(
        s.metadata().get("x-trace-id").unwrap().to_str().unwrap(),
        e.trace_id
    );

    // A bad reservation token: the component's INVALID_ARGUMENT / UNAUTHENTICATED.
    let mut reservations = ReservationServiceClient::new(ch.clone());
    let s = reservations
        .create_reservation(as_user(
            &t,
            "eve",
            CreateReservationRequest {
                event_id: "g".into(),
                seat_ids: vec!["A-1".into()],
                user_id: "eve".into(),
                reservation_token: "forged".into(),
                idempotency_key: "k".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(s.code(), Code::Unauthenticated | Code::InvalidArgument),
        "{s:?}"
    );
    assert_eq!(grpc_code_of(contract_error(&s).code), s.code());

    // A deadline already past when the call arrives: nothing runs. (A tonic
    // client would give up itself, so this one is sent by hand over h2.)
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let msg = GetInventoryStatusRequest {
        event_id: "g".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    let resp = h2
        .request(
            hyper::Request::post(format!(
                "{}/reservation.v1.Inventory/GetInventoryStatus",
                t.url
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", "1n")
            .body(frame.into())
            .unwrap(),
        )
        .await
        .unwrap();
    let s = tonic::Status::from_header_map(resp.headers()).expect("a trailers-only status");
    assert_eq!(s.code(), Code::DeadlineExceeded, "{s:?}");
    assert_eq!(contract_error(&s).code, ErrorCode::Timeout as i32);

    // Garbage bytes are the component's INVALID_ARGUMENT, not a crash.
    let mut grpc = tonic::client::Grpc::new(channel(&t).await);
    grpc.ready().await.unwrap();
    let s = grpc
        .unary::<Vec<u8>, bytes::Bytes, _>(
            tonic::Request::new(vec![0xff, 0xff, 0xff]),
            "/reservation.v1.Inventory/GetInventoryStatus"
                .parse()
                .unwrap(),
            Raw,
        )
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");

    // An unknown method is UNIMPLEMENTED.
    grpc.ready().await.unwrap();
    let s = grpc
        .unary::<Vec<u8>, bytes::Bytes, _>(
            tonic::Request::new(Vec::new()),
            "/reservation.v1.Inventory/Nope".parse().unwrap(),
            Raw,
        )
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Unimplemented, "{s:?}");
    // The host still serves.
    assert_eq!(
        seat_status(&mut inventory, "g", "A-1").await,
        SeatStatus::Available
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_runs_the_flow_lists_and_checks_health_by_reflection() {
    let Some(grpcurl) = test_tool("grpcurl") else {
        return;
    };
    let t = start().await;
    t.create_event("g", 3, 1_000, 1000).await;
    let addr = t.url.trim_start_matches("http://").to_string();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&grpcurl)
            .args(["-plaintext", "-max-time", "20"])
            .args(args)
            .output()
            .expect("grpcurl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    let (ok, listed, err) = run(&[&addr, "list"]);
    assert!(ok, "{err}");
    for service in [
        "gateway.v1.QueueService",
        "gateway.v1.WebhookService",
        "payment.v1.PaymentService",
        "reservation.v1.Inventory",
        "reservation.v1.ReservationService",
        "reservation.v1.WorkerService",
        "gateway.v1.GatewayService",
        "grpc.health.v1.Health",
    ] {
        assert!(listed.lines().any(|l| l == service), "{service}: {listed}");
    }
    assert!(
        !listed.contains("tacos."),
        "internal services stay off: {listed}"
    );

    for service in ["", "gateway.v1.QueueService", "reservation.v1.Inventory"] {
        let body = format!(r#"{{"service":"{service}"}}"#);
        let (ok, out, err) = run(&["-d", &body, &addr, "grpc.health.v1.Health/Check"]);
        assert!(ok && out.contains("SERVING"), "{service}: {out}{err}");
    }

    // The whole flow, with grpcurl alone (and the admin clock).
    let call = |headers: &[&str], body: String, method: &str| {
        let mut args: Vec<&str> = Vec::new();
        for h in headers {
            args.extend(["-H", h]);
        }
        args.extend(["-d", &body, &addr, method]);
        let (ok, out, err) = run(&args);
        assert!(ok, "{method}: {err}");
        serde_json::from_str::<serde_json::Value>(&out).expect("JSON out")
    };
    let joined = call(
        &[],
        r#"{"event_id":"g","user_id":"u1","session_id":"s"}"#.into(),
        "gateway.v1.QueueService/JoinQueue",
    );
    assert_eq!(joined["status"], "QUEUE_STATUS_READY", "{joined}");
    let wt = joined["waitingToken"].as_str().unwrap().to_string();
    let status = call(
        &[],
        format!(r#"{{"waiting_token":"{wt}"}}"#),
        "gateway.v1.QueueService/GetQueueStatus",
    );
    assert_eq!(status["status"], "QUEUE_STATUS_READY", "{status}");
    let entered = call(
        &[],
        format!(r#"{{"waiting_token":"{wt}"}}"#),
        "gateway.v1.QueueService/RequestAdmission",
    );
    let rt = entered["reservationToken"].as_str().unwrap().to_string();
    let auth = format!("authorization: {}", t.bearer("u1"));
    let held = call(
        &[&auth],
        format!(
            r#"{{"event_id":"g","seat_ids":["A-1"],"reservation_token":"{rt}","idempotency_key":"k1"}}"#
        ),
        "reservation.v1.ReservationService/CreateReservation",
    );
    assert_eq!(held["status"], "RESERVATION_STATUS_HOLD", "{held}");
    let id = held["reservationId"].as_str().unwrap().to_string();
    call(
        &[&auth],
        format!(
            r#"{{"reservation_id":"{id}","amount":{{"amount":"1000","currency":"KRW"}},"scenario":"PAYMENT_SCENARIO_APPROVE"}}"#
        ),
        "payment.v1.PaymentService/CreatePaymentIntent",
    );
    t.advance(5.0).await;
    let got = call(
        &[&auth],
        format!(r#"{{"reservation_id":"{id}"}}"#),
        "reservation.v1.ReservationService/GetReservation",
    );
    assert_eq!(
        got["reservation"]["status"], "RESERVATION_STATUS_CONFIRMED",
        "{got}"
    );

    let (ok, out, err) = run(&[
        "-d",
        r#"{"event_id":"missing"}"#,
        &addr,
        "reservation.v1.Inventory/GetInventoryStatus",
    ]);
    assert!(!ok, "{out}");
    assert!(err.contains("NotFound"), "{err}");
    assert!(
        err.contains("common.v1.Error") && err.contains("ERROR_CODE_NOT_FOUND"),
        "the contract error travels as a detail: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_service_fronts_the_owning_services() {
    use tacos_proto::gateway::v1::gateway_service_client::GatewayServiceClient;
    use tacos_proto::gateway::v1::{HealthCheckRequest, HealthStatus, ValidateTokenRequest};

    let t = start().await;
    t.create_event("g", 4, 2_000, 1000).await;
    let mut gw = GatewayServiceClient::new(channel(&t).await);

    let health = gw
        .health_check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, HealthStatus::Healthy as i32, "{health:?}");
    assert_eq!(
        health.services.get("reservation.v1.ReservationService"),
        Some(&(HealthStatus::Healthy as i32))
    );

    let bearer = t.bearer("kim");
    let valid = gw
        .validate_token(ValidateTokenRequest {
            token: bearer.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(valid.valid, "{valid:?}");
    assert_eq!(valid.user.unwrap().user_id, "kim");
    let invalid = gw
        .validate_token(ValidateTokenRequest {
            token: "not.a.jwt".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!invalid.valid);
    assert_eq!(
        invalid.error.unwrap().code,
        ErrorCode::Unauthenticated as i32
    );

    // Aliases run the owning RPC, with its guard.
    let seats = gw
        .get_event_availability(GetInventoryStatusRequest {
            event_id: "g".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seats.stats.unwrap().available_seats, 4);
    let token = t.admitted("g", "kim").await;
    let hold = CreateReservationRequest {
        event_id: "g".into(),
        seat_ids: vec!["A-2".into()],
        reservation_token: token,
        idempotency_key: "k".into(),
        ..Default::default()
    };
    let s = gw.create_reservation(hold.clone()).await.unwrap_err();
    assert_eq!(s.code(), Code::Unauthenticated);
    let held = gw
        .create_reservation(as_user(&t, "kim", hold))
        .await
        .unwrap();
    assert!(
        held.metadata()
            .get("x-tacos-served-by")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("reservation@")
    );
    let mut inventory = InventoryClient::new(channel(&t).await);
    assert_eq!(
        seat_status(&mut inventory, "g", "A-2").await,
        SeatStatus::Reserved
    );
}
