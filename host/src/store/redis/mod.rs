//! The Redis backend, for kv and the queue, shared by any number of hosts.
//!
//! Every write is one Lua script, so Redis runs it atomically with nothing
//! interleaved: a transaction checks all its conditions, then applies its
//! puts, deletes, counters, usage and outbox sends together (`transact.lua`);
//! leases, acks, retries and dead letters are scripts too (`lease.lua`,
//! `finish.lua`). The host passes its clock's `now` to each script rather than
//! using Redis time, so the virtual clock governs expiry and due times here as
//! it does on the embedded store.
//!
//! Layout, under a key prefix (default `tacos:`), so several deployments can
//! share a server:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `kv:<key>` | hash | `v` value, `ver` version, `exp` expiry ms (0: never), `len` |
//! | `keys` | sorted set | every value's key, for prefix scans (`ZRANGEBYLEX`) |
//! | `exp` | sorted set | keys by expiry, for the sweep |
//! | `n:<key>` | string | a counter |
//! | `usage:<tenant>` | hash | `keys`, `bytes` |
//! | `meta:<key>` | string | host metadata |
//! | `q:m:<id>` | hash | a message: tenant, topic, payload, trace, attempt |
//! | `q:due` | sorted set | message ids by due time, or lease end while leased |
//! | `q:pending` | hash | undelivered messages per tenant |
//! | `q:dead:<tenant>`, `q:d:<id>`, `q:dead` | sorted set, hash, count | dead letters |
//!
//! Scripts build their keys from the prefix, which a single Redis server
//! allows; Redis Cluster is not supported. TLS (`rediss://`, a private CA, a
//! client certificate) is as [`RedisSettings`] say. The connection is one multiplexed,
//! pipelined connection per host ([`ConnectionManager`]) that reconnects by
//! itself; while Redis is down, calls fail as `Unavailable` within
//! [`RESPONSE_TIMEOUT`] instead of hanging.

mod queue;
mod settings;

pub use settings::RedisSettings;

use super::{Condition, Entry, KvStore, Op, StoreError, StoreResult, Usage, validate_ops};
use crate::foundations::clock::Clock;
use ::redis::aio::ConnectionLike;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, RedisFuture, Script};
use anyhow::Context;
use async_trait::async_trait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// How long one call waits for Redis before failing as `Unavailable`.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

static TRANSACT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("queue.lua"),
        include_str!("transact.lua")
    ))
});
static SWEEP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("sweep.lua")));

/// The Redis store (kv and queue).
#[derive(Clone)]
pub struct RedisStore {
    con: Counted,
    prefix: String,
    clock: Arc<Clock>,
}

/// The connection, counting round trips (a pipeline or a script is one).
#[derive(Clone)]
struct Counted {
    inner: ConnectionManager,
    trips: Arc<AtomicU64>,
}

impl ConnectionLike for Counted {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a ::redis::Cmd,
    ) -> RedisFuture<'a, ::redis::Value> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a ::redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<::redis::Value>> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

fn unavailable(e: ::redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// A value hash's fields, as `HMGET v ver exp` returns them.
type Record = (Option<Vec<u8>>, Option<u64>, Option<u64>);

fn entry_of(key: &str, (value, version, exp): Record, now_ms: u64) -> Option<Entry> {
    let (value, version) = (value?, version?);
    let exp = exp.unwrap_or(0);
    (exp == 0 || exp > now_ms).then(|| Entry {
        key: key.to_string(),
        value,
        version,
    })
}

impl RedisStore {
    /// Connect as `settings` say, keeping keys under their prefix.
    pub async fn connect(
        settings: &RedisSettings,
        clock: Arc<Clock>,
    ) -> anyhow::Result<RedisStore> {
        let client = settings.client()?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let inner = ConnectionManager::new_with_config(client, config)
            .await
            .context("connecting to redis")?;
        Ok(RedisStore {
            con: Counted {
                inner,
                trips: Arc::default(),
            },
            prefix: settings.prefix().to_string(),
            clock,
        })
    }

    fn key(&self, kind: &str, rest: &str) -> String {
        format!("{}{kind}{rest}", self.prefix)
    }

    fn con(&self) -> Counted {
        self.con.clone()
    }

    /// Requests sent to Redis so far (a pipeline or a script counts once).
    pub fn round_trips(&self) -> u64 {
        self.con.trips.load(Ordering::Relaxed)
    }

    /// Delete up to `max` expired values; returns how many went.
    pub async fn sweep_expired(&self, max: usize) -> StoreResult<usize> {
        SWEEP
            .arg(&self.prefix)
            .arg(self.clock.now_ms())
            .arg(max)
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)
    }

    async fn records(&self, keys: &[String]) -> StoreResult<Vec<Record>> {
        let mut pipe = ::redis::pipe();
        for key in keys {
            pipe.hmget(self.key("kv:", key), &["v", "ver", "exp"]);
        }
        pipe.query_async(&mut self.con()).await.map_err(unavailable)
    }
}

