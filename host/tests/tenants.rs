//! Many tenants on one host: the same event id in two tenants never mixes,
//! components cannot name another tenant's data, quotas refuse only the
//! tenant over them, tenants pin their own versions, and tenants come and go
//! on a running host without touching the others.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tacos_host::runtime::{CallContext, CallError};

/// The default services and the looper fixture, with `tenants` (TOML) after.
fn bundle(dir: &Path, tenants: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let default = std::fs::read_to_string(root.join("bundles/default.toml")).unwrap();
    let services = default
        .split("# Seeded on start-up")
        .next()
        .unwrap()
        .replace("../policies/default.toml", "policy.toml");
    let policy = std::fs::read_to_string(root.join("policies/default.toml")).unwrap()
        + "\n[components.looper]\ncapabilities = [\"config\", \"kv\"]\nlimits = { deadline_ms = 300, memory_mb = 16 }\n";
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    let manifest = format!(
        "{services}\n[services.looper]\ncomponent = \"{{components}}/tacos_fixture_looper.wasm\"\nserves = [\"tacos.testing.Looper\"]\n\n{tenants}"
    );
    let path = dir.join("bundle.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

async fn start_tenants(tenants: &str) -> (TestHost, tempfile::TempDir) {
    let files = tempfile::tempdir().unwrap();
    let path = bundle(files.path(), tenants);
    let t = start_with(|o| o.bundle = Some(path)).await;
    (t, files)
}

/// Call the looper as `tenant`.
async fn looper(t: &TestHost, tenant: &str, method: &str, req: &str) -> Result<Vec<u8>, CallError> {
    let rt = t.host.runtime();
    let ctx = CallContext::new(
        rt.tenant(tenant).expect("tenant exists"),
        "trace".into(),
        Duration::from_secs(10),
    );
    rt.call(&ctx, "tacos.testing.Looper", method, req.as_bytes())
        .await
}

fn users(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

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
    tokio::time::sleep(Duration::from_millis(50)).await;
    match looper(&t, "calls", "Echo", "x").await {
        Err(CallError::Quota(q)) => assert!(q.to_string().contains("concurrent_calls"), "{q}"),
        other => panic!("expected the concurrency quota, got {other:?}"),
    }
    assert_eq!(looper(&t, "free", "Echo", "x").await.unwrap(), b"x");
    match handle.await.unwrap() {
        Err(CallError::Timeout { ms, .. }) => {
            assert!(ms < 300, "the 100 ms quota, not the policy's 300: {ms}")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_policy_replaces_the_bundles_and_still_denies_by_default() {
    let (t, _files) = start_tenants("[tenants.free]\n").await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let base = std::fs::read_to_string(root.join("policies/default.toml")).unwrap();
    // The looper imports kv; a policy that does not grant it is refused,
    // with the reason, and no tenant is added.
    let denied = format!("{base}\n[components.looper]\ncapabilities = [\"config\"]\n");
    let (status, body) = t
        .put_tenant("strict", json!({ "policy_toml": denied }))
        .await;
    assert_eq!(status / 100, 4, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("kv") && message.contains("looper"),
        "{message}"
    );
    assert!(t.host.runtime().tenant("strict").is_none());

    // Granted, with a deadline of 50 ms instead of the bundle's 300.
    let tight = format!(
        "{base}\n[components.looper]\ncapabilities = [\"config\", \"kv\"]\nlimits = {{ deadline_ms = 50, memory_mb = 16 }}\n"
    );
    let (status, body) = t
        .put_tenant("strict", json!({ "policy_toml": tight }))
        .await;
    assert_eq!((status, &body["created"]), (200, &json!(true)), "{body}");
    let listing = t.tenant_listing("strict").await;
    let own: Vec<&str> = listing["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["own"] == json!(true))
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(own.contains(&"looper"), "its own slots: {listing}");
    match looper(&t, "strict", "Loop", "").await {
        Err(CallError::Timeout { ms, .. }) => assert!(ms < 300, "its policy's 50 ms: {ms}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    match looper(&t, "free", "Loop", "").await {
        Err(CallError::Timeout { ms, .. }) => assert!(ms >= 300, "the bundle's 300 ms: {ms}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(looper(&t, "strict", "Echo", "x").await.unwrap(), b"x");
}

/// `x-tacos-served-by` of a payment intent made by `client`.
async fn payment_served_by(client: &Client, user: &str) -> String {
    let token = client.admitted("e", user).await;
    let (status, res) = client.hold("e", user, &token, &["A-1"], user).await;
    assert_eq!(status, 200, "{res}");
    let body = json!({"reservation_id": res["reservation_id"], "user_id": user,
                      "amount": res["total_amount"], "scenario": "PAYMENT_SCENARIO_APPROVE"});
    let auth = client.bearer(user);
    let tenant = client.tenant.clone().unwrap();
    let req = hyper::Request::post(format!("{}/api/v1/payments/intent", client.url))
        .header("content-type", "application/json")
        .header("authorization", auth)
        .header("x-tenant-id", tenant)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let resp = client.http.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let served = resp.headers()["x-tacos-served-by"].to_str().unwrap();
    served.split('@').nth(1).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_pin_their_own_versions() {
    let (t, _files) = start_tenants(
        "[tenants.canary.services.payment-sim]\nbuild = \"chaos\"\n[tenants.steady]\n",
    )
    .await;
    let (canary, steady) = (t.tenant("canary"), t.tenant("steady"));
    canary.create_event("e", 10, 1000, 1_000_000).await;
    steady.create_event("e", 10, 1000, 1_000_000).await;
    let chaos = tacos_host::runtime::content_hash(
        &std::fs::read(
            Path::new(tacos_host::bundle::BUILT_COMPONENTS_DIR)
                .join("tacos_payment_sim_chaos.wasm"),
        )
        .unwrap(),
    );
    let standard = t.current_hash("payment-sim").await;
    assert_ne!(chaos, standard);
    assert_eq!(payment_served_by(&canary, "u1").await, chaos);
    assert_eq!(payment_served_by(&steady, "u1").await, standard);

    // A bundle-wide swap reaches the tenant that follows the bundle only.
    let (status, body) = t
        .post(
            "/admin/v1/services/payment-sim/swap",
            json!({"config": {"default_scenario": "FAIL"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (canary_view, steady_view) = (
        t.tenant_listing("canary").await,
        t.tenant_listing("steady").await,
    );
    let service = |view: &Value| {
        view["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "payment-sim")
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            service(&canary_view)["own"].clone(),
            service(&canary_view)["hash"].clone()
        ),
        (json!(true), json!(chaos))
    );
    assert_eq!(service(&steady_view)["own"], false);
    let steady_version = &t
        .host
        .runtime()
        .tenant("steady")
        .unwrap()
        .slot("payment-sim")
        .unwrap()
        .current
        .load_full();
    assert_eq!(
        steady_version
            .config
            .get("default_scenario")
            .map(String::as_str),
        Some("FAIL")
    );
    let canary_version = &t
        .host
        .runtime()
        .tenant("canary")
        .unwrap()
        .slot("payment-sim")
        .unwrap()
        .current
        .load_full();
    assert_eq!(
        canary_version
            .config
            .get("default_scenario")
            .map(String::as_str),
        Some("APPROVE")
    );
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
