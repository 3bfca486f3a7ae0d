//! Deleting expired values: they read as absent as soon as they expire, and
//! the sweep removes them (and their usage) later, as on the other backends.
//!
//! A value with an expiry carries `xs`, one of [`SHARDS`] shard names, and
//! `ve`, its expiry: the table's sparse global index `expiry` (`xs`, `ve`)
//! lists exactly those, in expiry order per shard. The index is eventually
//! consistent, so each delete is conditioned on the item still being the
//! expired incarnation the index showed.

use super::{DynamoStore, Item, built, n, num, s, unavailable};
use crate::store::StoreResult;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};

/// Shards of the expiry index, so no index partition takes every expiring write.
pub const SHARDS: u64 = 16;
pub const INDEX: &str = "expiry";

/// The index shard of `key`.
pub(super) fn shard(key: &str) -> String {
    let h = key.bytes().fold(7u64, |h, c| h.wrapping_mul(31) ^ c as u64);
    format!("x#{}", h % SHARDS)
}

impl DynamoStore {
    /// Delete up to `max` values whose expiry has passed; returns how many went.
    pub async fn sweep_expired(&self, max: usize) -> StoreResult<usize> {
        let now = self.clock.now_ms();
        let mut removed = 0;
        for i in 0..SHARDS {
            if removed >= max {
                break;
            }
            let due = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX)
                .key_condition_expression("xs = :xs AND ve <= :now")
                .expression_attribute_values(":xs", s(format!("x#{i}")))
                .expression_attribute_values(":now", n(now))
                .limit((max - removed).min(100) as i32)
                .send()
                .await
                .map_err(|e| unavailable(e.into_service_error()))?;
            for item in due.items.unwrap_or_default() {
                if self.delete_expired(&item).await? {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Delete one expired value and its usage, unless it changed since the
    /// index listed it. Whether it went.
    async fn delete_expired(&self, listed: &Item) -> StoreResult<bool> {
        let (Some(pk), Some(sk), Some(ve)) = (
            listed.get("pk").and_then(|v| v.as_s().ok()),
            listed.get("sk").and_then(|v| v.as_s().ok()),
            num::<u64>(listed, "ve"),
        ) else {
            return Ok(false);
        };
        let rest = sk.strip_prefix("v#").unwrap_or(sk);
        let key_len = pk.len() + 1 + rest.len();
        let bytes = key_len as i64 + num::<i64>(listed, "vl").unwrap_or(0);
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .condition_expression("ve = :ve")
            .expression_attribute_values(":ve", n(ve));
        let shard = super::usage_shard(&format!("{pk}/{rest}"));
        let usage = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(format!("#usage#{shard}")))
            .update_expression("ADD uk :k, ub :b")
            .expression_attribute_values(":k", n(-1))
            .expression_attribute_values(":b", n(-bytes));
        let written = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .delete(built(delete.build())?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(built(usage.build())?)
                    .build(),
            )
            .send()
            .await;
        match written.map_err(|e| e.into_service_error()) {
            Ok(_) => Ok(true),
            // Rewritten or deleted since: not ours to remove.
            Err(e) if e.is_transaction_canceled_exception() => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }
}
