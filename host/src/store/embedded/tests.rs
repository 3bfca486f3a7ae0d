//! The conformance suite on the embedded store, plus what only it promises.

use super::EmbeddedStore;
use crate::foundations::clock::Clock;
use crate::store::{Condition, KvStore, Op, conformance};
use std::sync::Arc;

fn open(clock: Arc<Clock>) -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), clock).unwrap();
    (dir, store)
}

#[tokio::test]
async fn conformance_suite() {
    let clock = Arc::new(Clock::virtual_at(1_000_000));
    let (_d, s) = open(clock.clone());
    conformance::versions_and_conditions(&s).await;
    conformance::transactions_are_all_or_nothing(&s).await;
    conformance::scans_in_key_order(&s).await;
    conformance::values_expire(&s, &clock).await;
    conformance::meta_is_created_once(&s).await;
    let (_d, s) = open(clock.clone());
    conformance::messages_lease_retry_and_die(&s).await;
    let (_d, s) = open(clock.clone());
    conformance::outbox_sends_commit_with_the_transaction(&s, &s).await;
    let (_d, s) = open(clock.clone());
    conformance::pending_is_counted_per_tenant(&s).await;
    let (_d, s) = open(clock.clone());
    conformance::usage_is_counted_per_tenant(&s).await;
    let (_d, s) = open(clock.clone());
    conformance::sweeping_removes_expired_values_and_their_usage(&s, &clock, || {
        s.sweep_expired(100)
    })
    .await;
}

/// Open the store again once the old handle's writer thread has let go.
async fn reopen(dir: &std::path::Path, clock: Arc<Clock>) -> EmbeddedStore {
    for _ in 0..100 {
        match EmbeddedStore::open(dir, clock.clone()) {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    panic!("the store reopens once the old handle is closed");
}

#[tokio::test]
async fn usage_survives_reopen_and_expired_keys_leave_it_when_swept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(Clock::virtual_at(1_000_000));
    {
        let s = EmbeddedStore::open(dir.path(), clock.clone()).unwrap();
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
    }
    let s = reopen(dir.path(), clock.clone()).await;
    let usage = s.usage("t").await.unwrap();
    assert_eq!((usage.keys, usage.bytes), (2, 7 + 4 + 8 + 1));
    clock.advance(std::time::Duration::from_secs(2));
    assert_eq!(s.sweep_expired(100).await.unwrap(), 1);
    let usage = s.usage("t").await.unwrap();
    assert_eq!((usage.keys, usage.bytes), (1, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(Clock::system());
    {
        let s = EmbeddedStore::open(dir.path(), clock.clone()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.transact(vec![
                    Op::Put {
                        key: format!("k{i}"),
                        value: vec![1],
                        condition: Condition::Absent,
                        expires_at_ms: None,
                    },
                    Op::Add {
                        key: "n".into(),
                        delta: 1,
                    },
                ])
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let stats = s.stats();
        let commits = stats.commits.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(stats.writes.load(std::sync::atomic::Ordering::Relaxed), 200);
        assert!(commits <= 200, "{commits} commits");
    }
    // Everything acknowledged is on disk once the writer is gone.
    let s = reopen(dir.path(), clock).await;
    assert_eq!(s.counter("n").await.unwrap(), 200);
    assert!(s.get("k199").await.unwrap().is_some());
}

#[tokio::test]
async fn sweeping_removes_only_expired_values() {
    let clock = Arc::new(Clock::virtual_at(10_000));
    let (_d, s) = open(clock.clone());
    let put = |k: &str, exp: Option<u64>| Op::Put {
        key: k.into(),
        value: vec![],
        condition: Condition::None,
        expires_at_ms: exp,
    };
    s.transact(vec![
        put("gone", Some(11_000)),
        put("kept", Some(20_000)),
        put("forever", None),
    ])
    .await
    .unwrap();
    // Rewritten without a ttl: its old expiry entry must not delete it.
    s.transact(vec![put("rewritten", Some(11_000))])
        .await
        .unwrap();
    s.transact(vec![put("rewritten", None)]).await.unwrap();
    clock.advance(std::time::Duration::from_secs(5));
    assert_eq!(s.sweep_expired(100).await.unwrap(), 1);
    for k in ["kept", "forever", "rewritten"] {
        assert!(s.get(k).await.unwrap().is_some(), "{k}");
    }
}

#[tokio::test]
async fn leasing_when_nothing_is_due_commits_nothing() {
    use crate::store::{NewMessage, QueueStore};
    use std::sync::atomic::Ordering::Relaxed;
    let clock = Arc::new(Clock::virtual_at(10_000));
    let (_d, s) = open(clock.clone());
    let msg = |due_at_ms| NewMessage {
        tenant: "t".into(),
        topic: "expiry".into(),
        payload: vec![],
        due_at_ms,
        trace_id: String::new(),
    };
    s.enqueue(msg(70_000)).await.unwrap();
    let commits = s.stats().commits.load(Relaxed);
    assert!(s.lease_due(10_000, 40_000, 8).await.unwrap().is_empty());
    assert_eq!(
        s.stats().commits.load(Relaxed),
        commits,
        "an empty lease commits"
    );
    // Once due, the message is leased by a commit.
    let leased = s.lease_due(70_000, 100_000, 8).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(s.stats().commits.load(Relaxed), commits + 1);
}
