//! The conformance suite on a real `redis-server`, plus what only Redis needs.

use super::{RedisSettings, RedisStore};
use crate::foundations::clock::Clock;
use crate::store::{KvStore, conformance};
use std::sync::Arc;
use tacos_testkit::{self as servers, Redis};

/// Settings for `server`: its URL and, on TLS, its CA and a client
/// certificate it accepts.
fn settings(server: &Redis, prefix: &str) -> RedisSettings {
    let pki = server.pki();
    let [client_cert, client_key] = pki.map(|p| p.client().map(Some)).unwrap_or_default();
    RedisSettings {
        url: Some(server.url()),
        prefix: Some(prefix.into()),
        ca: pki.map(|p| p.ca()),
        client_cert,
        client_key,
    }
}

async fn open(server: &Redis, prefix: &str, clock: &Arc<Clock>) -> RedisStore {
    RedisStore::connect(&settings(server, prefix), clock.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn conformance_suite() {
    if let Some(server) = servers::or_skip(Redis::start()) {
        suite(&server).await;
    }
}

/// Over TLS, with the server's CA and a client certificate it asked for.
#[tokio::test]
async fn conformance_suite_over_tls() {
    if let Some(server) = servers::or_skip(Redis::start_tls()) {
        suite(&server).await;
    }
}

async fn suite(server: &Redis) {
    let clock = Arc::new(Clock::virtual_at(1_000_000));
    let s = open(server, "a:", &clock).await;
    conformance::versions_and_conditions(&s).await;
    conformance::transactions_are_all_or_nothing(&s).await;
    conformance::scans_in_key_order(&s).await;
    conformance::values_expire(&s, &clock).await;
    conformance::meta_is_created_once(&s).await;
    // Each part on a fresh prefix: prefixes keep deployments apart.
    conformance::messages_lease_retry_and_die(&open(server, "b:", &clock).await).await;
    let s = open(server, "c:", &clock).await;
    conformance::outbox_sends_commit_with_the_transaction(&s, &s).await;
    conformance::pending_is_counted_per_tenant(&open(server, "d:", &clock).await).await;
    conformance::usage_is_counted_per_tenant(&open(server, "e:", &clock).await).await;
}

#[tokio::test]
async fn expired_values_are_swept_and_leave_usage() {
    let Some(server) = servers::or_skip(Redis::start()) else {
        return;
    };
    let clock = Arc::new(Clock::virtual_at(1_000_000));
    let s = open(&server, "", &clock).await;
    conformance::sweeping_removes_expired_values_and_their_usage(&s, &clock, || {
        s.sweep_expired(100)
    })
    .await;
}

/// The error connecting with `settings`, which must fail.
async fn refused(settings: &RedisSettings) -> String {
    let clock = Arc::new(Clock::virtual_at(0));
    match RedisStore::connect(settings, clock).await {
        Ok(_) => panic!("connected with {settings:?}"),
        Err(e) => format!("{e:#}"),
    }
}

/// What the host must not trust, or be trusted with, on a TLS server: a
/// server its CA did not sign (a stranger in the middle), and no client
/// certificate or a stranger's; and TLS settings that would not be used.
#[tokio::test]
async fn tls_trusts_only_what_it_is_told_to() {
    let Some(server) = servers::or_skip(Redis::start_tls()) else {
        return;
    };
    let pki = server.pki().unwrap();
    let good = settings(&server, "t:");
    // Trusted and trusting: a write and its read.
    let clock = Arc::new(Clock::virtual_at(0));
    let s = RedisStore::connect(&good, clock).await.unwrap();
    s.meta_put("k", b"v".to_vec()).await.unwrap();

    // The system's roots do not vouch for a private CA, nor does another CA.
    for ca in [None, Some(pki.stranger_ca())] {
        let e = refused(&RedisSettings { ca, ..good.clone() }).await;
        assert!(e.contains("certificate"), "{e}");
    }
    // The server wants a client certificate its own CA signed.
    let [cert, key] = pki.stranger_client();
    for (client_cert, client_key) in [(None, None), (Some(cert), Some(key))] {
        let e = refused(&RedisSettings {
            client_cert,
            client_key,
            ..good.clone()
        })
        .await;
        // CertificateRequired, UnknownCA: the server's answer, not a timeout.
        assert!(e.contains("alert"), "{e}");
    }
    // Plain text to a TLS port gets nowhere.
    let plain = server.url().replace("rediss://", "redis://");
    refused(&RedisSettings {
        url: Some(plain.clone()),
        prefix: good.prefix.clone(),
        ..RedisSettings::default()
    })
    .await;

    // Settings that would quietly not protect anything stop the host.
    let e = refused(&RedisSettings {
        url: Some(plain),
        ..good.clone()
    })
    .await;
    assert!(e.contains("use a rediss:// url"), "{e}");
    let e = refused(&RedisSettings {
        client_key: None,
        ..good.clone()
    })
    .await;
    assert!(e.contains("set both or neither"), "{e}");
    let e = refused(&RedisSettings {
        ca: Some(pki.ca().with_file_name("missing.pem")),
        ..good.clone()
    })
    .await;
    assert!(e.contains("missing.pem"), "{e}");

    // Nobody refused wrote anything; the trusted client still reads its own.
    let s = RedisStore::connect(&good, Arc::new(Clock::virtual_at(0)))
        .await
        .unwrap();
    assert_eq!(s.meta_get("k").await.unwrap(), Some(b"v".to_vec()));
}
