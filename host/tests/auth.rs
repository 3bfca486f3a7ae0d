//! End-user auth on the reservation and payment routes, REST and gRPC: no
//! token, an expired one, a wrong signature and a wrong user are each refused
//! with nothing changed; RS256 tokens verify against a JWKS file; `tacos
//! token` mints tokens the host accepts.

mod common;

use base64::Engine;
use common::*;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use tacos_proto::reservation::v1::CreateReservationRequest;
use tacos_proto::reservation::v1::reservation_service_client::ReservationServiceClient;

fn hold_body(user: &str, token: &str, key: &str) -> Value {
    json!({"event_id": "e", "seat_ids": ["A-1"], "user_id": user,
           "reservation_token": token, "idempotency_key": key})
}

async fn post_with(t: &TestHost, path: &str, body: &Value, auth: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
    t.post_raw(path, body.to_string().into_bytes(), &headers)
        .await
}

/// Nothing was held and `user` has no reservations.
async fn nothing_changed(t: &TestHost, user: &str) {
    assert_eq!(t.seats("e").await["A-1"], "SEAT_STATUS_AVAILABLE");
    let (status, list) = t.get_as(user, "/api/v1/reservations").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["reservations"].as_array().map(Vec::len),
        Some(0),
        "{list}"
    );
}

