//! kv split by service: each service's keys on the backend the bundle's
//! `[store.kv_per_service]` names, the rest on the default.
//!
//! Keys reaching a store are `tenant/service/key`, so the service is the
//! second segment. The original platform keeps its waiting room in Redis and
//! its reservations in DynamoDB; `kv = "dynamodb"` with `queue = "redis"` in
//! `kv_per_service` does the same. A transaction's keys are one service's,
//! so it runs on one backend, with that backend's guarantees.

use super::{Entry, KvStore, Op, StoreError, StoreResult, Usage};
use async_trait::async_trait;
use std::sync::Arc;

pub struct Routed {
    default: Arc<dyn KvStore>,
    by_service: Vec<(String, Arc<dyn KvStore>)>,
}

fn service_of(key: &str) -> &str {
    key.split('/').nth(1).unwrap_or("")
}

impl Routed {
    pub fn new(default: Arc<dyn KvStore>, by_service: Vec<(String, Arc<dyn KvStore>)>) -> Routed {
        Routed {
            default,
            by_service,
        }
    }

    fn route(&self, key: &str) -> &Arc<dyn KvStore> {
        let service = service_of(key);
        self.by_service
            .iter()
            .find(|(s, _)| s == service)
            .map_or(&self.default, |(_, kv)| kv)
    }

    /// Each backend once.
    fn backends(&self) -> Vec<&Arc<dyn KvStore>> {
        let mut all = vec![&self.default];
        for (_, kv) in &self.by_service {
            if !all.iter().any(|b| Arc::ptr_eq(b, kv)) {
                all.push(kv);
            }
        }
        all
    }
}

#[async_trait]
impl KvStore for Routed {
    async fn get(&self, key: &str) -> StoreResult<Option<Entry>> {
        self.route(key).get(key).await
    }

    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Entry>>> {
        match keys.first() {
            Some(first) if keys.iter().all(|k| service_of(k) == service_of(first)) => {
                self.route(first).get_many(keys).await
            }
            _ => {
                let mut out = Vec::with_capacity(keys.len());
                for key in keys {
                    out.push(self.get(key).await?);
                }
                Ok(out)
            }
        }
    }

    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        self.route(prefix).scan(prefix, start_after, limit).await
    }

    async fn transact(&self, ops: Vec<Op>) -> StoreResult<Vec<u64>> {
        let mut keys = ops.iter().filter_map(Op::key);
        let kv = match keys.next() {
            Some(first) => {
                let kv = self.route(first);
                if keys.any(|k| !Arc::ptr_eq(self.route(k), kv)) {
                    return Err(StoreError::Invalid(
                        "a transaction's keys must all live on one store backend".into(),
                    ));
                }
                kv
            }
            None => &self.default,
        };
        kv.transact(ops).await
    }

    async fn counter(&self, key: &str) -> StoreResult<i64> {
        self.route(key).counter(key).await
    }

    async fn usage(&self, tenant: &str) -> StoreResult<Usage> {
        let mut total = Usage::default();
        for kv in self.backends() {
            let u = kv.usage(tenant).await?;
            total.keys += u.keys;
            total.bytes += u.bytes;
        }
        Ok(total)
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.default.meta_get(key).await
    }

    async fn meta_put(&self, key: &str, value: Vec<u8>) -> StoreResult<()> {
        self.default.meta_put(key, value).await
    }

    async fn meta_create(&self, key: &str, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        self.default.meta_create(key, value).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundations::clock::Clock;
    use crate::store::Condition;
    use crate::store::embedded::EmbeddedStore;

    fn put(key: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: b"v".to_vec(),
            condition: Condition::None,
            expires_at_ms: None,
        }
    }

    #[tokio::test]
    async fn each_service_s_keys_live_on_its_backend() {
        let clock = Arc::new(Clock::virtual_at(1_000));
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let main = Arc::new(EmbeddedStore::open(d1.path(), clock.clone()).unwrap());
        let waiting_room = Arc::new(EmbeddedStore::open(d2.path(), clock).unwrap());
        let kv = Routed::new(main.clone(), vec![("queue".into(), waiting_room.clone())]);
        kv.transact(vec![put("t/queue/a"), put("t/queue/b")])
            .await
            .unwrap();
        kv.transact(vec![put("t/inventory/s")]).await.unwrap();
        assert!(waiting_room.get("t/queue/a").await.unwrap().is_some());
        assert!(main.get("t/queue/a").await.unwrap().is_none());
        assert!(main.get("t/inventory/s").await.unwrap().is_some());
        assert_eq!(kv.scan("t/queue/", None, 10).await.unwrap().len(), 2);
        let both = kv
            .get_many(&["t/queue/a".into(), "t/inventory/s".into()])
            .await
            .unwrap();
        assert!(both.iter().all(Option::is_some));
        assert_eq!(
            kv.usage("t").await.unwrap().keys,
            3,
            "usage sums the backends"
        );
        assert!(matches!(
            kv.transact(vec![put("t/queue/c"), put("t/inventory/c")])
                .await,
            Err(StoreError::Invalid(_))
        ));
    }
}
