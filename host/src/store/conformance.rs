//! The semantics every store backend keeps, as tests over the traits, run
//! unchanged on the embedded store, Redis and DynamoDB.

use super::{Condition, KvStore, NewMessage, Op, QueueStore, StoreError};
use crate::foundations::clock::Clock;

fn put(key: &str, value: &[u8], condition: Condition) -> Op {
    Op::Put {
        key: key.into(),
        value: value.to_vec(),
        condition,
        expires_at_ms: None,
    }
}

pub async fn versions_and_conditions(kv: &dyn KvStore) {
    assert_eq!(kv.get("t/c/a").await.unwrap(), None);
    assert_eq!(
        kv.transact(vec![put("t/c/a", b"1", Condition::Absent)])
            .await
            .unwrap(),
        vec![1]
    );
    assert_eq!(
        kv.transact(vec![put("t/c/a", b"x", Condition::Absent)])
            .await,
        Err(StoreError::Conflict(0))
    );
    assert_eq!(
        kv.transact(vec![put("t/c/a", b"2", Condition::Version(1))])
            .await
            .unwrap(),
        vec![2]
    );
    assert_eq!(
        kv.transact(vec![put("t/c/a", b"3", Condition::Version(1))])
            .await,
        Err(StoreError::Conflict(0)),
        "a stale version never applies"
    );
    let e = kv.get("t/c/a").await.unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.version), (&b"2"[..], 2));
    kv.transact(vec![Op::Delete {
        key: "t/c/a".into(),
        condition: Condition::Exists,
    }])
    .await
    .unwrap();
    assert_eq!(kv.get("t/c/a").await.unwrap(), None);
    assert_eq!(
        kv.transact(vec![Op::Check {
            key: "t/c/a".into(),
            condition: Condition::Exists
        }])
        .await,
        Err(StoreError::Conflict(0))
    );
    // Versions keep counting after a delete: an old version cannot match again.
    assert_eq!(
        kv.transact(vec![put("t/c/a", b"4", Condition::Absent)])
            .await
            .unwrap(),
        vec![1]
    );
}

