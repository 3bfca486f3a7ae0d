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
//!
//! `[store.kv_per_service]` puts one service's keys on another kv backend
//! (see [`super::routed`]), under the same rules: `queue = "redis"` there
//! keeps the waiting room in Redis while reservations stay in DynamoDB.

use super::dynamodb::{DynamoSettings, DynamoStore};
use super::embedded::EmbeddedStore;
use super::redis::{RedisSettings, RedisStore};
use super::routed::Routed;
use super::{KvStore, QueueStore};
use crate::foundations::clock::Clock;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// Service name → the kv backend of that service's keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kv_per_service: BTreeMap<String, Backend>,
    #[serde(default, skip_serializing_if = "RedisSettings::is_default")]
    pub redis: RedisSettings,
    #[serde(default, skip_serializing_if = "DynamoSettings::is_default")]
    pub dynamodb: DynamoSettings,
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
        check_pair(kv, queue)?;
        for (service, b) in &self.kv_per_service {
            check_pair(*b, queue).map_err(|e| anyhow::anyhow!("kv_per_service.{service}: {e}"))?;
        }
        Ok((kv, queue))
    }

    /// Every backend in use.
    fn uses(&self, backend: Backend) -> bool {
        self.backends().is_ok_and(|(kv, queue)| {
            kv == backend || queue == backend || self.kv_per_service.values().any(|b| *b == backend)
        })
    }
}

fn check_pair(kv: Backend, queue: Backend) -> anyhow::Result<()> {
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
        _ => Ok(()),
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
        let uses = |b| settings.uses(b);
        let embedded = match uses(Backend::Embedded) {
            true => Some(EmbeddedStore::open(data_dir, clock.clone())?),
            false => None,
        };
        let redis = match uses(Backend::Redis) {
            true => {
                let r = &settings.redis;
                let store = RedisStore::connect(r, clock.clone()).await;
                Some(store.with_context(|| format!("redis at {}", r.shown_url()))?)
            }
            false => None,
        };
        let queue: Arc<dyn QueueStore> = match (queue_backend, &redis, &embedded) {
            (Backend::Redis, Some(r), _) => Arc::new(r.clone()),
            (_, _, Some(e)) => Arc::new(e.clone()),
            _ => unreachable!("backends() allows no other queue"),
        };
        let dynamodb = match uses(Backend::Dynamodb) {
            true => Some(DynamoStore::connect(&settings.dynamodb, clock, queue.clone()).await?),
            false => None,
        };
        let kv_of = |b: Backend| -> Arc<dyn KvStore> {
            match (b, &dynamodb, &redis, &embedded) {
                (Backend::Dynamodb, Some(d), _, _) => Arc::new(d.clone()),
                (Backend::Redis, _, Some(r), _) => Arc::new(r.clone()),
                (Backend::Embedded, _, _, Some(e)) => Arc::new(e.clone()),
                _ => unreachable!("every kv backend in use was opened above"),
            }
        };
        let kv = match settings.kv_per_service.is_empty() {
            true => kv_of(kv_backend),
            false => Arc::new(Routed::new(
                kv_of(kv_backend),
                settings
                    .kv_per_service
                    .iter()
                    .map(|(service, b)| (service.clone(), kv_of(*b)))
                    .collect(),
            )),
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

    /// Whether other hosts can share this state (the queue is on Redis).
    pub fn shared(&self) -> bool {
        self.queue_backend == Backend::Redis
    }

    /// Requests sent to Redis and DynamoDB so far, by backend.
    pub fn round_trips(&self) -> Vec<(Backend, u64)> {
        let redis = self
            .redis
            .as_ref()
            .map(|r| (Backend::Redis, r.round_trips()));
        let dynamodb = self
            .dynamodb
            .as_ref()
            .map(|d| (Backend::Dynamodb, d.round_trips()));
        redis.into_iter().chain(dynamodb).collect()
    }

    /// What holds what, for the banner.
    pub fn summary(&self, settings: &StoreSettings) -> String {
        let place = |b: Backend| match b {
            Backend::Embedded => "embedded".to_string(),
            Backend::Redis => format!("redis {}", settings.redis.shown_url()),
            Backend::Dynamodb => format!("dynamodb table {}", settings.dynamodb.table()),
        };
        let mut out = if self.kv_backend == self.queue_backend {
            format!("kv and queue on {}", place(self.kv_backend))
        } else {
            format!(
                "kv on {}, queue on {}",
                place(self.kv_backend),
                place(self.queue_backend)
            )
        };
        for (service, b) in &settings.kv_per_service {
            out += &format!("; {service}'s kv on {}", b.name());
        }
        out
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
            if let Some(e) = &self.embedded
                && let Err(e) = e.sweep_expired(10_000).await
            {
                tracing::warn!(error = %e, "sweeping expired keys failed");
            }
            if let Some(r) = &self.redis
                && let Err(e) = r.sweep_expired(10_000).await
            {
                tracing::warn!(error = %e, "sweeping expired keys in redis failed");
            }
            if let Some(d) = &self.dynamodb
                && let Err(e) = d.sweep_expired(1_000).await
            {
                tracing::warn!(error = %e, "sweeping expired keys in dynamodb failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> anyhow::Result<(Backend, Backend)> {
        toml::from_str::<StoreSettings>(toml)?.backends()
    }

    #[test]
    fn backends_default_to_embedded_and_mix_per_capability() {
        use Backend::*;
        assert_eq!(settings("").unwrap(), (Embedded, Embedded));
        assert_eq!(settings("kind = \"redis\"").unwrap(), (Redis, Redis));
        assert_eq!(
            settings("kv = \"dynamodb\"\nqueue = \"redis\"").unwrap(),
            (Dynamodb, Redis)
        );
        assert_eq!(
            settings("kv = \"dynamodb\"\nqueue = \"embedded\"").unwrap(),
            (Dynamodb, Embedded)
        );
    }

    #[test]
    fn combinations_that_cannot_work_are_refused_with_the_fix() {
        let err = |toml: &str| format!("{:#}", settings(toml).unwrap_err());
        assert!(err("kind = \"dynamodb\"").contains("queue = \"redis\""));
        assert!(err("queue = \"dynamodb\"").contains("cannot run on DynamoDB"));
        assert!(err("queue = \"redis\"").contains("use queue = \"embedded\""));
        assert!(err("kv = \"redis\"").contains("use queue = \"redis\""));
        assert!(
            err("kind = \"redis\"\n[kv_per_service]\nqueue = \"embedded\"")
                .contains("kv_per_service.queue")
        );
        assert!(err("kind = \"mongo\"").contains("unknown variant"));
        assert!(err("redis = { host = \"x\" }").contains("unknown field"));
    }

    #[test]
    fn a_redis_password_stays_out_of_what_is_shown() {
        let r = RedisSettings {
            url: Some("redis://:hunter2@cache.internal:6379/0".into()),
            ..RedisSettings::default()
        };
        assert_eq!(r.shown_url(), "redis://…@cache.internal:6379/0");
        assert_eq!(r.prefix(), "tacos:");
    }
}
