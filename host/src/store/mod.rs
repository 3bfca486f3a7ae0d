//! Storage behind the `kv` and `queue` capabilities.
//!
//! Two traits, [`KvStore`] and [`QueueStore`], state the semantics every backend
//! must keep (the embedded store now; Redis and DynamoDB later run the same
//! conformance tests): versioned values, all-or-nothing conditional
//! transactions of at most [`MAX_TRANSACT_OPS`] operations, counters apart from
//! values, time-to-live; and durable delayed messages that are leased, acked,
//! retried or dead-lettered. Keys reaching a store are already scoped by tenant
//! and component: scoping is the capability layer's job.

#[cfg(test)]
pub(crate) mod conformance;
pub mod dynamodb;
pub mod embedded;
pub mod open;
pub mod redis;
pub mod routed;
pub(crate) mod usage;

use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most operations in one transaction, on every backend: DynamoDB's
/// `TransactWriteItems` takes 100 items, and a transaction also writes its
/// tenant's usage.
pub const MAX_TRANSACT_OPS: usize = 99;
/// The largest value (DynamoDB's item limit, less room for the key).
pub const MAX_VALUE_BYTES: usize = 390 * 1024;
/// The longest key, scope included.
pub const MAX_KEY_BYTES: usize = 1024;

/// The tenant a scoped key belongs to: everything before its first `/`.
pub fn tenant_of(key: &str) -> &str {
    key.split('/').next().unwrap_or(key)
}

/// A tenant's storage, as quotas count it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub keys: u64,
    pub bytes: u64,
}

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub version: u64,
}

/// What must hold of a key for an operation to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Condition {
    None,
    Absent,
    Exists,
    Version(u64),
}

impl Condition {
    /// Whether the condition holds for a key currently at `version` (None: absent).
    pub fn holds(self, version: Option<u64>) -> bool {
        match self {
            Condition::None => true,
            Condition::Absent => version.is_none(),
            Condition::Exists => version.is_some(),
            Condition::Version(v) => version == Some(v),
        }
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        condition: Condition,
        /// Absolute expiry, milliseconds since the epoch (host clock).
        expires_at_ms: Option<u64>,
    },
    Delete {
        key: String,
        condition: Condition,
    },
    Check {
        key: String,
        condition: Condition,
    },
    Add {
        key: String,
        delta: i64,
    },
    /// Enqueue a message if the transaction commits (transactional outbox).
    Send(NewMessage),
}

