//! The queue on Redis: delayed messages in one sorted set, leased by script
//! (see `lease.lua` and `finish.lua` for the layout and the lease rules).

use super::{RedisStore, unavailable};
use crate::store::{DeadLetter, Leased, NewMessage, QueueDepth, QueueStore, StoreResult};
use ::redis::{AsyncCommands, Script};
use async_trait::async_trait;
use std::sync::LazyLock;

static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("queue.lua"),
        "return enqueue(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])"
    ))
});
static LEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lease.lua")));
static FINISH: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("finish.lua")));

/// What `lease.lua` returns per message.
type LeaseRow = (u64, String, String, Vec<u8>, String, u32);
/// A dead letter's fields, as `HMGET tenant topic payload attempt reason`.
type DeadRow = (
    Option<String>,
    Option<String>,
    Option<Vec<u8>>,
    Option<u32>,
    Option<String>,
);

impl RedisStore {
    async fn finish(&self, msg: &Leased, action: &str, arg: &str) -> StoreResult<()> {
        let _ended: u32 = FINISH
            .arg(&self.prefix)
            .arg(msg.id)
            .arg(msg.lease_until_ms)
            .arg(action)
            .arg(arg)
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl QueueStore for RedisStore {
    async fn enqueue(&self, msg: NewMessage) -> StoreResult<u64> {
        ENQUEUE
            .arg(&self.prefix)
            .arg(&msg.tenant)
            .arg(&msg.topic)
            .arg(&msg.payload)
            .arg(msg.due_at_ms)
            .arg(&msg.trace_id)
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)
    }

    async fn lease_due(
        &self,
        now_ms: u64,
        lease_until_ms: u64,
        max: usize,
    ) -> StoreResult<Vec<Leased>> {
        let rows: Vec<LeaseRow> = LEASE
            .arg(&self.prefix)
            .arg(now_ms)
            .arg(lease_until_ms)
            .arg(max)
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|(id, tenant, topic, payload, trace_id, attempt)| Leased {
                id,
                tenant,
                topic,
                payload,
                trace_id,
                attempt,
                lease_until_ms,
            })
            .collect())
    }

    async fn ack(&self, msg: &Leased) -> StoreResult<()> {
        self.finish(msg, "ack", "").await
    }

    async fn retry(&self, msg: &Leased, due_at_ms: u64) -> StoreResult<()> {
        self.finish(msg, "retry", &due_at_ms.to_string()).await
    }

    async fn dead_letter(&self, msg: &Leased, reason: &str) -> StoreResult<()> {
        self.finish(msg, "dead", reason).await
    }

    async fn next_due(&self) -> StoreResult<Option<u64>> {
        let first: Vec<(u64, u64)> = self
            .con()
            .zrange_withscores(self.key("q:due", ""), 0, 0)
            .await
            .map_err(unavailable)?;
        Ok(first.first().map(|(_, due)| *due))
    }

    async fn dead_letters(&self, tenant: &str, limit: usize) -> StoreResult<Vec<DeadLetter>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<u64> = self
            .con()
            .zrange(self.key("q:dead:", tenant), 0, limit as isize - 1)
            .await
            .map_err(unavailable)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for id in &ids {
            pipe.hmget(
                self.key("q:d:", &id.to_string()),
                &["tenant", "topic", "payload", "attempt", "reason"],
            );
        }
        let rows: Vec<DeadRow> = pipe
            .query_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(ids
            .into_iter()
            .zip(rows)
            .filter_map(|(id, (tenant, topic, payload, attempts, reason))| {
                Some(DeadLetter {
                    id,
                    tenant: tenant?,
                    topic: topic?,
                    attempts: attempts?,
                    reason: reason.unwrap_or_default(),
                    payload_bytes: payload.map_or(0, |p| p.len()),
                })
            })
            .collect())
    }

    async fn depth(&self) -> StoreResult<QueueDepth> {
        let (pending, dead): (u64, Option<u64>) = ::redis::pipe()
            .zcard(self.key("q:due", ""))
            .get(self.key("q:dead", ""))
            .query_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(QueueDepth {
            pending,
            dead: dead.unwrap_or(0),
        })
    }

    async fn pending(&self, tenant: &str) -> StoreResult<u64> {
        let n: Option<u64> = self
            .con()
            .hget(self.key("q:pending", ""), tenant)
            .await
            .map_err(unavailable)?;
        Ok(n.unwrap_or(0))
    }
}
