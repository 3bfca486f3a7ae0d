//! `tacos:platform/kv`: versioned keys scoped to (tenant, component).
//!
//! Keys are prefixed with `{tenant}/{component}/` before they reach the store
//! and the prefix is stripped from what comes back, so a component only ever
//! sees and names its own keys. Argument sizes are checked here, before any
//! storage work: a key over 512 bytes, a value over the store's limit, more
//! than 100 operations or 1,000 keys is an `invalid` error for the guest.
//!
//! Writes are checked against the tenant's quotas before they reach the
//! store: a transaction whose puts and counters would take the tenant past
//! its `storage_keys` or `storage_bytes`, or whose sends past its
//! `queue_depth`, is `quota-exceeded` (counted as if every key were new, so
//! concurrent writers can pass a quota by at most one transaction each).
//! Deletes always pass.

use super::Has;
use super::bindings::platform::kv::{self, Condition, Entry, Error, Op};
use super::queue::{QueueCtx, QueueError};
use crate::foundations::metrics::{Stage, Stages};
use crate::store::{self, KvStore, MAX_TRANSACT_OPS, StoreError};
use std::future::Future;
use std::sync::Arc;
use wasmtime::component::Linker;

const MAX_USER_KEY: usize = 512;
const MAX_KEYS_PER_READ: usize = 1000;

fn to_guest(e: StoreError) -> Error {
    match e {
        StoreError::Conflict(i) => Error::Conflict(i),
        StoreError::Invalid(m) => Error::Invalid(m),
        StoreError::Unavailable(m) => Error::Unavailable(m),
    }
}

fn condition(c: Condition) -> store::Condition {
    match c {
        Condition::None => store::Condition::None,
        Condition::Absent => store::Condition::Absent,
        Condition::Exists => store::Condition::Exists,
        Condition::Version(v) => store::Condition::Version(v),
    }
}

/// The kv capability's state: the store, the caller's key scope, and the
/// queue capability's state for the messages a transaction sends.
pub struct KvCtx {
    store: Arc<dyn KvStore>,
    /// Store reads and commit waits are counted as stages.
    stages: Stages,
    /// `{tenant}/{component}/`: prefixed to every key.
    scope: String,
    outbox: QueueCtx,
}

impl KvCtx {
    pub fn new(store: Arc<dyn KvStore>, outbox: QueueCtx, stages: Stages) -> KvCtx {
        let caller = outbox.caller();
        let scope = format!("{}/{}/", caller.tenant.id, caller.component);
        KvCtx {
            store,
            stages,
            scope,
            outbox,
        }
    }

    fn scoped(&self, key: &str) -> Result<String, Error> {
        if key.is_empty() || key.len() > MAX_USER_KEY {
            return Err(Error::Invalid(format!(
                "keys must be 1 to {MAX_USER_KEY} bytes"
            )));
        }
        Ok(format!("{}{key}", self.scope))
    }

    fn unscoped(&self, mut e: store::Entry) -> Entry {
        let prefix = self.scope.len();
        Entry {
            key: e.key.split_off(prefix.min(e.key.len())),
            value: e.value,
            version: e.version,
        }
    }

    async fn kv_get(&mut self, key: &str) -> Result<Option<Entry>, Error> {
        let key = self.scoped(key)?;
        let found = self.read(self.store.get(&key)).await?;
        Ok(found.map(|e| self.unscoped(e)))
    }

    async fn kv_get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Entry>>, Error> {
        if keys.len() > MAX_KEYS_PER_READ {
            return Err(Error::Invalid(format!(
                "at most {MAX_KEYS_PER_READ} keys per read"
            )));
        }
        let scoped = keys
            .iter()
            .map(|k| self.scoped(k))
            .collect::<Result<Vec<_>, _>>()?;
        let found = self.read(self.store.get_many(&scoped)).await?;
        Ok(found
            .into_iter()
            .map(|e| e.map(|e| self.unscoped(e)))
            .collect())
    }

