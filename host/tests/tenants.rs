//! Many tenants on one host: the same event id in two tenants never mixes,
//! components cannot name another tenant's data, and tenants come and go on
//! a running host without touching the others. (Quotas: `tenant_quotas.rs`;
//! own versions and policies: `tenant_versions.rs`.)

#![allow(clippy::unwrap_used)]

mod common;

use common::tenants::*;
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;

/// GET with extra headers, answering status and body.
async fn get_with(t: &TestHost, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    request(&t.http, "GET", &format!("{}{path}", t.url), None, headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_in_two_tenants_never_mixes() {
    let (t, _files) =
        start_tenants("[tenants.a]\nhosts = [\"tickets.a-seller.example\"]\n[tenants.b]\n").await;
    let (a, b) = (t.tenant("a"), t.tenant("b"));
    a.create_event("e", 10, 1000, 1).await;
    b.create_event("e", 20, 5000, 1_000_000).await;
    assert_eq!(a.seats("e").await.len(), 10);
    assert_eq!(b.seats("e").await.len(), 20);

    // Queue positions: a's five joiners do not move b's first one back.
    let mut a_tokens = Vec::new();
    for i in 0..5 {
        a_tokens.push(a.join("e", &format!("u{i}")).await);
    }
    let (_, last) = a
        .get(&format!("/api/v1/queue/status?token={}", a_tokens[4]))
        .await;
    assert_eq!(last["status"], "QUEUE_STATUS_WAITING", "{last}");
    let b_token = b.join("e", "u0").await;
    let (_, first) = b
        .get(&format!("/api/v1/queue/status?token={b_token}"))
        .await;
    assert_eq!(first["status"], "QUEUE_STATUS_READY", "{first}");
    // A waiting token signed with a's key means nothing to b.
    let (status, body) = b
        .post(
            "/api/v1/queue/enter",
            json!({ "waiting_token": a_tokens[0] }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{body}"
    );

    // The same seats held in both tenants at once: no conflict between them.
    let two = users("u", 2);
    let a_tokens = a.admitted_all("e", &two).await;
    let b_tokens = b.admitted_all("e", &two).await;
    let mut holds = Vec::new();
    for (client, i, token) in [
        (&a, 0, &a_tokens[0]),
        (&b, 0, &b_tokens[0]),
        (&a, 1, &a_tokens[1]),
        (&b, 1, &b_tokens[1]),
    ] {
        let (client, token) = (client.clone(), token.clone());
        holds.push(tokio::spawn(async move {
            let user = format!("u{i}");
            let seat = format!("A-{}", i + 1);
            let (status, body) = client.hold("e", &user, &token, &[&seat], &user).await;
            assert_eq!(status, 200, "{body}");
            body
        }));
    }
    let mut held = Vec::new();
    for h in holds {
        held.push(h.await.unwrap());
    }
    let (a_res, b_res) = (&held[0], &held[1]);
    assert_ne!(a_res["reservation_id"], b_res["reservation_id"]);
    assert_eq!(a_res["total_amount"]["amount"], 1000);
    assert_eq!(b_res["total_amount"]["amount"], 5000);
    // b cannot see a's reservation, even with its id.
    let id = a_res["reservation_id"].as_str().unwrap();
    let (status, body) = b.get_as("u0", &format!("/api/v1/reservations/{id}")).await;
    assert_eq!(
        (status, code(&body)),
        (404, "ERROR_CODE_NOT_FOUND"),
        "{body}"
    );

    // a pays, b does not: a's seat is sold, b's hold expires.
    a.pay(a_res, "u0", "PAYMENT_SCENARIO_APPROVE").await;
    t.advance(5.0).await;
    t.advance(61.0).await;
    let a_after = a.reservation(id, "u0").await;
    assert_eq!(
        a_after["status"], "RESERVATION_STATUS_CONFIRMED",
        "{a_after}"
    );
    assert!(!a_after["order_id"].as_str().unwrap_or("").is_empty());
    let b_after = b
        .reservation(b_res["reservation_id"].as_str().unwrap(), "u0")
        .await;
    assert_eq!(b_after["status"], "RESERVATION_STATUS_EXPIRED", "{b_after}");
    assert_eq!(a.seats("e").await["A-1"], "SEAT_STATUS_SOLD");
    assert_eq!(b.seats("e").await["A-1"], "SEAT_STATUS_AVAILABLE");

    // Routing: host names, unknown tenants, tokens of another tenant.
    let (status, body) = get_with(&t, "/api/v1/events/e/seats", &[("host", "b.localhost")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sections"][0]["seats"].as_array().unwrap().len(), 20);
    let (status, body) = get_with(
        &t,
        "/api/v1/events/e/seats",
        &[("host", "tickets.a-seller.example:8000")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sections"][0]["seats"].as_array().unwrap().len(), 10);
    let (status, body) = t.get("/api/v1/events/e/seats").await;
    assert_eq!(
        (status, code(&body)),
        (404, "ERROR_CODE_NOT_FOUND"),
        "no default tenant: {body}"
    );
    let (status, body) = t.tenant("zz").get("/api/v1/events/e/seats").await;
    assert_eq!(
        (status, code(&body)),
        (404, "ERROR_CODE_NOT_FOUND"),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("zz"));
    let a_bearer = a.bearer("u0");
    let (status, body) = get_with(
        &t,
        &format!("/api/v1/reservations/{id}"),
        &[("authorization", &a_bearer), ("x-tenant-id", "b")],
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (403, "ERROR_CODE_FORBIDDEN"),
        "{body}"
    );
    // With no header or host name, the token's claim picks the tenant.
    let (status, body) = get_with(
        &t,
        &format!("/api/v1/reservations/{id}"),
        &[("authorization", &a_bearer)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_naming_another_tenants_keys_reaches_only_its_own() {
    let (t, _files) = start_tenants("[tenants.a]\n[tenants.b]\n").await;
    looper(&t, "a", "Put", "secret=of-a").await.unwrap();
    assert_eq!(looper(&t, "b", "Get", "secret").await.unwrap(), b"");
    // b names a's key as the store holds it, reads nothing, writes its own.
    assert_eq!(
        looper(&t, "b", "Get", "a/looper/secret").await.unwrap(),
        b""
    );
    looper(&t, "b", "Put", "a/looper/secret=forged")
        .await
        .unwrap();
    looper(&t, "b", "Put", "../a/looper/secret=forged")
        .await
        .unwrap();
    assert_eq!(looper(&t, "a", "Get", "secret").await.unwrap(), b"of-a");
    let keys = looper(&t, "b", "Keys", "").await.unwrap();
    assert_eq!(
        String::from_utf8(keys).unwrap(),
        "../a/looper/secret\na/looper/secret",
        "b lists only its own keys"
    );
    assert_eq!(
        String::from_utf8(looper(&t, "a", "Keys", "").await.unwrap()).unwrap(),
        "secret"
    );
    // In the store, b's writes are under b.
    let kv = &t.host.runtime().kv;
    let stored = kv.get("a/looper/secret").await.unwrap().unwrap();
    assert_eq!(stored.value, b"of-a");
    assert!(kv.get("b/looper/a/looper/secret").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_come_and_go_without_touching_the_others() {
    let (t, _files) = start_tenants("[tenants.a]\n").await;
    let t = Arc::new(t);
    let a = t.tenant("a");
    a.create_event("e", 200, 1000, 1_000_000).await;
    let a_users = users("u", 150);
    let mut waiting = Vec::new();
    for u in &a_users {
        waiting.push(a.join("e", u).await);
    }
    t.advance(1.0).await;

    // a's traffic runs throughout: holds and reads, every one must succeed.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (a, stop) = (a.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < waiting.len() {
                let user = format!("u{n}");
                let token = a.enter(&waiting[n]).await;
                let seat = format!("A-{}", n + 1);
                let (status, body) = a.hold("e", &user, &token, &[&seat], &user).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(a.get("/api/v1/events/e/seats").await.0, 200);
                n += 1;
            }
            n
        })
    };
    let c = t.tenant("c");
    assert_eq!(c.get("/api/v1/events/e/seats").await.0, 404, "no c yet");
    let (status, body) = t.put_tenant("c", json!({})).await;
    assert_eq!((status, &body["created"]), (200, &json!(true)), "{body}");
    c.create_event("e", 5, 1000, 1_000_000).await;
    let token = c.admitted("e", "v1").await;
    assert_eq!(c.hold("e", "v1", &token, &["A-1"], "v1").await.0, 200);
    // Refused changes change nothing.
    let (status, body) = t.put_tenant("c", json!({"services": {"nope": {}}})).await;
    assert_eq!(
        (status, code(&body)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{body}"
    );
    let (status, body) = t
        .put_tenant(
            "c",
            json!({"services": {"payment-sim": {"config": {"default_scenario": "SOON"}}}}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (409, "ERROR_CODE_FAILED_PRECONDITION"),
        "{body}"
    );
    let (status, body) = t.put_tenant("Bad_Id", json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(c.seats("e").await["A-1"], "SEAT_STATUS_RESERVED");

    let (status, body) = request(
        &t.http,
        "DELETE",
        &format!("{}/admin/v1/tenants/c", t.url),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c.get("/api/v1/events/e/seats").await;
    assert_eq!(
        (status, code(&body)),
        (404, "ERROR_CODE_NOT_FOUND"),
        "{body}"
    );
    // Back again: its data was kept.
    assert_eq!(t.put_tenant("c", json!({})).await.0, 200);
    assert_eq!(c.seats("e").await["A-1"], "SEAT_STATUS_RESERVED");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let held = traffic.await.unwrap();
    assert!(held > 0);
    let seats = a.seats("e").await;
    let reserved = seats
        .values()
        .filter(|s| *s == "SEAT_STATUS_RESERVED")
        .count();
    assert_eq!(reserved, held, "every hold of a is there");
}
