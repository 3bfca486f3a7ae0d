//! Hot swap on a running host, through the admin API over real sockets:
//! swaps under continuous load lose nothing (the refusals, rollback and
//! no-op swaps are in `swap_checks.rs`).

#![allow(clippy::unwrap_used)]

mod common;

use common::TestHost;
use common::swaps::{call, component, rebuilt, sha256, swap, upload};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One response of the load: which route, what status, who served it.
struct Seen {
    route: &'static str,
    status: u16,
    body: Value,
    served: Vec<String>,
}

/// One user's whole flow; every response is recorded.
async fn user_flow(t: &TestHost, n: usize, seen: &mut Vec<Seen>) -> Option<String> {
    let user = format!("u{n}");
    let mut record = |route, (status, body, served): (u16, Value, Vec<String>)| {
        let ok = status == 200;
        seen.push(Seen {
            route,
            status,
            body: body.clone(),
            served,
        });
        ok.then_some(body)
    };
    let joined = record(
        "queue",
        call(
            t,
            &user,
            "POST",
            "/api/v1/queue/join",
            Some(json!({"event_id": "live", "user_id": user, "session_id": format!("s{n}")})),
        )
        .await,
    )?;
    let wt = joined["waiting_token"].as_str()?.to_string();
    record(
        "queue",
        call(
            t,
            &user,
            "GET",
            &format!("/api/v1/queue/status?token={wt}"),
            None,
        )
        .await,
    )?;
    let entered = record(
        "queue",
        call(
            t,
            &user,
            "POST",
            "/api/v1/queue/enter",
            Some(json!({ "waiting_token": wt })),
        )
        .await,
    )?;
    let rt = entered["reservation_token"].as_str()?.to_string();
    let held = record(
        "reservation",
        call(
            t,
            &user,
            "POST",
            "/api/v1/reservations",
            Some(
                json!({"event_id": "live", "seat_ids": [format!("A-{}", n + 1)], "user_id": user,
                        "reservation_token": rt, "idempotency_key": format!("k{n}")}),
            ),
        )
        .await,
    )?;
    let id = held["reservation_id"].as_str()?.to_string();
    record(
        "payment",
        call(
            t,
            &user,
            "POST",
            "/api/v1/payments/intent",
            Some(json!({"reservation_id": id, "user_id": user,
                        "amount": held["total_amount"], "scenario": "PAYMENT_SCENARIO_APPROVE"})),
        )
        .await,
    )?;
    record(
        "reservation",
        call(t, &user, "GET", &format!("/api/v1/reservations/{id}"), None).await,
    )?;
    Some(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swaps_under_load_fail_no_request_and_lose_no_hold() {
    let t = Arc::new(common::start().await);
    const SEATS: i32 = 20_000;
    t.create_event("live", SEATS, 10_000, 1_000_000).await;

    let standard = sha256(&component("tacos_payment_sim.wasm"));
    let chaos = sha256(&component("tacos_payment_sim_chaos.wasm"));
    let reservation = component("tacos_reservation.wasm");
    let mut reservation_versions: HashSet<String> = HashSet::from([sha256(&reservation)]);
    let rebuilds: Vec<Vec<u8>> = (0..5)
        .map(|i| rebuilt(&reservation, &format!("fix-{i}")))
        .collect();
    for r in &rebuilds {
        reservation_versions.insert(sha256(r));
    }

    // Load: users run the whole flow until the swaps are done, at least 10 s
    // have passed and at least 5,000 requests were answered.
    let done = Arc::new(AtomicBool::new(false));
    let next_user = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..24 {
        let (t, done, next_user, answered) =
            (t.clone(), done.clone(), next_user.clone(), answered.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut holds = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let n = next_user.fetch_add(1, Ordering::Relaxed);
                assert!(n < SEATS as usize, "ran out of seats for the load");
                let before = seen.len();
                if let Some(id) = user_flow(&t, n, &mut seen).await {
                    holds.push((id, format!("A-{}", n + 1), format!("u{n}")));
                }
                answered.fetch_add(seen.len() - before, Ordering::Relaxed);
            }
            (seen, holds)
        }));
    }
    // Payments complete as virtual time moves.
    let clock = {
        let (t, done) = (t.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(500)).await;
                t.advance(1.0).await;
            }
        })
    };

    // 10 swaps of payment-sim (standard ↔ chaos) and 5 of reservation,
    // interleaved, while the load runs.
    for i in 0..10 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let build = if i % 2 == 0 { "chaos" } else { "standard" };
        let (status, body) = swap(&t, "payment-sim", json!({ "build": build })).await;
        assert_eq!(status, 200, "swap payment-sim to {build}: {body}");
        assert_eq!(body["changed"], true, "{body}");
        if i % 2 == 1 {
            let (status, body) = upload(&t, "reservation", &rebuilds[i / 2], json!({})).await;
            assert_eq!(status, 200, "swap reservation: {body}");
            assert_eq!(body["changed"], true, "{body}");
        }
    }
    while started.elapsed() < Duration::from_secs(10) || answered.load(Ordering::Relaxed) < 5_000 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done.store(true, Ordering::Relaxed);
    clock.await.unwrap();
    let mut seen = Vec::new();
    let mut holds = Vec::new();
    for w in workers {
        let (s, h) = w.await.unwrap();
        seen.extend(s);
        holds.extend(h);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} requests in {secs:.1} s ({:.0}/s) during 15 swaps; {} holds",
        seen.len(),
        seen.len() as f64 / secs,
        holds.len()
    );

    // Zero failed requests; each answered by exactly one version, of the
    // service that owns the route.
    let mut by_version: BTreeMap<String, usize> = BTreeMap::new();
    for s in &seen {
        assert_eq!(
            s.status, 200,
            "a request failed during the swaps: {}",
            s.body
        );
        assert_eq!(s.served.len(), 1, "served by: {:?}", s.served);
        let (service, hash) = s.served[0].split_once('@').unwrap();
        let known = match s.route {
            "payment" => service == "payment-sim" && (hash == standard || hash == chaos),
            "reservation" => service == "reservation" && reservation_versions.contains(hash),
            _ => service == s.route,
        };
        assert!(known, "{} answered by {}", s.route, s.served[0]);
        *by_version.entry(s.served[0].clone()).or_default() += 1;
    }
    println!("answered by version: {by_version:#?}");
    assert!(
        by_version.contains_key(&format!("payment-sim@{chaos}"))
            && by_version.contains_key(&format!("payment-sim@{standard}")),
        "both payment-sim builds served calls"
    );

    // Nothing lost or doubled: let every payment and hold run out, then each
    // hold is a distinct reservation whose seat is SOLD exactly when it was
    // confirmed, and no seat is left HELD.
    t.advance(120.0).await;
    let ids: HashSet<&String> = holds.iter().map(|(id, _, _)| id).collect();
    assert_eq!(
        ids.len(),
        holds.len(),
        "a reservation id was handed out twice"
    );
    let seats = t.seats("live").await;
    let mut confirmed = 0;
    for (id, seat, user) in &holds {
        let r = t.reservation(id, user).await;
        let status = r["status"].as_str().unwrap();
        let seat_status = seats[seat].as_str();
        match status {
            "RESERVATION_STATUS_CONFIRMED" => {
                confirmed += 1;
                assert_eq!(seat_status, "SEAT_STATUS_SOLD", "{id}: {r}");
            }
            "RESERVATION_STATUS_EXPIRED" | "RESERVATION_STATUS_FAILED" => {
                assert_eq!(seat_status, "SEAT_STATUS_AVAILABLE", "{id}: {r}");
            }
            other => panic!("{id} is still {other} after every deadline passed: {r}"),
        }
    }
    let sold = seats.values().filter(|s| *s == "SEAT_STATUS_SOLD").count();
    let held = seats.values().filter(|s| *s == "SEAT_STATUS_HELD").count();
    assert_eq!(sold, confirmed, "sold seats match confirmed reservations");
    assert_eq!(held, 0, "no seat stays held");
    println!("{confirmed} of {} holds confirmed", holds.len());
}
