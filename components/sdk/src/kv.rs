//! Typed kv access: protobuf records with versions, and all-or-nothing transactions.
//!
//! Keys are plain strings relative to the component's namespace (the host adds
//! tenant and component). Values are encoded protobuf messages, so records use
//! the same definitions as the contracts.

use crate::bindings::tacos::platform::kv as raw;
use crate::{Result, ServiceError};
use prost::Message;
use tacos_proto::common::v1::ErrorCode;

pub use raw::Condition;

/// A decoded record and the version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned<M> {
    pub value: M,
    pub version: u64,
}

fn store_error(e: raw::Error) -> ServiceError {
    match e {
        raw::Error::Conflict(_) => {
            ServiceError::new(ErrorCode::ConcurrentModification, "concurrent modification")
        }
        raw::Error::Invalid(m) => {
            ServiceError::internal(format!("storage rejected a request: {m}"))
        }
        raw::Error::Unavailable(m) => {
            ServiceError::new(ErrorCode::Unavailable, format!("storage unavailable: {m}"))
        }
        raw::Error::QuotaExceeded(m) => ServiceError::new(ErrorCode::QuotaExceeded, m),
    }
}

fn decode_entry<M: Message + Default>(e: raw::Entry) -> Result<Versioned<M>> {
    let value = M::decode(e.value.as_slice()).map_err(|err| {
        ServiceError::new(
            ErrorCode::DataCorruption,
            format!("record {} does not decode: {err}", e.key),
        )
    })?;
    Ok(Versioned {
        value,
        version: e.version,
    })
}

pub fn get<M: Message + Default>(key: &str) -> Result<Option<Versioned<M>>> {
    raw::get(key)
        .map_err(store_error)?
        .map(decode_entry)
        .transpose()
}

/// Read several records in one round trip, in the order of `keys`.
pub fn get_many<M: Message + Default>(keys: &[String]) -> Result<Vec<Option<Versioned<M>>>> {
    raw::get_many(keys)
        .map_err(store_error)?
        .into_iter()
        .map(|e| e.map(decode_entry).transpose())
        .collect()
}

/// Records under `prefix` in key order, after `start_after`, at most `limit`.
pub fn scan<M: Message + Default>(
    prefix: &str,
    start_after: Option<&str>,
    limit: u32,
) -> Result<Vec<(String, Versioned<M>)>> {
    raw::scan(prefix, start_after, limit)
        .map_err(store_error)?
        .into_iter()
        .map(|e| {
            let key = e.key.clone();
            decode_entry(e).map(|v| (key, v))
        })
        .collect()
}

pub fn increment(key: &str, delta: i64) -> Result<i64> {
    raw::increment(key, delta).map_err(store_error)
}

pub fn counter(key: &str) -> Result<i64> {
    raw::counter(key).map_err(store_error)
}

/// Why a transaction did not apply.
#[derive(Debug)]
pub enum TxError {
    /// The condition of operation N did not hold; nothing was written.
    Conflict(u32),
    Failed(ServiceError),
}

impl From<TxError> for ServiceError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Conflict(_) => {
                ServiceError::new(ErrorCode::ConcurrentModification, "concurrent modification")
            }
            TxError::Failed(e) => e,
        }
    }
}

/// A batch of conditional writes that apply all together or not at all.
#[derive(Default)]
pub struct Tx {
    ops: Vec<raw::Op>,
}

impl Tx {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn put<M: Message>(&mut self, key: &str, value: &M, condition: Condition) -> &mut Self {
        self.put_raw(key, value.encode_to_vec(), condition, None)
    }

    /// A put that the store drops `ttl_ms` after the write.
    pub fn put_ttl<M: Message>(
        &mut self,
        key: &str,
        value: &M,
        condition: Condition,
        ttl_ms: u64,
    ) -> &mut Self {
        self.put_raw(key, value.encode_to_vec(), condition, Some(ttl_ms))
    }

    fn put_raw(
        &mut self,
        key: &str,
        value: Vec<u8>,
        condition: Condition,
        ttl_ms: Option<u64>,
    ) -> &mut Self {
        self.ops.push(raw::Op::Put(raw::PutOp {
            key: key.to_string(),
            value,
            condition,
            ttl_ms,
        }));
        self
    }

    pub fn delete(&mut self, key: &str, condition: Condition) -> &mut Self {
        self.ops.push(raw::Op::Delete(raw::KeyCondition {
            key: key.to_string(),
            condition,
        }));
        self
    }

    pub fn check(&mut self, key: &str, condition: Condition) -> &mut Self {
        self.ops.push(raw::Op::Check(raw::KeyCondition {
            key: key.to_string(),
            condition,
        }));
        self
    }

    pub fn add(&mut self, key: &str, delta: i64) -> &mut Self {
        self.ops.push(raw::Op::Add(raw::CounterAdd {
            key: key.to_string(),
            delta,
        }));
        self
    }

    /// Send `message` to `topic` after `delay_ms` if, and only if, this
    /// transaction commits (needs the queue capability and the topic granted).
    pub fn send<M: Message>(&mut self, topic: &str, message: &M, delay_ms: u64) -> &mut Self {
        self.ops.push(raw::Op::Send(raw::OutboxMessage {
            topic: topic.to_string(),
            payload: message.encode_to_vec(),
            delay_ms,
        }));
        self
    }

    /// Apply every operation or none. Returns the new version of each put.
    pub fn commit(self) -> core::result::Result<Vec<u64>, TxError> {
        raw::transact(&self.ops).map_err(|e| match e {
            raw::Error::Conflict(i) => TxError::Conflict(i),
            other => TxError::Failed(store_error(other)),
        })
    }
}

/// The most operations one transaction may carry.
pub fn max_transact_ops() -> u32 {
    raw::max_transact_ops()
}
