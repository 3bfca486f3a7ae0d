//! The embedded queue: one redb table ordered by `(due_at_ms, id)`.
//!
//! Leasing a due message re-keys it to `(lease_until_ms, id)` in the same
//! commit, so a message being delivered is invisible until its lease runs out:
//! if the host dies mid-delivery, the message simply becomes due again. Acking
//! deletes it; a retry re-keys it to its backoff time; a dead letter moves it to
//! the `dead` table. Everything is durable before it is acknowledged.

use super::super::{DeadLetter, Leased, NewMessage, QueueDepth, QueueStore, StoreResult};
use super::{EmbeddedStore, unavailable};
use async_trait::async_trait;
use prost::Message;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle, WriteTransaction};

const QUEUE: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("queue");
const DEAD: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("dead");
/// Undelivered messages per tenant (for queue-depth quotas).
const PENDING: TableDefinition<&str, u64> = TableDefinition::new("pending");

#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    #[prost(string, tag = "1")]
    tenant: String,
    #[prost(string, tag = "2")]
    topic: String,
    #[prost(bytes = "vec", tag = "3")]
    payload: Vec<u8>,
    /// Deliveries so far.
    #[prost(uint32, tag = "4")]
    attempts: u32,
    #[prost(string, tag = "5")]
    reason: String,
    #[prost(string, tag = "6")]
    trace_id: String,
}

/// Create the queue's tables; `existing` names the tables there before.
pub(super) fn create_tables(
    txn: &WriteTransaction,
    existing: &[String],
) -> Result<(), redb::Error> {
    txn.open_table(QUEUE)?;
    txn.open_table(DEAD)?;
    if !existing.iter().any(|t| t == PENDING.name()) {
        // A store from before per-tenant counts: count what waits once.
        let mut counts: Vec<(String, u64)> = Vec::new();
        for item in txn.open_table(QUEUE)?.iter()? {
            let (_, v) = item?;
            if let Ok(rec) = Record::decode(v.value()) {
                match counts.iter_mut().find(|(t, _)| *t == rec.tenant) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((rec.tenant, 1)),
                }
            }
        }
        let mut pending = txn.open_table(PENDING)?;
        for (tenant, n) in counts {
            pending.insert(tenant.as_str(), n)?;
        }
    }
    Ok(())
}

/// Change `tenant`'s count of undelivered messages by `delta`.
fn count_pending(txn: &WriteTransaction, tenant: &str, delta: i64) -> Result<(), redb::Error> {
    let mut table = txn.open_table(PENDING)?;
    let n = table.get(tenant)?.map(|v| v.value()).unwrap_or(0);
    match n.saturating_add_signed(delta) {
        0 => table.remove(tenant)?,
        n => table.insert(tenant, n)?,
    };
    Ok(())
}

/// Add a message to the queue table (also used by transactions' outbox sends).
pub(super) fn insert(txn: &WriteTransaction, msg: &NewMessage, id: u64) -> Result<(), redb::Error> {
    count_pending(txn, &msg.tenant, 1)?;
    let record = Record {
        tenant: msg.tenant.clone(),
        topic: msg.topic.clone(),
        payload: msg.payload.clone(),
        attempts: 0,
        reason: String::new(),
        trace_id: msg.trace_id.clone(),
    };
    txn.open_table(QUEUE)?
        .insert((msg.due_at_ms, id), record.encode_to_vec().as_slice())?;
    Ok(())
}

/// Take the leased message out of the queue for good (delivered or dead).
fn finish(txn: &WriteTransaction, msg: &Leased) -> Result<Option<Record>, redb::Error> {
    let rec = take(txn, msg)?;
    if let Some(rec) = &rec {
        count_pending(txn, &rec.tenant, -1)?;
    }
    Ok(rec)
}

/// Take the leased message out of the queue table, if it is still ours.
fn take(txn: &WriteTransaction, msg: &Leased) -> Result<Option<Record>, redb::Error> {
    let mut q = txn.open_table(QUEUE)?;
    let raw = q
        .remove((msg.lease_until_ms, msg.id))?
        .map(|v| v.value().to_vec());
    Ok(raw.and_then(|r| Record::decode(r.as_slice()).ok()))
}

#[async_trait]
impl QueueStore for EmbeddedStore {
    async fn enqueue(&self, msg: NewMessage) -> StoreResult<u64> {
        self.writer
            .write(move |txn| {
                let id = rand::random();
                insert(txn, &msg, id)?;
                Ok(Ok(id))
            })
            .await
    }

