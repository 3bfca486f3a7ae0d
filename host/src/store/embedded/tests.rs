//! The conformance suite on the embedded store, plus what only it promises.

use super::EmbeddedStore;
use crate::clock::Clock;
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
    let (_d, s) = open(clock.clone());
    conformance::messages_lease_retry_and_die(&s).await;
    let (_d, s) = open(clock);
    conformance::outbox_sends_commit_with_the_transaction(&s).await;
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
    let mut reopened = None;
    for _ in 0..100 {
        match EmbeddedStore::open(dir.path(), clock.clone()) {
            Ok(s) => {
                reopened = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
    let s = reopened.expect("the store reopens once the old handle is closed");
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
