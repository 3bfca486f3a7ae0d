//! The embedded store: redb under `--data-dir`, the default backend.
//!
//! redb is a pure-Rust, ACID, copy-on-write B-tree store with MVCC: readers
//! never block the writer and see committed data only (see
//! `docs/adr/0002-embedded-store-redb-with-group-commit.md`). All writes go through the
//! group-commit [`writer`], which makes a component's writes durable through
//! the redo [`log`]; reads open their own read transaction.
//!
//! A kv value is stored as `version (u64 LE) | expires_at_ms (u64 LE, 0 = never) | bytes`.
//! Versions keep counting through expiry, so a stale reader's version can never
//! match a newer incarnation of the key.

mod log;
mod marks;
mod queue;
mod writer;

use super::usage::UsageDelta;
use super::{Entry, KvStore, Op, StoreError, StoreResult, Usage, validate_ops};
use crate::foundations::clock::Clock;
use anyhow::Context;
use async_trait::async_trait;
use log::{Record, Redo, RedoLog};
use redb::{
    Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle, WriteTransaction,
};
use std::path::Path;
use std::sync::Arc;
use writer::Writer;
pub use writer::WriterStats;

/// The store's own page cache. redb's default (1 GiB) grows with the file
/// and was most of the host's memory at 300,000 buyers (issue #17); the
/// kernel's page cache keeps the rest of the file at hand.
const CACHE_BYTES: usize = 64 << 20;

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const COUNTERS: TableDefinition<&str, i64> = TableDefinition::new("counters");
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Per tenant: keys and bytes stored (kv values and counters; key and value
/// lengths, not the record header), kept in the same transaction as the
/// writes they count.
const USAGE: TableDefinition<&str, (u64, u64)> = TableDefinition::new("usage");
/// `applied`: the newest commit a durable commit covers; the redo log's
/// records up to it need no replay.
const LOG_TABLE: TableDefinition<&str, u64> = TableDefinition::new("redo_log");
const HEADER: usize = 16;

/// The embedded store (kv and queue).
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    writer: Writer,
    clock: Arc<Clock>,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

struct Stored<'a> {
    version: u64,
    expires_at_ms: u64,
    data: &'a [u8],
}

fn decode(raw: &[u8]) -> Option<Stored<'_>> {
    if raw.len() < HEADER {
        return None;
    }
    let version = u64::from_le_bytes(raw[0..8].try_into().ok()?);
    let expires_at_ms = u64::from_le_bytes(raw[8..16].try_into().ok()?);
    Some(Stored {
        version,
        expires_at_ms,
        data: &raw[HEADER..],
    })
}

fn encode(version: u64, expires_at_ms: u64, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + data.len());
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&expires_at_ms.to_le_bytes());
    v.extend_from_slice(data);
    v
}

fn live(s: &Stored<'_>, now_ms: u64) -> bool {
    s.expires_at_ms == 0 || s.expires_at_ms > now_ms
}

fn entry_of(key: &str, raw: &[u8], now_ms: u64) -> Option<Entry> {
    let s = decode(raw)?;
    live(&s, now_ms).then(|| Entry {
        key: key.to_string(),
        value: s.data.to_vec(),
        version: s.version,
    })
}

impl EmbeddedStore {
    /// Open (or create) the store in `dir`.
    pub fn open(dir: &Path, clock: Arc<Clock>) -> anyhow::Result<EmbeddedStore> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data dir {}", dir.display()))?;
        let path = dir.join("tacos.redb");
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .with_context(|| format!("opening store {}", path.display()))?;
        let txn = db.begin_write()?;
        let existing: Vec<String> = txn.list_tables()?.map(|t| t.name().to_string()).collect();
        txn.open_table(KV)?;
        txn.open_table(COUNTERS)?;
        txn.open_table(EXPIRY)?;
        txn.open_table(META)?;
        if !existing.iter().any(|t| t == USAGE.name()) {
            // A store from before usage was counted: count it once.
            recount_usage(&txn)?;
        }
        queue::create_tables(&txn, &existing)?;
        let log_path = dir.join("tacos.redo");
        let (mut log, records) = RedoLog::open(&log_path)
            .with_context(|| format!("reading redo log {}", log_path.display()))?;
        let mark = replay(&txn, records)
            .with_context(|| format!("redoing redo log {}", log_path.display()))?;
        txn.commit()?;
        log.clear()?;
        let db = Arc::new(db);
        let writer =
            Writer::start(db.clone(), log, mark, clock.clone()).context("starting store writer")?;
        Ok(EmbeddedStore { db, writer, clock })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.writer.stats
    }

    fn read(&self) -> StoreResult<redb::ReadTransaction> {
        self.db.begin_read().map_err(unavailable)
    }

    /// Delete up to `max` expired values; returns how many went.
    pub async fn sweep_expired(&self, max: usize) -> StoreResult<usize> {
        let now = self.clock.now_ms();
        self.writer
            .write(move |txn| {
                let mut index = txn.open_table(EXPIRY)?;
                let mut kv = txn.open_table(KV)?;
                let due: Vec<(u64, String)> = index
                    // Expired at `exp <= now`, as `live` has it.
                    .range(..(now + 1, ""))?
                    .take(max)
                    .map(|r| r.map(|(k, _)| (k.value().0, k.value().1.to_string())))
                    .collect::<Result<_, _>>()?;
                let mut removed = 0;
                let mut usage = UsageDelta::default();
                for (at, key) in &due {
                    let expired = kv.get(key.as_str())?.and_then(|raw| {
                        let len = raw.value().len().saturating_sub(HEADER);
                        decode(raw.value()).and_then(|s| (s.expires_at_ms == *at).then_some(len))
                    });
                    if let Some(len) = expired {
                        kv.remove(key.as_str())?;
                        usage.remove(key, Some(len as u64));
                        removed += 1;
                    }
                    index.remove((*at, key.as_str()))?;
                }
                apply_usage(usage, txn)?;
                Ok(Ok(removed))
            })
            .await
    }
}

