//! `tacos:platform/kv`: versioned keys scoped to (tenant, component).
//!
//! Keys are prefixed with `{tenant}/{component}/` before they reach the store
//! and the prefix is stripped from what comes back, so a component only ever
//! sees and names its own keys. Argument sizes are checked here, before any
//! storage work: a key over 512 bytes, a value over the store's limit, more
//! than 100 operations or 1,000 keys is an `invalid` error for the guest.

use super::CallState;
use crate::runtime::bindings::platform::kv::{self, Condition, Entry, Error, Op};
use crate::store::{self, MAX_TRANSACT_OPS, StoreError};

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

impl CallState {
    fn scoped(&self, key: &str) -> Result<String, Error> {
        if key.is_empty() || key.len() > MAX_USER_KEY {
            return Err(Error::Invalid(format!(
                "keys must be 1 to {MAX_USER_KEY} bytes"
            )));
        }
        Ok(format!("{}{key}", self.scope()))
    }

    fn unscoped(&self, mut e: store::Entry) -> Entry {
        let prefix = self.scope().len();
        Entry {
            key: e.key.split_off(prefix.min(e.key.len())),
            value: e.value,
            version: e.version,
        }
    }
}

impl kv::Host for CallState {
    async fn max_transact_ops(&mut self) -> wasmtime::Result<u32> {
        Ok(MAX_TRANSACT_OPS as u32)
    }

    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Entry>, Error>> {
        let key = match self.scoped(&key) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self
            .runtime
            .kv
            .get(&key)
            .await
            .map(|e| e.map(|e| self.unscoped(e)))
            .map_err(to_guest))
    }

    async fn get_many(
        &mut self,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<Entry>>, Error>> {
        if keys.len() > MAX_KEYS_PER_READ {
            return Ok(Err(Error::Invalid(format!(
                "at most {MAX_KEYS_PER_READ} keys per read"
            ))));
        }
        let scoped: Result<Vec<String>, Error> = keys.iter().map(|k| self.scoped(k)).collect();
        let scoped = match scoped {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self
            .runtime
            .kv
            .get_many(&scoped)
            .await
            .map(|v| v.into_iter().map(|e| e.map(|e| self.unscoped(e))).collect())
            .map_err(to_guest))
    }

    async fn scan(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> wasmtime::Result<Result<Vec<Entry>, Error>> {
        if prefix.len() > MAX_USER_KEY {
            return Ok(Err(Error::Invalid(format!(
                "prefixes are at most {MAX_USER_KEY} bytes"
            ))));
        }
        let scope = self.scope();
        let prefix = format!("{scope}{prefix}");
        let after = start_after.map(|a| format!("{scope}{a}"));
        let limit = (limit as usize).clamp(1, MAX_KEYS_PER_READ);
        Ok(self
            .runtime
            .kv
            .scan(&prefix, after.as_deref(), limit)
            .await
            .map(|v| v.into_iter().map(|e| self.unscoped(e)).collect())
            .map_err(to_guest))
    }

    async fn transact(&mut self, ops: Vec<Op>) -> wasmtime::Result<Result<Vec<u64>, Error>> {
        if ops.len() > MAX_TRANSACT_OPS {
            return Ok(Err(Error::Invalid(format!(
                "a transaction may carry at most {MAX_TRANSACT_OPS} operations, got {}",
                ops.len()
            ))));
        }
        let now = self.now_ms();
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            let converted = match op {
                Op::Put(p) => self.scoped(&p.key).map(|key| store::Op::Put {
                    key,
                    value: p.value,
                    condition: condition(p.condition),
                    expires_at_ms: p.ttl_ms.map(|t| now.saturating_add(t.max(1))),
                }),
                Op::Delete(d) => self.scoped(&d.key).map(|key| store::Op::Delete {
                    key,
                    condition: condition(d.condition),
                }),
                Op::Check(c) => self.scoped(&c.key).map(|key| store::Op::Check {
                    key,
                    condition: condition(c.condition),
                }),
                Op::Add(a) => self.scoped(&a.key).map(|key| store::Op::Add {
                    key,
                    delta: a.delta,
                }),
            };
            match converted {
                Ok(op) => out.push(op),
                Err(e) => return Ok(Err(e)),
            }
        }
        Ok(self.runtime.kv.transact(out).await.map_err(to_guest))
    }

    async fn increment(&mut self, key: String, delta: i64) -> wasmtime::Result<Result<i64, Error>> {
        let key = match self.scoped(&key) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self
            .runtime
            .kv
            .transact(vec![store::Op::Add { key, delta }])
            .await
            .map(|v| v.first().copied().unwrap_or(0) as i64)
            .map_err(to_guest))
    }

    async fn counter(&mut self, key: String) -> wasmtime::Result<Result<i64, Error>> {
        let key = match self.scoped(&key) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.runtime.kv.counter(&key).await.map_err(to_guest))
    }
}
