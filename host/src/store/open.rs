//! Which backends hold a bundle's state (`[store]`), opened, and their upkeep.
//!
//! `kind` names the backend of both capabilities; `kv` and `queue` choose
//! each on its own. Embedded is the default. Counters live with kv, because
//! they commit in kv transactions. The combinations:
//!
//! | kv | queue | for |
//! |---|---|---|
//! | embedded | embedded | one host (the default) |
//! | redis | redis | several hosts; a transaction and its sends are one Redis script |
//! | dynamodb | redis | several hosts; sends pass through the DynamoDB outbox |
//! | dynamodb | embedded | one host with its data in DynamoDB |

use super::dynamodb::{DynamoSettings, DynamoStore};
use super::embedded::EmbeddedStore;
use super::redis::RedisStore;
use super::{KvStore, QueueStore};
use crate::clock::Clock;
use anyhow::bail;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Embedded,
    Redis,
    Dynamodb,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Redis => "redis",
            Backend::Dynamodb => "dynamodb",
        }
    }
}

/// The bundle's `[store]` table.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// The backend of kv and queue alike, unless `kv` or `queue` says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Backend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<Backend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<Backend>,
    #[serde(default, skip_serializing_if = "RedisSettings::is_default")]
    pub redis: RedisSettings,
    #[serde(default, skip_serializing_if = "DynamoSettings::is_default")]
    pub dynamodb: DynamoSettings,
}

/// `[store.redis]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port/db`; `TACOS_REDIS_URL` when not set, else
    /// `redis://127.0.0.1:6379/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Prefix of every key; `tacos:` when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

impl RedisSettings {
    fn is_default(&self) -> bool {
        *self == RedisSettings::default()
    }

    pub fn url(&self) -> String {
        self.url
            .clone()
            .or_else(|| std::env::var("TACOS_REDIS_URL").ok())
            .unwrap_or_else(|| "redis://127.0.0.1:6379/".into())
    }

    pub fn prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or("tacos:")
    }
}

impl StoreSettings {
    /// The backends of kv and queue, or why the combination cannot work.
    pub fn backends(&self) -> anyhow::Result<(Backend, Backend)> {
        let kind = self.kind.unwrap_or(Backend::Embedded);
        let kv = self.kv.unwrap_or(kind);
        let queue = match (self.queue, kind) {
            (Some(q), _) => q,
            (None, Backend::Dynamodb) => {
                bail!("the queue cannot run on DynamoDB: set `queue = \"redis\"` (or \"embedded\")")
            }
            (None, k) => k,
        };
        match (kv, queue) {
            (_, Backend::Dynamodb) => {
                bail!("the queue cannot run on DynamoDB: use \"redis\" or \"embedded\"")
            }
            (Backend::Embedded, Backend::Redis) => bail!(
                "kv = \"embedded\" keeps state on one host, so a shared queue would deliver messages to hosts without it: use queue = \"embedded\""
            ),
            (Backend::Redis, Backend::Embedded) => bail!(
                "kv = \"redis\" commits a transaction's sends in the same Redis script: use queue = \"redis\""
            ),
            pair => Ok(pair),
        }
    }

    /// Whether more than one host can share this state.
    pub fn shared(&self) -> bool {
        matches!(self.backends(), Ok((_, Backend::Redis)))
    }
}

/// The opened stores.
#[derive(Clone)]
pub struct Stores {
    pub kv: Arc<dyn KvStore>,
    pub queue: Arc<dyn QueueStore>,
    pub kv_backend: Backend,
    pub queue_backend: Backend,
    /// The embedded store, when either capability uses it.
    pub embedded: Option<EmbeddedStore>,
    redis: Option<RedisStore>,
    dynamodb: Option<DynamoStore>,
}

impl Stores {
    /// Open what `settings` names; the embedded store lives in `data_dir`.
    pub async fn open(
        settings: &StoreSettings,
        data_dir: &Path,
        clock: Arc<Clock>,
    ) -> anyhow::Result<Stores> {
        let (kv_backend, queue_backend) = settings.backends()?;
        let uses = |b| kv_backend == b || queue_backend == b;
        let embedded = match uses(Backend::Embedded) {
            true => Some(EmbeddedStore::open(data_dir, clock.clone())?),
            false => None,
        };
        let redis = match uses(Backend::Redis) {
            true => {
                let r = &settings.redis;
                Some(RedisStore::connect(&r.url(), r.prefix(), clock.clone()).await?)
            }
            false => None,
        };
        let queue: Arc<dyn QueueStore> = match (&redis, &embedded) {
            (Some(r), _) if queue_backend == Backend::Redis => Arc::new(r.clone()),
            (_, Some(e)) => Arc::new(e.clone()),
            _ => unreachable!("backends() allows no other queue"),
        };
        let dynamodb = match kv_backend {
            Backend::Dynamodb => {
                Some(DynamoStore::connect(&settings.dynamodb, clock, queue.clone()).await?)
            }
            _ => None,
        };
        let kv: Arc<dyn KvStore> = match (kv_backend, &dynamodb, &redis, &embedded) {
            (Backend::Dynamodb, Some(d), _, _) => Arc::new(d.clone()),
            (Backend::Redis, _, Some(r), _) => Arc::new(r.clone()),
            (_, _, _, Some(e)) => Arc::new(e.clone()),
            _ => unreachable!("every kv backend was opened above"),
        };
        Ok(Stores {
            kv,
            queue,
            kv_backend,
            queue_backend,
            embedded,
            redis,
            dynamodb,
        })
    }

    /// Upkeep, forever: sweep expired values every 10 s; relay outbox
    /// messages other hosts left behind every second.
    pub async fn maintain(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for round in 0u64.. {
            tick.tick().await;
            if let Some(d) = &self.dynamodb
                && let Err(e) = d.relay_outbox(100).await
            {
                tracing::warn!(error = %e, "relaying the outbox failed");
            }
            if round % 10 != 9 {
                continue;
            }
            let swept = match (&self.embedded, &self.redis, self.kv_backend) {
                (Some(e), _, Backend::Embedded) => e.sweep_expired(10_000).await,
                (_, Some(r), Backend::Redis) => r.sweep_expired(10_000).await,
                _ => Ok(0),
            };
            if let Err(e) = swept {
                tracing::warn!(error = %e, "sweeping expired keys failed");
            }
        }
    }
}
