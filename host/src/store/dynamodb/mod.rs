//! The DynamoDB backend for kv: conditional writes and `TransactWriteItems`,
//! as the original platform keeps reservations and inventory.
//!
//! One table, `pk` (tenant) and `sk` (the rest of the key, with a kind
//! prefix), so a prefix scan is a `Query` on the sort key:
//!
//! | pk | sk | attributes |
//! |---|---|---|
//! | tenant | `v#<rest>` | `vv` value, `vn` version, `vl` length, `ve` expiry ms and `xs` its shard (absent: never) |
//! | tenant | `n#<rest>` | `cn` counter |
//! | tenant | `#usage#<shard>` | `uk` keys, `ub` bytes: a tenant's usage in [`USAGE_SHARDS`] parts |
//! | `#outbox` | `<ms>#<random>` | a message sent by a transaction, until the queue has it |
//! | `#meta` | key | `vv`: host metadata |
//!
//! A transaction is two round trips: `TransactGetItems` reads what the
//! operations touch (strongly consistent), the host checks the conditions
//! against it (expired values count as absent) and works out versions and
//! usage, then `TransactWriteItems` writes everything with each item
//! conditioned on being exactly as read. If another writer got in between,
//! DynamoDB cancels the write and the host reads again, so a caller's
//! condition is always judged on the state its write commits over. A
//! transaction's items are its operations plus one usage item per tenant it
//! touches, which is why [`MAX_TRANSACT_OPS`](super::MAX_TRANSACT_OPS) is 99.
//!
//! Counters are the exception to "exactly as read": an add is conditioned
//! only on the counter existing or not, so concurrent holds decrementing one
//! event's remaining-seats counter do not make each other retry. The value an
//! add returns inside a transaction is therefore the counter as read plus the
//! delta (another host's add may land in between); a lone increment is one
//! atomic `UpdateItem ADD` and returns the exact new value.
//!
//! Values with an expiry are also in the sparse `expiry` index (`xs`, `ve`),
//! which [`DynamoStore::sweep_expired`] reads to delete them once expired.
//!
//! Sends cannot commit into another store, so they are written to the outbox
//! in the same transaction and relayed to the queue right after the commit;
//! a host that dies in between leaves them to [`DynamoStore::relay_outbox`]
//! on any host (at least once; handlers are idempotent).

mod expiry;
mod outbox;
mod table;
mod transact;

use super::{
    Entry, KvStore, Op, QueueStore, StoreError, StoreResult, Usage, tenant_of, validate_ops,
};
use crate::foundations::clock::Clock;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use table::create_table;

/// Parts a tenant's usage is kept in, so concurrent transactions of one
/// tenant rarely write the same usage item.
pub const USAGE_SHARDS: u64 = 16;

/// The usage item a write to `key` counts in (any would do: usage is their sum).
pub(super) fn usage_shard(key: &str) -> u64 {
    key.bytes().fold(0u64, |h, c| h.wrapping_mul(31) ^ c as u64) % USAGE_SHARDS
}

type Item = HashMap<String, AttributeValue>;

/// The DynamoDB kv store; sends go to `queue` through the outbox.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    trips: Arc<AtomicU64>,
    table: String,
    clock: Arc<Clock>,
    queue: Arc<dyn QueueStore>,
}

/// How to reach the table (the bundle's `[store.dynamodb]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoSettings {
    /// The table; `tacos` when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The AWS region; the SDK's usual sources (`AWS_REGION`, the profile) when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// An endpoint URL for a DynamoDB-compatible server; `AWS_ENDPOINT_URL` works too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl DynamoSettings {
    pub(crate) fn is_default(&self) -> bool {
        *self == DynamoSettings::default()
    }

    pub fn table(&self) -> &str {
        self.table.as_deref().unwrap_or("tacos")
    }

    /// A client configured the AWS SDK's usual ways (environment, profile,
    /// instance role), with the bundle's region and endpoint on top.
    pub async fn client(&self) -> Client {
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        let https = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https);
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        Client::new(&loader.load().await)
    }
}