/// One operation as the six script fields `transact.lua` reads.
fn script_fields(op: &Op) -> [Vec<u8>; 6] {
    let s = |v: &str| v.as_bytes().to_vec();
    let cond = |c: &Condition| match c {
        Condition::None => (s("none"), s("")),
        Condition::Absent => (s("absent"), s("")),
        Condition::Exists => (s("exists"), s("")),
        Condition::Version(v) => (s("version"), s(&v.to_string())),
    };
    match op {
        Op::Put {
            key,
            value,
            condition,
            expires_at_ms,
        } => {
            let (c, v) = cond(condition);
            let exp = expires_at_ms.unwrap_or(0).to_string();
            [s("put"), s(key), c, v, value.clone(), s(&exp)]
        }
        Op::Delete { key, condition } => {
            let (c, v) = cond(condition);
            [s("del"), s(key), c, v, s(""), s("")]
        }
        Op::Check { key, condition } => {
            let (c, v) = cond(condition);
            [s("check"), s(key), c, v, s(""), s("")]
        }
        Op::Add { key, delta } => [s("add"), s(key), s(&delta.to_string()), s(""), s(""), s("")],
        Op::Send(m) => [
            s("send"),
            s(&m.tenant),
            s(&m.topic),
            m.payload.clone(),
            s(&m.due_at_ms.to_string()),
            s(&m.trace_id),
        ],
    }
}

#[async_trait]
impl KvStore for RedisStore {
    async fn get(&self, key: &str) -> StoreResult<Option<Entry>> {
        let record: Record = self
            .con()
            .hmget(self.key("kv:", key), &["v", "ver", "exp"])
            .await
            .map_err(unavailable)?;
        Ok(entry_of(key, record, self.clock.now_ms()))
    }

    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Entry>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        let records = self.records(keys).await?;
        Ok(keys
            .iter()
            .zip(records)
            .map(|(k, r)| entry_of(k, r, now))
            .collect())
    }

    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        // Keys are UTF-8, which never holds the byte 0xFF: `prefix\xFF` is
        // above every key that starts with `prefix`.
        let mut max = b"[".to_vec();
        max.extend_from_slice(prefix.as_bytes());
        max.push(0xFF);
        let mut min = match start_after {
            Some(after) if after >= prefix => format!("({after}"),
            _ => format!("[{prefix}"),
        };
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        while out.len() < limit {
            let want = limit - out.len();
            let keys: Vec<String> = self
                .con()
                .zrangebylex_limit(self.key("keys", ""), &min, &max, 0, want as isize)
                .await
                .map_err(unavailable)?;
            let Some(last) = keys.last() else { break };
            min = format!("({last}");
            let records = self.records(&keys).await?;
            out.extend(
                keys.iter()
                    .zip(records)
                    .filter_map(|(k, r)| entry_of(k, r, now)),
            );
            if keys.len() < want {
                break;
            }
        }
        Ok(out)
    }

    async fn transact(&self, ops: Vec<Op>) -> StoreResult<Vec<u64>> {
        validate_ops(&ops)?;
        let mut call = TRANSACT.prepare_invoke();
        call.arg(&self.prefix)
            .arg(self.clock.now_ms())
            .arg(ops.len());
        for op in &ops {
            for field in script_fields(op) {
                call.arg(field);
            }
        }
        let reply: Vec<i64> = call
            .invoke_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        match reply.split_first() {
            Some((0, results)) => Ok(results.iter().map(|&r| r as u64).collect()),
            Some((-1, [index])) => Err(StoreError::Conflict(*index as u32)),
            _ => Err(StoreError::Unavailable(format!(
                "redis: unexpected transaction reply {reply:?}"
            ))),
        }
    }

    async fn counter(&self, key: &str) -> StoreResult<i64> {
        let n: Option<i64> = self
            .con()
            .get(self.key("n:", key))
            .await
            .map_err(unavailable)?;
        Ok(n.unwrap_or(0))
    }

    async fn usage(&self, tenant: &str) -> StoreResult<Usage> {
        let (keys, bytes): (Option<u64>, Option<u64>) = self
            .con()
            .hmget(self.key("usage:", tenant), &["keys", "bytes"])
            .await
            .map_err(unavailable)?;
        Ok(Usage {
            keys: keys.unwrap_or(0),
            bytes: bytes.unwrap_or(0),
        })
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.con()
            .get(self.key("meta:", key))
            .await
            .map_err(unavailable)
    }

    async fn meta_put(&self, key: &str, value: Vec<u8>) -> StoreResult<()> {
        self.con()
            .set(self.key("meta:", key), value)
            .await
            .map_err(unavailable)
    }

    async fn meta_create(&self, key: &str, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        let key = self.key("meta:", key);
        let (_created, stored): (bool, Vec<u8>) = ::redis::pipe()
            .atomic()
            .set_nx(&key, value)
            .get(&key)
            .query_async(&mut self.con())
            .await
            .map_err(unavailable)?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests;
