//! A transaction on DynamoDB: read what it touches, check its conditions on
//! the host, then one `TransactWriteItems` with every item conditioned on
//! being as read (see the module's doc for why, and for counters).

use super::{
    Current, DynamoStore, Item, built, expiry, item_key, n, num, outbox, primary, s, unavailable,
};
use crate::store::usage::UsageDelta;
use crate::store::{Condition, Op, StoreError, StoreResult};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use std::collections::HashMap;
use std::time::Duration;

/// Reads and writes of one transaction before contention is reported.
const ATTEMPTS: u32 = 10;

/// A condition that the item is as read: `attr` at `read`, or not there.
fn as_read(read: Option<AttributeValue>, attr: &str) -> (String, Option<Item>) {
    match read {
        Some(v) => (
            format!("{attr} = :read"),
            Some(HashMap::from([(":read".to_string(), v)])),
        ),
        None => ("attribute_not_exists(pk)".to_string(), None),
    }
}

/// The write adding `keys` and `bytes` to one of a tenant's usage items.
fn usage_item(
    table: &str,
    tenant: String,
    keys: i64,
    bytes: i64,
    shard: u64,
) -> StoreResult<TransactWriteItem> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(HashMap::from([
            ("pk".to_string(), s(tenant)),
            ("sk".to_string(), s(format!("#usage#{shard}"))),
        ])))
        .update_expression("ADD uk :k, ub :b")
        .expression_attribute_values(":k", n(keys))
        .expression_attribute_values(":b", n(bytes));
    Ok(TransactWriteItem::builder()
        .update(built(update.build())?)
        .build())
}

/// What reading a transaction's items found, per operation.
enum Read {
    Value(Option<Current>),
    Counter(Option<i64>),
    None,
}

