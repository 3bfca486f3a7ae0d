//! Several hosts on one shared store, as real processes: the ticket flow
//! crossing hosts, contention across hosts, a host killed mid-delivery, and
//! Redis restarted mid-run.

mod common;

use common::cluster::{Cluster, Shared};
use common::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_flow_crosses_three_hosts_on_redis_and_dynamodb() {
    if let Some(cluster) = Cluster::start(Shared::RedisDynamoDb, 3) {
        ticket_flow(&cluster).await;
    }
}

/// The same flow with every host on a TLS-only Redis that wants a client
/// certificate (`tls_trusts_only_what_it_is_told_to` in the store's tests
/// tries what must not connect).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_flow_crosses_three_hosts_on_redis_over_tls() {
    if let Some(cluster) = Cluster::start(Shared::RedisTls, 3) {
        ticket_flow(&cluster).await;
    }
}

/// Join, enter, hold, replay, pay, confirm and expire, each step on another
/// host than the one before.
async fn ticket_flow(cluster: &Cluster) {
    let [a, b, c] = [0, 1, 2].map(|i| cluster.client(i));
    a.create_event("concert", 10, 30_000, 1000).await;
    // Joined on one host, entered on another: the tenant's signing key is shared.
    let wt = b.join("concert", "alice").await;
    let token = c.enter(&wt).await;
    let (status, res) = a
        .hold("concert", "alice", &token, &["A-1", "A-2"], "k1")
        .await;
    assert_eq!(status, 200, "{res}");
    for h in [&a, &b, &c] {
        assert_eq!(h.seats("concert").await["A-1"], "SEAT_STATUS_RESERVED");
    }
    let id = res["reservation_id"].as_str().expect("a reservation id");
    // The same idempotency key on another host replays the same hold.
    let (status, again) = c
        .hold("concert", "alice", &token, &["A-1", "A-2"], "k1")
        .await;
    assert_eq!((status, again["reservation_id"].as_str()), (200, Some(id)));

    b.pay(&res, "alice", "PAYMENT_SCENARIO_APPROVE").await;
    cluster.advance(5.0).await;
    for h in [&a, &b, &c] {
        let r = h.reservation(id, "alice").await;
        assert_eq!(r["status"], "RESERVATION_STATUS_CONFIRMED", "{r}");
        assert_eq!(h.seats("concert").await["A-1"], "SEAT_STATUS_SOLD");
    }

    // An unpaid hold expires once, wherever its expiry is delivered.
    let token = a.admitted("concert", "bob").await;
    let (_, res) = b.hold("concert", "bob", &token, &["A-7"], "k2").await;
    let id = res["reservation_id"].as_str().expect("a reservation id");
    cluster.advance(61.0).await;
    for h in [&a, &b, &c] {
        let r = h.reservation(id, "bob").await;
        assert_eq!(r["status"], "RESERVATION_STATUS_EXPIRED", "{r}");
        assert_eq!(h.seats("concert").await["A-7"], "SEAT_STATUS_AVAILABLE");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_users_on_hundred_seats_across_three_hosts_hold_exactly_hundred() {
    let Some(cluster) = Cluster::start(Shared::RedisDynamoDb, 3) else {
        return;
    };
    let hosts: Arc<Vec<Client>> = Arc::new(cluster.clients());
    hosts[0].create_event("flash", 100, 10_000, 100_000).await;
    let users = 1000;
    let gate = Arc::new(tokio::sync::Semaphore::new(12));
    let mut joins = Vec::new();
    for i in 0..users {
        let (hosts, gate) = (hosts.clone(), gate.clone());
        joins.push(tokio::spawn(async move {
            let _p = gate.acquire().await.unwrap();
            hosts[i % 3].join("flash", &format!("u{i}")).await
        }));
    }
    let mut waiting = Vec::new();
    for j in joins {
        waiting.push(j.await.unwrap());
    }
    cluster.advance(1.0).await;
    let mut holds = Vec::new();
    for (i, wt) in waiting.into_iter().enumerate() {
        let (hosts, gate) = (hosts.clone(), gate.clone());
        holds.push(tokio::spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let user = format!("u{i}");
            // Entered on one host, held on the next.
            let token = hosts[i % 3].enter(&wt).await;
            let host = &hosts[(i + 1) % 3];
            if i % 2 == 0 {
                let seat = format!("A-{}", 1 + (i * 7919) % 100);
                host.hold("flash", &user, &token, &[seat.as_str()], "k")
                    .await
            } else {
                host.post(
                    "/api/v1/reservations",
                    json!({"event_id": "flash", "quantity": 1, "user_id": user,
                           "reservation_token": token, "idempotency_key": "k"}),
                )
                .await
            }
        }));
    }
    let mut held: Vec<String> = Vec::new();
    for h in holds {
        let (status, body) = h.await.unwrap();
        held.extend(held_seat(status, &body));
    }
    let distinct: HashSet<&String> = held.iter().collect();
    assert_eq!(held.len(), 100, "exactly the hundred seats were held");
    assert_eq!(distinct.len(), 100, "no seat was held twice");
    for h in hosts.iter() {
        let seats = h.seats("flash").await;
        assert!(
            seats.values().all(|s| s == "SEAT_STATUS_RESERVED"),
            "every host sees every seat held"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_mid_delivery_leaves_no_seat_held_forever() {
    let Some(mut cluster) = Cluster::start(Shared::RedisDynamoDb, 2) else {
        return;
    };
    // A third host whose worker hangs on every message: it will lease the
    // hold's expiry and be killed in the middle of delivering it.
    let stuck = cluster.bundle_with("stuck", "", "");
    let policy = stuck.with_file_name("stuck.policy.toml");
    let rules = std::fs::read_to_string(&policy).unwrap().replace(
        "[components.worker]\ncapabilities = [",
        "[components.worker]\nlimits = { deadline_ms = 60000 }\ncapabilities = [",
    );
    std::fs::write(&policy, rules).unwrap();
    let text = std::fs::read_to_string(&stuck).unwrap().replace(
        "component = \"{components}/tacos_worker.wasm\"",
        "component = \"{components}/tacos_fixture_stuck_consumer.wasm\"",
    );
    std::fs::write(&stuck, text).unwrap();
    let host = cluster.spawn(&stuck);
    cluster.hosts.push(Some(host));
    let [a, b, doomed] = [0, 1, 2].map(|i| cluster.client(i));

    a.create_event("e", 10, 10_000, 1000).await;
    let token = b.admitted("e", "carol").await;
    let (status, res) = a.hold("e", "carol", &token, &["A-1"], "k").await;
    assert_eq!(status, 200, "{res}");
    let id = res["reservation_id"].as_str().unwrap().to_string();

    // Only the doomed host's clock passes the hold's expiry: it leases the
    // message and its worker starts (and never finishes) the delivery.
    let advance = tokio::spawn(async move {
        doomed
            .post("/admin/v1/clock/advance", json!({"seconds": 61}))
            .await
    });
    let clock = std::sync::Arc::new(tacos_host::foundations::clock::Clock::virtual_at(0));
    let settings = tacos_host::store::redis::RedisSettings {
        url: Some(cluster.redis.url()),
        prefix: Some("test:".into()),
        ..Default::default()
    };
    let queue = tacos_host::store::redis::RedisStore::connect(&settings, clock)
        .await
        .unwrap();
    use tacos_host::store::QueueStore;
    let mut leased = false;
    for _ in 0..500 {
        let due = queue.next_due().await.unwrap().unwrap();
        // Leased: due no sooner than the lease's end, 90 s on.
        if due > tacos_host::foundations::clock::system_now_ms() + 100_000 {
            leased = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(leased, "the doomed host leased the expiry");
    cluster.kill(2);
    advance.abort();
    assert_eq!(
        queue.pending("default").await.unwrap(),
        1,
        "still undelivered"
    );
    assert_eq!(
        a.reservation(&id, "carol").await["status"],
        "RESERVATION_STATUS_HOLD"
    );

    // Past the dead host's lease, a live host delivers it.
    cluster.advance(61.0 + 91.0).await;
    for h in [&a, &b] {
        let r = h.reservation(&id, "carol").await;
        assert_eq!(r["status"], "RESERVATION_STATUS_EXPIRED", "{r}");
        let (_, seats) = h.get("/api/v1/events/e/seats").await;
        assert_eq!(
            seats["stats"]["available_seats"], 10,
            "released once: {seats}"
        );
    }
    assert_eq!(queue.pending("default").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_ride_out_a_redis_restart() {
    let Some(mut cluster) = Cluster::start(Shared::Redis, 2) else {
        return;
    };
    let [a, b] = [0, 1].map(|i| cluster.client(i));
    a.create_event("e", 10, 10_000, 1000).await;
    let waiting = [b.join("e", "carol").await, a.join("e", "dave").await];
    cluster.advance(1.0).await;
    let (carol, dave) = (b.enter(&waiting[0]).await, a.enter(&waiting[1]).await);
    let (status, held) = a.hold("e", "carol", &carol, &["A-1"], "k").await;
    assert_eq!(status, 200, "{held}");

    cluster.redis.stop();
    // While Redis is down every request fails cleanly, in the error shape.
    for h in [&a, &b] {
        let (status, body) = h.hold("e", "dave", &dave, &["A-2"], "k").await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(code(&body), "ERROR_CODE_UNAVAILABLE", "{body}");
        let (status, body) = h.get("/api/v1/events/e/seats").await;
        assert_eq!(status, 503, "{body}");
        let (status, _) = h.get("/readyz").await;
        assert_eq!(status, 503, "not ready without the store");
    }

    cluster.redis.restart().unwrap();
    // Back: the hosts reconnect by themselves, and what was written stays.
    let mut back = false;
    for _ in 0..100 {
        if a.get("/readyz").await.0 == 200 && b.get("/readyz").await.0 == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "both hosts ready again");
    let seats = b.seats("e").await;
    assert_eq!(seats["A-1"], "SEAT_STATUS_RESERVED", "the hold survived");
    assert_eq!(
        seats["A-2"], "SEAT_STATUS_AVAILABLE",
        "no failed hold took effect"
    );
    let (status, body) = b.hold("e", "dave", &dave, &["A-2"], "k").await;
    assert_eq!(status, 200, "{body}");
    cluster.advance(61.0).await;
    let r = a
        .reservation(held["reservation_id"].as_str().unwrap(), "carol")
        .await;
    assert_eq!(r["status"], "RESERVATION_STATUS_EXPIRED", "{r}");
}

/// Poll `check` (at most 10 s) until it holds.
async fn eventually<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_and_tenant_changes_reach_every_host() {
    let Some(cluster) = Cluster::start(Shared::Redis, 2) else {
        return;
    };
    let [a, b] = [0, 1].map(|i| cluster.client(i));
    let standard = a.current_hash("payment-sim").await;
    let (status, body) = a
        .post(
            "/admin/v1/services/payment-sim/swap",
            json!({"build": "chaos"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied_on"], "every host", "{body}");
    let chaos = body["current"]["hash"].as_str().unwrap().to_string();
    assert_ne!(chaos, standard);
    assert!(
        eventually(|| async { b.current_hash("payment-sim").await == chaos }).await,
        "the swap reached the other host"
    );
    // A rollback on the other host comes back here.
    let (status, body) = b
        .post("/admin/v1/services/payment-sim/rollback", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        eventually(|| async { a.current_hash("payment-sim").await == standard }).await,
        "the rollback reached the first host"
    );

    let (status, body) = a.put_tenant("acme", json!({"hosts": ["acme.test"]})).await;
    assert_eq!(status, 200, "{body}");
    let listed = |c: &Client| {
        let c = c.clone();
        async move {
            let (_, body) = c.get("/admin/v1/tenants").await;
            body["tenants"]
                .as_array()
                .is_some_and(|ts| ts.iter().any(|t| t["id"] == "acme"))
        }
    };
    assert!(
        eventually(|| listed(&b)).await,
        "the tenant reached the other host"
    );
    // It serves there, with the same signing key: joined on b, entered on a.
    let (acme_a, acme_b) = (a.tenant("acme"), b.tenant("acme"));
    acme_a.create_event("e", 5, 1000, 1000).await;
    let waiting = acme_b.join("e", "u").await;
    acme_a.enter(&waiting).await;
    let (status, _) = request(
        &b.http,
        "DELETE",
        &format!("{}/admin/v1/tenants/acme", b.url),
        None,
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        eventually(|| async { !listed(&a).await }).await,
        "the removal reached the first host"
    );
    // Each host counts what it asks of Redis.
    let (_, metrics) = a.get("/metrics").await;
    let requests = metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("tacos_store_requests_total{backend=\"redis\"} "))
        .and_then(|n| n.parse::<f64>().ok());
    assert!(requests.is_some_and(|n| n > 0.0), "{metrics}");
}

/// Duplicates of one request on different hosts get one answer: the host
/// whose duplicate finds the first still running waits for it (the pipeline
/// retries a `CONCURRENT_MODIFICATION`) instead of failing, as on one host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_on_two_hosts_hold_once_and_answer_alike() {
    let Some(cluster) = Cluster::start(Shared::Redis, 2) else {
        return;
    };
    let hosts: Arc<Vec<Client>> = Arc::new(cluster.clients());
    hosts[0].create_event("dup", 10, 1_000, 1_000).await;
    let waiting = hosts[0].join("dup", "ann").await;
    cluster.advance(1.0).await;
    let token = hosts[1].enter(&waiting).await;
    let mut tries = Vec::new();
    for i in 0..20 {
        let (hosts, token) = (hosts.clone(), token.clone());
        tries.push(tokio::spawn(async move {
            hosts[i % 2]
                .hold("dup", "ann", &token, &["A-3"], "same-key")
                .await
        }));
    }
    let mut answers = Vec::new();
    for t in tries {
        answers.push(t.await.unwrap());
    }
    assert!(
        answers.iter().all(|a| a == &answers[0]) && answers[0].0 == 200,
        "one answer for every duplicate on either host: {answers:?}"
    );
    let seats = hosts[1].seats("dup").await;
    let held = seats.values().filter(|s| *s == "SEAT_STATUS_RESERVED");
    assert_eq!(held.count(), 1, "{seats:?}");
}
