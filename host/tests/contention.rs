//! Zero overselling under contention: many users racing for the same seats.

mod common;

use common::*;
use std::collections::HashSet;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_holds_on_one_seat_exactly_one_wins() {
    let t = Arc::new(start().await);
    t.create_event("hot", 10, 10_000, 100_000).await;
    let mut tokens = Vec::new();
    for i in 0..100 {
        tokens.push(t.join("hot", &format!("u{i}")).await);
    }
    t.advance(1.0).await;
    let mut grants = Vec::new();
    for wt in &tokens {
        grants.push(t.enter(wt).await);
    }
    let mut tasks = Vec::new();
    for (i, token) in grants.into_iter().enumerate() {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.hold("hot", &format!("u{i}"), &token, &["A-3"], "k").await
        }));
    }
    let mut won = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => won += 1,
            409 => assert_eq!(code(&body), "ERROR_CODE_INVENTORY_CONFLICT", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(won, 1);
    let seats = t.seats("hot").await;
    assert_eq!(seats["A-3"], "SEAT_STATUS_RESERVED");
    assert_eq!(
        seats
            .values()
            .filter(|s| *s == "SEAT_STATUS_RESERVED")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_users_on_hundred_seats_hold_exactly_hundred() {
    let t = Arc::new(start().await);
    t.create_event("flash", 100, 10_000, 100_000).await;
    let users = 1000;
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut joins = Vec::new();
    for i in 0..users {
        let (t, gate) = (t.clone(), gate.clone());
        joins.push(tokio::spawn(async move {
            let _p = gate.acquire().await.unwrap();
            t.join("flash", &format!("u{i}")).await
        }));
    }
    let mut waiting = Vec::new();
    for j in joins {
        waiting.push(j.await.unwrap());
    }
    t.advance(1.0).await;
    let mut holds = Vec::new();
    for (i, wt) in waiting.into_iter().enumerate() {
        let (t, gate) = (t.clone(), gate.clone());
        holds.push(tokio::spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let user = format!("u{i}");
            let token = t.enter(&wt).await;
            // Half pick a seat, half ask for any seat.
            if i % 2 == 0 {
                let seat = format!("A-{}", 1 + (i * 7919) % 100);
                t.hold("flash", &user, &token, &[seat.as_str()], "k").await
            } else {
                t.post(
                    "/api/v1/reservations",
                    serde_json::json!({"event_id": "flash", "quantity": 1, "user_id": user, "reservation_token": token, "idempotency_key": "k"}),
                )
                .await
            }
        }));
    }
    let mut held = Vec::new();
    for h in holds {
        let (status, body) = h.await.unwrap();
        held.extend(held_seat(status, &body));
    }
    let distinct: HashSet<&String> = held.iter().collect();
    assert_eq!(distinct.len(), held.len(), "a seat was held twice");
    assert!(held.len() <= 100);
    let seats = t.seats("flash").await;
    let reserved = seats
        .values()
        .filter(|s| *s == "SEAT_STATUS_RESERVED")
        .count();
    assert_eq!(reserved, held.len(), "inventory agrees with the answers");
    assert_eq!(held.len(), 100, "every seat was sold once 1000 users asked");
    let (_, status) = t.get("/api/v1/events/flash/seats").await;
    assert_eq!(status["event"]["remaining_seats"], 0);
}
