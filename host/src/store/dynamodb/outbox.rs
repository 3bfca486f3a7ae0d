//! The outbox: messages sent by a DynamoDB transaction, committed with it and
//! relayed to the queue store afterwards.
//!
//! The committing host relays its own messages at once. Any host's
//! [`DynamoStore::relay_outbox`] relays those a host left behind (it died, or
//! the queue was down) once they are [`STALE_MS`] old. Relaying is enqueue,
//! then delete: a crash in between sends the message twice, never zero times.

use super::{DynamoStore, Item, n, num, s, unavailable};
use crate::foundations::clock::system_now_ms;
use crate::store::{NewMessage, StoreError, StoreResult};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// Age (wall clock) after which any host relays an outbox message.
pub const STALE_MS: u64 = 5_000;
const PK: &str = "#outbox";

/// The outbox item for `msg`; its sort key starts with the wall-clock time
/// it was written, so stale ones are a range query.
pub(super) fn item(msg: &NewMessage) -> Item {
    let sk = format!("{:013}#{:016x}", system_now_ms(), rand::random::<u64>());
    HashMap::from([
        ("pk".to_string(), s(PK)),
        ("sk".to_string(), s(sk)),
        ("tenant".to_string(), s(&msg.tenant)),
        ("topic".to_string(), s(&msg.topic)),
        (
            "payload".to_string(),
            AttributeValue::B(msg.payload.clone().into()),
        ),
        ("due".to_string(), n(msg.due_at_ms)),
        ("trace".to_string(), s(&msg.trace_id)),
    ])
}

/// The message an outbox item carries.
fn message_of(item: &Item) -> Option<NewMessage> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    Some(NewMessage {
        tenant: text("tenant")?,
        topic: text("topic")?,
        payload: item.get("payload")?.as_b().ok()?.as_ref().to_vec(),
        due_at_ms: num(item, "due")?,
        trace_id: text("trace").unwrap_or_default(),
    })
}

impl DynamoStore {
    /// Enqueue each outbox item and delete it; the queue's id per item, 0
    /// where the queue failed (the item stays for a later relay).
    pub(super) async fn relay(&self, items: Vec<Item>) -> Vec<u64> {
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            ids.push(self.relay_one(&item).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "relaying an outbox message failed; it stays for a later relay");
                0
            }));
        }
        ids
    }

    async fn relay_one(&self, item: &Item) -> StoreResult<u64> {
        let msg = message_of(item).ok_or_else(|| {
            StoreError::Unavailable("dynamodb: an outbox item is malformed".into())
        })?;
        let id = self.queue.enqueue(msg).await?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", item["sk"].clone())
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        Ok(id)
    }

    /// Relay up to `max` outbox messages older than [`STALE_MS`]; returns
    /// how many went to the queue.
    pub async fn relay_outbox(&self, max: usize) -> StoreResult<usize> {
        let before = format!("{:013}", system_now_ms().saturating_sub(STALE_MS));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk < :before")
            .expression_attribute_values(":pk", s(PK))
            .expression_attribute_values(":before", s(before))
            .consistent_read(true)
            .limit(max.min(1000) as i32)
            .send()
            .await
            .map_err(|e| unavailable(e.into_service_error()))?;
        let mut relayed = 0;
        for item in out.items.unwrap_or_default() {
            self.relay_one(&item).await?;
            relayed += 1;
        }
        Ok(relayed)
    }
}