impl DynamoStore {
    /// A checked transaction (see the module's doc), retried while other
    /// writers get in between; its sends relayed to the queue.
    pub(super) async fn transact_checked(&self, ops: Vec<Op>) -> StoreResult<Vec<u64>> {
        if let [Op::Add { key, delta }] = ops.as_slice() {
            return Ok(vec![self.increment(key, *delta).await? as u64]);
        }
        for attempt in 0..ATTEMPTS {
            if let Some((mut results, outbox)) = self.try_transact(&ops).await? {
                let ids = self.relay(outbox).await;
                let sends = ops
                    .iter()
                    .enumerate()
                    .filter(|(_, op)| matches!(op, Op::Send(_)));
                for ((i, _), id) in sends.zip(ids) {
                    results[i] = id;
                }
                return Ok(results);
            }
            // Someone wrote an item in between: read again, after a jittered pause.
            let pause = 2u64.pow(attempt.min(6)) + rand::random::<u64>() % 10;
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(StoreError::Unavailable(format!(
            "dynamodb: the items kept changing under {ATTEMPTS} attempts (contention)"
        )))
    }

    /// What the items of `ops` hold now.
    async fn read(&self, ops: &[Op]) -> StoreResult<Vec<Read>> {
        let keys: Vec<Option<Item>> = ops
            .iter()
            .map(|op| match op {
                Op::Put { key, .. } | Op::Delete { key, .. } | Op::Check { key, .. } => {
                    Some(item_key("v#", key))
                }
                Op::Add { key, .. } => Some(item_key("n#", key)),
                Op::Send(_) => None,
            })
            .collect();
        let found = self
            .batch_get(keys.iter().flatten().cloned().collect())
            .await?;
        let lookup = |key: &Item| primary(key).and_then(|k| found.get(&k));
        Ok(ops
            .iter()
            .zip(&keys)
            .map(|(op, key)| match (op, key) {
                (Op::Add { .. }, Some(key)) => {
                    Read::Counter(lookup(key).and_then(|i| num(i, "cn")))
                }
                (_, Some(key)) => Read::Value(lookup(key).and_then(Current::of)),
                (_, None) => Read::None,
            })
            .collect())
    }

    /// One try: read, check, write. `Ok(None)`: someone wrote in between.
    pub(super) async fn try_transact(
        &self,
        ops: &[Op],
    ) -> StoreResult<Option<(Vec<u64>, Vec<Item>)>> {
        let now = self.clock.now_ms();
        let reads = self.read(ops).await?;
        for (i, (op, read)) in ops.iter().zip(&reads).enumerate() {
            let condition = match op {
                Op::Put { condition, .. }
                | Op::Delete { condition, .. }
                | Op::Check { condition, .. } => *condition,
                _ => Condition::None,
            };
            let live = match read {
                Read::Value(c) => c.filter(|c| c.live(now)).map(|c| c.version),
                _ => None,
            };
            if !condition.holds(live) {
                return Err(StoreError::Conflict(i as u32));
            }
        }
        if ops.iter().all(|op| matches!(op, Op::Check { .. })) {
            // The snapshot read already proved every condition.
            return Ok(Some((vec![0; ops.len()], Vec::new())));
        }
        let mut items = Vec::with_capacity(ops.len() + 1);
        let mut results = Vec::with_capacity(ops.len());
        let mut outbox = Vec::new();
        let mut usage = UsageDelta::default();
        for (op, read) in ops.iter().zip(reads) {
            let value_read = match read {
                Read::Value(c) => c,
                _ => None,
            };
            let (condition, values) = as_read(value_read.map(|c| n(c.version)), "vn");
            let item = match op {
                Op::Put {
                    key,
                    value,
                    expires_at_ms,
                    ..
                } => {
                    let version = value_read.map_or(0, |c| c.version) + 1;
                    let mut item = item_key("v#", key);
                    item.insert("vv".into(), AttributeValue::B(value.clone().into()));
                    item.insert("vn".into(), n(version));
                    item.insert("vl".into(), n(value.len()));
                    if let Some(exp) = expires_at_ms {
                        item.insert("ve".into(), n(exp));
                        item.insert("xs".into(), s(expiry::shard(key)));
                    }
                    usage.put(key, value.len(), value_read.map(|c| c.len));
                    results.push(version);
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression(condition)
                        .set_expression_attribute_values(values);
                    TransactWriteItem::builder()
                        .put(built(put.build())?)
                        .build()
                }
                Op::Delete { key, .. } => {
                    results.push(0);
                    usage.remove(key, value_read.map(|c| c.len));
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(item_key("v#", key)))
                        .condition_expression(condition)
                        .set_expression_attribute_values(values);
                    TransactWriteItem::builder()
                        .delete(built(delete.build())?)
                        .build()
                }
                Op::Check { key, .. } => {
                    results.push(0);
                    let check = ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(item_key("v#", key)))
                        .condition_expression(condition)
                        .set_expression_attribute_values(values);
                    TransactWriteItem::builder()
                        .condition_check(built(check.build())?)
                        .build()
                }
                Op::Add { key, delta } => {
                    let current = match read {
                        Read::Counter(c) => c,
                        _ => None,
                    };
                    if current.is_none() {
                        usage.counter_created(key);
                    }
                    let next = current.unwrap_or(0).checked_add(*delta).ok_or_else(|| {
                        StoreError::Invalid(format!("counter {key} would overflow"))
                    })?;
                    results.push(next as u64);
                    // Conditioned on existence only (for the usage count), so
                    // adds to a hot counter never make each other retry; the
                    // value returned is the counter as read plus `delta`.
                    let condition = match current {
                        Some(_) => "attribute_exists(pk)",
                        None => "attribute_not_exists(pk)",
                    };
                    let values = HashMap::from([(":d".to_string(), n(delta))]);
                    let update = Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(item_key("n#", key)))
                        .update_expression("ADD cn :d")
                        .condition_expression(condition)
                        .set_expression_attribute_values(Some(values));
                    TransactWriteItem::builder()
                        .update(built(update.build())?)
                        .build()
                }
                Op::Send(msg) => {
                    results.push(0);
                    let item = outbox::item(msg);
                    outbox.push(item.clone());
                    let put = Put::builder().table_name(&self.table).set_item(Some(item));
                    TransactWriteItem::builder()
                        .put(built(put.build())?)
                        .build()
                }
            };
            items.push(item);
        }
        for d in usage.changed() {
            let shard = super::usage_shard(&d.first_key);
            items.push(usage_item(&self.table, d.tenant, d.keys, d.bytes, shard)?);
        }
        if items.len() > 100 {
            return Err(StoreError::Invalid(format!(
                "this transaction needs {} DynamoDB items (operations and one usage item per tenant); TransactWriteItems takes at most 100",
                items.len()
            )));
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Some((results, outbox))),
            Err(e) => {
                let e = e.into_service_error();
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                let raced = match &e {
                    TransactWriteItemsError::TransactionCanceledException(c) => {
                        c.cancellation_reasons().iter().any(|r| {
                            matches!(
                                r.code(),
                                Some("ConditionalCheckFailed" | "TransactionConflict")
                            )
                        })
                    }
                    TransactWriteItemsError::TransactionInProgressException(_) => true,
                    _ => false,
                };
                if raced { Ok(None) } else { Err(unavailable(e)) }
            }
        }
    }

    /// A lone counter increment: one `UpdateItem ADD`, which DynamoDB
    /// applies atomically however many hosts increment at once (a waiting
    /// room's join counter is the hottest item there is). A counter's first
    /// increment adds it to the usage in a second write.
    async fn increment(&self, key: &str, delta: i64) -> StoreResult<i64> {
        let old = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key("n#", key)))
            .update_expression("ADD cn :d")
            .expression_attribute_values(":d", n(delta))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?
            .attributes
            .and_then(|a| num::<i64>(&a, "cn"));
        if old.is_none() {
            let mut usage = UsageDelta::default();
            usage.counter_created(key);
            let Some(d) = usage.changed().next() else {
                return Ok(old.unwrap_or(0) + delta);
            };
            let (tenant, keys, bytes, shard) = (d.tenant, d.keys, d.bytes, super::usage_shard(key));
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(tenant))
                .key("sk", s(format!("#usage#{shard}")))
                .update_expression("ADD uk :k, ub :b")
                .expression_attribute_values(":k", n(keys))
                .expression_attribute_values(":b", n(bytes))
                .send()
                .await
                .map_err(|e| unavailable(e.into_service_error()))?;
        }
        Ok(old.unwrap_or(0).saturating_add(delta))
    }
}