pub(crate) fn unavailable(e: impl ProvideErrorMetadata + std::fmt::Display) -> StoreError {
    StoreError::Unavailable(match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("dynamodb: {code}: {message}"),
        _ => format!("dynamodb: {e}"),
    })
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn num<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// A value's or counter's item key: `(tenant, kind + rest)`.
fn item_key(kind: &str, key: &str) -> Item {
    let tenant = tenant_of(key);
    let rest = key.get(tenant.len() + 1..).unwrap_or("");
    HashMap::from([
        ("pk".to_string(), s(tenant)),
        ("sk".to_string(), s(format!("{kind}{rest}"))),
    ])
}

/// An item's primary key, as text.
fn primary(item: &Item) -> Option<(String, String)> {
    let text = |name| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some((text("pk")?, text("sk")?))
}

/// The scoped key an item stands for.
fn key_of(item: &Item, kind: &str) -> Option<String> {
    let pk = item.get("pk")?.as_s().ok()?;
    let rest = item.get("sk")?.as_s().ok()?.strip_prefix(kind)?;
    Some(format!("{pk}/{rest}"))
}

/// What a value item holds, if it is there (live or expired).
#[derive(Debug, Clone, Copy)]
struct Current {
    version: u64,
    expires_at_ms: u64,
    len: u64,
}

impl Current {
    fn of(item: &Item) -> Option<Current> {
        Some(Current {
            version: num(item, "vn")?,
            expires_at_ms: num(item, "ve").unwrap_or(0),
            len: num(item, "vl").unwrap_or(0),
        })
    }

    fn live(&self, now_ms: u64) -> bool {
        self.expires_at_ms == 0 || self.expires_at_ms > now_ms
    }
}

fn entry_of(key: String, item: &Item, now_ms: u64) -> Option<Entry> {
    let current = Current::of(item)?;
    current.live(now_ms).then(|| Entry {
        key,
        value: item
            .get("vv")
            .and_then(|v| v.as_b().ok())
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default(),
        version: current.version,
    })
}

fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> StoreResult<T> {
    r.map_err(|e| StoreError::Invalid(format!("dynamodb request: {e}")))
}

/// Counts requests sent (retries included).
#[derive(Debug)]
struct CountTrips(Arc<AtomicU64>);

impl aws_sdk_dynamodb::config::Intercept for CountTrips {
    fn name(&self) -> &'static str {
        "CountTrips"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl DynamoStore {
    /// Requests sent to DynamoDB so far.
    pub fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    pub fn new(
        client: Client,
        table: impl Into<String>,
        clock: Arc<Clock>,
        queue: Arc<dyn QueueStore>,
    ) -> DynamoStore {
        let trips = Arc::new(AtomicU64::new(0));
        let config = client
            .config()
            .to_builder()
            .interceptor(CountTrips(trips.clone()))
            .build();
        DynamoStore {
            client: Client::from_conf(config),
            trips,
            table: table.into(),
            clock,
            queue,
        }
    }

    /// Connect with the bundle's settings, checking that the table exists.
    pub async fn connect(
        settings: &DynamoSettings,
        clock: Arc<Clock>,
        queue: Arc<dyn QueueStore>,
    ) -> anyhow::Result<DynamoStore> {
        let store = DynamoStore::new(settings.client().await, settings.table(), clock, queue);
        table::check(&store.client, &store.table).await?;
        Ok(store)
    }

    async fn get_item(&self, key: Item) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(out.item)
    }