/// Redo the log's records after the last durable commit in `txn`; returns
/// the newest commit `txn` covers.
fn replay(txn: &WriteTransaction, records: Vec<Record>) -> anyhow::Result<u64> {
    let applied = txn
        .open_table(LOG_TABLE)?
        .get("applied")?
        .map(|v| v.value())
        .unwrap_or(0);
    let mut mark = applied;
    let mut redone = 0;
    for (at, redo) in records {
        if at <= mark {
            continue;
        }
        for r in &redo {
            // A transaction that failed when it ran was never logged.
            if let Err(e) = apply_redo(txn, r)? {
                anyhow::bail!("commit {at} no longer applies: {e}");
            }
            redone += 1;
        }
        mark = at;
    }
    if redone > 0 {
        tracing::info!(
            transactions = redone,
            from = applied,
            to = mark,
            "redid the store's redo log"
        );
    }
    txn.open_table(LOG_TABLE)?.insert("applied", mark)?;
    Ok(mark)
}

/// Store a write's usage changes in [`USAGE`].
fn apply_usage(usage: UsageDelta, txn: &WriteTransaction) -> Result<(), redb::Error> {
    let mut changed = usage.changed().peekable();
    if changed.peek().is_none() {
        return Ok(());
    }
    let mut table = txn.open_table(USAGE)?;
    for d in changed {
        let (k, b) = table
            .get(d.tenant.as_str())?
            .map(|v| v.value())
            .unwrap_or((0, 0));
        let next = (
            k.saturating_add_signed(d.keys),
            b.saturating_add_signed(d.bytes),
        );
        table.insert(d.tenant.as_str(), next)?;
    }
    Ok(())
}

/// Count every tenant's usage from scratch.
fn recount_usage(txn: &WriteTransaction) -> Result<(), redb::Error> {
    let mut usage = UsageDelta::default();
    for item in txn.open_table(KV)?.iter()? {
        let (k, v) = item?;
        let value = v.value().len().saturating_sub(HEADER);
        usage.put(k.value(), value, None);
    }
    for item in txn.open_table(COUNTERS)?.iter()? {
        let (k, _) = item?;
        usage.counter_created(k.value());
    }
    txn.open_table(USAGE)?;
    apply_usage(usage, txn)
}

/// Run one store transaction: check every condition, then write.
fn apply_redo(txn: &WriteTransaction, redo: &Redo) -> Result<StoreResult<Vec<u64>>, redb::Error> {
    let (ops, now) = (&redo.ops, redo.now_ms);
    let mut ids = redo.ids.iter().copied();
    let mut kv = txn.open_table(KV)?;
    // Check every condition before writing anything.
    // Per operation: the last version and the stored record's length, if any.
    let mut versions = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let (condition, key) = match op {
            Op::Put { key, condition, .. }
            | Op::Delete { key, condition }
            | Op::Check { key, condition } => (*condition, key),
            Op::Add { .. } | Op::Send(_) => {
                versions.push((0, None));
                continue;
            }
        };
        let (last, live_version, len) = match kv.get(key.as_str())? {
            Some(raw) => {
                let len = Some(raw.value().len().saturating_sub(HEADER));
                match decode(raw.value()) {
                    Some(s) => (s.version, live(&s, now).then_some(s.version), len),
                    None => (0, None, len),
                }
            }
            None => (0, None, None),
        };
        if !condition.holds(live_version) {
            return Ok(Err(StoreError::Conflict(i as u32)));
        }
        versions.push((last, len));
    }
    let mut usage = UsageDelta::default();
    let mut counters = txn.open_table(COUNTERS)?;
    let mut expiry = txn.open_table(EXPIRY)?;
    let mut out = Vec::with_capacity(ops.len());
    for (op, (last, old_len)) in ops.iter().zip(versions) {
        match op {
            Op::Put {
                key,
                value,
                expires_at_ms,
                ..
            } => {
                let version = last + 1;
                let exp = expires_at_ms.unwrap_or(0);
                let record = encode(version, exp, value);
                kv.insert(key.as_str(), record.as_slice())?;
                if exp != 0 {
                    expiry.insert((exp, key.as_str()), ())?;
                }
                usage.put(key, value.len(), old_len.map(|l| l as u64));
                out.push(version);
            }
            Op::Delete { key, .. } => {
                kv.remove(key.as_str())?;
                usage.remove(key, old_len.map(|l| l as u64));
                out.push(0);
            }
            Op::Check { .. } => out.push(0),
            Op::Add { key, delta } => {
                let current = counters.get(key.as_str())?.map(|v| v.value());
                if current.is_none() {
                    usage.counter_created(key);
                }
                let next = current.unwrap_or(0).saturating_add(*delta);
                counters.insert(key.as_str(), next)?;
                out.push(next as u64);
            }
            Op::Send(msg) => {
                let id = ids.next().unwrap_or_else(rand::random);
                queue::insert(txn, msg, id)?;
                out.push(id);
            }
        }
    }
    drop((kv, counters, expiry));
    apply_usage(usage, txn)?;
    Ok(Ok(out))
}

