//! The conformance suite on a real `redis-server`, plus what only Redis needs.

use super::RedisStore;
use crate::clock::Clock;
use crate::servers::{self, Redis};
use crate::store::{Condition, KvStore, Op, conformance};
use std::sync::Arc;

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
    s.transact(vec![
        Op::Put {
            key: "t/c/ttl".into(),
            value: b"1234".to_vec(),
            condition: Condition::None,
            expires_at_ms: Some(1_001_000),
        },
        Op::Put {
            key: "t/c/kept".into(),
            value: b"1".to_vec(),
            condition: Condition::None,
            expires_at_ms: None,
        },
    ])
    .await
    .unwrap();
    assert_eq!(s.sweep_expired(100).await.unwrap(), 0, "nothing is due yet");
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(s.sweep_expired(100).await.unwrap(), 1);
    let usage = s.usage("t").await.unwrap();
    assert_eq!((usage.keys, usage.bytes), (1, 8 + 1));
    let keys: Vec<_> = s.scan("t/", None, 10).await.unwrap();
    assert_eq!(keys.len(), 1);
}