    /// Items by key, strongly consistent, in `BatchGetItem`s of 100.
    async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<HashMap<(String, String), Item>> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let wanted = KeysAndAttributes::builder()
                .consistent_read(true)
                .set_keys(Some(chunk.to_vec()));
            let mut request = Some(HashMap::from([(
                self.table.clone(),
                built(wanted.build())?,
            )]));
            while let Some(r) = request.take().filter(|r| !r.is_empty()) {
                let out = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(r))
                    .send()
                    .await
                    .map_err(|e| unavailable(e.into_service_error()))?;
                for item in out.responses.unwrap_or_default().into_values().flatten() {
                    if let Some(key) = primary(&item) {
                        found.insert(key, item);
                    }
                }
                if out.unprocessed_keys.as_ref().is_some_and(|u| !u.is_empty()) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                request = out.unprocessed_keys;
            }
        }
        Ok(found)
    }

    fn meta_key(key: &str) -> Item {
        HashMap::from([("pk".to_string(), s("#meta")), ("sk".to_string(), s(key))])
    }
}

#[async_trait::async_trait]
impl KvStore for DynamoStore {
    async fn get(&self, key: &str) -> StoreResult<Option<Entry>> {
        let item = self.get_item(item_key("v#", key)).await?;
        Ok(item.and_then(|i| entry_of(key.to_string(), &i, self.clock.now_ms())))
    }

    async fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Entry>>> {
        let items: Vec<Item> = keys.iter().map(|k| item_key("v#", k)).collect();
        let found = self.batch_get(items.clone()).await?;
        let now = self.clock.now_ms();
        Ok(keys
            .iter()
            .zip(&items)
            .map(|(key, item)| {
                let found = primary(item).and_then(|k| found.get(&k));
                found.and_then(|i| entry_of(key.clone(), i, now))
            })
            .collect())
    }

    async fn scan(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Entry>> {
        let wanted = item_key("v#", prefix);
        let mut start = start_after
            .filter(|after| *after >= prefix)
            .map(|after| item_key("v#", after));
        let now = self.clock.now_ms();
        let mut out = Vec::new();
        while out.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
                .expression_attribute_values(":pk", wanted["pk"].clone())
                .expression_attribute_values(":sk", wanted["sk"].clone())
                .consistent_read(true)
                .limit((limit - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable(e.into_service_error()))?;
            for item in page.items.unwrap_or_default() {
                if let Some(e) = key_of(&item, "v#").and_then(|k| entry_of(k, &item, now)) {
                    out.push(e);
                }
            }
            match page.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn transact(&self, ops: Vec<Op>) -> StoreResult<Vec<u64>> {
        validate_ops(&ops)?;
        self.transact_checked(ops).await
    }

    async fn counter(&self, key: &str) -> StoreResult<i64> {
        let item = self.get_item(item_key("n#", key)).await?;
        Ok(item.and_then(|i| num(&i, "cn")).unwrap_or(0))
    }

    async fn usage(&self, tenant: &str) -> StoreResult<Usage> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
            .expression_attribute_values(":pk", s(tenant))
            .expression_attribute_values(":sk", s("#usage#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        let (keys, bytes) = out
            .items
            .unwrap_or_default()
            .iter()
            .fold((0i64, 0i64), |(k, b), i| {
                (
                    k + num::<i64>(i, "uk").unwrap_or(0),
                    b + num::<i64>(i, "ub").unwrap_or(0),
                )
            });
        Ok(Usage {
            keys: keys.max(0) as u64,
            bytes: bytes.max(0) as u64,
        })
    }

    async fn meta_get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let item = self.get_item(Self::meta_key(key)).await?;
        Ok(item
            .and_then(|i| i.get("vv").cloned())
            .and_then(|v| v.as_b().ok().map(|b| b.as_ref().to_vec())))
    }

    async fn meta_put(&self, key: &str, value: Vec<u8>) -> StoreResult<()> {
        let mut item = Self::meta_key(key);
        item.insert("vv".into(), AttributeValue::B(value.into()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(())
    }

    async fn meta_create(&self, key: &str, value: Vec<u8>) -> StoreResult<Vec<u8>> {
        let mut item = Self::meta_key(key);
        item.insert("vv".into(), AttributeValue::B(value.clone().into()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(value),
            Err(e) if e.is_conditional_check_failed_exception() => self
                .meta_get(key)
                .await?
                .ok_or_else(|| StoreError::Unavailable(format!("dynamodb: meta {key} vanished"))),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests;