impl Op {
    /// The key the operation touches (sends touch none).
    pub fn key(&self) -> Option<&str> {
        match self {
            Op::Put { key, .. }
            | Op::Delete { key, .. }
            | Op::Check { key, .. }
            | Op::Add { key, .. } => Some(key),
            Op::Send(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The condition of operation N did not hold; nothing was written.
    #[error("condition of operation {0} failed")]
    Conflict(u32),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Check the shape of a transaction before it reaches a backend.
pub fn validate_ops(ops: &[Op]) -> StoreResult<()> {
    if ops.is_empty() {
        return Err(StoreError::Invalid(
            "a transaction needs at least one operation".into(),
        ));
    }
    if ops.len() > MAX_TRANSACT_OPS {
        return Err(StoreError::Invalid(format!(
            "a transaction may carry at most {MAX_TRANSACT_OPS} operations, got {}",
            ops.len()
        )));
    }
    for (i, op) in ops.iter().enumerate() {
        if let Some(key) = op.key() {
            if ops[..i].iter().any(|o| o.key() == Some(key)) {
                return Err(StoreError::Invalid(format!(
                    "key {key} appears twice in one transaction"
                )));
            }
            if key.len() > MAX_KEY_BYTES {
                let head: String = key.chars().take(32).collect();
                return Err(StoreError::Invalid(format!(
                    "key {head}… is longer than {MAX_KEY_BYTES} bytes"
                )));
            }
        }
        if let Op::Put { value, .. } = op
            && value.len() > MAX_VALUE_BYTES
        {
            return Err(StoreError::Invalid(format!(
                "value of {} is {} bytes; the limit is {MAX_VALUE_BYTES}",
                op.key().unwrap_or_default(),
                value.len()
            )));
        }
    }
    Ok(())
}

/// Versioned key-value storage with conditional transactions.
#[async_trait]
pub trait KvStore: Send + Sync {
    async fn get(&self, key: &str) -> StoreResult<Option<Entry>>;
    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Entry>>>;
    /// Entries whose key starts with `prefix`, in key order, strictly after
    /// `start_after` if given, at most `limit`.
    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>>;
    /// Apply all operations or none. Returns per operation the new version
    /// (puts), the new counter value as u64 bits (adds), the message id
    /// (sends) or 0.
    async fn transact(&self, ops: Vec<Op>) -> StoreResult<Vec<u64>>;
    /// [`KvStore::transact`], answered once the writes are visible to
    /// readers, perhaps before they are durable: the caller waits for
    /// [`KvStore::durable`] of [`KvStore::visible`] before anything it
    /// learned leaves the host. Stores durable at every answer just transact.
    async fn transact_early(&self, ops: Vec<Op>) -> StoreResult<Vec<u64>> {
        self.transact(ops).await
    }
    /// A mark of every write a reader may see now (0 for stores durable at
    /// every answer).
    fn visible(&self) -> u64 {
        0
    }
    /// Resolves once every write up to `mark` is durable.
    async fn durable(&self, _mark: u64) -> StoreResult<()> {
        Ok(())
    }
    async fn counter(&self, key: &str) -> StoreResult<i64>;
    /// What a tenant stores: keys (values and counters) and their bytes, key
    /// lengths included. Kept with the writes, so it is exact after each commit.
    async fn usage(&self, tenant: &str) -> StoreResult<Usage>;
    /// Host metadata (secrets, the virtual clock), outside every tenant's keys.
    async fn meta_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn meta_put(&self, key: &str, value: Vec<u8>) -> StoreResult<()>;
    /// Store `value` under `key` unless something is there already; returns
    /// what is stored, so hosts racing to create a secret agree on one.
    async fn meta_create(&self, key: &str, value: Vec<u8>) -> StoreResult<Vec<u8>>;
}

/// What one component call, and the calls it makes, have seen of the kv
/// store: the newest mark of what they read or wrote, so that nothing they
/// learned leaves the host before it is durable (see
/// [`KvStore::transact_early`]). The runtime waits for it when a top-level
/// call ends; the webhook capability before it posts.
#[derive(Clone)]
pub struct Seen {
    store: Arc<dyn KvStore>,
    mark: Arc<AtomicU64>,
}

impl Seen {
    pub fn new(store: Arc<dyn KvStore>) -> Seen {
        Seen {
            store,
            mark: Arc::default(),
        }
    }

    /// After a read or a write: the call has seen what is visible now.
    pub fn saw(&self) {
        self.mark.fetch_max(self.store.visible(), Ordering::AcqRel);
    }

    /// Resolves once everything the call has seen is durable.
    pub async fn durable(&self) -> StoreResult<()> {
        match self.mark.load(Ordering::Acquire) {
            0 => Ok(()),
            mark => self.store.durable(mark).await,
        }
    }
}

/// A message to enqueue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewMessage {
    pub tenant: String,
    pub topic: String,
    pub payload: Vec<u8>,
    pub due_at_ms: u64,
    /// The trace of the call that sent it; its delivery continues that trace.
    pub trace_id: String,
}

/// A message leased to the dispatcher: invisible until `lease_until_ms`.
#[derive(Debug, Clone)]
pub struct Leased {
    pub id: u64,
    pub tenant: String,
    pub topic: String,
    pub payload: Vec<u8>,
    pub trace_id: String,
    /// 1 on the first delivery.
    pub attempt: u32,
    pub lease_until_ms: u64,
}

/// A message that ran out of attempts or had no consumer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    pub id: u64,
    pub tenant: String,
    pub topic: String,
    pub attempts: u32,
    pub reason: String,
    pub payload_bytes: usize,
}

/// Counts for metrics and `readyz`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QueueDepth {
    pub pending: u64,
    pub dead: u64,
}

/// Durable delayed messages with leases (visibility timeouts).
#[async_trait]
pub trait QueueStore: Send + Sync {
    async fn enqueue(&self, msg: NewMessage) -> StoreResult<u64>;
    /// Lease up to `max` messages due at `now_ms`, hiding them until `lease_until_ms`.
    async fn lease_due(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        max: usize,
    ) -> StoreResult<Vec<Leased>>;
    /// Delivered: forget the message.
    async fn ack(&self, msg: &Leased) -> StoreResult<()>;
    /// Failed: deliver again at `due_at_ms`.
    async fn retry(&self, msg: &Leased, due_at_ms: u64) -> StoreResult<()>;
    /// Give up: keep it among the dead letters with `reason`.
    async fn dead_letter(&self, msg: &Leased, reason: &str) -> StoreResult<()>;
    /// When the earliest message (leased or not) becomes due.
    async fn next_due(&self) -> StoreResult<Option<u64>>;
    async fn dead_letters(&self, tenant: &str, limit: usize) -> StoreResult<Vec<DeadLetter>>;
    async fn depth(&self) -> StoreResult<QueueDepth>;
    /// Messages of `tenant` not yet delivered (due, delayed or leased).
    async fn pending(&self, tenant: &str) -> StoreResult<u64>;
}