pub async fn transactions_are_all_or_nothing(kv: &dyn KvStore) {
    kv.transact(vec![
        put("t/c/s1", b"free", Condition::Absent),
        put("t/c/s2", b"taken", Condition::Absent),
    ])
    .await
    .unwrap();
    let failed = kv
        .transact(vec![
            put("t/c/s1", b"held", Condition::Version(1)),
            Op::Add {
                key: "t/c/n".into(),
                delta: -2,
            },
            put("t/c/s2", b"held", Condition::Absent),
        ])
        .await;
    assert_eq!(failed, Err(StoreError::Conflict(2)));
    assert_eq!(kv.get("t/c/s1").await.unwrap().unwrap().value, b"free");
    assert_eq!(
        kv.counter("t/c/n").await.unwrap(),
        0,
        "the counter did not move either"
    );
    let ok = kv
        .transact(vec![
            put("t/c/s1", b"held", Condition::Version(1)),
            Op::Add {
                key: "t/c/n".into(),
                delta: -2,
            },
        ])
        .await
        .unwrap();
    assert_eq!(ok, vec![2, (-2i64) as u64]);
    assert!(matches!(
        kv.transact(vec![]).await,
        Err(StoreError::Invalid(_))
    ));
    let most: Vec<Op> = (0..super::MAX_TRANSACT_OPS)
        .map(|i| put(&format!("t/c/k{i}"), b"", Condition::None))
        .collect();
    kv.transact(most)
        .await
        .expect("the largest transaction commits");
    let too_many: Vec<Op> = (0..=super::MAX_TRANSACT_OPS)
        .map(|i| put(&format!("t/c/k{i}"), b"", Condition::None))
        .collect();
    assert!(matches!(
        kv.transact(too_many).await,
        Err(StoreError::Invalid(_))
    ));
    let twice = vec![
        put("t/c/d", b"", Condition::None),
        Op::Delete {
            key: "t/c/d".into(),
            condition: Condition::None,
        },
    ];
    assert!(matches!(
        kv.transact(twice).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn scans_in_key_order(kv: &dyn KvStore) {
    let ops = ["b", "a", "c", "ab"]
        .iter()
        .map(|k| put(&format!("t/x/{k}"), k.as_bytes(), Condition::None))
        .collect();
    kv.transact(ops).await.unwrap();
    kv.transact(vec![put("t/y/a", b"other", Condition::None)])
        .await
        .unwrap();
    let keys = |v: Vec<super::Entry>| v.into_iter().map(|e| e.key).collect::<Vec<_>>();
    assert_eq!(
        keys(kv.scan("t/x/", None, 10).await.unwrap()),
        ["t/x/a", "t/x/ab", "t/x/b", "t/x/c"]
    );
    assert_eq!(
        keys(kv.scan("t/x/", Some("t/x/ab"), 2).await.unwrap()),
        ["t/x/b", "t/x/c"]
    );
    assert_eq!(
        keys(kv.scan("t/x/a", None, 10).await.unwrap()),
        ["t/x/a", "t/x/ab"]
    );
    let many = kv
        .get_many(&["t/x/c".into(), "t/x/zz".into()])
        .await
        .unwrap();
    assert_eq!(
        many[0].as_ref().map(|e| e.value.clone()),
        Some(b"c".to_vec())
    );
    assert_eq!(many[1], None);
}

pub async fn values_expire(kv: &dyn KvStore, clock: &Clock) {
    let now = clock.now_ms();
    kv.transact(vec![Op::Put {
        key: "t/c/ttl".into(),
        value: b"v".to_vec(),
        condition: Condition::None,
        expires_at_ms: Some(now + 1000),
    }])
    .await
    .unwrap();
    assert!(kv.get("t/c/ttl").await.unwrap().is_some());
    clock.advance(std::time::Duration::from_millis(1000));
    assert_eq!(kv.get("t/c/ttl").await.unwrap(), None);
    assert!(kv.scan("t/c/ttl", None, 10).await.unwrap().is_empty());
    // An expired key counts as absent, and its version keeps counting.
    assert_eq!(
        kv.transact(vec![put("t/c/ttl", b"w", Condition::Absent)])
            .await
            .unwrap(),
        vec![2]
    );
}

/// A transaction's sends are enqueued exactly when it commits.
pub async fn outbox_sends_commit_with_the_transaction(s: &dyn KvStore, q: &dyn QueueStore) {
    let msg = |topic: &str| {
        Op::Send(NewMessage {
            tenant: "t".into(),
            topic: topic.into(),
            payload: b"expire".to_vec(),
            due_at_ms: 60_000,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        })
    };
    let failed = s
        .transact(vec![msg("lost"), put("t/c/o", b"x", Condition::Exists)])
        .await;
    assert_eq!(failed, Err(StoreError::Conflict(1)));
    assert_eq!(
        q.next_due().await.unwrap(),
        None,
        "nothing was sent by a failed transaction"
    );
    let ok = s
        .transact(vec![put("t/c/o", b"x", Condition::Absent), msg("kept")])
        .await
        .unwrap();
    assert_ne!(ok[1], 0, "the message id is returned");
    assert_eq!(q.next_due().await.unwrap(), Some(60_000));
    let leased = q.lease_due(60_000, 90_000, 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!((leased[0].topic.as_str(), leased[0].id), ("kept", ok[1]));
    assert_eq!(
        leased[0].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736",
        "the sender's trace travels with the message"
    );
}

pub async fn messages_lease_retry_and_die(q: &dyn QueueStore) {
    let msg = |topic: &str, due| NewMessage {
        tenant: "t".into(),
        topic: topic.into(),
        payload: b"p".to_vec(),
        due_at_ms: due,
        trace_id: String::new(),
    };
    q.enqueue(msg("later", 5_000)).await.unwrap();
    q.enqueue(msg("now", 1_000)).await.unwrap();
    assert_eq!(q.next_due().await.unwrap(), Some(1_000));
    let leased = q.lease_due(2_000, 32_000, 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!((leased[0].topic.as_str(), leased[0].attempt), ("now", 1));
    assert!(
        q.lease_due(2_000, 32_000, 10).await.unwrap().is_empty(),
        "a leased message is invisible"
    );
    // Not acked within the lease: it comes back, one attempt further.
    let again = q.lease_due(32_000, 62_000, 10).await.unwrap();
    let topics: Vec<_> = again
        .iter()
        .map(|m| (m.topic.as_str(), m.attempt))
        .collect();
    assert_eq!(topics, [("later", 1), ("now", 2)]);
    q.ack(&again[0]).await.unwrap();
    q.retry(&again[1], 70_000).await.unwrap();
    assert_eq!(q.next_due().await.unwrap(), Some(70_000));
    let third = q.lease_due(70_000, 100_000, 10).await.unwrap();
    assert_eq!(third[0].attempt, 3);
    q.dead_letter(&third[0], "gave up").await.unwrap();
    assert_eq!(q.next_due().await.unwrap(), None);
    let dead = q.dead_letters("t", 10).await.unwrap();
    assert_eq!(
        (dead.len(), dead[0].reason.as_str(), dead[0].attempts),
        (1, "gave up", 3)
    );
    assert!(q.dead_letters("other", 10).await.unwrap().is_empty());
    assert_eq!(q.depth().await.unwrap().dead, 1);
    assert_eq!(q.pending("t").await.unwrap(), 0, "nothing of t waits");
}

/// Undelivered messages are counted per tenant: sent, leased and retried
/// ones count; acked and dead ones do not.
pub async fn pending_is_counted_per_tenant(q: &dyn QueueStore) {
    let msg = |tenant: &str, due| NewMessage {
        tenant: tenant.into(),
        topic: "t".into(),
        payload: b"p".to_vec(),
        due_at_ms: due,
        trace_id: String::new(),
    };
    for due in [1_000, 2_000, 3_000] {
        q.enqueue(msg("a", due)).await.unwrap();
    }
    q.enqueue(msg("b", 1_000)).await.unwrap();
    assert_eq!(q.pending("a").await.unwrap(), 3);
    assert_eq!(q.pending("b").await.unwrap(), 1);
    assert_eq!(q.pending("c").await.unwrap(), 0);
    let leased = q.lease_due(2_000, 10_000, 10).await.unwrap();
    assert_eq!(leased.len(), 3);
    assert_eq!(q.pending("a").await.unwrap(), 3, "leased still counts");
    let mut seen_a = false;
    for m in &leased {
        if m.tenant == "b" {
            q.ack(m).await.unwrap();
        } else if !seen_a {
            seen_a = true;
            q.retry(m, 20_000).await.unwrap();
        } else {
            q.dead_letter(m, "no").await.unwrap();
        }
    }
    assert_eq!(q.pending("a").await.unwrap(), 2, "one of a died");
    assert_eq!(q.pending("b").await.unwrap(), 0, "b's was delivered");
}

/// Usage counts each tenant's keys and key + value bytes, through puts,
/// overwrites, deletes and counters.
pub async fn usage_is_counted_per_tenant(kv: &dyn KvStore) {
    use super::Usage;
    assert_eq!(kv.usage("u").await.unwrap(), Usage::default());
    kv.transact(vec![
        put("u/c/k1", b"12345", Condition::None),
        put("u/c/k2", b"1", Condition::None),
        put("v/c/k1", b"123", Condition::None),
    ])
    .await
    .unwrap();
    assert_eq!(
        kv.usage("u").await.unwrap(),
        Usage {
            keys: 2,
            bytes: 6 + 5 + 6 + 1
        }
    );
    assert_eq!(
        kv.usage("v").await.unwrap(),
        Usage {
            keys: 1,
            bytes: 6 + 3
        }
    );
    kv.transact(vec![put("u/c/k1", b"12", Condition::None)])
        .await
        .unwrap();
    assert_eq!(
        kv.usage("u").await.unwrap(),
        Usage {
            keys: 2,
            bytes: 6 + 2 + 6 + 1
        }
    );
    kv.transact(vec![Op::Delete {
        key: "u/c/k2".into(),
        condition: Condition::None,
    }])
    .await
    .unwrap();
    assert_eq!(kv.usage("u").await.unwrap(), Usage { keys: 1, bytes: 8 });
    kv.transact(vec![Op::Add {
        key: "u/c/n".into(),
        delta: 3,
    }])
    .await
    .unwrap();
    kv.transact(vec![Op::Add {
        key: "u/c/n".into(),
        delta: 3,
    }])
    .await
    .unwrap();
    assert_eq!(
        kv.usage("u").await.unwrap(),
        Usage {
            keys: 2,
            bytes: 8 + 5 + 8
        },
        "a counter is its key and 8 bytes"
    );
    // A failed transaction counts nothing.
    let failed = kv
        .transact(vec![
            put("u/c/big", &[0; 100], Condition::None),
            put("u/c/k1", b"x", Condition::Absent),
        ])
        .await;
    assert_eq!(failed, Err(StoreError::Conflict(1)));
    assert_eq!(kv.usage("u").await.unwrap().keys, 2);
    assert_eq!(kv.usage("v").await.unwrap(), Usage { keys: 1, bytes: 9 });
}

/// Host metadata: last put wins; create keeps the first value.
pub async fn meta_is_created_once(kv: &dyn KvStore) {
    assert_eq!(kv.meta_get("m/a").await.unwrap(), None);
    assert_eq!(
        kv.meta_create("m/a", b"first".to_vec()).await.unwrap(),
        b"first"
    );
    assert_eq!(
        kv.meta_create("m/a", b"second".to_vec()).await.unwrap(),
        b"first"
    );
    kv.meta_put("m/a", b"third".to_vec()).await.unwrap();
    assert_eq!(kv.meta_get("m/a").await.unwrap().unwrap(), b"third");
}

/// What `sweep` (the backend's own) removes: values past their expiry, and
/// their usage; a value renewed without an expiry stays.
pub async fn sweeping_removes_expired_values_and_their_usage<F, Fut>(
    kv: &dyn KvStore,
    clock: &Clock,
    sweep: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = super::StoreResult<usize>>,
{
    let at = clock.now_ms() + 1000;
    let put = |key: &str, value: &[u8], exp: Option<u64>| Op::Put {
        key: key.into(),
        value: value.to_vec(),
        condition: Condition::None,
        expires_at_ms: exp,
    };
    kv.transact(vec![
        put("s/c/ttl", b"1234", Some(at)),
        put("s/c/renewed", b"12", Some(at)),
        put("s/c/kept", b"1", None),
    ])
    .await
    .unwrap();
    assert_eq!(sweep().await.unwrap(), 0, "nothing is due yet");
    kv.transact(vec![put("s/c/renewed", b"12", None)])
        .await
        .unwrap();
    clock.advance(std::time::Duration::from_millis(1000));
    assert_eq!(sweep().await.unwrap(), 1);
    let usage = kv.usage("s").await.unwrap();
    assert_eq!((usage.keys, usage.bytes), (2, (8 + 1) + (11 + 2)));
    assert_eq!(kv.scan("s/", None, 10).await.unwrap().len(), 2);
    assert_eq!(sweep().await.unwrap(), 0, "once");
}