fn hs256(secret: &str, user: &str, exp: u64) -> String {
    let claims = json!({"sub": user, "exp": exp});
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    let token =
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("signing");
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_refuses_missing_expired_forged_and_other_user_tokens() {
    let t = start().await;
    t.create_event("e", 3, 1_000, 1000).await;
    let rt = t.admitted("e", "ann").await;
    let now_s = t.host.runtime().clock.now_ms() / 1000;
    let body = hold_body("ann", &rt, "k1");

    let expired = hs256(JWT_SECRET, "ann", now_s - 1);
    let forged = hs256("not-the-hosts-secret-at-all", "ann", now_s + 600);
    let mallory = t.bearer("mallory");
    let cases: [(Option<&str>, u16, &str); 5] = [
        (None, 401, "ERROR_CODE_UNAUTHENTICATED"),
        (Some("Basic YW5uOnB3"), 401, "ERROR_CODE_UNAUTHENTICATED"),
        (Some(&expired), 401, "ERROR_CODE_UNAUTHENTICATED"),
        (Some(&forged), 401, "ERROR_CODE_UNAUTHENTICATED"),
        (Some(&mallory), 403, "ERROR_CODE_FORBIDDEN"),
    ];
    for (auth, status, want) in cases {
        let (got, resp) = post_with(&t, "/api/v1/reservations", &body, auth).await;
        assert_eq!((got, code(&resp)), (status, want), "{auth:?}: {resp}");
        nothing_changed(&t, "ann").await;
    }
    // Payment routes too.
    let pay = json!({"reservation_id": "r", "user_id": "ann", "amount": {"amount": 1, "currency": "KRW"}});
    let (got, resp) = post_with(&t, "/api/v1/payments/intent", &pay, None).await;
    assert_eq!(
        (got, code(&resp)),
        (401, "ERROR_CODE_UNAUTHENTICATED"),
        "{resp}"
    );

    // The right token works, and the user may be left out of the body.
    let ann = t.bearer("ann");
    let mut body = body;
    body["user_id"] = Value::String(String::new());
    let (got, resp) = post_with(&t, "/api/v1/reservations", &body, Some(&ann)).await;
    assert_eq!(got, 200, "{resp}");
    // Someone else cannot read it.
    let id = resp["reservation_id"].as_str().unwrap();
    let (got, resp) = t
        .get_as("mallory", &format!("/api/v1/reservations/{id}"))
        .await;
    assert_eq!(got, 404, "as if it did not exist: {resp}");

    // Tokens age with the host's clock.
    t.advance(86_401.0).await;
    let (got, resp) = t.get_as("ann", "/api/v1/reservations").await;
    assert_eq!(got, 200, "a fresh token still works: {resp}");
    let (got, resp) = post_with(&t, "/api/v1/payments/intent", &pay, Some(&ann)).await;
    assert_eq!(
        (got, code(&resp)),
        (401, "ERROR_CODE_UNAUTHENTICATED"),
        "the day-old token has expired: {resp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_refuses_bad_tokens_with_nothing_changed() {
    let t = start().await;
    t.create_event("e", 3, 1_000, 1000).await;
    let rt = t.admitted("e", "ann").await;
    let channel = tonic::transport::Channel::from_shared(t.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ReservationServiceClient::new(channel);
    let now_s = t.host.runtime().clock.now_ms() / 1000;
    let request = CreateReservationRequest {
        event_id: "e".into(),
        seat_ids: vec!["A-1".into()],
        user_id: "ann".into(),
        reservation_token: rt,
        idempotency_key: "k1".into(),
        ..Default::default()
    };
    let expired = hs256(JWT_SECRET, "ann", now_s - 1);
    let forged = hs256("not-the-hosts-secret-at-all", "ann", now_s + 600);
    let mallory = t.bearer("mallory");
    for (auth, want) in [
        (None, tonic::Code::Unauthenticated),
        (Some(&expired), tonic::Code::Unauthenticated),
        (Some(&forged), tonic::Code::Unauthenticated),
        (Some(&mallory), tonic::Code::PermissionDenied),
    ] {
        let mut req = tonic::Request::new(request.clone());
        if let Some(a) = auth {
            req.metadata_mut()
                .insert("authorization", a.parse().unwrap());
        }
        let s = client.create_reservation(req).await.unwrap_err();
        assert_eq!(s.code(), want, "{auth:?}: {s:?}");
        nothing_changed(&t, "ann").await;
    }
    let mut req = tonic::Request::new(request);
    req.metadata_mut()
        .insert("authorization", t.bearer("ann").parse().unwrap());
    client.create_reservation(req).await.unwrap();
    assert_eq!(t.seats("e").await["A-1"], "SEAT_STATUS_RESERVED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_verify_against_a_jwks_file() {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be())}]});
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();

    let t = start_with(|o| {
        o.auth.secret = None;
        o.auth.jwks = Some(jwks_path.clone());
        o.auth.issuer = Some("https://id.example".into());
    })
    .await;
    let now_s = t.host.runtime().clock.now_ms() / 1000;
    let pem = key.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
    let signing = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let rs256 = |kid: &str, iss: &str| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.into());
        let claims = json!({"sub": "ann", "exp": now_s + 600, "iss": iss});
        format!(
            "Bearer {}",
            jsonwebtoken::encode(&header, &claims, &signing).unwrap()
        )
    };
    let list = |auth: String| {
        let t = &t;
        async move {
            request(
                &t.http,
                "GET",
                &format!("{}/api/v1/reservations", t.url),
                None,
                &[("authorization", &auth)],
            )
            .await
        }
    };
    let (status, body) = list(rs256("k1", "https://id.example")).await;
    assert_eq!(status, 200, "{body}");
    for bad in [
        rs256("k2", "https://id.example"),
        rs256("k1", "https://elsewhere.example"),
        t.bearer("ann"), // HS256: no secret configured here
    ] {
        let (status, body) = list(bad).await;
        assert_eq!(
            (status, code(&body)),
            (401, "ERROR_CODE_UNAUTHENTICATED"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tacos_token_mints_what_the_host_accepts() {
    let t = start().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tacos"))
        .args(["token", "--user", "zoe", "--ttl", "600"])
        .env("TACOS_JWT_SECRET", JWT_SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let (status, body) = request(
        &t.http,
        "GET",
        &format!("{}/api/v1/reservations", t.url),
        None,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Without a configured secret it uses (and makes) the data dir's.
    let dir = tempfile::tempdir().unwrap();
    let mint = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tacos"))
            .args(["token", "--user", "zoe", "--data-dir"])
            .arg(dir.path())
            .env_remove("TACOS_JWT_SECRET")
            .output()
            .unwrap()
    };
    assert!(mint().status.success());
    let secret = std::fs::read_to_string(dir.path().join("jwt-secret")).unwrap();
    assert_eq!(secret.len(), 64);
    assert!(mint().status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("jwt-secret")).unwrap(),
        secret,
        "the secret is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_its_own_keys_is_signed_for_by_them_alone() {
    const OWN: &str = "tenant-a-own-secret-0123456789";
    let files = tempfile::tempdir().unwrap();
    let bundle = tenants::bundle(
        files.path(),
        &format!("[tenants.a]\nauth = {{ hs256_secret = \"{OWN}\" }}\n[tenants.b]\n"),
    );
    let t = start_with(|o| o.bundle = Some(bundle)).await;
    let now_s = t.host.runtime().clock.now_ms() / 1000;
    let token = |secret: &str, tenant: Option<&str>| {
        let mut claims = json!({"sub": "ann", "exp": now_s + 600});
        if let Some(id) = tenant {
            claims["tenant"] = id.into();
        }
        let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
        let t = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
        format!("Bearer {t}")
    };
    let list = |bearer: String| {
        let url = format!("{}/api/v1/reservations", t.url);
        let http = t.http.clone();
        async move { request(&http, "GET", &url, None, &[("authorization", &bearer)]).await }
    };
    // Tenant a's users: its own key, not the host's.
    assert_eq!(list(token(OWN, Some("a"))).await.0, 200);
    let (status, body) = list(token(JWT_SECRET, Some("a"))).await;
    assert_eq!(status, 401, "the host's key cannot sign for a: {body}");
    // a's key signs for no other tenant (this bundle has no `default`).
    for (other, refused) in [(Some("b"), 401), (None, 404)] {
        let (status, body) = list(token(OWN, other)).await;
        assert_eq!(status, refused, "{other:?}: {body}");
    }
    // b has no keys of its own: the host's sign for it.
    assert_eq!(list(token(JWT_SECRET, Some("b"))).await.0, 200);
    // No token, or an unreadable one, on a named tenant: 401, not a tenant mismatch.
    let url = format!("{}/api/v1/reservations", t.url);
    for auth in [None, Some("Bearer not.a.jwt")] {
        let mut headers = vec![("x-tenant-id", "a")];
        headers.extend(auth.map(|a| ("authorization", a)));
        let (status, body) = request(&t.http, "GET", &url, None, &headers).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
    }
    // A tenant's auth that cannot work is refused when it is applied.
    let (status, body) = t
        .put_tenant("c", json!({"auth": {"hs256_secret": "short"}}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(t.tenant_listing("a").await["id"] == "a");
}
