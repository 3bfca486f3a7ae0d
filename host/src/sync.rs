//! Runtime changes made on one host, recorded in the shared store so every
//! other host on it makes them too: swaps, rollbacks, tenants added, changed
//! or removed through the admin API.
//!
//! The record is a log in the host's own key space (`@host/sync/…`, which no
//! tenant can name): a counter gives each change its number, the change's
//! request body is stored in chunks under [`MAX_VALUE_BYTES`], and the
//! change's record is written last. Every host polls the counter every
//! [`POLL`] and replays, in order, the changes other hosts recorded since it
//! started, through the same checks as the admin route. A host started later
//! runs its bundle, as a restarted host does: lasting changes belong in the
//! bundle.

use crate::store::{Condition, KvStore, MAX_VALUE_BYTES, Op, StoreResult};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often a host looks for other hosts' changes.
pub const POLL: Duration = Duration::from_millis(500);
const PREFIX: &str = "@host/sync";
const CHUNK: usize = MAX_VALUE_BYTES / 2;
/// How long a numbered change may stay unwritten (its host died while
/// writing it) before the others skip it.
const GIVE_UP: Duration = Duration::from_secs(30);

/// One change, as the admin route received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    Swap {
        service: String,
    },
    Rollback {
        service: String,
    },
    TenantPut {
        id: String,
    },
    TenantRemove {
        id: String,
    },
    /// A tenant's webhook secret was rotated: reload its keys from the store.
    TenantSecret {
        id: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Record {
    origin: String,
    #[serde(flatten)]
    change: Change,
    /// Chunks of the request body.
    chunks: usize,
}

/// This host's end of the log.
pub struct Sync {
    kv: Arc<dyn KvStore>,
    /// This host, as its records name it.
    origin: String,
    /// The last change this host has seen.
    seen: AtomicU64,
}

impl std::fmt::Debug for Sync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sync")
            .field("origin", &self.origin)
            .finish()
    }
}

fn seq_key() -> String {
    format!("{PREFIX}/seq")
}

fn record_key(n: u64) -> String {
    format!("{PREFIX}/{n:020}")
}

fn chunk_key(n: u64, i: usize) -> String {
    format!("{PREFIX}/{n:020}/{i}")
}

impl Sync {
    /// Join the log at its current end.
    pub async fn start(kv: Arc<dyn KvStore>) -> StoreResult<Sync> {
        let seen = kv.counter(&seq_key()).await?.max(0) as u64;
        Ok(Sync {
            kv,
            origin: format!("{:016x}", rand::random::<u64>()),
            seen: AtomicU64::new(seen),
        })
    }

    /// Record `change` with its request `body` for the other hosts.
    pub async fn publish(&self, change: Change, body: &[u8]) -> StoreResult<()> {
        let n = self
            .kv
            .transact(vec![Op::Add {
                key: seq_key(),
                delta: 1,
            }])
            .await?[0];
        let chunks: Vec<&[u8]> = body.chunks(CHUNK).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            self.kv
                .transact(vec![Op::Put {
                    key: chunk_key(n, i),
                    value: chunk.to_vec(),
                    condition: Condition::None,
                    expires_at_ms: None,
                }])
                .await?;
        }
        let record = Record {
            origin: self.origin.clone(),
            change,
            chunks: chunks.len(),
        };
        let value = serde_json::to_vec(&record).unwrap_or_default();
        self.kv
            .transact(vec![Op::Put {
                key: record_key(n),
                value,
                condition: Condition::Absent,
                expires_at_ms: None,
            }])
            .await?;
        Ok(())
    }

    /// The changes other hosts recorded since the last call, in order, with
    /// their bodies. `waited` says how long the first missing record has
    /// been awaited; past [`GIVE_UP`] it is skipped.
    pub async fn fetch(&self, waited: &mut Duration) -> StoreResult<Vec<(Change, Vec<u8>)>> {
        let last = self.kv.counter(&seq_key()).await?.max(0) as u64;
        let mut out = Vec::new();
        while self.seen.load(Ordering::SeqCst) < last {
            let n = self.seen.load(Ordering::SeqCst) + 1;
            let Some(entry) = self.kv.get(&record_key(n)).await? else {
                if *waited < GIVE_UP {
                    *waited += POLL;
                    break;
                }
                tracing::warn!(
                    change = n,
                    "a host never finished recording a change; skipping it"
                );
                self.seen.store(n, Ordering::SeqCst);
                *waited = Duration::ZERO;
                continue;
            };
            *waited = Duration::ZERO;
            self.seen.store(n, Ordering::SeqCst);
            let Ok(record) = serde_json::from_slice::<Record>(&entry.value) else {
                tracing::warn!(change = n, "an unreadable change record; skipping it");
                continue;
            };
            if record.origin == self.origin {
                continue;
            }
            let mut body = Vec::new();
            for i in 0..record.chunks {
                match self.kv.get(&chunk_key(n, i)).await? {
                    Some(c) => body.extend_from_slice(&c.value),
                    None => tracing::warn!(change = n, chunk = i, "a change's body is missing"),
                }
            }
            out.push((record.change, body));
        }
        Ok(out)
    }
}
