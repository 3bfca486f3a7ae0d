//! A tenant's own versions: a policy of its own, checked like the bundle's,
//! and a pinned component and config that bundle-wide swaps leave alone.

#![allow(clippy::unwrap_used)]

mod common;

use common::tenants::*;
use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use tacos_host::runtime::{CallError, ComponentVersion};

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
        Err(CallError::Timeout { ms, .. }) => {
            assert_eq!(ms, 50, "its policy's 50 ms deadline")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    match looper(&t, "free", "Loop", "").await {
        Err(CallError::Timeout { ms, .. }) => {
            assert_eq!(ms, 300, "the bundle's 300 ms deadline")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(looper(&t, "strict", "Echo", "x").await.unwrap(), b"x");
}

/// The version of payment-sim `tenant` runs now.
fn payment_sim_of(t: &TestHost, tenant: &str) -> Arc<ComponentVersion> {
    let tenant = t.host.runtime().tenant(tenant).unwrap();
    tenant.slot("payment-sim").unwrap().current.load_full()
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
    let steady_version = payment_sim_of(&t, "steady");
    assert_eq!(
        steady_version
            .config
            .get("default_scenario")
            .map(String::as_str),
        Some("FAIL")
    );
    let canary_version = payment_sim_of(&t, "canary");
    assert_eq!(
        canary_version
            .config
            .get("default_scenario")
            .map(String::as_str),
        Some("APPROVE")
    );
}
