//! Tenant quotas: rate, calls in flight, deadline, memory, queue depth and
//! storage refuse only the tenant over them, and a spinning tenant runs only
//! its guest-time quota.

#![allow(clippy::unwrap_used)]

mod common;

use common::tenants::*;
use common::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tacos_host::runtime::CallError;

/// A 429 QUOTA_EXCEEDED naming `quota`.
fn assert_quota_exceeded(status: u16, body: &Value, quota: &str) {
    assert_eq!(
        (status, code(body)),
        (429, "ERROR_CODE_QUOTA_EXCEEDED"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(quota), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_only_the_tenant_over_them() {
    let (t, _files) = start_tenants(
        "[tenants.free]\n\
         [tenants.rate]\nquotas = { requests_per_second = 5, burst = 5 }\n\
         [tenants.calls]\nquotas = { concurrent_calls = 1, memory_mb = 4, deadline_ms = 100 }\n\
         [tenants.queue]\nquotas = { queue_depth = 1 }\n\
         [tenants.store]\n",
    )
    .await;
    for id in ["free", "rate", "queue", "store"] {
        t.tenant(id).create_event("e", 10, 1000, 1_000_000).await;
    }

    // Requests per second: the sixth in a frozen second is refused.
    let rate = t.tenant("rate");
    for _ in 0..4 {
        assert_eq!(rate.get("/api/v1/events/e/seats").await.0, 200);
    }
    let (status, body) = rate.get("/api/v1/events/e/seats").await;
    assert_quota_exceeded(status, &body, "requests/s");
    for _ in 0..20 {
        assert_eq!(t.tenant("free").get("/api/v1/events/e/seats").await.0, 200);
    }
    t.advance(1.0).await;
    assert_eq!(rate.get("/api/v1/events/e/seats").await.0, 200, "refilled");

    // Calls in flight: one looping call fills `calls`; others run.
    let spinner = {
        let t = Arc::new(t);
        let spin = t.clone();
        let handle = tokio::spawn(async move { looper(&spin, "calls", "Loop", "").await });
        (t, handle)
    };
    let (t, handle) = spinner;
    // Wait (bounded) until the looping call holds the tenant's one place.
    let calls = t.host.runtime().tenant("calls").expect("tenant `calls`");
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while calls.calls_in_flight() != Some(1) {
        assert!(
            std::time::Instant::now() < until,
            "the looping call never started"
        );
        tokio::task::yield_now().await;
    }
    match looper(&t, "calls", "Echo", "x").await {
        Err(CallError::Quota(q)) => assert!(q.to_string().contains("concurrent_calls"), "{q}"),
        other => panic!("expected the concurrency quota, got {other:?}"),
    }
    assert_eq!(looper(&t, "free", "Echo", "x").await.unwrap(), b"x");
    match handle.await.unwrap() {
        // The deadline it was given (not how long it took): the tenant's
        // 100 ms quota under the policy's 300.
        Err(CallError::Timeout { ms, .. }) => {
            assert_eq!(ms, 100, "the 100 ms quota, not the policy's 300")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(
        looper(&t, "calls", "Echo", "x").await.unwrap(),
        b"x",
        "free again"
    );
    // Memory per instance: the tenant's 4 MiB, the policy's 16 MiB for others.
    match looper(&t, "calls", "Alloc", "").await {
        Err(CallError::MemoryExceeded { mb, .. }) => assert_eq!(mb, 4),
        other => panic!("expected the memory quota, got {other:?}"),
    }
    match looper(&t, "free", "Alloc", "").await {
        Err(CallError::MemoryExceeded { mb, .. }) => assert_eq!(mb, 16),
        other => panic!("expected the policy's memory limit, got {other:?}"),
    }

    // Queue depth: a hold sends its expiry; the second hold would pass 1.
    let queue = t.tenant("queue");
    let tokens = queue.admitted_all("e", &users("u", 2)).await;
    assert_eq!(
        queue.hold("e", "u0", &tokens[0], &["A-1"], "k1").await.0,
        200
    );
    let (status, body) = queue.hold("e", "u1", &tokens[1], &["A-2"], "k2").await;
    assert_quota_exceeded(status, &body, "queue_depth");
    assert_eq!(
        queue.seats("e").await["A-2"],
        "SEAT_STATUS_AVAILABLE",
        "nothing held"
    );

    // Storage: cap `store` at what it stores now (a change through the API).
    let store = t.tenant("store");
    let token = store.admitted("e", "u1").await;
    let stored = t.tenant_listing("store").await["storage"]["keys"]
        .as_u64()
        .unwrap();
    assert!(stored > 10, "an event and its seats: {stored} keys");
    let (status, body) = t
        .put_tenant("store", json!({"quotas": {"storage_keys": stored}}))
        .await;
    assert_eq!((status, &body["created"]), (200, &json!(false)), "{body}");
    let (status, body) = store.hold("e", "u1", &token, &["A-1"], "k1").await;
    assert_quota_exceeded(status, &body, "storage_keys");
    assert_eq!(store.seats("e").await["A-1"], "SEAT_STATUS_AVAILABLE");
    // Meanwhile the unlimited tenant holds as it likes.
    let free = t.tenant("free");
    let tokens = free.admitted_all("e", &users("u", 3)).await;
    for (i, seat) in ["A-1", "A-2", "A-3"].iter().enumerate() {
        let user = format!("u{i}");
        assert_eq!(
            free.hold("e", &user, &tokens[i], &[seat], &user).await.0,
            200
        );
    }
    // The refusals are counted per tenant.
    let (_, metrics) = t.get("/metrics").await;
    let text = metrics.as_str().unwrap();
    for (tenant, quota) in [
        ("rate", "requests_per_second"),
        ("calls", "concurrent_calls"),
        ("queue", "queue_depth"),
        ("store", "storage_keys"),
    ] {
        assert!(
            text.contains(&format!(
                "tacos_tenant_quota_hits_total{{tenant=\"{tenant}\",quota=\"{quota}\"}} 1"
            )),
            "{tenant} {quota}:\n{text}"
        );
    }
    assert!(!text.contains("tenant_quota_hits_total{tenant=\"free\""));
    assert!(
        !text.contains("tenant=\"@host\""),
        "the host's own self-checks are no tenant's"
    );
    assert!(text.contains("tacos_tenant_storage_keys{tenant=\"free\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_tenant_runs_only_its_guest_time_quota() {
    let (t, _files) =
        start_tenants("[tenants.free]\n[tenants.spin]\nquotas = { cpu_ms_per_second = 50 }\n")
            .await;
    let t = Arc::new(t);
    // Both loop until the policy's 300 ms deadline, side by side.
    let spins: Vec<_> = ["spin", "free"]
        .into_iter()
        .map(|tenant| {
            let t = t.clone();
            tokio::spawn(async move { looper(&t, tenant, "Loop", "").await })
        })
        .collect();
    for spin in spins {
        match spin.await.unwrap() {
            Err(CallError::Timeout { .. }) => {}
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    let seconds = |v: &Value, field: &str| v[field].as_f64().unwrap();
    let spin = t.tenant_listing("spin").await;
    let free = t.tenant_listing("free").await;
    // `spin` had 50 ms of credit and earns 50 ms a second: ~65 ms of the
    // 300, and it slept the rest; `free` ran (nearly) all of it.
    assert!(seconds(&spin, "guest_seconds") < 0.15, "{spin}");
    assert!(seconds(&spin, "throttled_seconds") > 0.1, "{spin}");
    assert!(seconds(&free, "guest_seconds") > 0.2, "{free}");
    assert_eq!(seconds(&free, "throttled_seconds"), 0.0, "{free}");
    let (_, metrics) = t.get("/metrics").await;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains("tacos_tenant_guest_seconds_total{tenant=\"free\"}"),
        "{text}"
    );
    assert!(
        text.contains("tacos_tenant_throttled_seconds_total{tenant=\"spin\"}"),
        "{text}"
    );
}
