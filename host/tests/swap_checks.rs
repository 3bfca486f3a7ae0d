//! Hot-swap checks over the admin API: broken components are refused while
//! the old version keeps serving, a build the slot does not have is the
//! caller's mistake, rollback and no-op swaps.

#![allow(clippy::unwrap_used)]

mod common;

use common::code;
use common::swaps::{call, component, sha256, swap, upload};
use serde_json::{Value, json};
use std::collections::HashMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_components_are_refused_and_the_old_version_keeps_serving() {
    let t = common::start().await;
    t.create_event("e", 10, 1_000, 1_000).await;
    let before: HashMap<&str, String> = HashMap::from([
        ("payment-sim", t.current_hash("payment-sim").await),
        ("queue", t.current_hash("queue").await),
        ("inventory", t.current_hash("inventory").await),
    ]);

    let cases: Vec<(&str, Vec<u8>, Value, &str)> = vec![
        // Does not export the consumer world the slot needs.
        (
            "payment-sim",
            component("tacos_fixture_looper.wasm"),
            json!({}),
            "does not export `tacos:platform/message-handler`",
        ),
        // Not a tacos service at all (a wasi:http proxy).
        (
            "inventory",
            component("tacos_fixture_hello_http.wasm"),
            json!({}),
            "imports `wasi:http",
        ),
        // Imports a capability the queue's policy does not grant.
        (
            "queue",
            component("tacos_payment_sim.wasm"),
            json!({}),
            "which its policy does not grant",
        ),
        // Traps in its self-check.
        (
            "inventory",
            component("tacos_fixture_looper.wasm"),
            json!({"self_check": "trap"}),
            "self-check",
        ),
        // Not a component.
        (
            "queue",
            b"\0asm\x01\0\0\0".to_vec(),
            json!({}),
            "is not a wasm component",
        ),
    ];
    for (service, bytes, config, expected) in cases {
        let (status, body) = upload(&t, service, &bytes, config).await;
        assert_eq!(status, 409, "{service}: {body}");
        assert_eq!(code(&body), "ERROR_CODE_FAILED_PRECONDITION", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{service}`")), "{message}");
        assert!(message.contains(expected), "{message}");
        assert_eq!(t.current_hash(service).await, before[service]);
    }
    // A config its self-check rejects is refused the same way.
    let (status, body) = swap(
        &t,
        "payment-sim",
        json!({"config": {"default_scenario": "SOMETIMES"}}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("default_scenario")
    );

    // Bad requests change nothing either.
    let (status, body) = swap(&t, "nope", json!({"build": "chaos"})).await;
    assert_eq!(
        (status, code(&body)),
        (404, "ERROR_CODE_NOT_FOUND"),
        "{body}"
    );
    let (status, body) = swap(&t, "queue", json!({"build": "chaos"})).await;
    assert_eq!(
        (status, code(&body)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{body}"
    );
    let (status, body) = swap(&t, "queue", json!({})).await;
    assert_eq!(
        (status, code(&body)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{body}"
    );
    let (status, body) = swap(&t, "queue", json!({"component_base64": "%%%"})).await;
    assert_eq!(
        (status, code(&body)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{body}"
    );

    // The old versions still serve.
    let token = t.admitted("e", "u1").await;
    let (status, body) = t.hold("e", "u1", &token, &["A-1"], "k1").await;
    assert_eq!(status, 200, "{body}");
    t.pay(&body, "u1", "PAYMENT_SCENARIO_APPROVE").await;
    for (service, hash) in &before {
        assert_eq!(&t.current_hash(service).await, hash);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_restores_and_the_same_swap_twice_is_a_no_op() {
    let t = common::start().await;
    t.create_event("e", 10, 1_000, 1_000).await;
    let standard = t.current_hash("payment-sim").await;
    let chaos = sha256(&component("tacos_payment_sim_chaos.wasm"));

    let (status, body) = swap(&t, "payment-sim", json!({"build": "chaos"})).await;
    assert_eq!((status, &body["changed"]), (200, &json!(true)), "{body}");
    assert_eq!(t.current_hash("payment-sim").await, chaos);
    let (status, body) = swap(&t, "payment-sim", json!({"build": "chaos"})).await;
    assert_eq!((status, &body["changed"]), (200, &json!(false)), "{body}");
    // The same bytes uploaded: still nothing to do.
    let (status, body) = upload(
        &t,
        "payment-sim",
        &component("tacos_payment_sim_chaos.wasm"),
        json!({}),
    )
    .await;
    assert_eq!((status, &body["changed"]), (200, &json!(false)), "{body}");

    // Calls go to the new version.
    let token = t.admitted("e", "u1").await;
    let (_, held) = t.hold("e", "u1", &token, &["A-1"], "k1").await;
    let (status, _, served) = call(
        &t,
        "u1",
        "POST",
        "/api/v1/payments/intent",
        Some(
            json!({"reservation_id": held["reservation_id"], "user_id": "u1",
                    "amount": held["total_amount"], "scenario": "PAYMENT_SCENARIO_APPROVE"}),
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(served, vec![format!("payment-sim@{chaos}")]);

    // A config-only swap, then two rollbacks: back to chaos with the old
    // config, then back to the bundle's build.
    let (status, body) = swap(
        &t,
        "payment-sim",
        json!({"config": {"default_scenario": "FAIL"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["current"]["config"]["default_scenario"], "FAIL");
    let (status, body) = t
        .post("/admin/v1/services/payment-sim/rollback", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["current"]["hash"], chaos.as_str());
    assert_eq!(body["current"]["config"]["default_scenario"], "APPROVE");
    let (status, body) = t
        .post("/admin/v1/services/payment-sim/rollback", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(t.current_hash("payment-sim").await, standard);
    let (status, body) = t
        .post("/admin/v1/services/payment-sim/rollback", json!({}))
        .await;
    assert_eq!(
        (status, code(&body)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{body}"
    );

    // The listing counts calls per version and keeps the history.
    let services = t.services().await;
    let ps = services
        .iter()
        .find(|s| s["name"] == "payment-sim")
        .unwrap();
    assert_eq!(ps["builds"], json!(["chaos", "standard"]));
    assert_eq!(ps["history"], json!([]));
    assert!(ps["current"]["calls"].as_u64().unwrap() >= 1, "{ps}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_the_service_does_not_have_is_refused_for_swaps_and_tenants() {
    let t = common::start().await;
    let before = t.current_hash("payment-sim").await;
    let (status, body) = swap(&t, "payment-sim", json!({"build": "nope"})).await;
    assert_eq!(
        (status, code(&body)),
        (400, "ERROR_CODE_INVALID_ARGUMENT"),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("has no build `nope` (builds: chaos, standard)"),
        "{body}"
    );
    assert_eq!(
        t.current_hash("payment-sim").await,
        before,
        "nothing changed"
    );

    // The same rule for a tenant's own version of the service.
    let (status, body) = t
        .put_tenant(
            "acme",
            json!({"services": {"payment-sim": {"build": "nope"}}}),
        )
        .await;
    assert_eq!(status / 100, 4, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("has no build `nope`"), "{body}");
    let (_, tenants) = t.get("/admin/v1/tenants").await;
    assert!(
        !tenants.to_string().contains("acme"),
        "no tenant was made: {tenants}"
    );
}
