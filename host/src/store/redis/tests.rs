//! The conformance suite on a real `redis-server`, plus what only Redis needs.

use super::RedisStore;
use crate::foundations::clock::Clock;
use crate::store::conformance;
use std::sync::Arc;
use tacos_testkit::{self as servers, Redis};

async fn open(server: &Redis, prefix: &str, clock: &Arc<Clock>) -> RedisStore {
    RedisStore::connect(&server.url(), prefix, clock.clone())
        .await
        .unwrap()
}

#[tokio::test]
async fn conformance_suite() {
    let Some(server) = servers::or_skip(Redis::start()) else {
        return;
    };
    let clock = Arc::new(Clock::virtual_at(1_000_000));
    let s = open(&server, "a:", &clock).await;
    conformance::versions_and_conditions(&s).await;
    conformance::transactions_are_all_or_nothing(&s).await;
    conformance::scans_in_key_order(&s).await;
    conformance::values_expire(&s, &clock).await;
    conformance::meta_is_created_once(&s).await;
    // Each part on a fresh prefix: prefixes keep deployments apart.
    conformance::messages_lease_retry_and_die(&open(&server, "b:", &clock).await).await;
    let s = open(&server, "c:", &clock).await;
    conformance::outbox_sends_commit_with_the_transaction(&s, &s).await;
    conformance::pending_is_counted_per_tenant(&open(&server, "d:", &clock).await).await;
    conformance::usage_is_counted_per_tenant(&open(&server, "e:", &clock).await).await;
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