#[async_trait]
impl KvStore for EmbeddedStore {
    async fn get(&self, key: &str) -> StoreResult<Option<Entry>> {
        let table = self.read()?.open_table(KV).map_err(unavailable)?;
        let now = self.clock.now_ms();
        Ok(table
            .get(key)
            .map_err(unavailable)?
            .and_then(|raw| entry_of(key, raw.value(), now)))
    }

    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Entry>>> {
        let table = self.read()?.open_table(KV).map_err(unavailable)?;
        let now = self.clock.now_ms();
        keys.iter()
            .map(|key| {
                Ok(table
                    .get(key.as_str())
                    .map_err(unavailable)?
                    .and_then(|raw| entry_of(key, raw.value(), now)))
            })
            .collect()
    }

    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        let table = self.read()?.open_table(KV).map_err(unavailable)?;
        let now = self.clock.now_ms();
        let start = match start_after {
            Some(after) if after >= prefix => after,
            _ => prefix,
        };
        let mut out = Vec::new();
        for item in table.range(start..).map_err(unavailable)? {
            let (k, v) = item.map_err(unavailable)?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            if start_after == Some(key) {
                continue;
            }
            if let Some(e) = entry_of(key, v.value(), now) {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn transact(&self, ops: Vec<Op>) -> StoreResult<Vec<u64>> {
        validate_ops(&ops)?;
        let redo = Redo::new(ops, self.clock.now_ms());
        self.writer.write(move |txn| apply_redo(txn, &redo)).await
    }

    async fn transact_early(&self, ops: Vec<Op>) -> StoreResult<Vec<u64>> {
        validate_ops(&ops)?;
        let redo = Redo::new(ops, self.clock.now_ms());
        self.writer.write_early(redo).await
    }

    fn visible(&self) -> u64 {
        self.writer.marks.visible()
    }

    async fn durable(&self, mark: u64) -> StoreResult<()> {
        self.writer.durable(mark).await
    }

    async fn counter(&self, key: &str) -> StoreResult<i64> {
        let table = self.read()?.open_table(COUNTERS).map_err(unavailable)?;
        Ok(table
            .get(key)
            .map_err(unavailable)?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    async fn usage(&self, tenant: &str) -> StoreResult<Usage> {
        let table = self.read()?.open_table(USAGE).map_err(unavailable)?;
        let (keys, bytes) = table
            .get(tenant)
            .map_err(unavailable)?
            .map(|v| v.value())
            .unwrap_or((0, 0));
        Ok(Usage { keys, bytes })
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let table = self.read()?.open_table(META).map_err(unavailable)?;
        Ok(table
            .get(key)
            .map_err(unavailable)?
            .map(|v| v.value().to_vec()))
    }

    async fn meta_put(&self, key: &str, value: Vec<u8>) -> StoreResult<()> {
        let key = key.to_string();
        self.writer
            .write(move |txn| {
                txn.open_table(META)?
                    .insert(key.as_str(), value.as_slice())?;
                Ok(Ok(()))
            })
            .await
    }

    async fn meta_create(&self, key: &str, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        let key = key.to_string();
        self.writer
            .write(move |txn| {
                let mut meta = txn.open_table(META)?;
                if let Some(v) = meta.get(key.as_str())? {
                    return Ok(Ok(v.value().to_vec()));
                }
                meta.insert(key.as_str(), value.as_slice())?;
                Ok(Ok(value))
            })
            .await
    }
}

#[cfg(test)]
mod tests;
