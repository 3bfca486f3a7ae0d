//! Nothing is lost across a crash: the real binary is killed with SIGKILL
//! mid-flow and started again on the same data dir.

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// Start `tacos up` on `data_dir` with a virtual clock and no demo event.
fn up(data_dir: &Path) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tacos"));
    cmd.args([
        "up",
        "--virtual-clock",
        "--no-demo",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(data_dir)
    .arg("--cache-dir")
    .arg(cache_dir())
    .env("TACOS_JWT_SECRET", JWT_SECRET);
    Proc::spawn(cmd)
}

/// A request, as the body's `user_id` when it names one.
async fn call(http: &Http, method: &str, url: String, body: Option<Value>) -> (u16, Value) {
    let user = body.as_ref().and_then(|b| b["user_id"].as_str());
    call_as(http, user, method, url, body.clone()).await
}

async fn call_as(
    http: &Http,
    user: Option<&str>,
    method: &str,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    // The virtual clock starts at the system's time and moves minutes at most.
    let auth = user.map(|u| bearer_at(tacos_host::foundations::clock::system_now_ms() / 1000, u));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    request(
        http,
        method,
        &url,
        body.map(|b| b.to_string().into_bytes()),
        &headers,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_reservations_and_delayed_messages_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    let host = up(dir.path());
    let u = host.url.clone();

    let (s, _) = call(&http, "POST", format!("{u}/admin/v1/events"), Some(json!({"event_id": "e", "name": "E", "seat_count": 10, "price": {"amount": 500, "currency": "KRW"}, "admission_per_second": 100000}))).await;
    assert_eq!(s, 200);
    let mut holds = Vec::new();
    for (user, seat) in [("u1", "A-1"), ("u2", "A-2")] {
        let (_, j) = call(
            &http,
            "POST",
            format!("{u}/api/v1/queue/join"),
            Some(json!({"event_id": "e", "user_id": user})),
        )
        .await;
        let (_, a) = call(
            &http,
            "POST",
            format!("{u}/api/v1/queue/enter"),
            Some(json!({"waiting_token": j["waiting_token"]})),
        )
        .await;
        assert!(a["reservation_token"].is_string(), "{j} {a}");
        let (s, r) = call(&http, "POST", format!("{u}/api/v1/reservations"), Some(json!({"event_id": "e", "seat_ids": [seat], "user_id": user, "reservation_token": a["reservation_token"], "idempotency_key": "k"}))).await;
        assert_eq!(s, 200, "{r}");
        holds.push(r);
    }
    // u2 pays; the payment completes 2–4 s later, after the restart.
    let (s, pi) = call(&http, "POST", format!("{u}/api/v1/payments/intent"), Some(json!({"reservation_id": holds[1]["reservation_id"], "user_id": "u2", "amount": holds[1]["total_amount"], "scenario": "PAYMENT_SCENARIO_APPROVE"}))).await;
    assert_eq!(s, 200, "{pi}");
    let (_, clock_before) = call(&http, "GET", format!("{u}/admin/v1/clock"), None).await;

    // SIGKILL: no shutdown hook runs.
    drop(host);

    let host = up(dir.path());
    let u = host.url.clone();
    let (_, clock_after) = call(&http, "GET", format!("{u}/admin/v1/clock"), None).await;
    assert_eq!(
        clock_before["now_ms"], clock_after["now_ms"],
        "virtual time survives"
    );
    let id1 = holds[0]["reservation_id"].as_str().unwrap();
    let id2 = holds[1]["reservation_id"].as_str().unwrap();
    let (_, r1) = call_as(
        &http,
        Some("u1"),
        "GET",
        format!("{u}/api/v1/reservations/{id1}"),
        None,
    )
    .await;
    assert_eq!(
        r1["reservation"]["status"], "RESERVATION_STATUS_HOLD",
        "{r1}"
    );
    let (_, seats) = call(&http, "GET", format!("{u}/api/v1/events/e/seats"), None).await;
    assert_eq!(seats["stats"]["reserved_seats"], 2, "{seats}");

    // The pending payment completion fires after the restart …
    let (_, adv) = call(
        &http,
        "POST",
        format!("{u}/admin/v1/clock/advance"),
        Some(json!({"seconds": 5})),
    )
    .await;
    assert_eq!(adv["settled"], true);
    let (_, r2) = call_as(
        &http,
        Some("u2"),
        "GET",
        format!("{u}/api/v1/reservations/{id2}"),
        None,
    )
    .await;
    assert_eq!(
        r2["reservation"]["status"], "RESERVATION_STATUS_CONFIRMED",
        "{r2}"
    );
    // … and so does the expiry of the unpaid hold.
    call(
        &http,
        "POST",
        format!("{u}/admin/v1/clock/advance"),
        Some(json!({"seconds": 61})),
    )
    .await;
    let (_, r1) = call_as(
        &http,
        Some("u1"),
        "GET",
        format!("{u}/api/v1/reservations/{id1}"),
        None,
    )
    .await;
    assert_eq!(
        r1["reservation"]["status"], "RESERVATION_STATUS_EXPIRED",
        "{r1}"
    );
    let (_, seats) = call(&http, "GET", format!("{u}/api/v1/events/e/seats"), None).await;
    assert_eq!(seats["stats"]["reserved_seats"], 0);
    assert_eq!(seats["stats"]["sold_seats"], 1);
    assert_eq!(seats["stats"]["available_seats"], 9);
}

/// Join the waiting room of event `e` as `user`, from session `s`: the
/// waiting token.
async fn join(http: Http, u: String, user: String) -> String {
    let body = json!({"event_id": "e", "user_id": user, "session_id": "s"});
    let (s, j) = call(&http, "POST", format!("{u}/api/v1/queue/join"), Some(body)).await;
    assert_eq!(s, 200, "{j}");
    j["waiting_token"]
        .as_str()
        .expect("a waiting token")
        .to_string()
}

/// The store answers a component's writes before they are on disk (one
/// fsync per call, not per write), so this is the promise to check: every
/// answer a client got is durable. Many joins at once (two commits each),
/// SIGKILL the moment the last answer arrives, and every place is still
/// there: joining again from the same session gives the same ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_write_survives_a_kill_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    let host = up(dir.path());
    let u = host.url.clone();
    let (s, _) = call(&http, "POST", format!("{u}/admin/v1/events"), Some(json!({"event_id": "e", "name": "E", "seat_count": 10, "price": {"amount": 500, "currency": "KRW"}, "admission_per_second": 1}))).await;
    assert_eq!(s, 200);
    let users: Vec<String> = (0..64).map(|i| format!("u{i}")).collect();
    let joins = users
        .iter()
        .map(|user| join(http.clone(), u.clone(), user.clone()));
    let first = futures_util::future::join_all(joins).await;
    // SIGKILL the moment the last answer is in. On the virtual clock the
    // writer never idles into a checkpoint, so the joins are in the redo log
    // only, and the restart has to redo them.
    drop(host);
    let log = std::fs::metadata(dir.path().join("tacos.redo")).unwrap();
    assert!(log.len() > 0, "the joins were left in the redo log");

    let host = up(dir.path());
    let u = host.url.clone();
    let joins = users
        .iter()
        .map(|user| join(http.clone(), u.clone(), user.clone()));
    let again = futures_util::future::join_all(joins).await;
    assert_eq!(first, again, "each answered join kept its place");
}
