//! The web apps' host side: the pages and their policy, the demo sign-in
//! (only where allowed, only for the tenant asked, never for a tenant with
//! its own keys), a tenant's name by host name, the console's pulse and
//! who may read it, and a tenant's live updates kept from another's.

mod common;

use common::tenants::start_tenants;
use common::ws;
use common::*;
use serde_json::{Value, json};

async fn sign_in(t: &Client, user: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let body = json!({ "user_id": user }).to_string().into_bytes();
    t.post_raw("/api/v1/demo/sign-in", body, headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_served_with_a_strict_policy() {
    let t = start().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/console", "text/html"),
        ("/assets/app.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let resp = t
            .http
            .get(format!("{}{path}", t.url).parse().unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    let (status, body) = t.get("/assets/../Cargo.toml").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = t.get("/assets/nothing.js").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sign_in_on_loopback_signs_for_the_tenant_asked() {
    let t = start().await;
    let (_, site) = t.get("/api/v1/site").await;
    assert_eq!(
        site,
        json!({"tenant_id": "default", "name": "default", "demo_sign_in": true})
    );
    let (status, body) = sign_in(&t, "ann", &[]).await;
    assert_eq!(status, 200, "{body}");
    let auth = format!("Bearer {}", body["token"].as_str().unwrap());
    // The token is ann's, as any of her tokens.
    let (status, list) = request(
        &t.http,
        "GET",
        &format!("{}/api/v1/reservations?user_id=ann", t.url),
        None,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(status, 200, "{list}");
    let (status, _) = request(
        &t.http,
        "GET",
        &format!("{}/api/v1/reservations?user_id=bob", t.url),
        None,
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(status, 403, "ann's token is not bob's");

    for bad in [
        json!({"user_id": ""}),
        json!({"user_id": "a/b"}),
        json!({"user_id": "x", "admin": true}),
        json!({}),
    ] {
        let (status, body) = t
            .post_raw("/api/v1/demo/sign-in", bad.to_string().into_bytes(), &[])
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "ERROR_CODE_INVALID_ARGUMENT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sign_in_is_absent_unless_allowed() {
    // Turned off by the operator; behind a proxy (its clients are on a
    // network); on a listener that is not loopback.
    let off = start_with(|o| o.demo_sign_in = Some(false)).await;
    let proxied = start_with(|o| o.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let open = start_with(|o| {
        o.listen = "0.0.0.0:0".parse().unwrap();
        o.admin_token = Some("an-admin-token-0123456789".into());
    })
    .await;
    for t in [&off, &proxied, &open] {
        let url = t.url.replace("0.0.0.0", "127.0.0.1");
        let c = Client::of(&url);
        let (status, body) = sign_in(&c, "mallory", &[]).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "ERROR_CODE_NOT_FOUND");
        let (_, site) = c.get("/api/v1/site").await;
        assert_eq!(site["demo_sign_in"], false, "{site}");
    }
    // The operator may turn it on off loopback.
    let on = start_with(|o| {
        o.listen = "0.0.0.0:0".parse().unwrap();
        o.admin_token = Some("an-admin-token-0123456789".into());
        o.demo_sign_in = Some(true);
    })
    .await;
    let c = Client::of(&on.url.replace("0.0.0.0", "127.0.0.1"));
    assert_eq!(sign_in(&c, "ann", &[]).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_host_name_shows_its_name_and_signs_for_it_alone() {
    let (t, _files) = start_tenants(
        "[tenants.acme]\nname = \"Acme Tickets\"\n\n[tenants.globex]\nauth = { hs256_secret = \"globex-own-secret-0123456789\" }\n\n[tenants.default]\n",
    )
    .await;
    t.tenant("acme")
        .create_event("acme-gig", 5, 1_000, 1000)
        .await;
    t.tenant("default")
        .create_event("home-gig", 5, 1_000, 1000)
        .await;
    let acme = [("host", "acme.localhost:8000")];
    let (_, site) = request(
        &t.http,
        "GET",
        &format!("{}/api/v1/site", t.url),
        None,
        &acme,
    )
    .await;
    assert_eq!(site["name"], "Acme Tickets", "{site}");
    let (_, events) = request(
        &t.http,
        "GET",
        &format!("{}/api/v1/events", t.url),
        None,
        &acme,
    )
    .await;
    let ids: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme-gig"], "{events}");

    // Signed in at acme: an acme user, refused by another tenant.
    let (status, body) = sign_in(&t, "ann", &acme).await;
    assert_eq!(
        (status, body["tenant_id"].as_str()),
        (200, Some("acme")),
        "{body}"
    );
    let auth = format!("Bearer {}", body["token"].as_str().unwrap());
    let (status, _) = request(
        &t.http,
        "GET",
        &format!("{}/api/v1/reservations?user_id=ann", t.url),
        None,
        &[("authorization", &auth), ("x-tenant-id", "default")],
    )
    .await;
    assert_eq!(status, 403);

    // A tenant with keys of its own signs its users itself.
    let (status, body) = sign_in(&t, "ann", &[("x-tenant-id", "globex")]).await;
    assert_eq!(status, 409, "{body}");
    let (_, site) = t.tenant("globex").get("/api/v1/site").await;
    assert_eq!(site["demo_sign_in"], false);
    // An unknown tenant is not served.
    let (status, _) = sign_in(&t, "ann", &[("x-tenant-id", "nobody")]).await;
    assert_eq!(status, 404);

    // One tenant's waiting token opens nothing at another's.
    let wt = t.tenant("acme").join("acme-gig", "u1").await;
    let mut s = ws::open(&t.url, &format!("/ws/queue/{wt}?session_id=s-u1")).await;
    assert_eq!(
        ws::closed(&mut s).await.0,
        4400,
        "a token of acme is not default's"
    );
    let mut s = ws::open(&t.url, "/ws/events/acme-gig/seats").await;
    assert_eq!(
        ws::closed(&mut s).await.0,
        4404,
        "default has no such event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pulse_counts_the_sale_for_operators_only() {
    let t = start_with(|o| o.admin_token = Some("an-admin-token-0123456789".into())).await;
    let admin = [("authorization", "Bearer an-admin-token-0123456789")];
    let (status, _) = t.get("/admin/v1/pulse").await;
    assert_eq!(status, 401, "a stranger reads no pulse");
    let url = format!("{}/admin/v1/events", t.url);
    let event = json!({"event_id": "gig", "name": "Gig", "seat_count": 5,
                       "price": {"amount": 100, "currency": "KRW"}, "admission_per_second": 1000});
    let (status, _) = request(
        &t.http,
        "POST",
        &url,
        Some(event.to_string().into_bytes()),
        &admin,
    )
    .await;
    assert_eq!(status, 200);
    t.join("gig", "u1").await;
    t.join("gig", "u2").await;
    let (status, pulse) = request(
        &t.http,
        "GET",
        &format!("{}/admin/v1/pulse", t.url),
        None,
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{pulse}");
    assert_eq!(pulse["all"]["joins"], 2, "{pulse}");
    assert_eq!(pulse["tenants"]["default"]["joins"], 2, "{pulse}");
    let answered: u64 = pulse["all"]["latency"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(answered >= 2, "the joins' latencies are counted: {pulse}");
}