    async fn kv_scan(
        &mut self,
        prefix: &str,
        start_after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Entry>, Error> {
        if prefix.len() > MAX_USER_KEY {
            return Err(Error::Invalid(format!(
                "prefixes are at most {MAX_USER_KEY} bytes"
            )));
        }
        let scope = &self.scope;
        let prefix = format!("{scope}{prefix}");
        let after = start_after.map(|a| format!("{scope}{a}"));
        let limit = (limit as usize).clamp(1, MAX_KEYS_PER_READ);
        let found = self
            .read(self.store.scan(&prefix, after.as_deref(), limit))
            .await?;
        Ok(found.into_iter().map(|e| self.unscoped(e)).collect())
    }

    async fn kv_transact(&mut self, ops: Vec<Op>) -> Result<Vec<u64>, Error> {
        if ops.len() > MAX_TRANSACT_OPS {
            return Err(Error::Invalid(format!(
                "a transaction may carry at most {MAX_TRANSACT_OPS} operations, got {}",
                ops.len()
            )));
        }
        let now = self.outbox.now_ms();
        let ops = ops
            .into_iter()
            .map(|op| {
                Ok(match op {
                    Op::Put(p) => store::Op::Put {
                        key: self.scoped(&p.key)?,
                        value: p.value,
                        condition: condition(p.condition),
                        expires_at_ms: p.ttl_ms.map(|t| now.saturating_add(t.max(1))),
                    },
                    Op::Delete(d) => store::Op::Delete {
                        key: self.scoped(&d.key)?,
                        condition: condition(d.condition),
                    },
                    Op::Check(c) => store::Op::Check {
                        key: self.scoped(&c.key)?,
                        condition: condition(c.condition),
                    },
                    Op::Add(a) => store::Op::Add {
                        key: self.scoped(&a.key)?,
                        delta: a.delta,
                    },
                    Op::Send(m) => store::Op::Send(self.outbox.outbox_message(m, now)?),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        self.check_quotas(&ops).await?;
        let sends = ops.iter().any(|op| matches!(op, store::Op::Send(_)));
        let out = self.commit(ops).await?;
        if sends {
            self.outbox.wake();
        }
        Ok(out)
    }

    async fn kv_increment(&mut self, key: &str, delta: i64) -> Result<i64, Error> {
        let ops = vec![store::Op::Add {
            key: self.scoped(key)?,
            delta,
        }];
        self.check_quotas(&ops).await?;
        let out = self.commit(ops).await?;
        Ok(out.first().copied().unwrap_or(0) as i64)
    }

    /// Commit `ops`, counting the wait. The commit is answered before it is
    /// durable: the runtime waits for what the call has seen before it
    /// answers (see [`store::Seen`]).
    async fn commit(&self, ops: Vec<store::Op>) -> Result<Vec<u64>, Error> {
        let commit = self.store.transact_early(ops);
        let done = self.stages.time(Stage::CommitWait, commit).await;
        self.outbox.caller().seen.saw();
        done.map_err(to_guest)
    }

    /// A read from the store, counted.
    async fn read<T>(&self, read: impl Future<Output = store::StoreResult<T>>) -> Result<T, Error> {
        let found = self.stages.time(Stage::StoreRead, read).await;
        self.outbox.caller().seen.saw();
        found.map_err(to_guest)
    }

    async fn kv_counter(&mut self, key: &str) -> Result<i64, Error> {
        let key = self.scoped(key)?;
        self.read(self.store.counter(&key)).await
    }

    /// Refuse a write that would take the tenant past a storage or queue quota.
    async fn check_quotas(&mut self, ops: &[store::Op]) -> Result<(), Error> {
        let sends = ops
            .iter()
            .filter(|op| matches!(op, store::Op::Send(_)))
            .count() as u64;
        if sends > 0 {
            self.outbox
                .check_queue_depth(sends)
                .await
                .map_err(|e| match e {
                    QueueError::Store(e) => to_guest(e),
                    e => Error::QuotaExceeded(e.to_string()),
                })?;
        }
        let tenant = &self.outbox.caller().tenant;
        let quotas = tenant.quotas;
        if !quotas.limits_storage() {
            return Ok(());
        }
        let (keys, bytes) = ops.iter().fold((0u64, 0u64), |(k, b), op| match op {
            store::Op::Put { key, value, .. } => (k + 1, b + (key.len() + value.len()) as u64),
            store::Op::Add { key, .. } => (k + 1, b + key.len() as u64 + 8),
            _ => (k, b),
        });
        if keys == 0 {
            return Ok(());
        }
        let used = self.read(self.store.usage(&tenant.id)).await?;
        let over = |quota: &'static str, used: u64, adding: u64, max: Option<u64>| {
            let max = max?;
            (used + adding > max).then(|| {
                tenant.metrics.quota_hit(quota);
                Error::QuotaExceeded(format!(
                    "tenant `{}` stores {used} (adding {adding}); its {quota} quota is {max}",
                    tenant.id
                ))
            })
        };
        if let Some(e) = over("storage_keys", used.keys, keys, quotas.storage_keys)
            .or_else(|| over("storage_bytes", used.bytes, bytes, quotas.storage_bytes))
        {
            return Err(e);
        }
        Ok(())
    }
}

impl kv::Host for KvCtx {
    async fn max_transact_ops(&mut self) -> wasmtime::Result<u32> {
        Ok(MAX_TRANSACT_OPS as u32)
    }

    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Entry>, Error>> {
        Ok(self.kv_get(&key).await)
    }

    async fn get_many(
        &mut self,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<Entry>>, Error>> {
        Ok(self.kv_get_many(&keys).await)
    }

    async fn scan(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<Entry>, Error>> {
        Ok(self.kv_scan(&prefix, start_after.as_deref(), limit).await)
    }

    async fn transact(&mut self, ops: Vec<Op>) -> wasmtime::Result<Result<Vec<u64>, Error>> {
        Ok(self.kv_transact(ops).await)
    }

    async fn increment(&mut self, key: String, delta: i64) -> wasmtime::Result<Result<i64, Error>> {
        Ok(self.kv_increment(&key, delta).await)
    }

    async fn counter(&mut self, key: String) -> wasmtime::Result<Result<i64, Error>> {
        Ok(self.kv_counter(&key).await)
    }
}

pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut KvCtx,
) -> wasmtime::Result<()> {
    kv::add_to_linker::<T, Has<KvCtx>>(linker, get)
}
