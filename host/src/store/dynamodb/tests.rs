//! The conformance suite on a DynamoDB-API server (moto), with the queue on
//! the embedded store; plus the outbox relay.

use super::{DynamoStore, create_table};
use crate::foundations::clock::Clock;
use crate::store::embedded::EmbeddedStore;
use crate::store::{Condition, KvStore, NewMessage, Op, QueueStore, conformance};
use std::sync::Arc;
use tacos_testkit::{self as servers, DynamoDb};

struct Setup {
    _dir: tempfile::TempDir,
    kv: DynamoStore,
    queue: Arc<EmbeddedStore>,
}

async fn open(server: &DynamoDb, table: &str, clock: &Arc<Clock>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let queue = Arc::new(EmbeddedStore::open(dir.path(), clock.clone()).unwrap());
    let client = server.client();
    assert!(create_table(&client, table).await.unwrap());
    assert!(
        !create_table(&client, table).await.unwrap(),
        "creating it again finds it there"
    );
    let kv = DynamoStore::new(client, table, clock.clone(), queue.clone());
    Setup {
        _dir: dir,
        kv,
        queue,
    }
}

#[tokio::test]
async fn conformance_suite() {
    let Some(server) = servers::or_skip(DynamoDb::start()) else {
        return;
    };
    let clock = Arc::new(Clock::virtual_at(1_000_000));
    let s = open(&server, "a", &clock).await;
    conformance::versions_and_conditions(&s.kv).await;
    conformance::transactions_are_all_or_nothing(&s.kv).await;
    conformance::scans_in_key_order(&s.kv).await;
    conformance::values_expire(&s.kv, &clock).await;
    conformance::meta_is_created_once(&s.kv).await;
    let s = open(&server, "b", &clock).await;
    conformance::outbox_sends_commit_with_the_transaction(&s.kv, s.queue.as_ref()).await;
    let s = open(&server, "c", &clock).await;
    conformance::usage_is_counted_per_tenant(&s.kv).await;
}

#[tokio::test]
async fn a_send_left_in_the_outbox_is_relayed_by_any_host() {
    let Some(server) = servers::or_skip(DynamoDb::start()) else {
        return;
    };
    let clock = Arc::new(Clock::virtual_at(1_000_000));
    let s = open(&server, "outbox", &clock).await;
    // A host that committed but died before relaying left this behind.
    let msg = NewMessage {
        tenant: "t".into(),
        topic: "expire".into(),
        payload: b"hold-1".to_vec(),
        due_at_ms: 2_000_000,
        trace_id: String::new(),
    };
    let mut item = super::outbox::item(&msg);
    item.insert("sk".into(), super::s("0000000000001#0"));
    s.kv.client
        .put_item()
        .table_name("outbox")
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    // A fresh one is the committing host's to relay, not yet anyone's.
    let fresh = s.kv.try_transact(&[Op::Send(msg.clone())]).await.unwrap();
    assert!(fresh.is_some());
    assert_eq!(
        s.kv.relay_outbox(10).await.unwrap(),
        1,
        "only the stale one"
    );
    assert_eq!(s.kv.relay_outbox(10).await.unwrap(), 0, "and only once");
    let leased = s.queue.lease_due(2_000_000, 2_100_000, 10).await.unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].payload, b"hold-1");
    // A transaction's own sends reach the queue at once.
    s.kv.transact(vec![
        Op::Put {
            key: "t/c/h".into(),
            value: b"held".to_vec(),
            condition: Condition::Absent,
            expires_at_ms: None,
        },
        Op::Send(msg),
    ])
    .await
    .unwrap();
    assert_eq!(s.queue.pending("t").await.unwrap(), 2);
}

#[tokio::test]
async fn expired_values_are_swept_and_leave_usage() {
    let Some(server) = servers::or_skip(DynamoDb::start()) else {
        return;
    };
    let clock = Arc::new(Clock::virtual_at(1_000_000));
    let s = open(&server, "sweep", &clock).await;
    conformance::sweeping_removes_expired_values_and_their_usage(&s.kv, &clock, || {
        s.kv.sweep_expired(100)
    })
    .await;
}