    async fn lease_due(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        max: usize,
    ) -> StoreResult<Vec<Leased>> {
        // Most wakes find nothing due (a hold's expiry is minutes away): a
        // read answers them without a durable commit.
        if self.next_due().await?.is_none_or(|at| at > now_ms) {
            return Ok(Vec::new());
        }
        self.writer
            .write(move |txn| {
                let mut q = txn.open_table(QUEUE)?;
                let due: Vec<((u64, u64), Vec<u8>)> = q
                    .range(..=(now_ms, u64::MAX))?
                    .take(max)
                    .map(|r| r.map(|(k, v)| (k.value(), v.value().to_vec())))
                    .collect::<Result<_, _>>()?;
                let mut leased = Vec::with_capacity(due.len());
                for ((at, id), raw) in due {
                    q.remove((at, id))?;
                    let Ok(mut rec) = Record::decode(raw.as_slice()) else {
                        tracing::error!(id, "dropping undecodable queue record");
                        continue;
                    };
                    rec.attempts += 1;
                    q.insert((lease_until_ms, id), rec.encode_to_vec().as_slice())?;
                    leased.push(Leased {
                        id,
                        tenant: rec.tenant,
                        topic: rec.topic,
                        payload: rec.payload,
                        trace_id: rec.trace_id,
                        attempt: rec.attempts,
                        lease_until_ms,
                    });
                }
                Ok(Ok(leased))
            })
            .await
    }

    async fn ack(&self, msg: &Leased) -> StoreResult<()> {
        let msg = msg.clone();
        self.writer
            .write(move |txn| {
                finish(txn, &msg)?;
                Ok(Ok(()))
            })
            .await
    }

    async fn retry(&self, msg: &Leased, due_at_ms: u64) -> StoreResult<()> {
        let msg = msg.clone();
        self.writer
            .write(move |txn| {
                if let Some(rec) = take(txn, &msg)? {
                    txn.open_table(QUEUE)?
                        .insert((due_at_ms, msg.id), rec.encode_to_vec().as_slice())?;
                }
                Ok(Ok(()))
            })
            .await
    }

    async fn dead_letter(&self, msg: &Leased, reason: &str) -> StoreResult<()> {
        let msg = msg.clone();
        let reason = reason.to_string();
        self.writer
            .write(move |txn| {
                if let Some(mut rec) = finish(txn, &msg)? {
                    rec.reason = reason;
                    txn.open_table(DEAD)?.insert(
                        (rec.tenant.as_str(), msg.id),
                        rec.encode_to_vec().as_slice(),
                    )?;
                }
                Ok(Ok(()))
            })
            .await
    }

    async fn next_due(&self) -> StoreResult<Option<u64>> {
        let table = self.read()?.open_table(QUEUE).map_err(unavailable)?;
        Ok(table
            .first()
            .map_err(unavailable)?
            .map(|(k, _)| k.value().0))
    }

    async fn dead_letters(&self, tenant: &str, limit: usize) -> StoreResult<Vec<DeadLetter>> {
        let table = self.read()?.open_table(DEAD).map_err(unavailable)?;
        let mut out = Vec::new();
        for item in table
            .range((tenant, 0)..=(tenant, u64::MAX))
            .map_err(unavailable)?
        {
            let (k, v) = item.map_err(unavailable)?;
            if let Ok(rec) = Record::decode(v.value()) {
                out.push(DeadLetter {
                    id: k.value().1,
                    tenant: rec.tenant,
                    topic: rec.topic,
                    attempts: rec.attempts,
                    reason: rec.reason,
                    payload_bytes: rec.payload.len(),
                });
            }
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    async fn pending(&self, tenant: &str) -> StoreResult<u64> {
        let table = self.read()?.open_table(PENDING).map_err(unavailable)?;
        Ok(table
            .get(tenant)
            .map_err(unavailable)?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    async fn depth(&self) -> StoreResult<QueueDepth> {
        let txn = self.read()?;
        let pending = txn
            .open_table(QUEUE)
            .map_err(unavailable)?
            .len()
            .map_err(unavailable)?;
        let dead = txn
            .open_table(DEAD)
            .map_err(unavailable)?
            .len()
            .map_err(unavailable)?;
        Ok(QueueDepth { pending, dead })
    }
}
